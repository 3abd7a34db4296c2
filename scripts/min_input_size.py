"""Measure the smallest square input (data.image_size) each backbone accepts, for the metric
model (baseline, HDML) and HDC's cascade: the table ``MIN_IMAGE_SIZE`` in hdml_lite/config.py.

    OMP_NUM_THREADS=1 python scripts/min_input_size.py      # about a minute on one CPU thread

A size "works" when a training-mode forward pass of a batch of 4 random images runs; the
figure is the smallest size from which every larger size up to 64 works. Random weights: the
shapes do not depend on the weights.
"""
from __future__ import annotations

import json

import torch

from hdml_lite.hdc.model import CascadeModel
from hdml_lite.models import build_backbone
from hdml_lite.models.embedding import MetricModel

BACKBONES = ("small_cnn", "googlenet", "resnet18", "resnet50")


def works(model: torch.nn.Module, size: int, channels: int) -> bool:
    try:
        with torch.no_grad():
            model(torch.randn(4, channels, size, size))
        return True
    except (RuntimeError, ValueError):
        return False


def smallest(model: torch.nn.Module, channels: int, top: int = 64) -> int:
    model.train()
    ok = top
    for s in range(top, 0, -1):
        if not works(model, s, channels):
            break
        ok = s
    return ok


def main() -> dict:
    torch.manual_seed(0)
    out = {}
    for name in BACKBONES:
        ch = 1 if name == "small_cnn" else 3
        metric = MetricModel(build_backbone(name, in_channels=ch, pretrained=False, width=16), 8)
        cascade = CascadeModel(name, in_channels=ch, head_dim=8, pretrained=False, width=16)
        out[name] = {"metric": smallest(metric, ch), "hdc": smallest(cascade, ch)}
        print(f"{name:<10} metric model {out[name]['metric']:>3} px   HDC cascade {out[name]['hdc']:>3} px")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
