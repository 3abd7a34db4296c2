"""Models: backbones and the metric model that returns (y, z)."""
from .backbones import BACKBONES, SmallCNN, TorchvisionTrunk, build_backbone
from .embedding import EmbeddingHead, MetricModel, build_metric_model

__all__ = ["BACKBONES", "SmallCNN", "TorchvisionTrunk", "build_backbone", "EmbeddingHead", "MetricModel",
           "build_metric_model"]
