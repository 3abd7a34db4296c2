"""The hardness-and-label-preserving generator and its softmax classifier (METHOD §1.2).

    Generator:   z (B, embedding_size) -> y (B, feature_dim)    maps embeddings back to features
    SoftmaxHead: y (B, feature_dim)    -> logits (B, num_classes)

The generator sees both the real embeddings z (giving reconstructions y') and
the augmented ones z^ (giving synthetic features y~). The classifier is trained on
real features only; it scores the synthetics to keep their labels (J_soft).
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """Linear(E -> hidden) -> ReLU -> BatchNorm1d -> Linear(hidden -> F), the official order.

    z (B, embedding_size) -> y (B, feature_dim). Paper: hidden 512, feature_dim 1024.
    bn_momentum, bn_eps: its BatchNorm's (``model.bn_momentum`` / ``model.bn_eps``; the released
    code builds it with tf's defaults, momentum 0.01 in PyTorch's convention and eps 1e-3, METHOD §1.9).
    """

    def __init__(self, embedding_size: int, feature_dim: int, hidden: int = 512, bn_momentum: float = 0.1,
                 bn_eps: float = 1e-5):
        super().__init__()
        self.fc1 = nn.Linear(embedding_size, hidden)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(hidden, eps=bn_eps, momentum=bn_momentum)
        self.fc2 = nn.Linear(hidden, feature_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.bn(self.relu(self.fc1(z))))  # (B, feature_dim)


class SoftmaxHead(nn.Module):
    """Linear classifier on features: y (B, feature_dim) -> logits (B, num_classes)."""

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(feature_dim, num_classes)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.fc(y)  # (B, num_classes)
