"""Atomic, safe checkpoints.

- Written to a temporary file in the same folder, then renamed: a run killed while
  writing leaves the previous checkpoint intact. Leftover ``checkpoint.pt.*.tmp`` files
  from such a kill are removed at the start of a run and after each successful save.
- Read with ``torch.load(weights_only=True)``: loading a file never runs code from it.
  A kit checkpoint holds only tensors and plain data (config dict, step, module and
  optimizer state dicts, history lists of dicts of floats, tracker dicts);
  ``save_checkpoint`` converts numpy scalars/arrays to plain Python values so that this
  always holds.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
KIT_KEYS = ("config", "step", "method")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unsafe, unreadable or not a kit checkpoint."""


def atomic_write_bytes(path: Path, write_fn) -> None:
    """Call ``write_fn(file_object)`` on a temp file beside ``path``, then ``os.replace`` it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_partial_files(path: Path) -> list[Path]:
    """Delete ``<path>.*.tmp`` files left by an interrupted atomic write; returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    gone = []
    for p in path.parent.glob(path.name + ".*.tmp"):
        try:
            p.unlink()
            gone.append(p)
        except FileNotFoundError:
            pass
    return gone


def plain(obj):
    """Recursively turn numpy scalars/arrays and tuples into plain Python values
    (tensors, dicts, lists, str, int, float, bool, None are kept) for weights_only loading."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_write_bytes(path, lambda f: torch.save(plain(state), f))
    remove_partial_files(path)


def _first_line(exc: BaseException) -> str:
    """``Type: reason`` in one line; for torch's weights-only errors, the paragraph naming the
    cause (not torch's advice to load with weights_only=False)."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(exc).strip()) if p.strip()]
    keep = [p for p in paragraphs if not p.startswith(("Weights only load failed", "Check the documentation"))]
    text = (keep or paragraphs or [""])[0]
    return f"{type(exc).__name__}: {text[:300]}".strip().rstrip(":")


def load_checkpoint(path: Path, map_location="cpu", purpose: str = "eval", kit: bool = True) -> dict:
    """Load a checkpoint safely (``weights_only=True``) or raise ``CheckpointError`` with one line.

    purpose: "resume" (the checkpoint of a train.out_dir: an unreadable one may be deleted
    to start over) or "eval" (a file given by the user). kit: require the kit's keys
    (config, step, method).
    """
    path = Path(path)
    if path.is_dir():
        hint = f" (e.g. {str(path / CHECKPOINT)!r})" if (path / CHECKPOINT).is_file() else ""
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory; expected a checkpoint file{hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; expected a checkpoint.pt file "
                              f"written by `python -m hdml_lite train`")
    start_over = "; delete it (or use another train.out_dir) to start the run again" if purpose == "resume" else ""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) (\S+)", str(exc))
        if not found:   # e.g. "Unsupported operand": not a torch.save file (random bytes, a plain pickle)
            raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: not a torch checkpoint, or truncated "
                                  f"({_first_line(exc)}){start_over}") from None
        what = f" (it asks for {found.group(1).rstrip('.')})"
        raise CheckpointError(f"checkpoint {str(path)!r} holds Python objects other than tensors and plain "
                              f"data{what}; refusing to load it, since that could run code from the file"
                              f"{start_over}") from None
    except Exception as exc:  # truncated, corrupt, not a torch file, ...
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: not a torch checkpoint, or truncated "
                              f"({_first_line(exc)}){start_over}") from None
    if kit:
        missing = [k for k in KIT_KEYS if not isinstance(state, dict) or k not in state]
        if missing:
            got = f"a dict with keys {sorted(map(str, state))[:8]}" if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(f"{str(path)!r} is a torch file but not an hdml_lite checkpoint: it holds {got}; "
                                  f"expected the keys {', '.join(KIT_KEYS)} (a checkpoint.pt written by "
                                  f"`python -m hdml_lite train`){start_over}")
    return state


def ensure_writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` (parents included) and check a file can be written in it, or raise
    ``CheckpointError`` naming ``what`` (e.g. "train.out_dir") and the value.
    Nothing is left behind by the check."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write_test.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise CheckpointError(f"{what}={str(path)!r} is not a writable folder ({_first_line(exc)}); "
                              f"expected a folder you can write to") from None
    return path


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1, default=float).encode()))
