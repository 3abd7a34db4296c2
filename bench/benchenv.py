"""What every bench script does first: CPU threads set the way training sets them
(``train.threads``: ``hdml_lite.device.apply_threads``; 0 = auto = one thread on a CPU), and the
thread setting and the machine's load printed beside the figures.

    env = bench_env(args.threads, device)     # prints e.g. "threads: 1 (train.threads=0 -> auto); ..."
    result.update(env, load_avg_end=load_avg())

Without it a bench on a loaded machine measured OpenMP's contention, not the code: 30
images/s from the cache without ``OMP_NUM_THREADS=1`` at load 7, 1,175 with it at load 2.6.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages (``os.getloadavg``), rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def bench_env(threads: int = 0, device="cpu") -> dict:
    """Apply ``train.threads`` = ``threads`` for ``device``, print the setting and the load, and
    return them for the script's JSON line: threads, threads_line, omp_num_threads, cores, load_avg."""
    import torch

    from hdml_lite.device import apply_threads

    line = apply_threads(int(threads), torch.device(device))
    load, omp = load_avg(), os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"{line}; OMP_NUM_THREADS={omp}; {cores()} cores; load average {load[0]} {load[1]} {load[2]} "
          f"(1, 5, 15 min)", flush=True)
    return {"threads": torch.get_num_threads(), "threads_line": line, "omp_num_threads": omp, "cores": cores(),
            "load_avg": load}
