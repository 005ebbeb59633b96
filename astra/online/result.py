"""The answer to a batch query: one value per feature per entity, plus a `_missing` flag."""

from __future__ import annotations

import numpy as np
import polars as pl

from astra.lang.types import Type
from astra.ops.dtypes import filler, numpy_dtype, polars_dtype
from astra.ops.registry import Vec


class Result:
    """Outputs of one `Store.get`, in the service's output order.

    Built from columns (`values`, the batch plan's Vecs) or from rows (`from_rows`: tuples of
    Python values, None for null, as the single-entity plan returns them); the other form is
    derived on first use."""

    def __init__(self, types: tuple[tuple[str, Type], ...], values: dict[str, Vec] | None, missing: np.ndarray,
                 tuples: list[tuple] | None = None):
        self.types, self._values, self._missing, self._tuples = types, values, missing, tuples

    @classmethod
    def from_rows(cls, types: tuple[tuple[str, Type], ...], tuples: list[tuple], missing: list[bool]) -> Result:
        """A result from one tuple of Python values per entity (output order) and its missing flag."""
        return cls(types, None, missing, tuples)

    def __len__(self) -> int:
        return len(self._missing)

    @property
    def missing(self) -> np.ndarray:
        if not isinstance(self._missing, np.ndarray):
            self._missing = np.array(self._missing, bool)
        return self._missing

    @property
    def values(self) -> dict[str, Vec]:
        """Output name -> Vec (values + validity), in each output's numpy dtype."""
        if self._values is None:
            out = {}
            for k, (name, t) in enumerate(self.types):
                col = [r[k] for r in self._tuples]
                valid = np.array([v is not None for v in col], bool)
                f = filler(t)
                if t.name == "list":
                    vals = np.empty(len(col), object)
                    vals[:] = [f if v is None else v for v in col] if col else []
                else:
                    vals = np.array([f if v is None else v for v in col], numpy_dtype(t))
                out[name] = Vec(vals, valid)
            self._values = out
        return self._values

    def columns(self) -> dict[str, np.ndarray]:
        """Output name -> numpy masked array (mask = null), plus `_missing` (bool array)."""
        out = {name: np.ma.MaskedArray(self.values[name].values, mask=~self.values[name].valid)
               for name, _ in self.types}
        out["_missing"] = self.missing
        return out

    def _pylists(self) -> dict[str, list]:
        if self._tuples is not None:
            return {name: [r[k] for r in self._tuples] for k, (name, _) in enumerate(self.types)}
        cols = {}
        for name, _ in self.types:
            v = self.values[name]
            vals = v.values.tolist()
            cols[name] = [x if ok else None for x, ok in zip(vals, v.valid.tolist())]
        return cols

    def rows(self) -> list[dict]:
        """One dict per entity: output name -> Python value (None for null), and `_missing`."""
        if self._tuples is not None:
            names = [n for n, _ in self.types]
            return [{**dict(zip(names, r)), "_missing": bool(m)} for r, m in zip(self._tuples, self._missing)]
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
