"""Saving and loading a `VectorIndex`: one uncompressed `.npz` file, restored bit-identically.

The file holds the row arrays (trimmed to the rows in use), the key table, the metadata values, the
metric's frozen whitening matrix, faiss's own serialisation of the HNSW graph, and a JSON header
(format version and settings).  Nothing is pickled: `np.load(allow_pickle=False)` reads it, so a
file from elsewhere cannot run code.  A save goes to a temporary file renamed over the target, so a
crash leaves the old file.  A custom distance function is code, not data: pass it again to `load`.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from astra.vectors import hnsw
from astra.vectors.errors import VectorError
from astra.vectors.hnsw import HnswParams
from astra.vectors.index import VectorIndex
from astra.vectors.metrics import Metric, metric

FORMAT = "astra-vector-index/1"
_ROW_ARRAYS = ("vectors", "magnitudes", "key_id", "valid_from", "valid_to")


def _json(value) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def save(index: VectorIndex, path: str | os.PathLike) -> Path:
    """Write `index` to `path` (an .npz file; replaced atomically)."""
    path = Path(path)
    rows = index.rows
    n, nkeys = rows.n, len(rows.keys)
    header = {
        "format": FORMAT, "dim": index.dim, "kind": index.kind, "metric": index.metric.name,
        "metric_kind": index.metric.kind, "pending_fit": index.pending_fit,
        "hnsw": {"m": index.params.m, "ef_construction": index.params.ef_construction,
                 "ef_search": index.params.ef_search},
        "metadata": list(rows.codes), "memory_limit": index.memory_limit, "exact_below": index.exact_below,
        "rows": n, "keys": nkeys, "live": rows.live,
        "key_type": None if index.key_type is None else index.key_type.__name__,
    }
    arrays = {name: getattr(rows, name)[:n] for name in _ROW_ARRAYS}
    arrays |= {f"code.{i}": codes[:n] for i, codes in enumerate(rows.codes.values())}
    arrays["latest"], arrays["last_time"] = rows.latest[:nkeys], rows.last_time[:nkeys]
    if index.key_type is int:
        arrays["keys"] = np.asarray(rows.keys, dtype=np.int64) if nkeys else np.empty(0, dtype=np.int64)
    else:
        arrays["keys_json"] = _json(rows.keys)
    arrays["metadata_values"] = _json([rows.values[name] for name in rows.codes])
    if index.metric.whitening is not None:
        arrays["whitening"] = index.metric.whitening
    if index.graph is not None:
        arrays["graph"] = hnsw.serialize(index.graph)
    arrays["header"] = _json(header)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        np.savez(out, **arrays)
    os.replace(tmp, path)
    return path


def load(path: str | os.PathLike, metric_override: Metric | None = None) -> VectorIndex:
    """An index from `save`'s file; `metric_override` gives back a custom distance function."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise VectorError(f"{path}: no such vector index file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise VectorError(f"{path}: not a vector index file ({exc})") from None
    try:
        header = json.loads(arrays["header"].tobytes())
        if header.get("format") != FORMAT:
            raise VectorError(f"{path}: format {header.get('format')!r}, this astra reads {FORMAT}")
        return _restore(header, arrays, metric_override, path)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        if isinstance(exc, VectorError):
            raise
        raise VectorError(f"{path}: a damaged vector index file ({type(exc).__name__}: {exc})") from None


def _restore(header: dict, arrays: dict, metric_override: Metric | None, path: Path) -> VectorIndex:
    if header["metric_kind"] == "custom":
        if metric_override is None or not metric_override.is_custom:
            raise VectorError(f"{path}: the index uses the custom distance `{header['metric']}`; pass it again: "
                              f"load(path, custom(fn))")
        chosen = metric_override
    elif "whitening" in arrays:
        chosen = Metric(name="mahalanobis", kind="l2", whitening=arrays["whitening"].astype(np.float64))
    elif header["pending_fit"]:
        chosen = "mahalanobis"
    else:
        chosen = metric(header["metric"])
    h = header["hnsw"]
    index = VectorIndex(header["dim"], chosen, header["kind"], metadata=tuple(header["metadata"]),
                        hnsw_params=HnswParams(m=h["m"], ef_construction=h["ef_construction"],
                                               ef_search=h["ef_search"]),
                        memory_limit=header["memory_limit"], exact_below=header["exact_below"])
    rows, n, nkeys = index.rows, header["rows"], header["keys"]
    for name in _ROW_ARRAYS:
        setattr(rows, name, arrays[name].copy())
        if len(getattr(rows, name)) != n:
            raise VectorError(f"{path}: array {name} has {len(getattr(rows, name))} rows, the header says {n}")
    if rows.vectors.shape != (n, header["dim"]) or rows.vectors.dtype != np.float32:
        raise VectorError(f"{path}: stored vectors have shape {rows.vectors.shape} {rows.vectors.dtype}")
    for i, name in enumerate(rows.codes):
        rows.codes[name] = arrays[f"code.{i}"].copy()
    rows.n, rows.live = n, header["live"]
    nonzero = rows.magnitudes[rows.magnitudes > 0]
    rows.magnitude_range = (float(rows.magnitudes.max()) if n else 0.0,
                            float(nonzero.min()) if len(nonzero) else np.inf)
    rows.latest, rows.last_time = arrays["latest"].copy(), arrays["last_time"].copy()
    keys = arrays["keys"].tolist() if "keys" in arrays else json.loads(arrays["keys_json"].tobytes())
    if len(keys) != nkeys:
        raise VectorError(f"{path}: {len(keys)} keys, the header says {nkeys}")
    rows.keys = keys
    rows.key_index = {key: i for i, key in enumerate(keys)}
    rows.key_bytes = sum(sys.getsizeof(key) + sys.getsizeof(i) for i, key in enumerate(keys))
    for name, values in zip(rows.codes, json.loads(arrays["metadata_values"].tobytes())):
        rows.set_values(name, values)
    index.key_type = {"int": int, "str": str, None: None}[header["key_type"]]
    if "graph" in arrays:
        index.graph = hnsw.deserialize(arrays["graph"])
        if index.graph.ntotal != n:
            raise VectorError(f"{path}: the HNSW graph has {index.graph.ntotal} vectors, the header says {n}")
    return index
