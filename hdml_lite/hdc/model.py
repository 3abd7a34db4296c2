"""HDC's cascade: one shared trunk, three embedding heads of increasing depth (METHOD §2).

    x (B, C, H, W) --trunk--> taps t1, t2, t3 --head k--> z_k (B, head_dim), each L2-normalised

GoogLeNet taps inception4a (512 ch, 14x14 at a 224 crop), inception4d (528 ch, 14x14)
and inception5b (1024 ch, 7x7). The lab ``small_cnn`` taps stage2, stage3 and stage4.
The trunk runs ONCE per batch: forward hooks on the tapped blocks record their outputs
during that single pass (hooks are added and removed inside ``forward``).

Heads (paper, GoogLeNet):
- heads 1-2: avg-pool 5x5 stride 3 -> 1x1 conv 128 + ReLU -> FC 1024 + ReLU -> dropout 0.7 -> FC head_dim
- head 3:    global avg-pool -> dropout 0.4 -> FC head_dim
``small_cnn`` uses the same kinds of heads scaled down (1x1 conv 32, FC 128) with lighter
dropout (0.1 in heads 1-2, none in head 3): with only 128 hidden units, dropout 0.7 makes
the training-time distances mostly dropout noise and the noise-free embedding collapses
(measured on the glyph-sized lab setting).

Pooling grid: after the 5x5/3 pool an adaptive average pool fixes the grid (4x4 for
GoogLeNet, 2x2 for small_cnn) so the FC input size does not depend on the image size.
At the paper's 224 (or 227) crop the 5x5/3 pool already gives 4x4 at inception4a/4d,
so the adaptive pool is the identity there; where the map is smaller than 5x5
(e.g. small_cnn's stage3 on 32x32 images) the 5x5/3 pool is skipped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.backbones import build_backbone

AUX_BN_EPS = 1e-3  # torchvision GoogLeNet's BasicConv2d BatchNorm eps

# output channels of each backbone's stages (``backbone.stages()``), when it has no ``stage_channels``
_STAGE_CHANNELS = {
    "googlenet": [512, 528, 1024],  # inception4a, inception4d, inception5b
    "resnet18": [64, 128, 256, 512],
    "resnet50": [256, 512, 1024, 2048],
}

# head sizes: 1x1 conv channels, hidden FC width, pooled grid, dropout of heads 1-2 and of head 3
PAPER_HEADS = dict(conv=128, fc=1024, grid=4, drop_mid=0.7, drop_last=0.4)
LAB_HEADS = dict(conv=32, fc=128, grid=2, drop_mid=0.1, drop_last=0.0)


class PooledHead(nn.Module):
    """Heads 1-2: (B, C, H, W) -> (B, out_dim). Avg-pool 5x5/3 (when it fits) -> adaptive grid
    -> 1x1 conv + ReLU -> flatten -> FC + ReLU -> dropout -> FC. Not normalised."""

    def __init__(self, in_channels: int, out_dim: int, conv: int, fc: int, grid: int, dropout: float):
        super().__init__()
        self.grid = grid
        self.conv = nn.Conv2d(in_channels, conv, kernel_size=1)
        self.fc1 = nn.Linear(conv * grid * grid, fc)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(fc, out_dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if min(t.shape[-2:]) >= 5:
            t = F.avg_pool2d(t, kernel_size=5, stride=3)  # (B, C, (H-5)//3+1, (W-5)//3+1)
        t = F.adaptive_avg_pool2d(t, self.grid)  # (B, C, grid, grid)
        h = F.relu(self.conv(t)).flatten(1)  # (B, conv * grid * grid)
        h = self.drop(F.relu(self.fc1(h)))  # (B, fc)
        return self.fc2(h)  # (B, out_dim)


class GlobalHead(nn.Module):
    """Head 3: (B, C, H, W) -> (B, out_dim). Global avg-pool -> dropout -> FC. Not normalised."""

    def __init__(self, in_channels: int, out_dim: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, out_dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(t.mean(dim=(2, 3))))  # (B, out_dim)


@torch.no_grad()
def init_heads_from_aux(heads, aux_state: dict) -> list[str]:
    """Initialise heads 1-2 (``PooledHead``) from GoogLeNet's auxiliary classifiers aux1/aux2, as the
    released HDC model does (METHOD §2): the 1x1 conv (-> 128) and the FC 2048 -> 1024 have the
    same shapes. torchvision's aux conv is conv (no bias) + BatchNorm; it is folded into the head's
    conv (exact in eval mode): w' = w * g / sqrt(v + eps), b' = beta - mu * g / sqrt(v + eps).
    A plain conv with a bias (``auxK.conv.weight`` / ``auxK.conv.bias``, e.g. converted Caffe weights)
    is copied as is. The last FC (-> head_dim) stays new.

    Note: torchvision's own GoogLeNet aux heads are not ImageNet-trained (torchvision says so); the
    copy matters with a weights file whose aux heads are (the released Caffe GoogLeNet's are).
    Returns the names of the heads initialised ("aux1", "aux2"); heads whose shapes differ are skipped.
    """
    done = []
    for name, head in zip(("aux1", "aux2"), heads[:2]):
        p = f"{name}."
        if f"{p}conv.conv.weight" in aux_state:  # torchvision BasicConv2d: conv + BN
            w = aux_state[f"{p}conv.conv.weight"].float()
            g, beta = aux_state[f"{p}conv.bn.weight"].float(), aux_state[f"{p}conv.bn.bias"].float()
            mu, var = aux_state[f"{p}conv.bn.running_mean"].float(), aux_state[f"{p}conv.bn.running_var"].float()
            scale = g / torch.sqrt(var + AUX_BN_EPS)
            conv_w, conv_b = w * scale[:, None, None, None], beta - mu * scale
        elif f"{p}conv.weight" in aux_state:
            conv_w = aux_state[f"{p}conv.weight"].float()
            conv_b = aux_state.get(f"{p}conv.bias", torch.zeros(conv_w.shape[0])).float()
        else:
            continue
        fc_w, fc_b = aux_state.get(f"{p}fc1.weight"), aux_state.get(f"{p}fc1.bias")
        if (fc_w is None or conv_w.shape != head.conv.weight.shape or fc_w.shape != head.fc1.weight.shape):
            continue
        head.conv.weight.copy_(conv_w)
        head.conv.bias.copy_(conv_b)
        head.fc1.weight.copy_(fc_w.float())
        head.fc1.bias.copy_(fc_b.float() if fc_b is not None else torch.zeros_like(head.fc1.bias))
        done.append(name)
    return done


class CascadeModel(nn.Module):
    """Shared trunk + three heads. ``forward(x) -> [z1, z2, z3]``, each (B, head_dim), L2-normalised
    (float32 even under autocast).

    ``aux_init``: with GoogLeNet and loaded ImageNet weights that hold aux1/aux2, heads 1-2 start
    from them (``init_heads_from_aux``); ``self.aux_initialised`` lists the heads that did.
    """

    def __init__(self, backbone_name: str = "googlenet", in_channels: int = 3, head_dim: int = 128,
                 pretrained: bool = False, weights_path: str = "", width: int = 32, aux_init: bool = True):
        super().__init__()
        self.trunk = build_backbone(backbone_name, in_channels=in_channels, pretrained=pretrained,
                                    weights_path=weights_path, width=width)
        channels = getattr(self.trunk, "stage_channels", None) or _STAGE_CHANNELS[backbone_name]
        self.taps = list(self.trunk.stages())[-3:]  # the three deepest stages
        channels = list(channels)[-3:]
        sizes = LAB_HEADS if backbone_name == "small_cnn" else PAPER_HEADS
        self.head_dim = head_dim
        self.heads = nn.ModuleList([
            PooledHead(channels[0], head_dim, sizes["conv"], sizes["fc"], sizes["grid"], sizes["drop_mid"]),
            PooledHead(channels[1], head_dim, sizes["conv"], sizes["fc"], sizes["grid"], sizes["drop_mid"]),
            GlobalHead(channels[2], head_dim, sizes["drop_last"]),
        ])
        aux_state = getattr(self.trunk, "aux_state", {})
        self.aux_initialised = init_heads_from_aux(self.heads, aux_state) if aux_init and aux_state else []

    def tap_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run the trunk once; return the three tapped feature maps [(B, C_k, H_k, W_k)]."""
        feats: dict[int, torch.Tensor] = {}
        handles = [m.register_forward_hook(lambda _m, _i, out, k=k: feats.__setitem__(k, out))
                   for k, m in enumerate(self.taps)]
        try:
            self.trunk(x)
        finally:
            for h in handles:
                h.remove()
        return [feats[k] for k in range(len(self.taps))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.tap_features(x)
        return [F.normalize(head(t).float(), dim=1) for head, t in zip(self.heads, feats)]  # 3 x (B, head_dim)

    def new_layers(self) -> list[nn.Parameter]:
        """Parameters of the three heads (trained at lr * head_lr_mult)."""
        return list(self.heads.parameters())

    def embedding_layers(self) -> list[nn.Linear]:
        """The last FC of each head (-> head_dim): the released prototxt's lr_mult 10 layers."""
        return [self.heads[0].fc2, self.heads[1].fc2, self.heads[2].fc]
