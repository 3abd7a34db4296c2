"""HDML's loss terms as functions of tensors (METHOD §1.2, §1.3, §1.5).

    J_recon  = reconstruction of the real features y by the generator   (y' = G(z))
    J_soft   = softmax CE of the synthetic features y~ = G(z^), original labels
    J_gen    = J_recon + J_soft                                        updates the generator only
    J_syn    = the metric loss on the re-embedded synthetics z~ = g(y~)
    J_metric = exp(-beta / J_gen) * J_m + (1 - exp(-beta / J_gen)) * J_syn    (paper eq. 15)

Two forms (``cfg.hdml.form``):

    "official"  J_recon = (1 - lambda) * sum_b ||y'_b - y_b||^2          (a sum over the batch)
                J_soft  = softmax_factor * lambda * sum_k mean CE(part k)
                (N-pair: parts = synthetic candidates, reconstructed anchors; triplet: one part)
    "paper"     J_recon = mean_b ||y'_b - y_b||^2
                J_soft  = lambda * mean CE over all synthetic rows        (J_gen = J_recon + lambda J_soft)

Ablations: ``softmax=False`` drops J_soft, ``recon=False`` drops J_recon (paper Fig. 5).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses import npair_ce

FORMS = ("official", "paper")


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"hdml.form={form!r}; expected one of {', '.join(FORMS)}")


def real_weight(beta: float, j_gen: float) -> float:
    """exp(-beta / J_gen): the weight of the real-sample loss J_m in J_metric.

    J_gen <= 0 is the limit J_gen -> 0+ (weight 0: a perfect generator, synthetics only).
    """
    if j_gen <= 0:
        return 0.0
    return math.exp(-beta / j_gen)


def synthetic_weight(beta: float, j_gen: float) -> float:
    """1 - exp(-beta / J_gen): the weight of the synthetic loss J_syn in J_metric.

    High J_gen (untrained generator) -> small weight: with J_gen = 1e6, beta = 1e4, ~0.01.
    """
    return 1.0 - real_weight(beta, j_gen)


def metric_objective(j_m: Tensor, j_syn: Tensor, beta: float, j_gen: float) -> Tensor:
    """J_metric = exp(-beta / J_gen) * J_m + (1 - exp(-beta / J_gen)) * J_syn (scalars; J_gen a constant)."""
    w = real_weight(beta, j_gen)
    return w * j_m + (1.0 - w) * j_syn


def recon_loss(y_recon: Tensor, y: Tensor, lambda_: float, form: str = "official") -> Tensor:
    """J_recon between reconstructions y' = G(z) and real features y: (B, F), (B, F) -> scalar."""
    _check_form(form)
    sq = (y_recon - y).pow(2).sum(dim=1)  # (B,) squared error per sample
    if form == "official":
        return (1.0 - lambda_) * sq.sum()
    return sq.mean()


def soft_loss(parts: list[tuple[Tensor, Tensor]], lambda_: float, softmax_factor: float,
              form: str = "official") -> Tensor:
    """J_soft from classifier logits of synthetic features.

    parts: [(logits (M_k, C), labels (M_k,)), ...] -> scalar. Official: the factor times the
    sum of each part's mean CE; paper: lambda times one mean over all rows.
    """
    _check_form(form)
    if form == "official":
        return softmax_factor * lambda_ * sum(F.cross_entropy(lg, lb) for lg, lb in parts)
    logits = torch.cat([lg for lg, _ in parts])
    labels = torch.cat([lb for _, lb in parts])
    return lambda_ * F.cross_entropy(logits, labels)


def generator_loss(y_recon: Tensor, y: Tensor, parts: list[tuple[Tensor, Tensor]], lambda_: float,
                   softmax_factor: float, form: str = "official", softmax: bool = True,
                   recon: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """J_gen = J_recon + J_soft, with the ablation switches. Returns (j_gen, j_recon, j_soft);
    a dropped term is a 0 tensor outside the graph. Shapes as in ``recon_loss`` / ``soft_loss``."""
    zero = y.new_zeros(())
    j_recon = recon_loss(y_recon, y, lambda_, form) if recon else zero
    j_soft = soft_loss(parts, lambda_, softmax_factor, form) if softmax else zero
    return j_recon + j_soft, j_recon, j_soft


def npair_syn_loss(anchors: Tensor, candidates: Tensor, l2_reg: float) -> Tensor:
    """J_syn for N-pair: anchor i against its own N synthetic candidates, plus the official
    L2 term 0.25 * l2_reg * (mean ||a||^2 + mean ||c||^2) (METHOD §1.3, §1.6).

    anchors: (N, D) re-embedded reconstructed anchors; candidates: (N, N, D) -> scalar.
    """
    reg = anchors.pow(2).sum(dim=1).mean() + candidates.pow(2).sum(dim=2).mean()
    return npair_ce(anchors, candidates) + 0.25 * l2_reg * reg
