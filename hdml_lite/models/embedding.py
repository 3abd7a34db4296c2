"""The metric model: backbone f then embedding head g, returning representations.

    x (B, C, H, W) --f--> y (B, feature_dim) --g--> z (B, embedding_size)

g is BatchNorm1d + Linear, as in the official HDML code (METHOD §1.2-1.3): the
same g re-embeds HDML's synthetic features, so it is a module of its own. Its BatchNorm
takes ``model.bn_momentum`` / ``model.bn_eps`` (PyTorch's 0.1 / 1e-5 by default; the
``*_official`` presets: the released code's tf defaults, 0.01 / 1e-3, METHOD §1.9).
The model returns (y, z); losses live elsewhere.
"""
from __future__ import annotations

import torch
from torch import nn

from .backbones import build_backbone


class EmbeddingHead(nn.Module):
    """g: y (B, feature_dim) -> z (B, embedding_size). BN then FC, no normalisation.

    Always in float32, autocast or not: training (HDML re-embeds its synthetics with this g
    outside autocast, the baseline inside it) and evaluation then use the same precision,
    and the losses see float32 embeddings. On a CPU (no autocast) this changes nothing."""

    def __init__(self, feature_dim: int, embedding_size: int, bn_momentum: float = 0.1, bn_eps: float = 1e-5):
        super().__init__()
        self.bn = nn.BatchNorm1d(feature_dim, eps=bn_eps, momentum=bn_momentum)
        self.fc = nn.Linear(feature_dim, embedding_size)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=y.device.type, enabled=False):
            return self.fc(self.bn(y.float()))


class MetricModel(nn.Module):
    """Backbone + embedding head. ``forward(x) -> (y, z)``."""

    def __init__(self, backbone: nn.Module, embedding_size: int, bn_momentum: float = 0.1, bn_eps: float = 1e-5):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = backbone.feature_dim
        self.embedding_size = embedding_size
        self.head = EmbeddingHead(self.feature_dim, embedding_size, bn_momentum, bn_eps)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.backbone(x)  # (B, feature_dim)
        z = self.head(y)  # (B, embedding_size)
        return y, z

    def new_layers(self) -> list[nn.Parameter]:
        """Parameters of the layers added on top of the backbone (lr * optim.head_lr_mult)."""
        return list(self.head.parameters())


def build_metric_model(model_cfg, in_channels: int) -> MetricModel:
    """Build from a ``ModelConfig`` (see ``hdml_lite.config``). A config saved before
    ``bn_momentum`` / ``bn_eps`` existed gets PyTorch's defaults, as it was trained with."""
    bb = build_backbone(model_cfg.backbone, in_channels=in_channels, pretrained=model_cfg.pretrained,
                        weights_path=model_cfg.weights_path, width=model_cfg.width)
    return MetricModel(bb, model_cfg.embedding_size, bn_momentum=getattr(model_cfg, "bn_momentum", 0.1),
                       bn_eps=getattr(model_cfg, "bn_eps", 1e-5))
