"""CPU time of each notebook at a budget: the six notebooks in order (a fresh kernel each, one shared
run folder, so later notebooks reuse the runs of earlier ones, as in a lab session), or the solutions.

    OMP_NUM_THREADS=1 python bench/notebook_cpu.py --budget cpu            # the six notebooks
    OMP_NUM_THREADS=1 python bench/notebook_cpu.py --budget cpu --solutions --runs /tmp/nbruns

Prints one line per notebook (kernel CPU seconds = user + system of the kernel process and its
children, and wall seconds), then one JSON line. Nothing is written into the repository.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchenv import cores, load_avg  # noqa: E402  (bench/benchenv.py: the repository on sys.path)

REPO = Path(__file__).resolve().parents[1]


def kernel_cpu(pid: int) -> float:
    """user + system CPU seconds of a process and its waited-for children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick


def run(path: Path, env: dict, timeout: int) -> tuple[float, float]:
    import nbclient
    import nbformat
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    sockets = tempfile.mkdtemp(prefix="nbk")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
    client = nbclient.NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    t0, cpu = time.perf_counter(), 0.0
    os.environ.update(env)
    try:
        with client.setup_kernel():
            pid = km.provisioner.process.pid
            client.execute()
            cpu = kernel_cpu(pid)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    return cpu, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="cpu", choices=("fast", "cpu", "full"))
    p.add_argument("--solutions", action="store_true", help="the worked solutions instead of the notebooks")
    p.add_argument("--runs", default="", help="HDML_RUNS (default: a new temporary folder)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = p.parse_args(argv)
    folder = REPO / "notebooks" / ("solutions" if args.solutions else "")
    runs = args.runs or tempfile.mkdtemp(prefix="nbruns")
    env = {"HDML_BUDGET": args.budget, "HDML_RUNS": runs, "MPLBACKEND": "Agg"}
    os.environ.pop("HDML_FAST", None)
    load = load_avg()
    print(f"budget {args.budget}; the kernels train with train.threads auto (one thread on a CPU); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {cores()} cores; load average "
          f"{load[0]} {load[1]} {load[2]}; runs in {runs}")
    out = {}
    for nb in sorted(folder.glob("0[0-5]_*.ipynb")):     # the CPU lab (06, the GPU protocol, is not timed here)
        cpu, wall = run(nb, env, args.timeout)
        out[nb.name] = {"cpu_s": round(cpu, 1), "wall_s": round(wall, 1)}
        print(f"{nb.name}: {cpu:.0f} CPU-s, {wall:.0f} s wall", flush=True)
    print(json.dumps({"budget": args.budget, "solutions": args.solutions, "notebooks": out,
                      "load_avg_start": load, "load_avg_end": load_avg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
