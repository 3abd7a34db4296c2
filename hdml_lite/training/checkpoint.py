"""Atomic, safe checkpoints.

- Written to a temporary file in the same folder, then renamed: a run killed while
  writing leaves the previous checkpoint intact. The file gets the mode ``open()`` would give
  it under the umask (file_mode.py; mkstemp alone makes it private, 0600). Leftover ``checkpoint.pt.*.tmp`` files
  from such a kill are removed at the start of a run and after each successful save.
- A write that fails because the disk is full (``ENOSPC``, or torch's "[enforce fail ...]
  unexpected pos" that it turns into) raises ``DiskFullError``: one line saying so, where,
  and that the previous file is intact (it is: only the temporary file is removed).
- Read with ``torch.load(weights_only=True)``: loading a file never runs code from it.
  A kit checkpoint holds only tensors and plain data (config dict, step, module and
  optimizer state dicts, history lists of dicts of floats, tracker dicts);
  ``save_checkpoint`` converts numpy scalars/arrays to plain Python values so that this
  always holds.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import signal
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..file_mode import set_new_file_mode

CHECKPOINT = "checkpoint.pt"
KIT_KEYS = ("config", "step", "method")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unsafe, unreadable or not a kit checkpoint."""


class DiskFullError(OSError):
    """A checkpoint or record could not be written because the disk is full (one line)."""


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_TORCH_WRITE_STOPPED = re.compile(r"unexpected pos|enforce fail at inline_container|PytorchStreamWriter failed")


def _free_space(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**20:.1f} MB free" if free < 2**30 else f"{free / 2**30:.1f} GB free"


def _saved_step(path: Path):
    """The step of the checkpoint already at ``path`` (None if unreadable), cheaply (mmap)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return state.get("step") if isinstance(state, dict) else None
    except Exception:
        return None


def disk_full_error(exc: BaseException, path: Path) -> DiskFullError | None:
    """``DiskFullError`` for a write of ``path`` that failed with a full disk, else None.

    torch.save turns the ``OSError(ENOSPC)`` of its file into ``RuntimeError("[enforce fail at
    inline_container.cc:...] . unexpected pos ...")`` (the OSError is its ``__context__``)."""
    full = _enospc(exc)
    stopped = isinstance(exc, RuntimeError) and _TORCH_WRITE_STOPPED.search(str(exc))
    if not (full or stopped):
        return None
    path = Path(path)
    folder = path.parent
    if path.exists():
        step = _saved_step(path) if path.suffix == ".pt" else None
        kept = f"the previous {path.name}{f' (step {step})' if step is not None else ''} is intact"
    else:
        kept = f"no earlier {path.name} was there"
    how = "" if full else f" (torch: {' '.join(str(exc).split())[:120]})"
    err = DiskFullError(f"the disk is full: no space left in {folder} ({_free_space(folder)}) to write "
                        f"{path.name}{how}; {kept}. Free some space (or set train.out_dir to a folder "
                        f"on another disk) and run the same command again to resume")
    err.errno = errno.ENOSPC
    return err


