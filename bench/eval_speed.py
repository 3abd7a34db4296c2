"""Evaluation speed at Stanford Online Products scale (not a test; run by hand).

    python bench/eval_speed.py            # 60,502 x 512 embeddings, 11,316 classes (minutes)
    python bench/eval_speed.py --small    # 6,050 x 512, 1,132 classes (seconds)

Synthetic, seeded embeddings clustered by class (class sizes 2-12 like SOP, a random
unit centre per class plus Gaussian noise), so the metrics are far from 0 and 1.
In the same run it times
  (a) the kit: ``retrieval_metrics`` -> R@{1,10,100,1000}, MAP@R, R-precision (one pass);
  (b) the reference: pytorch-metric-learning's AccuracyCalculator, precision_at_1 +
      mean_average_precision_at_r, default faiss kNN (IndexFlatL2), k="max_bin_count"
      (its default k=None asks for all N-1 neighbours of every query: N^2 indices, 29 GB);
checks the shared metrics agree (R@1 = precision_at_1, MAP@R; |diff| < 1e-4), then times
the kit's NMI + F1 (``cluster_metrics``, scikit-learn k-means, its default settings).
The reference gets embeddings already L2-normalised; the kit normalises inside its timing.
The last line printed is one JSON object (kit_s, reference_s, ratio, agree, cluster_s, ...).
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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="10x smaller problem, for a quick run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=2.2, help="noise norm relative to the unit centres")
    ap.add_argument("--chunk", type=int, default=8192, help="kit's block size")
    ap.add_argument("--no-cluster", action="store_true", help="skip the k-means timing")
    args = ap.parse_args(argv)

    n, n_classes, dim = (6050, 1132, 512) if args.small else (60502, 11316, 512)
    ks = (1, 10, 100, 1000)
    emb, labels = sop_like(n, n_classes, dim, args.noise, args.seed)
    print(f"data: {n} x {dim} embeddings, {n_classes} classes (sizes {int(labels.bincount().min())}"
          f"-{int(labels.bincount().max())}), torch threads {torch.get_num_threads()}")

    t = time.perf_counter()
    kit = retrieval_metrics(emb, labels, ks=ks, chunk=args.chunk)
    kit_s = time.perf_counter() - t
    print(f"kit  retrieval_metrics: {kit_s:8.2f} s  " + "  ".join(f"{k}={v:.4f}" for k, v in kit.items()))

    e = F.normalize(emb, dim=1)
    t = time.perf_counter()
    ref = reference(e, labels)
    reference_s = time.perf_counter() - t
    print(f"reference (PML+faiss) : {reference_s:8.2f} s  "
          + "  ".join(f"{k}={v:.4f}" for k, v in ref.items()))

    diffs = {"r1": abs(kit["r1"] - ref["precision_at_1"]),
             "map_r": abs(kit["map_r"] - ref["mean_average_precision_at_r"])}
    agree = all(d < 1e-4 for d in diffs.values())
    ratio = kit_s / reference_s
    print(f"agree: {agree} (|diff| R@1 {diffs['r1']:.2e}, MAP@R {diffs['map_r']:.2e}); "
          f"kit / reference = {ratio:.3f}")

    cluster_s, clus = None, {}
    if not args.no_cluster:
        t = time.perf_counter()
        clus = cluster_metrics(emb, labels, seed=args.seed)
        cluster_s = time.perf_counter() - t
        how = "random init, max_iter=20" if n_classes > 1000 else "k-means++, max_iter=300"
        print(f"kit  cluster_metrics  : {cluster_s:8.2f} s  nmi={clus['nmi']:.4f}  f1={clus['f1']:.4f}"
              f"  (k-means k={n_classes}, lloyd, n_init=1, {how})")

    result = {"kit_s": round(kit_s, 3), "reference_s": round(reference_s, 3), "ratio": round(ratio, 3),
              "agree": agree, "cluster_s": None if cluster_s is None else round(cluster_s, 3),
              "n": n, "classes": n_classes, "dim": dim, "chunk": args.chunk,
              "threads": torch.get_num_threads(), "small": args.small,
              "kit": {k: round(v, 5) for k, v in kit.items()},
              "reference": {k: round(v, 5) for k, v in ref.items()},
              "cluster": {k: round(v, 5) for k, v in clus.items()}}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
