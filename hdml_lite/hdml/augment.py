"""Hardness-aware augmentation: where HDML makes its synthetic negatives (METHOD §1.1).

For a tuple (anchor z, positive z+, negative z-), d+ = d(z, z+), d- = d(z, z-)
(paper eq. 4-7):

    if d- > d+:  z^- = z + [(d+ + (d- - d+) * exp(-alpha / J_avg)) / d-] * (z- - z)
    else:        z^- = z-                      (already hard: left unchanged)

The synthetic negative lies on the segment z -> z-, at distance
d+ + (d- - d+) * exp(-alpha / J_avg) from the anchor: between d+ (hardest) and
d- (unchanged). ``pull_factor`` is that exp(-alpha / J_avg): a small J_avg (a
well-trained model) gives a factor near 0, so harder negatives; alpha = 0 gives
1, no augmentation. Change alpha in ``cfg.hdml.alpha`` (paper: 7 triplet, 90 N-pair).

Everything here is a pure function of tensors. Gradients flow through the
interpolation (no detach, as in the official code); J_avg is a constant.

Numerics: d- can be 0 (coinciding points) and sqrt'(0) is infinite, so squared
distances are clamped at ``EPS`` before the root and the branch is picked with
``torch.where`` (never a 0/1 mask times a possibly-NaN branch).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

EPS = 1e-12  # floor on squared distances before sqrt


def pull_factor(alpha: float, j_avg: float) -> float:
    """exp(-alpha / J_avg) in [0, 1]: 1 = no pulling, 0 = pull to distance d+ (paper eq. 7).

    J_avg <= 0 is treated as the limit J_avg -> 0+ (factor 0).
    """
    if alpha == 0:
        return 1.0
    if j_avg <= 0:
        return 0.0
    return math.exp(-alpha / j_avg)


def _dist(u: Tensor, v: Tensor) -> Tensor:
    """Euclidean distance over the last dim, sqrt(max(||u - v||^2, EPS)): (..., D) -> (...)."""
    return (u - v).pow(2).sum(dim=-1).clamp_min(EPS).sqrt()


def _pull(z_a: Tensor, z_n: Tensor, d_ap: Tensor, d_an: Tensor, factor: float) -> Tensor:
    """Move z_n toward z_a to distance d_ap + (d_an - d_ap) * factor where d_an > d_ap.

    z_a, z_n: (..., D); d_ap, d_an: (...) -> (..., D).
    """
    target = d_ap + (d_an - d_ap) * factor                         # (...) new distance to the anchor
    pulled = z_a + (target / d_an).unsqueeze(-1) * (z_n - z_a)     # (..., D) on the segment a -> n
    harder_already = (d_an <= d_ap).unsqueeze(-1)                   # (..., 1) "else" branch
    return torch.where(harder_already, z_n, pulled)


def augment_triplet(z_a: Tensor, z_p: Tensor, z_n: Tensor, alpha: float, j_avg: float) -> Tensor:
    """Synthetic negatives for triplets (paper eq. 7), reference distance d(a, p).

    z_a, z_p, z_n: (T, D) anchors, positives, negatives -> z_n_hat (T, D).
    alpha = 0 returns z_n itself (exactly unchanged).
    """
    factor = pull_factor(alpha, j_avg)
    if factor == 1.0:
        return z_n
    return _pull(z_a, z_n, _dist(z_a, z_p), _dist(z_a, z_n), factor)


def augment_npair(anchors: Tensor, positives: Tensor, alpha: float, j_avg: float) -> Tensor:
    """Synthetic candidates for an N-pair batch (METHOD §1.1, N-pair).

    anchors, positives: (N, D), row i of both from class i -> candidates (N, N, D):
    candidates[i, j] is positive j pulled toward anchor i with reference distance
    d(a_i, p_i). The diagonal candidates[i, i] is an exact copy of p_i (d- = d+).
    """
    N, D = positives.shape
    cand = positives.unsqueeze(0).expand(N, N, D)                   # (N, N, D): [i, j] = p_j
    factor = pull_factor(alpha, j_avg)
    if factor == 1.0:
        return cand.contiguous()
    a = anchors.unsqueeze(1).expand(N, N, D)                        # (N, N, D): [i, j] = a_i
    d_an = _dist(a, cand)                                           # (N, N): d(a_i, p_j)
    d_ap = d_an.diagonal().unsqueeze(1).expand(N, N)                # (N, N): d(a_i, p_i), bitwise the diagonal
    return _pull(a, cand, d_ap, d_an, factor)