def atomic_write_bytes(path: Path, write_fn) -> None:
    """Call ``write_fn(file_object)`` on a temp file beside ``path``, then ``os.replace`` it.
    A full disk raises ``DiskFullError``; ``path`` itself is never touched by a failed write.
    The file gets the mode of a new file under the umask (e.g. 0644 under umask 022), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            set_new_file_mode(fd, tmp)
            with os.fdopen(fd, "wb") as f:
                write_fn(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            return
        except BaseException as exc:
            if os.path.exists(tmp):
                os.remove(tmp)
            if _interrupted(exc):           # Ctrl-C inside torch.save: an interrupt, not a full disk
                raise KeyboardInterrupt() from None
            full = disk_full_error(exc, path) if isinstance(exc, Exception) else None
            if full is None:
                raise
            if attempt == 1 and not _enospc(exc):
                continue                    # torch's "unexpected pos" without ENOSPC: a write cut short once (a signal)
            raise full from None


def _chain(exc: BaseException) -> list[BaseException]:
    chain, e = [], exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def _interrupted(exc: BaseException) -> bool:
    return any(isinstance(c, KeyboardInterrupt) for c in _chain(exc))


def _enospc(exc: BaseException) -> bool:
    return any(isinstance(c, OSError) and c.errno in _FULL for c in _chain(exc))


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


def checkpoint_config(state: dict, path):
    """The Config saved in a loaded checkpoint, checked as strictly as one from the command line
    (``config.from_dict``: every key's type, then ``validate``); a bad one (e.g. a hand-edited
    ``"eval_batch": "abc"``) is a ``ConfigError`` naming the file and the key."""
    from ..config import ConfigError, from_dict

    try:
        return from_dict(state.get("config") if isinstance(state, dict) else state)
    except ConfigError as exc:
        raise ConfigError(f"checkpoint {str(path)!r} holds a config that does not pass the config check: {exc}; "
                          f"the file was edited, or written by another version") from None


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


# ----------------------------------------------------------------------------- what a checkpoint holds

def _shape(t) -> str:
    return "(" + ", ".join(map(str, tuple(t.shape))) + ")"


def state_mismatch(modules: dict, saved_method) -> str | None:
    """Why the checkpoint's ``method`` entry cannot be loaded into ``modules`` (a Method's
    ``{name: nn.Module}``), in words naming the tensor (and both shapes), or None when every
    module's tensors are there with the right shapes."""
    saved = saved_method.get("modules") if isinstance(saved_method, dict) else None
    if not isinstance(saved, dict):
        return "it holds no module weights (method.modules)"
    for name, module in modules.items():
        sd = saved.get(name)
        if not isinstance(sd, dict):
            return f"module {name!r} is missing from the checkpoint (it holds {', '.join(map(repr, saved)) or 'none'})"
        own = module.state_dict()
        wrong = [(k, v, sd[k]) for k, v in own.items()
                 if k in sd and isinstance(sd[k], torch.Tensor) and tuple(sd[k].shape) != tuple(v.shape)]
        if wrong:
            k, v, s = wrong[0]
            more = f" ({len(wrong) - 1} more tensors differ)" if len(wrong) > 1 else ""
            return (f"tensor {name}.{k} has shape {_shape(s)} in the checkpoint but {_shape(v)} in the model"
                    f"{more}")
        missing = [k for k in own if k not in sd]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            return f"tensor {name}.{missing[0]}{more} of the model is missing from the checkpoint"
        extra = [k for k in sd if k not in own]
        if extra:
            more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
            return f"the checkpoint holds tensor {name}.{extra[0]}{more}, which the model does not have"
    return None


def load_error_text(exc: BaseException) -> str:
    """torch's load_state_dict error in one line, the lines that name tensors included (its first
    line alone, "Error(s) in loading state_dict for X:", names none)."""
    lines = [" ".join(ln.split()) for ln in str(exc).strip().splitlines() if ln.strip()]
    text = "; ".join(lines[1:] if len(lines) > 1 and lines[0].endswith(":") else lines)
    return f"{type(exc).__name__}: {text[:400]}"


def nonfinite_tensors(saved_method) -> list[str]:
    """Names (``module.tensor``) of the floating-point weights and buffers of a checkpoint's
    ``method`` entry that hold NaN or inf."""
    saved = saved_method.get("modules") if isinstance(saved_method, dict) else None
    bad = []
    for name, sd in (saved or {}).items():
        for k, v in (sd.items() if isinstance(sd, dict) else []):
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all():
                bad.append(f"{name}.{k}")
    return bad


# ----------------------------------------------------------------------------- an interrupted run

@contextmanager
def interrupts_held():
    """Hold Ctrl-C (SIGINT) until the block ends, then deliver it to the handler that was there.

    A checkpoint and the step that an interrupted run reports as kept are written inside one
    block, so the one-line message always names the checkpoint that is on disk. Outside the main
    thread, or when SIGINT is ignored or not Python's, the block runs unchanged."""
    old = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(old):
        yield
        return
    pending = []
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if pending:
        old(*pending[0])


class Progress:
    """Where a run is (the trainer updates it): the step being trained, the step of the last
    checkpoint written (None: none yet), and its path. For the message of an interrupted run."""

    def __init__(self, path=None):
        self.step, self.saved, self.path = None, None, path

    def message(self) -> str:
        if self.step is None:
            return "interrupted before training started; nothing was written; run the same command to start again"
        if self.saved is None:
            return (f"interrupted at step {self.step}; no checkpoint was written yet; "
                    f"run the same command to start again")
        return (f"interrupted at step {self.step}; the checkpoint at step {self.saved} is kept; "
                f"run the same command to resume")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: ``str()`` is the one line to print (where it stopped, what is kept)."""

    def __init__(self, message: str, step=None, saved=None):
        super().__init__(message)
        self.step, self.saved = step, saved

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "interrupted"
