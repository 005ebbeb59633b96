"""The answer to a batch query: one value per feature per entity, plus a `_missing` flag."""

from __future__ import annotations

import numpy as np
import polars as pl

from astra.lang.types import Type
from astra.ops.dtypes import polars_dtype
from astra.ops.registry import Vec


class Result:
    """Outputs of one `Store.get`, in the service's output order."""

    def __init__(self, types: tuple[tuple[str, Type], ...], values: dict[str, Vec], missing: np.ndarray):
        self.types, self.values, self.missing = types, values, missing

    def __len__(self) -> int:
        return len(self.missing)

    def columns(self) -> dict[str, np.ndarray]:
        """Output name -> numpy masked array (mask = null), plus `_missing` (bool array)."""
        out = {name: np.ma.MaskedArray(self.values[name].values, mask=~self.values[name].valid)
               for name, _ in self.types}
        out["_missing"] = self.missing
        return out

    def _pylists(self) -> dict[str, list]:
        cols = {}
        for name, _ in self.types:
            v = self.values[name]
            vals = v.values.tolist()
            cols[name] = [x if ok else None for x, ok in zip(vals, v.valid.tolist())]
        return cols

    def rows(self) -> list[dict]:
        """One dict per entity: output name -> Python value (None for null), and `_missing`."""
        cols = self._pylists()
        names = [n for n, _ in self.types]
        return [{**{n: cols[n][j] for n in names}, "_missing": bool(self.missing[j])} for j in range(len(self))]

    def to_polars(self) -> pl.DataFrame:
        """The outputs as a DataFrame typed like the offline engine's (timestamps as Datetime)."""
        cols = self._pylists()
        series = []
        for name, t in self.types:
            data = cols[name]
            if t.name == "list":
                data = [None if x is None else list(x) for x in data]
            if t.name in ("timestamp", "duration"):
                s = pl.Series(name, data, dtype=pl.Int64).cast(polars_dtype(t))
            else:
                s = pl.Series(name, data, dtype=polars_dtype(t))
            series.append(s)
        series.append(pl.Series("_missing", self.missing, dtype=pl.Boolean))
        return pl.DataFrame(series)
