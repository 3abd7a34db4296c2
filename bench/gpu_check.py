"""GPU check: training throughput of the paper presets on synthetic data in the real CUB layout.

    python bench/gpu_check.py                      # CUDA + AMP: cub_npair and cub_hdml_npair, 300 steps each
    python bench/gpu_check.py --steps 3 --tiny     # a CPU smoke run of the same script (seconds)
    python bench/gpu_check.py --weights googlenet-1378be20.pth   # start from ImageNet weights (a local file)
    python bench/gpu_check.py --notebook 100 --json $OUT/gpu_check.json   # then notebook 06 in GPU mode, 100 steps a run

One prepared script for a machine with a GPU (run it there as is; it needs no network, no
dataset and no install: it imports the kit from this checkout), e.g. on a lent machine
``python3 bench/gpu_check.py --json $OUT/gpu_check.json`` (a few minutes). It writes a synthetic CUB-200-2011 (``CUB_200_2011/images.txt``,
``image_class_labels.txt``, ``classes.txt``, ``images/<class>/<file>.jpg``; 200 classes, JPEGs of
CUB's typical 500 x 375 size) into a temporary folder, then trains each preset through the
kit's own trainer (``hdml_lite.training.trainer.train``) with its real data pipeline, reading the
pre-resized uint8 image cache (``data.cache``, built once before the timings; ``--no-cache`` decodes
the JPEGs in every step instead), so that it measures the model rather than JPEG decoding. It
applies ``train.threads`` (``--threads``, auto by default) and prints it with the load average.
It records per preset:

- ``step_s_median`` / ``step_s_mean``: wall time between consecutive steps (the trainer's
  per-step callback), after ``--warmup`` steps; ``images_per_s`` = batch size / median step time;
- ``data_wait_frac``: the fraction of that time spent waiting for the next batch (inside the
  pipeline's ``get``); near 0 means the GPU, not the data loading, sets the pace;
- ``peak_mem_gib``: peak GPU memory allocated (``torch.cuda.max_memory_allocated``);
- ``final``: the test metrics after the run (synthetic data: only a sanity check).

``--notebook STEPS`` then executes ``notebooks/06_paper_protocol.ipynb`` with nbclient (GPU mode on a
GPU, its smoke mode elsewhere) on a full-size synthetic CUB (``HDML_NB06_DATA=synthetic``: the machine
needs no network), two seeds of STEPS steps per preset, its runs in a temporary ``HDML_RUNS``; it
records the wall time and any error under ``"notebook06"`` and saves the executed copy next to
``--json`` (``<json>.06.ipynb``), so both checks are one prepared command.

The last line printed is one JSON object. A preset that fails is reported with its error and the
others still run (exit code 1 then). Without CUDA (or with ``--device cpu``) it runs on the CPU,
AMP off; ``--tiny`` makes everything small (8 classes of 64 x 48 images, 32-pixel crops, small
batches) for that case. Without ``--weights`` the trunk starts from random weights (the same
cost per step; no download is attempted).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import bench_env, load_avg  # noqa: E402

PRESETS = ("cub_npair", "cub_hdml_npair")


# ---------------------------------------------------------------- synthetic CUB
from hdml_lite.data.tiny import make_synthetic_cub  # noqa: E402  (the real file layout; also notebook 06)


# ---------------------------------------------------------------- notebook 06 in GPU mode
NOTEBOOK06 = Path(__file__).resolve().parents[1] / "notebooks" / "06_paper_protocol.ipynb"


def run_notebook06(steps: int, work: Path, saved: Path | None, timeout: int = 3600) -> dict:
    """Execute notebook 06 top to bottom (see the module docstring); returns {"wall_s", "steps",
    "saved", "error"}. Without CUDA the notebook runs its own smoke mode instead."""
    import nbclient
    import nbformat

    env = {"HDML_NB06_DATA": "synthetic", "HDML_NB06_STEPS": str(steps), "HDML_NB06_SEEDS": "0,1",
           "HDML_RUNS": str(work / "nb06_runs"), "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    nb = nbformat.read(NOTEBOOK06, as_version=4)
    t = time.perf_counter()
    error = None
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK06.parent)}}).execute()
    except Exception as exc:  # CellExecutionError names the cell; keep the partial copy
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if saved is not None:
        nbformat.write(nb, saved)
    return {"wall_s": round(time.perf_counter() - t, 1), "steps": steps, "saved": str(saved) if saved else None,
            "error": error}


# ---------------------------------------------------------------- timing hooks
class DataWait:
    """Accumulates the time the trainer spends waiting for each training batch, in the data
    pipeline's ``TrainBatches.get`` (where it waits for the DataLoader)."""

    def __init__(self):
        from hdml_lite.data.pipeline import TrainBatches

        self.per_call, self.original = [], TrainBatches.get

    def install(self) -> None:
        from hdml_lite.data.pipeline import TrainBatches

        original, per_call = self.original, self.per_call

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                per_call.append(time.perf_counter() - t)

        TrainBatches.get = timed

    def remove(self) -> None:
        from hdml_lite.data.pipeline import TrainBatches

        TrainBatches.get = self.original


