"""`FeatureTransformer`: a scikit-learn transformer from spines to a service's point-in-time features.

A spine (entity keys and a query time per row, as `astra backfill` takes it) goes in; the
service's outputs at each row's time come out, computed by the backfill, so the features a model
is trained on are the ones `astra serve` would have answered at that time.  It learns nothing from
the data: `fit` checks the parameters and the spine, `transform` runs the backfill.  Output
follows scikit-learn's `set_output`: a numpy array by default (Polars' `DataFrame.to_numpy`),
`"pandas"` (Polars' `to_pandas`, on the spine's index) or `"polars"`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

OUTPUTS = ("default", "pandas", "polars")


class FeatureTransformer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """The point-in-time features of `service` for each row of a spine.

        pipe = make_pipeline(FeatureTransformer("features", "fraud_model@v1", data_root="build/demo/",
                                                features=["tx_count_7d", "tx_sum_7d"]),
                             LogisticRegression())
        pipe.fit(spine, spine["label"])

    `project`: an `astra.Project` or its path; `service`: `name@vN`; `data_root`: where the
    sources are (default: the project directory); `time_column`: the spine's query-time column;
    `features`: the outputs to return, in this order (default: all, in service order).  The spine
    (Polars or pandas) holds the service's key columns, the time column and any request fields;
    other columns (a label) are ignored."""

    def __init__(self, project=None, service: str | None = None, *, data_root: str | Path | None = None,
                 time_column: str = "ts", features: list[str] | tuple[str, ...] | None = None):
        self.project = project
        self.service = service
        self.data_root = data_root
        self.time_column = time_column
        self.features = features

    def fit(self, X, y=None):
        """Load the project, resolve the service and the features, and check that `X` is a spine."""
        from astra.project import Project

        columns = _columns(X)  # before loading anything: a numpy array is refused at once
        if len(X) == 0:
            raise ValueError("the spine is empty: fit needs at least one row (entity keys and a query time)")
        if self.project is None or self.service is None:
            raise ValueError("FeatureTransformer needs a project (an astra.Project or its path) and a service "
                             "(`name@vN`)")
        project = self.project if isinstance(self.project, Project) else Project.load(self.project)
        svc = project.service(self.service)
        outputs = [o.name for o in svc.outputs]
        chosen = list(outputs if self.features is None else
                      ([self.features] if isinstance(self.features, str) else self.features))
        unknown = [f for f in chosen if f not in outputs]
        if unknown or not chosen:
            named = ", ".join(f"`{f}`" for f in unknown)
            raise ValueError(f"features: `{svc.id}` has no feature {named}; its features: {', '.join(outputs)}"
                             if unknown else "features: choose at least one feature")
        keys = [k for e in svc.entities for k, _ in project.plan.entity(e).keys]
        needed = list(dict.fromkeys([*keys, self.time_column]))
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ValueError(f"the spine has no column {', '.join(f'`{c}`' for c in missing)}: `{svc.id}` needs "
                             f"{', '.join(keys)} and a query time in `{self.time_column}` (time_column=...); "
                             f"its columns: {', '.join(map(str, columns)) or 'none'}")
        self.project_, self.service_, self.features_ = project, svc.id, tuple(chosen)
        self.spine_columns_ = tuple(needed)
        return self

    def transform(self, X):
        """The chosen features at each spine row's time, in spine order (see the module docstring
        for the output container)."""
        import polars as pl

        check_is_fitted(self, "features_")
        columns = _columns(X)
        missing = [c for c in self.spine_columns_ if c not in columns]
        if missing:
            raise ValueError(f"the spine has no column {', '.join(f'`{c}`' for c in missing)} (fitted on a spine "
                             f"with {', '.join(self.spine_columns_)})")
        spine = X if isinstance(X, pl.DataFrame) else pl.from_pandas(X.reset_index(drop=True))
        frame = self.project_.backfill(spine, service=self.service_, data_root=self.data_root,
                                       time_column=self.time_column)
        out = frame.select(self.features_)
        kind = self._output()
        if kind == "polars":
            return out
        if kind == "pandas":
            pdf = out.to_pandas()
            if not isinstance(X, pl.DataFrame):
                pdf.index = X.index
            return pdf
        return out.to_numpy()

    def get_feature_names_out(self, input_features=None):
        """The names of the returned features."""
        check_is_fitted(self, "features_")
        return np.asarray(self.features_, dtype=object)

    def set_output(self, *, transform=None):
        """`"default"` (numpy), `"pandas"` or `"polars"`; None leaves it unchanged (scikit-learn's API)."""
        if transform is not None:
            if transform not in OUTPUTS:
                raise ValueError(f"set_output: transform must be one of {', '.join(OUTPUTS)}, got {transform!r}")
            # scikit-learn's own attribute for it: `clone` carries it over
            self._sklearn_output_config = {**getattr(self, "_sklearn_output_config", {}), "transform": transform}
        return self

    def _output(self) -> str:
        kind = getattr(self, "_sklearn_output_config", {}).get("transform", "default")
        if kind == "default":  # the global `sklearn.set_config(transform_output=...)`
            from sklearn import get_config

            kind = get_config().get("transform_output", "default")
        return kind if kind in OUTPUTS else "default"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.string = True  # key columns may be strings
        tags.input_tags.allow_nan = True  # request fields may be null
        tags.transformer_tags.preserves_dtype = []
        return tags


def _columns(X) -> list:
    cols = getattr(X, "columns", None)
    if cols is None:
        raise TypeError(f"expected a spine as a Polars or pandas DataFrame (entity keys and a time column), "
                        f"got {type(X).__name__}")
    return list(cols)
