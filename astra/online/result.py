"""The answer to a batch query: one value per feature per entity, plus missing flags.

An entity is `missing` when no table the service reads knows it; a feature is missing for an
entity (`missing_features`, `missing_outputs`) when no table *that feature* reads knows it, so an
entity with profile rows but no transactions has `country` but not `tx_count_1h`.  Both come from
`found`, per entity a bitmask of the service's tables (`CompiledService.tables` order) that hold
the entity, and `Missing`, per output the bitmask of the tables it reads."""

from __future__ import annotations

import numpy as np
import polars as pl

from astra.lang.types import Type
from astra.ops.dtypes import filler, numpy_dtype, polars_dtype
from astra.ops.registry import Vec
from astra.ops.vectors import pack, unpack


class Missing:
    """Per output, the bitmask of the service's tables it reads; found mask -> missing outputs (memoised)."""

    __slots__ = ("memo", "reads")

    def __init__(self, reads: tuple[int, ...]):
        self.reads = reads
        self.memo: dict[int, tuple[int, ...]] = {}

    def outputs(self, found: int) -> tuple[int, ...]:
        """Indexes of the outputs missing for an entity found in the tables of bitmask `found`."""
        got = self.memo.get(found)
        if got is None:
            got = self.memo[found] = tuple(k for k, r in enumerate(self.reads) if r and not found & r)
        return got


class Result:
    """Outputs of one `Store.get`, in the service's output order.

    Built from columns (`values`, the batch plan's Vecs) or from rows (`from_rows`: tuples of
    Python values, None for null, as the single-entity plan returns them); the other form is
    derived on first use."""

    def __init__(self, types: tuple[tuple[str, Type], ...], values: dict[str, Vec] | None, missing: np.ndarray,
                 tuples: list[tuple] | None = None, found: list[int] | np.ndarray | None = None,
                 reads: Missing | None = None):
        self.types, self._values, self._missing, self._tuples = types, values, missing, tuples
        self._found, self._reads = found, reads
        # with `Store.get(validity=True)`: per entity, the latest query time with the same answer
        self.valid_until: list[int] | None = None
        # set by `Store.lookup`: per entity its key values, and those key columns (name, type), for `to_polars`
        self.keys: list[tuple] | None = None
        self.key_columns: tuple[tuple[str, Type], ...] = ()

    @classmethod
    def from_rows(cls, types: tuple[tuple[str, Type], ...], tuples: list[tuple], missing: list[bool],
                  found: list[int] | None = None, reads: Missing | None = None) -> Result:
        """A result from one tuple of Python values per entity (output order) and its missing flag."""
        return cls(types, None, missing, tuples, found, reads)

    def __len__(self) -> int:
        return len(self._missing)

    @property
    def missing(self) -> np.ndarray:
        """Per entity (bool): no table the service reads knows it (see `missing_outputs` per feature)."""
        if not isinstance(self._missing, np.ndarray):
            self._missing = np.array(self._missing, bool)
        return self._missing

    def missing_outputs(self) -> list[tuple[int, ...]]:
        """Per entity, the indexes (output order) of the outputs missing for it: no table the
        output reads, directly or through the features it references, knows the entity."""
        if self._reads is None:  # no per-table information: every output missing with the entity
            every = tuple(range(len(self.types)))
            return [every if m else () for m in self.missing.tolist()]
        found = self._found.tolist() if isinstance(self._found, np.ndarray) else self._found
        return list(map(self._reads.outputs, found))

    @property
    def missing_features(self) -> np.ndarray:
        """(entities, outputs) bool: output k is missing for entity j (see `missing_outputs`)."""
        out = np.zeros((len(self), len(self.types)), bool)
        for j, ks in enumerate(self.missing_outputs()):
            out[j, list(ks)] = True
        return out

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
                elif t.name == "vector":
                    vals = pack(np.array([(0.0,) * t.size if v is None else v for v in col],
                                         np.float32).reshape(len(col), t.size))
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
        for name, t in self.types:
            v = self.values[name]
            vals = v.values.tolist() if t.name != "vector" else list(map(tuple, unpack(v.values).tolist()))
            cols[name] = [x if ok else None for x, ok in zip(vals, v.valid.tolist())]
        return cols

    def tuples(self) -> list[tuple]:
        """One tuple of Python values (output order, None for null) per entity."""
        if self._tuples is None:
            cols = self._pylists()
            self._tuples = list(zip(*(cols[n] for n, _ in self.types))) if self.types else [()] * len(self)
        return self._tuples

    def rows(self) -> list[dict]:
        """One dict per entity: output name -> Python value (None for null), and `_missing`."""
        if self._tuples is not None:
            names = [n for n, _ in self.types]
            return [{**dict(zip(names, r)), "_missing": bool(m)} for r, m in zip(self._tuples, self._missing)]
        cols = self._pylists()
        names = [n for n, _ in self.types]
        return [{**{n: cols[n][j] for n in names}, "_missing": bool(self.missing[j])} for j in range(len(self))]

    def to_polars(self) -> pl.DataFrame:
        """The entities' key columns, then the outputs, typed like the offline engine's (timestamps as
        Datetime), then `_missing`."""
        cols = self._pylists()
        keys = self.key_columns if self.keys is not None else ()
        series = [pl.Series(k, [row[j] for row in self.keys], dtype=polars_dtype(t)) for j, (k, t) in enumerate(keys)]
        for name, t in self.types:
            data = cols[name]
            if t.name in ("list", "vector"):
                data = [None if x is None else list(x) for x in data]
            if t.name in ("timestamp", "duration"):
                s = pl.Series(name, data, dtype=pl.Int64).cast(polars_dtype(t))
            else:
                s = pl.Series(name, data, dtype=polars_dtype(t))
            series.append(s)
        series.append(pl.Series("_missing", self.missing, dtype=pl.Boolean))
        return pl.DataFrame(series)