def build_cache(name: str, root: Path, args, device: str) -> float:
    """Build the pre-resized uint8 image cache (``data.cache``) once, before any timing: the runs
    then read batches from it instead of decoding JPEGs. Returns the seconds it took."""
    from hdml_lite.data import load_dataset

    t = time.perf_counter()
    load_dataset(preset_config(name, root, Path(args.cache) / "unused_out", args, device).data, "train")
    sec = round(time.perf_counter() - t, 1)
    print(f"image cache {args.cache} built in {sec} s", flush=True)
    return sec


def preset_config(name: str, root: Path, out_dir: Path, args, device: str):
    """The preset with the script's settings (see the module docstring)."""
    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset

    cfg = get_preset(name)
    wanted = {"data.root": str(root), "train.steps": args.steps, "train.eval_every": 0, "train.ckpt_every": 0,
              "train.progress": False, "train.out_dir": str(out_dir / name), "train.device": device,
              "train.amp": device == "cuda", "data.num_workers": args.workers, "train.threads": args.threads,
              "data.cache": str(args.cache)}
    if args.weights:  # ImageNet weights from a local file; without one, random init (no download attempt)
        wanted["model.weights_path"], wanted["model.pretrained"] = args.weights, True
    else:
        wanted["model.pretrained"] = False
    if args.tiny:
        wanted.update({"data.resize": 40, "data.image_size": 32, "data.batch_classes": 4,
                       "data.images_per_class": 2, "model.embedding_size": 16, "hdml.gen_hidden": 32,
                       "train.kmeans_restarts": 1, "train.eval_batch": 16})
    return apply_overrides(cfg, wanted)


