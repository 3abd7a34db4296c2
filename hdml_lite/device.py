"""One code path for CPU and GPU: pick the device, autocast only on CUDA."""
from __future__ import annotations

import contextlib
import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu. 'cuda' without a GPU raises a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but no CUDA GPU is available; use train.device=auto or cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"train.device={name!r}; expected auto, cpu or cuda[:N]")
    return torch.device(name)


def amp_enabled(device: torch.device, amp: bool) -> bool:
    return bool(amp) and device.type == "cuda"


def autocast(device: torch.device, enabled: bool):
    """Mixed precision (float16) on CUDA when enabled; a no-op context on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def resolve_threads(requested: int, device: torch.device) -> int:
    """``train.threads`` -> the number of CPU threads for torch in this run.

    requested > 0: that number. 0 (auto): 1 on CPU, where runs usually go side by side
    (a study, the demo, other users); on CUDA, torch's own default (the CPU only feeds the GPU).

    Measured on 2 shared cores (lab_npair, 60 steps, training-loop seconds, other jobs running):
    1 thread 13.9 s (two runs at once: 17.8 s each); 2 threads 146 s (two at once: 92 s each),
    because idle OpenMP threads spin while the cores are busy; 2 threads with
    OMP_WAIT_POLICY=PASSIVE 8.9 s (two at once: 5.3 s each) but ~15% more CPU time per step
    than 1 thread (98 vs 82 ms). One thread: the least CPU per step and no spinning risk.
    """
    if requested > 0:
        return int(requested)
    if device.type == "cpu":
        return 1
    return torch.get_num_threads()


def apply_threads(requested: int, device: torch.device) -> str:
    """Set ``torch.set_num_threads`` for ``train.threads`` and return the line a run prints,
    e.g. ``threads: 1 (train.threads=0 -> auto)``."""
    n = resolve_threads(requested, device)
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    how = "auto" if requested == 0 else "as set"
    line = f"threads: {n} (train.threads={requested} -> {how})"
    if n > 1 and device.type == "cpu" and not os.environ.get("OMP_WAIT_POLICY"):
        line += "; on a busy machine start with OMP_WAIT_POLICY=PASSIVE (idle threads then sleep, not spin)"
    return line
