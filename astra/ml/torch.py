"""`BackfillDataset`: a PyTorch `Dataset` over a backfill (extra `astra[torch]`).

The features become one tensor of shape (rows, features) when the dataset is built, so a
`DataLoader` only indexes it: numbers and booleans as they are, timestamps and durations as µs,
nulls as NaN (or `fill_null`), all in `dtype`.  Text and lists have no single number: they are
refused with their names, to be left out (`features=`) or encoded upstream.  The target, if any,
is converted as Polars converts it (`Series.to_numpy`), or to `target_dtype`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as exc:  # the optional extra is not installed
    raise ImportError("astra.ml.torch needs PyTorch; install the extra: pip install 'astra[torch]'") from exc

import polars as pl


class BackfillDataset(Dataset):
    """Rows of a backfill (or any frame) as `(features, target)` tensors, or `features` alone.

        data = BackfillDataset.from_backfill(project, "fraud_model@v1", spine, data_root="build/demo/",
                                             features=["tx_count_7d", "tx_sum_7d"], target="label")
        loader = torch.utils.data.DataLoader(data, batch_size=256, shuffle=True)

    `frame`: a Polars or pandas DataFrame; `features`: its feature columns (default: every column
    but the target); `target`: the label column, if any."""

    def __init__(self, frame: Any, features: list[str] | None = None, target: str | None = None, *,
                 dtype: torch.dtype = torch.float32, target_dtype: torch.dtype | None = None,
                 fill_null: float | None = None):
        frame = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
        if target is not None and target not in frame.columns:
            raise ValueError(f"target: no column `{target}`; columns: {', '.join(frame.columns)}")
        names = [c for c in frame.columns if c != target] if features is None else list(features)
        unknown = [c for c in names if c not in frame.columns]
        if unknown:
            raise ValueError(f"features: no column {', '.join(f'`{c}`' for c in unknown)}; "
                             f"columns: {', '.join(frame.columns)}")
        if not names:
            raise ValueError("features: choose at least one column")
        exprs, refused = [], []
        for name in names:
            dt = frame.schema[name]
            if dt.is_numeric() or dt == pl.Boolean:
                exprs.append(pl.col(name).cast(pl.Float64))
            elif isinstance(dt, pl.Datetime | pl.Duration):  # as µs
                exprs.append(pl.col(name).dt.cast_time_unit("us").cast(pl.Int64).cast(pl.Float64))
            else:
                refused.append(f"`{name}` ({dt})")
        if refused:
            raise TypeError(f"features: {', '.join(refused)} have no single number per row; leave them out "
                            f"(features=[...]) or encode them first")
        values = frame.select(exprs)
        if fill_null is not None:
            values = values.fill_null(fill_null)
        #: the feature columns, in tensor order
        self.feature_names: tuple[str, ...] = tuple(names)
        self.features = torch.from_numpy(values.to_numpy()).to(dtype)  # nulls are NaN in to_numpy
        self.target = None
        if target is not None:
            y = torch.as_tensor(frame[target].to_numpy())
            self.target = y if target_dtype is None else y.to(target_dtype)

    @classmethod
    def from_backfill(cls, project, service: str, spine: Any, *, data_root: str | Path | None = None,
                      time_column: str = "ts", features: list[str] | None = None, target: str | None = None,
                      **kw) -> BackfillDataset:
        """Backfill `service` (`name@vN`) over `spine` (`Project.backfill`), then the dataset of its
        outputs (all, or `features`) with the spine's `target` column; other keywords as the class."""
        from astra.project import Project

        project = project if isinstance(project, Project) else Project.load(project)
        svc = project.service(service)
        frame = project.backfill(spine, service=svc.id, data_root=data_root, time_column=time_column)
        names = [o.name for o in svc.outputs] if features is None else features
        return cls(frame, names, target, **kw)

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, i):
        if self.target is None:
            return self.features[i]
        return self.features[i], self.target[i]
