"""Evaluation speed against pytorch-metric-learning, at two sizes in one run (not a test; by hand).

    OMP_NUM_THREADS=1 python bench/eval_speed.py              # both sizes (the SOP size takes minutes)
    OMP_NUM_THREADS=1 python bench/eval_speed.py --only small  # 6,050 x 512, 1,132 classes (seconds)
    OMP_NUM_THREADS=1 python bench/eval_speed.py --only sop    # 60,502 x 512, 11,316 classes

Synthetic, seeded embeddings clustered by class (class sizes 2-12 like SOP, a random
unit centre per class plus Gaussian noise), so the metrics are far from 0 and 1.
For each size it times, alternating, ``--repeats`` times each (best time kept: the
machine may be shared)
  (a) the kit: ``retrieval_metrics`` -> R@{1,10,100,1000}, MAP@R, R-precision (one pass);
  (b) the reference: pytorch-metric-learning's AccuracyCalculator, precision_at_1 +
      mean_average_precision_at_r, default faiss kNN (IndexFlatL2), k="max_bin_count"
      (its default k=None asks for all N-1 neighbours of every query: N^2 indices, 29 GB);
checks the shared metrics agree (R@1 = precision_at_1, MAP@R; |diff| < 1e-4), then
(unless --no-cluster) times the kit's NMI + F1 (``cluster_metrics``, one k-means start).
The reference gets embeddings already L2-normalised; the kit normalises inside its timing.
The last line printed is one JSON object: ``ratio_small`` and ``ratio`` (kit / reference
at 6,050 and at 60,502 items), and per size the times, agreement and metrics.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import bench_env, load_avg  # noqa: E402
from hdml_lite.evaluation import cluster_metrics, retrieval_metrics  # noqa: E402


def sop_like(n: int, n_classes: int, dim: int, noise: float, seed: int):
    """Embeddings (n, dim) float32 and labels (n,) int64: n_classes classes of 2-12 items."""
    rng = np.random.default_rng(seed)
    sizes = np.full(n_classes, 2) + rng.poisson((n / n_classes) - 2, n_classes).clip(0, 10)
    while sizes.sum() != n:  # nudge random classes until the total is exact, sizes in [2, 12]
        i = rng.integers(n_classes)
        step = 1 if sizes.sum() < n else -1
        if 2 <= sizes[i] + step <= 12:
            sizes[i] += step
    labels = np.repeat(np.arange(n_classes), sizes)
    rng.shuffle(labels)
    centres = rng.standard_normal((n_classes, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = centres[labels] + noise / np.sqrt(dim) * rng.standard_normal((n, dim)).astype(np.float32)
    return torch.from_numpy(emb.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


def reference(emb_normalised: torch.Tensor, labels: torch.Tensor) -> dict:
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                              k="max_bin_count", device=torch.device("cpu"))
    return calc.get_accuracy(emb_normalised, labels)


SIZES = {"small": (6050, 1132, 512), "sop": (60502, 11316, 512)}


def best_time(fn, repeats: int):
    """(best seconds over ``repeats`` calls, last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run_size(name: str, args) -> dict:
    n, n_classes, dim = SIZES[name]
    ks = (1, 10, 100, 1000)
    emb, labels = sop_like(n, n_classes, dim, args.noise, args.seed)
    print(f"[{name}] {n} x {dim} embeddings, {n_classes} classes (sizes {int(labels.bincount().min())}"
          f"-{int(labels.bincount().max())}), torch threads {torch.get_num_threads()}")
    e = F.normalize(emb, dim=1)
    repeats = args.repeats if args.repeats else (5 if name == "small" else 1)
    kit_s, ref_s, kit, ref = float("inf"), float("inf"), None, None
    for _ in range(repeats):  # alternate, so that both see the same machine load
        t, kit = best_time(lambda: retrieval_metrics(emb, labels, ks=ks, chunk=args.chunk), 1)
        kit_s = min(kit_s, t)
        t, ref = best_time(lambda: reference(e, labels), 1)
        ref_s = min(ref_s, t)
    print(f"[{name}] kit  retrieval_metrics: {kit_s:8.2f} s  " + "  ".join(f"{k}={v:.4f}" for k, v in kit.items()))
    print(f"[{name}] reference (PML+faiss) : {ref_s:8.2f} s  " + "  ".join(f"{k}={v:.4f}" for k, v in ref.items()))
    diffs = {"r1": abs(kit["r1"] - ref["precision_at_1"]),
             "map_r": abs(kit["map_r"] - ref["mean_average_precision_at_r"])}
    agree = all(d < 1e-4 for d in diffs.values())
    ratio = kit_s / ref_s
    print(f"[{name}] agree: {agree} (|diff| R@1 {diffs['r1']:.2e}, MAP@R {diffs['map_r']:.2e}); "
          f"kit / reference = {ratio:.3f}")
    cluster_s, clus = None, {}
    if not args.no_cluster:
        t = time.perf_counter()
        clus = cluster_metrics(emb, labels, seed=args.seed)
        cluster_s = time.perf_counter() - t
        how = "random init, max_iter=20" if n_classes > 1000 else "k-means++, max_iter=300"
        print(f"[{name}] kit  cluster_metrics  : {cluster_s:8.2f} s  nmi={clus['nmi']:.4f}  f1={clus['f1']:.4f}"
              f"  (k-means k={n_classes}, lloyd, n_init=1, {how})")
    return {"kit_s": round(kit_s, 3), "reference_s": round(ref_s, 3), "ratio": round(ratio, 3), "agree": agree,
            "repeats": repeats, "cluster_s": None if cluster_s is None else round(cluster_s, 3),
            "n": n, "classes": n_classes, "dim": dim,
            "kit": {k: round(v, 5) for k, v in kit.items()},
            "reference": {k: round(v, 5) for k, v in ref.items()},
            "cluster": {k: round(v, 5) for k, v in clus.items()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=tuple(SIZES), help="run one size only (default: both)")
    ap.add_argument("--repeats", type=int, default=0, help="timed runs per size, best kept (0: 5 small, 1 sop)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=2.2, help="noise norm relative to the unit centres")
    ap.add_argument("--chunk", type=int, default=None, help="kit's block size (default: adapted to N)")
    ap.add_argument("--no-cluster", action="store_true", help="skip the k-means timing")
    ap.add_argument("--threads", type=int, default=0, help="train.threads (0: auto, one thread on a CPU)")
    args = ap.parse_args(argv)
    if args.chunk is not None and args.chunk < 1:
        print(f"--chunk={args.chunk}: expected a positive block size", file=sys.stderr)
        sys.exit(2)

    env = bench_env(args.threads, "cpu")
    sizes = [args.only] if args.only else list(SIZES)
    runs = {name: run_size(name, args) for name in sizes}
    result = {"ratio_small": runs["small"]["ratio"] if "small" in runs else None,
              "ratio": runs["sop"]["ratio"] if "sop" in runs else None,
              "agree": all(r["agree"] for r in runs.values()),
              **env, "chunk": args.chunk, **runs, "load_avg_end": load_avg()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
