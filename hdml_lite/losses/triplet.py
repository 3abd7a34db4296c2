"""Triplet losses: explicit tuples (HDML official), and semi-hard mining (FaceNet).

``triplet_loss`` is the official HDML form (METHOD §1.6): squared distances,
margin 1.0, summed over the triplets, negatives drawn at random from another
class (``random_negatives``), no mining:

    J = sum_t relu(||a_t - p_t||^2 - ||a_t - n_t||^2 + margin)

``semihard_triplet_loss`` follows TensorFlow's ``triplet_semihard_loss``
(Schroff et al. 2015): for every ordered positive pair (a, p), a != p, with
non-squared distances d, the negative is the closest one farther than the
positive, n* = argmin {d_an : y_n != y_a, d_an > d_ap}; if there is none, the
farthest negative of a. Then

    J = 1/|P| sum_{(a,p) in P} relu(d_ap - d_an* + margin)

Anchors without any negative in the batch (one class only) are left out of P.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .distances import pairwise_dist


def triplet_loss(a: Tensor, p: Tensor, n: Tensor, margin: float = 1.0,
                 reduction: str = "sum", squared: bool = True) -> Tensor:
    """Margin loss on explicit triplets.

    a, p, n: (T, D) anchors, positives, negatives -> scalar.
    reduction: "sum" (official HDML) or "mean"; squared: squared distances (official).
    """
    d_ap = (a - p).pow(2).sum(dim=1)                       # (T,)
    d_an = (a - n).pow(2).sum(dim=1)                       # (T,)
    if not squared:
        d_ap, d_an = d_ap.clamp_min(1e-12).sqrt(), d_an.clamp_min(1e-12).sqrt()
    losses = torch.relu(d_ap - d_an + margin)              # (T,)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def random_negatives(labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """For each i, the index of a uniformly random j with labels[j] != labels[i].

    labels: (B,) -> (B,) int64 indices. Raises ValueError if a sample has no other class.
    """
    other = labels.view(-1, 1) != labels.view(1, -1)       # (B, B)
    if not bool(other.any(dim=1).all()):
        raise ValueError("random_negatives needs at least two classes in the batch "
                         f"(got labels {labels.unique().tolist()})")
    return torch.multinomial(other.float(), 1, generator=generator).squeeze(1)


def semihard_triplet_loss(z: Tensor, labels: Tensor, margin: float = 0.2) -> Tensor:
    """Semi-hard triplet loss with TF ``triplet_semihard_loss`` semantics.

    z: (B, D) embeddings, labels: (B,) -> scalar (mean over positive pairs).
    """
    B = z.shape[0]
    d = pairwise_dist(z, z)                                            # (B, B)
    same = labels.view(-1, 1) == labels.view(1, -1)                    # (B, B)
    neg = ~same
    eye = torch.eye(B, dtype=torch.bool, device=z.device)
    # outside[a, p] = min d[a, n] over negatives n with d[a, n] > d[a, p]
    farther = neg.unsqueeze(1) & (d.unsqueeze(1) > d.unsqueeze(2))    # (B_a, B_p, B_n)
    inf = torch.full_like(d, float("inf")).unsqueeze(1)
    outside = torch.where(farther, d.unsqueeze(1), inf).amin(dim=2)   # (B, B)
    # inside[a] = the largest negative distance of a (used when no negative is farther)
    inside = torch.where(neg, d, -inf.squeeze(1)).amax(dim=1)         # (B,)
    d_an = torch.where(farther.any(dim=2), outside, inside.unsqueeze(1))
    valid = same & ~eye & neg.any(dim=1, keepdim=True)                 # (B, B) positive pairs
    if not bool(valid.any()):
        return z.sum() * 0.0
    losses = torch.relu(d[valid] - d_an[valid] + margin)
    return losses.mean()
