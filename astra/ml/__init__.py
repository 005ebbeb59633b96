"""Training data for models: `FeatureTransformer` (scikit-learn, extra `astra[ml]`) turns a spine into
a service's point-in-time features inside a Pipeline; `astra.ml.torch.BackfillDataset` (extra
`astra[torch]`) serves a backfill to a PyTorch DataLoader.  Both import their library on first use."""

__all__ = ["FeatureTransformer"]


def __getattr__(name: str):
    if name == "FeatureTransformer":
        from astra.ml.sklearn import FeatureTransformer

        return FeatureTransformer
    if name == "torch":
        import importlib

        return importlib.import_module("astra.ml.torch")
    raise AttributeError(f"module 'astra.ml' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "torch"})
