"""HDC's cascade: one shared trunk, three embedding heads of increasing depth (HDML_SPEC section 2).

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


class CascadeModel(nn.Module):
    """Shared trunk + three heads. ``forward(x) -> [z1, z2, z3]``, each (B, head_dim), L2-normalised
    (float32 even under autocast)."""

    def __init__(self, backbone_name: str = "googlenet", in_channels: int = 3, head_dim: int = 128,
                 pretrained: bool = True, weights_path: str = "", width: int = 32):
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
