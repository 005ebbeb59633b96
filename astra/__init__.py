"""astra: a compiler-driven feature store.

    import astra

    project = astra.Project.load("features")
    training_set = project.backfill(spine, service="fraud_model@v1", data_root="data/")
    scores = project.snapshot(service="fraud_model@v1", every="1d", start="2026-03-01", end="2026-03-07")
    store = project.store(data_root="data/")
    store.get("fraud_model@v1", [{"user_id": 1}], at=datetime(2026, 3, 1)).to_polars()

Features by entity, the same way in a notebook and in a service (`astra.FeatureClient`):

    online = astra.Online(project, data_root="data/")              # in process
    client = astra.Client("http://127.0.0.1:8000", token="...")    # from `astra serve`
    client.get("fraud_model@v1", [{"user_id": 1}])                 # a polars DataFrame, either way

`astra.ml.FeatureTransformer` (scikit-learn) and `astra.ml.torch.BackfillDataset` (PyTorch) turn
spines into training data.

Everything public is listed in `__all__`; each name has a docstring (`help(astra.Project)`).
"""

# name -> the module defining it; imported on first use, so `astra compile` starts fast
_PUBLIC = {
    "Project": "astra.project",
    "ProjectError": "astra.project",
    "Store": "astra.online",
    "Result": "astra.online",
    "PushReport": "astra.online",
    "BackfillError": "astra.offline",
    "OnlineError": "astra.online",
    "HorizonError": "astra.online",
    "LateRowError": "astra.online",
    "FutureRowError": "astra.online",
    "SchemaError": "astra.online",
    "UnknownServiceError": "astra.online",
    "Online": "astra.clients.inprocess",
    "Client": "astra.clients.http",
    "ClientError": "astra.clients.errors",
    "FeatureClient": "astra.clients.protocol",
}
_SUBMODULES = ("clients", "ml")  # `astra.ml.FeatureTransformer` after a plain `import astra`

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"astra.{name}")
    raise AttributeError(f"module 'astra' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
