"""The pinned runs on disk: one JSON file (metrics, histories, probes' scalars) and one npz file (arrays).

    write_pinned(runs, out)          # runs: {key: PinnedRecord-like dict}; out: a folder
    index = read_index(folder)       # {"runs": {key: {...}}, "meta": {...}}
    arrays = read_arrays(folder)     # {name: np.ndarray}, np.load(allow_pickle=False)

Nested data (a probe record: dicts, lists, arrays, scalars) is stored as JSON in which every array is
replaced by ``{"__array__": name}``, its values in ``arrays.npz`` (floats as float16, model weights
included: they draw pictures and medians, they are not checkpoints to resume). ``unpack`` undoes it.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

INDEX = "runs.json.gz"
ARRAYS = "arrays.npz"


def _round(x, digits: int = 5):
    """Floats rounded to ``digits`` significant digits (a smaller file; the notebooks print 2-4)."""
    if isinstance(x, float):
        return float(f"{x:.{digits}g}") if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, digits) for v in x]
    return x


def pack(obj, name: str, arrays: dict, half: bool = True):
    """obj with every np.ndarray moved into ``arrays[name/...]`` and replaced by {"__array__": key}."""
    if isinstance(obj, np.ndarray):
        a = obj
        if a.dtype.kind == "f" and half:
            a = a.astype(np.float16)
        elif a.dtype.kind in "iu" and a.size and a.min() >= 0 and a.max() < 65536:
            a = a.astype(np.uint16)
        arrays[name] = a
        return {"__array__": name}
    if isinstance(obj, dict):
        return {k: pack(v, f"{name}/{k}", arrays, half) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [pack(v, f"{name}/{i}", arrays, half) for i, v in enumerate(obj)]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def unpack(obj, arrays):
    """The inverse of ``pack`` (float16 arrays come back as float32, uint16 as int64)."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            a = arrays[obj["__array__"]]
            return a.astype(np.float32) if a.dtype == np.float16 else (a.astype(np.int64) if a.dtype == np.uint16 else a)
        return {k: unpack(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, arrays) for v in obj]
    return obj


def write_pinned(index: dict, arrays: dict, out: str | Path) -> dict:
    """Write ``index`` (JSON-able) and ``arrays`` into ``out``; returns {file: bytes}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / INDEX, "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump(_round(index), f, separators=(",", ":"), sort_keys=True)
    np.savez_compressed(out / ARRAYS, **arrays)
    return {p.name: p.stat().st_size for p in (out / INDEX, out / ARRAYS)}


def read_index(folder: str | Path) -> dict:
    with gzip.open(Path(folder) / INDEX, "rt", encoding="utf-8") as f:
        return json.load(f)


def read_arrays(folder: str | Path) -> dict:
    with np.load(Path(folder) / ARRAYS, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
