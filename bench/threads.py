"""CPU threads per run: one thread, two threads, two threads with OMP_WAIT_POLICY=PASSIVE; each
run alone and as two copies at once (the study and the demo run two side by side).

    python bench/threads.py                 # lab_npair, 60 steps, no evaluation
    python bench/threads.py --steps 30

Each setting starts `python -m hdml_lite train` in fresh processes (the wait policy must be set
before torch is imported) and reads `train_s` (the training loop) from their metrics.json.
Last line: a JSON object {setting: [train_s of each copy]} plus "cores" and the load average at
the start and the end (each setting's line also prints the load when it finished).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import bench_env, load_avg  # noqa: E402

SETTINGS = {"1 thread": (1, None), "2 threads": (2, None), "2 threads PASSIVE": (2, "PASSIVE")}


def run(copies: int, threads: int, policy: str | None, steps: int, tmp: Path, tag: str) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    outs = [tmp / f"{tag}_{k}" for k in range(copies)]
    procs = [subprocess.Popen([sys.executable, "-m", "hdml_lite", "train", "--preset", "lab_npair",
                               f"train.steps={steps}", "train.eval_every=0", "train.ckpt_every=0",
                               "train.progress=false", f"train.threads={threads}", f"train.out_dir={o}"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for o in outs]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a training run failed (setting {tag}); run it by hand to see why")
    return [round(json.loads((o / "metrics.json").read_text())["train_s"], 1) for o in outs]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    a = ap.parse_args(argv)
    env = bench_env(0, "cpu")      # this process only starts the runs; each run gets its own setting
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, (threads, policy) in SETTINGS.items():
            for copies in (1, 2):
                key = f"{name}, {'alone' if copies == 1 else 'two at once'}"
                out[key] = run(copies, threads, policy, a.steps, Path(d), key.replace(" ", "_").replace(",", ""))
                print(f"{key:<34} train_s {out[key]}  (load {load_avg()[0]})", flush=True)
    out.update(cores=env["cores"], load_avg=env["load_avg"], load_avg_end=load_avg())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
