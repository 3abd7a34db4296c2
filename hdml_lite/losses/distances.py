"""Pairwise Euclidean distances, safe to differentiate.

The expansion ||x - y||^2 = ||x||^2 + ||y||^2 - 2 x.y costs one matmul instead of
a (B, M, D) difference tensor, but rounding can make it slightly negative, so it
is clamped at 0. The square root has an infinite derivative at 0 (two coinciding
embeddings, METHOD §1.1 "Numerics"), so ``pairwise_dist`` clamps at ``eps``
before the root: the distance of coinciding points is sqrt(eps) and its gradient
is 0 instead of NaN.
"""
from __future__ import annotations

import torch
from torch import Tensor


def pairwise_sq_dist(x: Tensor, y: Tensor) -> Tensor:
    """Squared Euclidean distances ||x_i - y_j||^2.

    x: (B, D), y: (M, D) -> (B, M), every entry >= 0.
    """
    x2 = (x * x).sum(dim=1, keepdim=True)          # (B, 1)
    y2 = (y * y).sum(dim=1, keepdim=True).t()      # (1, M)
    sq = x2 + y2 - 2.0 * (x @ y.t())               # (B, M)
    return sq.clamp_min(0.0)


def pairwise_dist(x: Tensor, y: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances ||x_i - y_j||, with a finite gradient at 0.

    x: (B, D), y: (M, D) -> (B, M). Computed as sqrt(max(||x_i - y_j||^2, eps)).
    """
    return pairwise_sq_dist(x, y).clamp_min(eps).sqrt()
