"""Lifted structured loss (Song, Xiang, Jegelka, Savarese, CVPR 2016), smooth form.

With D_ij = ||z_i - z_j|| (non-squared, embeddings not normalised) and P the set
of positive pairs i < j (paper eq. 4):

    J_ij = log( sum_{k: y_k != y_i} exp(m - D_ik) + sum_{l: y_l != y_j} exp(m - D_jl) ) + D_ij
    J    = 1 / (2 |P|) * sum_{(i,j) in P} relu(J_ij)^2

The log-sum is computed as logaddexp(lse_i, lse_j) with lse_i = logsumexp_k (m - D_ik),
so large margins or small distances do not overflow. A sample with no negative in
the batch has an empty sum; its pairs then count with the log term 0 (as in
pytorch-metric-learning). Same value as PML's ``LiftedStructureLoss(neg_margin=m,
pos_margin=0)`` with ``LpDistance(normalize_embeddings=False)``: PML averages
relu(J_ij)^2 / 2 over ordered pairs, i.e. over 2|P| terms that come in equal twins.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .distances import pairwise_dist


def lifted_structure_loss(z: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Smooth lifted structured loss over all positive pairs of the batch.

    z: (B, D) embeddings, labels: (B,) -> scalar.
    """
    B = z.shape[0]
    d = pairwise_dist(z, z)                                         # (B, B)
    same = labels.view(-1, 1) == labels.view(1, -1)                 # (B, B)
    neg = ~same
    has_neg = neg.any(dim=1, keepdim=True)                          # (B, 1)
    # rows without negatives get finite dummies (0) so logsumexp stays NaN-free
    logits = torch.where(neg, margin - d, torch.full_like(d, float("-inf")))
    logits = torch.where(has_neg, logits, torch.zeros_like(d))
    lse = torch.logsumexp(logits, dim=1)                            # (B,)
    upper = torch.ones(B, B, dtype=torch.bool, device=z.device).triu(diagonal=1)
    pos = same & upper                                              # (B, B) pairs i < j
    if not bool(pos.any()):
        return z.sum() * 0.0
    log_sum = torch.logaddexp(lse.unsqueeze(1), lse.unsqueeze(0))   # (B, B)
    j = torch.where(has_neg, log_sum, torch.zeros_like(d)) + d      # pairs share labels
    return torch.relu(j[pos]).pow(2).sum() / (2 * pos.sum())
