"""HDC's loss: contrastive pair loss per head with hard-aware routing (METHOD §2).

Pure functions. For one head with normalised embeddings z (B, D), over all pairs i < j:

    positive pair (same label):      l = d^2
    negative pair (different label): l = neg_factor * max(0, 1 - d^2)        (neg_factor = 10)

with d^2 = ||z_i - z_j||^2. Head k keeps only its hardest pairs (highest loss),
positives and negatives ranked separately, and averages over the kept pairs whose
loss is non-zero:

    J_k = sum_{kept} l / #{kept with l > 0}          (0, with the graph kept, when that count is 0)

Routing (which pairs head k may keep):
- ``"top"`` (released code): head k keeps the top ``fractions[k]`` of ALL pairs by its own loss.
- ``"nested"`` (paper): head k ranks only the pairs head k-1 kept, by its own loss, and keeps
  ``ceil(fractions[k] * n)`` of them, where n counts ALL pairs of that kind (positives or
  negatives) in the batch, not the previous head's set. So fractions (1, 0.5, 0.2) give
  nested sets of 100% / 50% / 20% of all pairs: a pair that is easy for a shallower head
  never reaches a deeper one.

Gradient scale (``loss_scale``, METHOD §2). The released Caffe layer enumerates every negative
pair from both sides, so its normaliser counts each negative twice, and its backward pass has no
factor 2 from d(d^2)/dz. Per head, with P+ and Q+ the kept positives and negatives of non-zero loss:

    "autograd":  gradient of J_k = sum / (P+ + Q+)                      (plain autograd)
    "released":  that gradient times (P+ + Q+) / (2 * (P+ + 2 Q+))       (1/4 to 1/2 of it)

The loss VALUE is J_k in both modes (so logs compare); only the gradient is rescaled. Under Adam
the scale hardly matters; under SGD (the released solver) it is an effective learning rate.

Selection is done under ``torch.no_grad`` and returns masks (indices only), as
pytorch-metric-learning's miners do; gradients flow only through the kept losses.
"""
from __future__ import annotations

import math

import torch

ROUTINGS = ("top", "nested")
LOSS_SCALES = ("autograd", "released")


def pair_losses(z: torch.Tensor, labels: torch.Tensor, neg_factor: float = 10.0):
    """Per-pair contrastive losses over all pairs i < j.

    z (B, D) L2-normalised embeddings, labels (B,) ->
    pos_loss (P,) = d^2, neg_loss (Q,) = neg_factor * max(0, 1 - d^2),
    pos_idx (2, P), neg_idx (2, Q): rows i and j of each pair (i < j), in ``triu_indices`` order.
    """
    i, j = torch.triu_indices(len(z), len(z), offset=1, device=z.device)  # (B(B-1)/2,) each
    d2 = (z[i] - z[j]).pow(2).sum(dim=1)  # (B(B-1)/2,) squared distances, no sqrt
    same = labels[i] == labels[j]
    pos_idx = torch.stack([i[same], j[same]])  # (2, P)
    neg_idx = torch.stack([i[~same], j[~same]])  # (2, Q)
    pos_loss = d2[same]  # (P,)
    neg_loss = neg_factor * (1.0 - d2[~same]).clamp_min(0.0)  # (Q,)
    return pos_loss, neg_loss, pos_idx, neg_idx


def num_kept(fraction: float, n: int) -> int:
    """How many of n pairs a head keeps: ceil(fraction * n), with a 1e-9 tolerance so that
    float error cannot add one (0.2 * 100 keeps 20), at least 1 when n > 0 and fraction > 0,
    at most n."""
    if n == 0 or fraction <= 0:
        return 0
    return min(n, max(1, math.ceil(fraction * n - 1e-9)))


