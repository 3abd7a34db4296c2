"""Backbones: image batch (B, C, H, W) -> feature y (B, feature_dim).

- ``googlenet``: torchvision GoogLeNet, the paper's trunk; y is the 1024-d pooled
  feature (METHOD §1, "Symbols"; no dropout on it, torchvision's input scale for its
  ImageNet weights: METHOD §1.9). ImageNet weights come from a local weights file
  (``model.weights_path`` / ``$HDML_WEIGHTS``) or torchvision's cache/download; when none
  can be had, ``model.pretrained=true`` fails with one line (``PretrainedWeightsError``)
  saying what could not be fetched and where to put the file: a run never silently
  trains from random weights. ``model.pretrained=false`` starts from scratch on purpose.
  A weights file is loaded strictly (lab_weights.load_strict) after unwrapping the usual
  wrappers (``{"state_dict": ...}``, ``{"model": ...}``, ``module.`` prefixes); only the
  ImageNet classifier ``fc`` (``HEAD_KEYS``, dropped anyway) may be absent. A file that does
  not fit fails with one line naming its missing and unexpected keys.
- ``resnet18`` / ``resnet50``: torchvision ResNets, y is the pooled feature.
- ``small_cnn``: a four-stage CNN that trains in minutes on a CPU, for the
  embedded glyph dataset.

Every backbone exposes ``feature_dim`` and ``stages()``: the list of its
intermediate blocks, which HDC taps for its cascade of heads, and ``weights_info``:
where its starting weights came from (``source``, ``sha256`` of the file and
``tensors_loaded``, or random initialisation), which the trainer records in the checkpoint and metrics.json
(``weights_record``).
"""
from __future__ import annotations

import contextlib
import io
import os
from urllib.parse import urlparse

import torch
from torch import nn

from .lab_weights import PretrainedWeightsError, load_strict, sha256, unwrap_state_dict

BACKBONES = ("small_cnn", "googlenet", "resnet18", "resnet50")
# the ImageNet classifier, which the trunk drops (fc -> Identity): a file without it still fits
HEAD_KEYS = ("fc.weight", "fc.bias")
# GoogLeNet's auxiliary classifiers: not part of the trunk (built with aux_logits=False), kept for HDC
AUX_PREFIXES = ("aux1.", "aux2.")


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
        self.weights_info = random_init(name)
        if pretrained:
            loaded, self.weights_info = _load_imagenet(net, name, weight_enums[name], weights_path)
            self.pretrained_loaded = True
            self.aux_state = {k: v for k, v in loaded.items() if k.startswith(AUX_PREFIXES)}
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


def random_init(backbone: str) -> dict:
    """``weights_info`` of a backbone that starts from random weights (model.pretrained=false)."""
    return {"backbone": backbone, "pretrained": False, "source": "random initialisation (model.pretrained=false)",
            "sha256": None}


def _hub_file(url: str) -> str:
    """Where torchvision keeps (and looks for, offline) the file of ``url``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))


def _load_imagenet(net: nn.Module, name: str, weights_enum, weights_path: str) -> tuple[dict, dict]:
    """Load ImageNet weights into net: a local file first, then torchvision's cache/download.

    Returns (the full state dict that was read, auxiliary-classifier keys included, which
    ``net`` itself does not hold; its ``weights_info``: source, file, sha256). A weights file
    that was named but does not exist raises FileNotFoundError; weights that cannot be
    fetched raise ``PretrainedWeightsError`` (never a silent random start).
    """
    path = weights_path or os.environ.get("HDML_WEIGHTS", "")
    url = weights_enum.url
    fname = os.path.basename(urlparse(url).path)
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights file {path!r} does not exist (model.weights_path / $HDML_WEIGHTS)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise PretrainedWeightsError(
                f"model.weights_path={path!r}: the ImageNet weights file for {name} could not be read "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); expected torchvision's {fname} "
                f"(from {url}), or set model.pretrained=false to train from scratch on purpose") from None
        source, file = os.path.abspath(path), os.path.abspath(path)
    else:
        file = _hub_file(url)
        if not os.path.isfile(file):
            print(f"fetching the ImageNet weights for {name}: {url} -> {file}")
        try:
            with contextlib.redirect_stderr(io.StringIO()):   # torch's own "Downloading:" line
                state = torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True)
        except Exception as exc:  # offline, a proxy, a truncated download (hash mismatch)
            reason = " ".join(str(exc).split())[:200]
            raise PretrainedWeightsError(
                f"model.pretrained=true: the ImageNet weights for {name} could not be fetched from {url} "
                f"({type(exc).__name__}: {reason}); download that file by hand and put it in "
                f"{os.path.dirname(file)}/ (torchvision's cache, used offline), or anywhere with "
                f"model.weights_path=/path/to/{fname} (or $HDML_WEIGHTS), or set model.pretrained=false "
                f"to train from scratch on purpose") from None
        source = url
    state = unwrap_state_dict(state)   # {"state_dict": ...}, {"model": ...}, "module." prefixes
    trunk = {k: v for k, v in state.items() if not k.startswith(AUX_PREFIXES)}   # aux heads: kept aside
    loaded = load_strict(net, trunk, file, f"torchvision's {name}", allowed_missing=HEAD_KEYS,
                         expected=f"{fname} from {url}")
    digest = sha256(file) if os.path.isfile(file) else None
    return state, {"backbone": name, "pretrained": True, "source": source, "file": file, "sha256": digest,
                   "tensors_loaded": loaded}


def weights_record(modules) -> dict | None:
    """The ``weights_info`` of the first backbone found in ``modules`` (a Method's
    ``{name: nn.Module}``, or one module): where the run's starting weights came from."""
    for m in (modules.values() if isinstance(modules, dict) else [modules]):
        for sub in m.modules():
            info = getattr(sub, "weights_info", None)
            if isinstance(info, dict):
                return dict(info)
    return None


def build_backbone(name: str, in_channels: int = 3, pretrained: bool = False, weights_path: str = "",
                   width: int = 32) -> nn.Module:
    """Build a backbone by name; see ``BACKBONES``. ``pretrained``: ImageNet weights for the
    torchvision backbones; the lab's glyph-pretrained weights for ``small_cnn`` (models/lab_weights.py)."""
    if name == "small_cnn":
        net = SmallCNN(in_channels=in_channels, width=width)
        net.weights_info = random_init(name)
        if pretrained:
            from .lab_weights import load_lab_weights
            net.weights_info = load_lab_weights(net, width, in_channels, path=weights_path)
        return net
    if name in ("googlenet", "resnet18", "resnet50"):
        if in_channels != 3:
            raise ValueError(f"backbone {name!r} expects 3-channel images, got in_channels={in_channels}")
        return TorchvisionTrunk(name, pretrained=pretrained, weights_path=weights_path)
    raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
