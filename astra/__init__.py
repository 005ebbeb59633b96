"""astra: a compiler-driven feature store.

    project = astra.Project.load("features")
    training_set = project.backfill(spine, service="fraud_model@v1", data_root="data/")
"""

from __future__ import annotations

__all__ = ["Project", "ProjectError"]


def __getattr__(name: str):
    # the API is imported on first use, so `astra compile` starts fast
    if name in __all__:
        from astra import project

        return getattr(project, name)
    raise AttributeError(name)