def run_preset(name: str, root: Path, out_dir: Path, args, device: str) -> dict:
    import torch

    from hdml_lite.training.trainer import train

    cfg = preset_config(name, root, out_dir, args, device)
    stamps: list[float] = []
    batch = [0]

    def callback(step, method, x, labels, logs):
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        batch[0] = int(x.shape[0])

    wait = DataWait()
    wait.install()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    try:
        result = train(cfg, resume=False, callback=callback)
    finally:
        wait.remove()
    total_s = time.perf_counter() - t0

    warm = min(args.warmup, max(0, len(stamps) - 2))  # keep at least one interval
    steps_dt = np.diff(stamps)[warm:]  # interval k ends at step (warm + k + 1)'s callback
    waits = wait.per_call[warm + 1:warm + 1 + len(steps_dt)]
    median = float(statistics.median(steps_dt)) if len(steps_dt) else float("nan")
    out = {
        "batch": batch[0], "steps": len(stamps), "timed_steps": int(len(steps_dt)),
        "step_s_median": round(median, 5), "step_s_mean": round(float(np.mean(steps_dt)), 5) if len(steps_dt) else None,
        "images_per_s": round(batch[0] / median, 1) if median > 0 else None,
        "data_wait_frac": round(float(sum(waits) / max(float(np.sum(steps_dt)), 1e-12)), 4) if len(waits) else None,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if device == "cuda" else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3) if device == "cuda" else None,
        "total_s": round(total_s, 2), "train_s": round(float(getattr(result, "train_s", float("nan"))), 2),
        "final": {k: round(float(v), 4) for k, v in (getattr(result, "metrics", None) or {}).items()},
        "config": {"image_size": cfg.data.image_size, "amp": bool(cfg.train.amp and device == "cuda"),
                   "num_workers": cfg.data.num_workers, "cache": bool(cfg.data.cache), "backbone": cfg.model.backbone,
                   "pretrained": bool(getattr(result.method.modules.get("model"), "backbone", None) is not None
                                      and getattr(result.method.modules["model"].backbone, "pretrained_loaded", False))},
        "error": None,
    }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps per preset")
    ap.add_argument("--warmup", type=int, default=20, help="first steps left out of the timings")
    ap.add_argument("--tiny", action="store_true", help="small everything: a CPU smoke run")
    ap.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--workers", type=int, default=-1, help="data.num_workers (-1: 8 on CUDA, 0 on CPU)")
    ap.add_argument("--per-class", type=int, default=0, help="synthetic images per class (0: 24, tiny 4)")
    ap.add_argument("--weights", default="", help="local GoogLeNet ImageNet weights file (optional)")
    ap.add_argument("--root", default="", help="where to write the synthetic data (default: a temp folder)")
    ap.add_argument("--json", default="", help="also write the JSON result to this file")
    ap.add_argument("--threads", type=int, default=0, help="train.threads (0: auto: torch's default on CUDA, 1 on a CPU)")
    ap.add_argument("--no-cache", action="store_true", help="decode the JPEGs in every step instead of data.cache")
    ap.add_argument("--notebook", type=int, default=0, metavar="STEPS",
                    help="then execute notebook 06 (GPU mode) with STEPS steps per run (0: skip)")
    args = ap.parse_args(argv)
    if args.notebook < 0:
        print(f"--notebook={args.notebook}: expected a number of steps >= 1 (0: skip the notebook)", file=sys.stderr)
        return 2
    if args.steps < 2:
        print(f"--steps={args.steps}: expected at least 2 (timings are intervals between steps)", file=sys.stderr)
        return 2
    if args.weights and not os.path.isfile(args.weights):
        print(f"--weights={args.weights!r}: no such file", file=sys.stderr)
        return 2

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here", file=sys.stderr)
        return 2
    if args.workers < 0:
        args.workers = min(8, os.cpu_count() or 1) if device == "cuda" else 0
    args.warmup = min(args.warmup, max(0, args.steps // 3))
    per_class = args.per_class or (4 if args.tiny else 24)
    n_classes, size = (8, (64, 48)) if args.tiny else (200, (500, 375))

    env = bench_env(args.threads, device)
    tmp = tempfile.TemporaryDirectory(prefix="hdml_gpu_check_")
    root = Path(args.root or tmp.name)
    args.cache = "" if args.no_cache else root / "cache"
    t = time.perf_counter()
    make_synthetic_cub(root / "data", n_classes, per_class, size, workers=1 if args.tiny else min(16, os.cpu_count() or 1))
    data_s = time.perf_counter() - t
    print(f"synthetic CUB: {n_classes} classes x {per_class} images {size[0]}x{size[1]} in {data_s:.1f} s "
          f"({root / 'data'})", flush=True)
    cache_s = build_cache(PRESETS[0], root / "data", args, device) if args.cache else None

    result = {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
              "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
              "cpus": os.cpu_count(), "steps": args.steps, "warmup": args.warmup, "tiny": args.tiny,
              "workers": args.workers, "data": {"classes": n_classes, "per_class": per_class, "size": list(size),
                                                 "write_s": round(data_s, 1), "cache": bool(args.cache),
                                                 "cache_build_s": cache_s},
              **env, "runs": {}}
    ok = True
    for name in [p for p in args.presets.split(",") if p]:
        print(f"--- {name}", flush=True)
        try:
            result["runs"][name] = run_preset(name, root / "data", root / "runs", args, device)
        except Exception as exc:  # report and go on with the next preset
            ok = False
            traceback.print_exc()
            result["runs"][name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        print(f"{name}: {json.dumps(result['runs'][name])}", flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.notebook:
        print(f"--- notebook 06, {args.notebook} steps per run", flush=True)
        saved = Path(str(args.json) + ".06.ipynb") if args.json else None
        result["notebook06"] = run_notebook06(args.notebook, root, saved)
        ok = ok and result["notebook06"]["error"] is None
        print(f"notebook06: {json.dumps(result['notebook06'])}", flush=True)
    result["load_avg_end"] = load_avg()
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
