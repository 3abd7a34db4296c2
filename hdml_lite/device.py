"""One code path for CPU and GPU: pick the device, autocast only on CUDA."""
from __future__ import annotations

import contextlib

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