@torch.no_grad()
def select_hard(losses: torch.Tensor, fraction: float, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Mask (P,) bool of the hardest pairs: the ``num_kept(fraction, P)`` largest losses.

    losses (P,); allowed (P,) bool or None: when given, only allowed pairs may be kept
    (nested routing) and the count is capped at the number allowed. The count is
    relative to ALL P pairs, not to the allowed ones. Ties are broken arbitrarily
    (by ``torch.topk``); the head loss does not depend on how.
    """
    losses = losses.detach()
    mask = torch.zeros_like(losses, dtype=torch.bool)
    k = num_kept(fraction, losses.numel())
    if allowed is not None:
        k = min(k, int(allowed.sum()))
        losses = losses.masked_fill(~allowed, float("-inf"))
    if k > 0:
        mask[torch.topk(losses, k).indices] = True
    return mask


@torch.no_grad()
def route(head_losses: list[torch.Tensor], fractions, routing: str = "top") -> list[torch.Tensor]:
    """Masks of the pairs each head keeps, for one kind of pair (positives or negatives).

    head_losses: per head, (P,) losses of the SAME P pairs (same order); returns per head (P,) bool.
    ``top``: independent top fractions. ``nested``: head k chooses only among head k-1's kept pairs.
    """
    if routing not in ROUTINGS:
        raise ValueError(f"hdc.routing={routing!r}; expected one of {', '.join(ROUTINGS)}")
    if len(fractions) != len(head_losses):
        raise ValueError(f"hdc.fractions has {len(fractions)} values for {len(head_losses)} heads")
    masks, allowed = [], None
    for losses, fraction in zip(head_losses, fractions):
        mask = select_hard(losses, fraction, allowed)
        masks.append(mask)
        if routing == "nested":
            allowed = mask
    return masks


def hdc_head_loss(pos_loss: torch.Tensor, neg_loss: torch.Tensor, pos_mask: torch.Tensor,
                  neg_mask: torch.Tensor, loss_scale: str = "autograd") -> torch.Tensor:
    """One head's loss: sum of kept losses / number of kept pairs with non-zero loss.

    pos_loss (P,), neg_loss (Q,), masks (P,), (Q,) bool -> scalar. When no kept pair has a
    non-zero loss the result is an exact 0 that still belongs to the graph (zero gradients,
    never NaN). Masked entries are zeroed with ``torch.where`` (losses are finite).
    ``loss_scale="released"`` keeps the value and rescales the gradient to the released
    code's (module docstring): value v, gradient s * dv with s = (P+ + Q+) / (2 (P+ + 2 Q+)).
    """
    if loss_scale not in LOSS_SCALES:
        raise ValueError(f"hdc.loss_scale={loss_scale!r}; expected one of {', '.join(LOSS_SCALES)}")
    kept_pos = torch.where(pos_mask, pos_loss, torch.zeros_like(pos_loss))
    kept_neg = torch.where(neg_mask, neg_loss, torch.zeros_like(neg_loss))
    total = kept_pos.sum() + kept_neg.sum()
    n_pos, n_neg = (kept_pos.detach() > 0).sum(), (kept_neg.detach() > 0).sum()
    active = n_pos + n_neg
    loss = total / active.clamp_min(1)
    if loss_scale == "released":
        s = active.to(loss.dtype) / (2 * (n_pos + 2 * n_neg)).clamp_min(1).to(loss.dtype)  # 0 if none active
        loss = loss * s + (loss * (1 - s)).detach()
    return loss


def cascade_loss(embeddings: list[torch.Tensor], labels: torch.Tensor, fractions=(1.0, 0.5, 0.2),
                 routing: str = "top", neg_factor: float = 10.0, loss_scale: str = "autograd"):
    """HDC objective: sum over heads of ``hdc_head_loss`` with hard-aware routing.

    embeddings: per head (B, D_k) L2-normalised; labels (B,) ->
    (total scalar, per_head list of scalars). Each head's loss reaches only its own
    head and the shared trunk below its tap.
    """
    per_pair = [pair_losses(z, labels, neg_factor) for z in embeddings]
    pos_masks = route([p[0] for p in per_pair], fractions, routing)
    neg_masks = route([p[1] for p in per_pair], fractions, routing)
    per_head = [hdc_head_loss(p[0], p[1], pm, nm, loss_scale)
                for p, pm, nm in zip(per_pair, pos_masks, neg_masks)]
    return sum(per_head), per_head
