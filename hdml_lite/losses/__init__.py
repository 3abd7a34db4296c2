"""Baseline metric-learning losses, one small pure function per file.

``metric_loss(cfg.loss, z, labels)`` is what training calls; it slices the batch
according to the layout the loss's sampler produced (``batch_layout``):

    "npair"        npair, angular      class-major pairs: anchors z[0::2], positives z[1::2]
    "triplet"      triplet             repeated [a, p, n]: z[0::3], z[1::3], z[2::3]
    "m_per_class"  contrastive, semihard, lifted   (z, labels) with m images per class
"""
from __future__ import annotations

import torch
from torch import Tensor

from .angular import angular_loss
from .contrastive import avg_nonzero, contrastive_loss
from .distances import pairwise_dist, pairwise_sq_dist
from .lifted import lifted_structure_loss
from .npair import npair_ce, npair_loss
from .triplet import random_negatives, semihard_triplet_loss, triplet_loss

LOSSES = ("contrastive", "triplet", "semihard", "lifted", "npair", "angular")

_LAYOUTS = {"contrastive": "m_per_class", "triplet": "triplet", "semihard": "m_per_class",
            "lifted": "m_per_class", "npair": "npair", "angular": "npair"}


def _check_name(name: str) -> None:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")


def batch_layout(name: str) -> str:
    """Which sampler a loss needs: "npair" | "triplet" | "m_per_class"."""
    _check_name(name)
    return _LAYOUTS[name]


def _check_layout(name: str, B: int, labels: Tensor) -> None:
    """Cheap sanity check that the batch is in the layout the loss slices by."""
    layout = _LAYOUTS[name]
    if layout == "npair" and (B % 2 or not bool((labels[0::2] == labels[1::2]).all())):
        raise ValueError(f"loss {name!r} needs N-pair batches [c0a, c0b, c1a, c1b, ...] "
                         f"(NPairSampler); got labels {labels.tolist()}")
    if layout == "triplet" and (B % 3 or not bool((labels[0::3] == labels[1::3]).all()   # one device read
                                                  & (labels[0::3] != labels[2::3]).all())):
        raise ValueError(f"loss {name!r} needs triplet batches [a, p, n, a, p, n, ...] "
                         f"(TripletSampler); got labels {labels.tolist()}")


def metric_loss(loss_cfg, z: Tensor, labels: Tensor,
                generator: torch.Generator | None = None) -> Tensor:
    """The configured metric loss J_m on one batch.

    loss_cfg: LossConfig (name, margin, reduction, l2_reg, angle_deg, pos_margin, neg_margin);
    z: (B, D) embeddings in the sampler's order (see ``batch_layout``); labels: (B,) -> scalar.
    generator: reserved for losses that sample; none does now (triplet negatives
    come from the TripletSampler).
    """
    name = loss_cfg.name
    _check_name(name)
    _check_layout(name, z.shape[0], labels)
    if name == "npair":
        return npair_loss(z[0::2], z[1::2], l2_reg=loss_cfg.l2_reg)
    if name == "angular":
        return angular_loss(z[0::2], z[1::2], angle_deg=loss_cfg.angle_deg)
    if name == "triplet":
        return triplet_loss(z[0::3], z[1::3], z[2::3], margin=loss_cfg.margin,
                            reduction=loss_cfg.reduction)
    if name == "contrastive":
        return contrastive_loss(z, labels, pos_margin=loss_cfg.pos_margin,
                                neg_margin=loss_cfg.neg_margin)
    if name == "semihard":
        return semihard_triplet_loss(z, labels, margin=loss_cfg.margin)
    return lifted_structure_loss(z, labels, margin=loss_cfg.margin)


__all__ = [
    "LOSSES", "metric_loss", "batch_layout",
    "pairwise_sq_dist", "pairwise_dist",
    "contrastive_loss", "avg_nonzero",
    "triplet_loss", "random_negatives", "semihard_triplet_loss",
    "lifted_structure_loss", "npair_loss", "npair_ce", "angular_loss",
]
