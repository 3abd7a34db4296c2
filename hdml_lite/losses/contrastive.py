"""Contrastive loss (Hadsell, Chopra, LeCun 2006), pytorch-metric-learning convention.

With d_ij = ||z_i - z_j|| (Euclidean, NOT squared, embeddings NOT normalised) over
all pairs i < j:

    positive pair (y_i == y_j):  l_ij = relu(d_ij - pos_margin)
    negative pair (y_i != y_j):  l_ij = relu(neg_margin - d_ij)

    J = mean_{pos pairs with l > 0} l_ij  +  mean_{neg pairs with l > 0} l_ij

Each of the two terms is averaged only over its pairs with a non-zero loss (an
empty average counts 0), then the two are added. This is exactly what PML's
``ContrastiveLoss`` computes with its default ``AvgNonZeroReducer`` (one reduction
per sub-loss, then summed) and ``LpDistance(normalize_embeddings=False)``; PML's
default distance normalises the embeddings first, this function does not.
PML counts ordered pairs (i, j) and (j, i); the averages are the same.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .distances import pairwise_dist


def avg_nonzero(losses: Tensor) -> Tensor:
    """Mean of the strictly positive entries of a 1-d tensor; 0 (kept in the graph) if none."""
    nonzero = losses[losses > 0]
    if nonzero.numel() == 0:
        return losses.sum() * 0.0
    return nonzero.mean()


def contrastive_loss(z: Tensor, labels: Tensor, pos_margin: float = 0.0,
                     neg_margin: float = 1.0) -> Tensor:
    """Contrastive loss over all pairs of a batch.

    z: (B, D) embeddings, labels: (B,) int -> scalar.
    """
    B = z.shape[0]
    d = pairwise_dist(z, z)                                      # (B, B)
    same = labels.view(-1, 1) == labels.view(1, -1)              # (B, B)
    upper = torch.ones(B, B, dtype=torch.bool, device=z.device).triu(diagonal=1)
    pos_loss = torch.relu(d[same & upper] - pos_margin)          # (n_pos,)
    neg_loss = torch.relu(neg_margin - d[~same & upper])         # (n_neg,)
    return avg_nonzero(pos_loss) + avg_nonzero(neg_loss)
