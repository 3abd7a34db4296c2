"""Multi-class N-pair loss (Sohn, NeurIPS 2016), as coded in the official HDML.

A batch holds N classes x 2 images: anchors a_i and positives p_i (class i). On
unnormalised embeddings (METHOD §1.6):

    logits_ij = a_i . p_j                       (N, N)
    J = mean_i CE(logits_i, target i) + 0.25 * l2_reg * (mean_i ||a_i||^2 + mean_i ||p_i||^2)

(TF's ``npairs_loss``, which the official code calls.) pytorch-metric-learning's
``NPairsLoss`` is the first term only: equal with l2_reg = 0.

``npair_ce`` is the form HDML uses for the synthetic loss J_syn: anchor i is scored
against its OWN N candidates c_i1..c_iN (the augmented / re-embedded negatives,
c_ii being its positive):

    logits_ij = a_i . c_ij,    J_syn = mean_i CE(logits_i, target i)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def npair_loss(anchors: Tensor, positives: Tensor, l2_reg: float = 3e-3) -> Tensor:
    """N-pair loss with the official L2 term on the embeddings.

    anchors, positives: (N, D), row i of both from class i -> scalar.
    """
    logits = anchors @ positives.t()                                       # (N, N)
    targets = torch.arange(anchors.shape[0], device=anchors.device)
    ce = F.cross_entropy(logits, targets)
    reg = anchors.pow(2).sum(dim=1).mean() + positives.pow(2).sum(dim=1).mean()
    return ce + 0.25 * l2_reg * reg


def npair_ce(anchors: Tensor, candidates: Tensor) -> Tensor:
    """Cross-entropy of each anchor against its own candidate set (HDML J_syn).

    anchors: (N, D), candidates: (N, N, D) with candidates[i, i] the positive of i -> scalar.
    """
    logits = torch.einsum("nd,njd->nj", anchors, candidates)               # (N, N)
    targets = torch.arange(anchors.shape[0], device=anchors.device)
    return F.cross_entropy(logits, targets)
