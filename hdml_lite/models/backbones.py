"""Backbones: image batch (B, C, H, W) -> feature y (B, feature_dim).

- ``googlenet``: torchvision GoogLeNet, the paper's trunk; y is the 1024-d pooled
  feature (METHOD §1, "Symbols"; no dropout on it, torchvision's input scale for its
  ImageNet weights: METHOD §1.9). ImageNet weights come from torchvision when
  reachable, or from a local weights file; without either, a warning and random
  initialisation.
- ``resnet18`` / ``resnet50``: torchvision ResNets, y is the pooled feature.
- ``small_cnn``: a four-stage CNN that trains in minutes on a CPU, for the
  embedded glyph dataset.

Every backbone exposes ``feature_dim`` and ``stages()``: the list of its
intermediate blocks, which HDC taps for its cascade of heads.
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn

BACKBONES = ("small_cnn", "googlenet", "resnet18", "resnet50")


class SmallCNN(nn.Module):
    """Four conv stages, each conv-BN-ReLU x2 then 2x2 max-pool; global average pool.

    (B, in_channels, H, W) -> y (B, width * 8). Stages are exposed for HDC taps.
    """

    def __init__(self, in_channels: int = 1, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        widths = [width, width * 2, width * 4, width * 8]
        self.stage1 = block(in_channels, widths[0])
        self.stage2 = block(widths[0], widths[1])
        self.stage3 = block(widths[1], widths[2])
        self.stage4 = block(widths[2], widths[3])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[3]
        self.stage_channels = widths

    def stages(self) -> list[nn.Module]:
        return [self.stage1, self.stage2, self.stage3, self.stage4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for s in self.stages():
            x = s(x)
        return self.pool(x).flatten(1)  # (B, feature_dim)


class TorchvisionTrunk(nn.Module):
    """A torchvision classifier with its last FC removed: (B, 3, H, W) -> (B, feature_dim).

    GoogLeNet is built the way torchvision builds it for its ImageNet weights (METHOD §1.9):
    ``transform_input=True`` when those weights are loaded (the kit feeds ImageNet-normalised
    images; torchvision's weights expect them rescaled to (x - 0.5) / 0.5 per channel, which
    ``transform_input`` does), and the ``Dropout(0.2)`` between the pooled 1024-d feature and
    ``fc`` is removed: y is the pooled feature itself, as in the released HDML code.

    ``aux_state``: the auxiliary-classifier tensors (``aux1.*``, ``aux2.*``) found in the
    loaded weights, kept aside (not registered, not in ``state_dict``) for HDC, whose heads 1-2
    start from them (``hdml_lite.hdc.model.init_heads_from_aux``); ``{}`` when none were loaded.
    """

    def __init__(self, name: str, pretrained: bool = True, weights_path: str = ""):
        super().__init__()
        import torchvision.models as tvm

        builders = {"googlenet": tvm.googlenet, "resnet18": tvm.resnet18, "resnet50": tvm.resnet50}
        weight_enums = {
            "googlenet": tvm.GoogLeNet_Weights.IMAGENET1K_V1,
            "resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
            "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V2,
        }
        kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
        net = builders[name](weights=None, **kwargs)
        self.pretrained_loaded = False
        self.aux_state: dict[str, torch.Tensor] = {}
        if pretrained:
            loaded = _load_imagenet(net, name, weight_enums[name], weights_path)
            if loaded is not None:
                self.pretrained_loaded = True
                self.aux_state = {k: v for k, v in loaded.items() if k.startswith(("aux1.", "aux2."))}
        if name == "googlenet":
            # torchvision switches transform_input on when it loads GoogLeNet's ImageNet weights
            # (googlenet(weights=...)): keep its input scale; without those weights, no rescaling.
            net.transform_input = self.pretrained_loaded
            net.dropout = nn.Identity()  # Dropout(0.2) before fc: not part of the feature y
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.name = name

    def stages(self) -> list[nn.Module]:
        n = self.net
        if self.name == "googlenet":
            return [n.inception4a, n.inception4d, n.inception5b]
        return [n.layer1, n.layer2, n.layer3, n.layer4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, feature_dim): pooled feature, fc and (GoogLeNet) dropout removed


def _load_imagenet(net: nn.Module, name: str, weights_enum, weights_path: str) -> dict | None:
    """Load ImageNet weights into net: a local file first, then torchvision's cache/download.

    Returns the full state dict that was read (auxiliary-classifier keys included, which
    ``net`` itself does not hold), or None when no weights could be obtained (a warning).
    A weights file that was named but does not exist raises FileNotFoundError.
    """
    path = weights_path or os.environ.get("HDML_WEIGHTS", "")
    try:
        if path:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"weights file {path!r} does not exist (model.weights_path / $HDML_WEIGHTS)")
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            state = weights_enum.get_state_dict(progress=False)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("aux")}, strict=False)
        return state
    except FileNotFoundError:
        raise
    except Exception as exc:  # offline: no download possible
        warnings.warn(
            f"ImageNet weights for {name} could not be loaded ({type(exc).__name__}: {exc}); "
            f"using random initialisation. Put the torchvision weights file somewhere and set "
            f"model.weights_path=/path/to/file.pth (or $HDML_WEIGHTS) to use them offline.",
            stacklevel=3,
        )
        return None


def build_backbone(name: str, in_channels: int = 3, pretrained: bool = False, weights_path: str = "",
                   width: int = 32) -> nn.Module:
    """Build a backbone by name; see ``BACKBONES``. ``pretrained``: ImageNet weights for the
    torchvision backbones; the lab's glyph-pretrained weights for ``small_cnn`` (models/lab_weights.py)."""
    if name == "small_cnn":
        net = SmallCNN(in_channels=in_channels, width=width)
        if pretrained:
            from .lab_weights import load_lab_weights
            load_lab_weights(net, width, in_channels, path=weights_path)
        return net
    if name in ("googlenet", "resnet18", "resnet50"):
        if in_channels != 3:
            raise ValueError(f"backbone {name!r} expects 3-channel images, got in_channels={in_channels}")
        return TorchvisionTrunk(name, pretrained=pretrained, weights_path=weights_path)
    raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
