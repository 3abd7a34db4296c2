"""Angular loss (Wang, Zhou, Wen, Liu, Lin, ICCV 2017), N-pair form (paper eq. 11).

Embeddings are L2-normalised first. For anchor a_i, positive p_i and each other
positive p_n (n != i) of the N-pair batch as a negative, with alpha the angle:

    f_in = 4 tan^2(alpha) (a_i + p_i)^T p_n - 2 (1 + tan^2(alpha)) a_i^T p_i
    J    = mean_i log(1 + sum_{n != i} exp(f_in))

This is the angular term alone (the paper also adds it to an N-pair loss, with
weight 2); PML's ``AngularLoss`` is the same term.

Convention difference with pytorch-metric-learning (v2.9): PML normalises anchors
and positives but multiplies by the negatives (``ref_emb``) as given, unnormalised.
Here every vector is normalised, as in the paper; the two agree on unit-norm inputs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def angular_loss(anchors: Tensor, positives: Tensor, angle_deg: float = 45.0) -> Tensor:
    """Angular loss on an N-pair batch; negatives of i are the positives of the other classes.

    anchors, positives: (N, D), row i of both from class i -> scalar.
    """
    a = F.normalize(anchors, dim=1)
    p = F.normalize(positives, dim=1)
    N = a.shape[0]
    sq_tan = math.tan(math.radians(angle_deg)) ** 2
    ap = (a * p).sum(dim=1, keepdim=True)                                  # (N, 1)
    f = 4.0 * sq_tan * (a + p) @ p.t() - 2.0 * (1.0 + sq_tan) * ap        # (N, N): f[i, n]
    eye = torch.eye(N, dtype=torch.bool, device=a.device)
    f = f.masked_fill(eye, float("-inf"))                                  # n != i
    f = torch.cat([f, torch.zeros_like(ap)], dim=1)                        # the "1 +" as exp(0)
    return torch.logsumexp(f, dim=1).mean()
