"""The lab's "ImageNet": pretrain the small CNN as a softmax classifier on glyph classes that
the lab never uses (docs/METHOD.md §5).

    python scripts/pretrain_lab.py          # regenerates hdml_lite/weights/small_cnn_w16_glyphs.pt

The paper fine-tunes a GoogLeNet pretrained on ImageNet, whose 1,000 classes are disjoint from
the birds and cars it is then tested on. Here the pretraining classes are 700 characters from
other scripts and symbol blocks (IPA, Armenian, Georgian, arrows, mathematical operators, ...:
``glyphs.PRETRAIN_RANGES``), each more than ``glyphs.PRETRAIN_TOL`` away from every lab class, so
neither the lab's train classes nor its test classes are seen during pretraining.

Recipe: ``SmallCNN`` (1 channel) + a linear classifier, cross-entropy, Adam, batch 128, random
36 -> 32 crops as in the lab's ``small`` transform, one CPU thread (so the bytes are
reproducible on one machine and torch version). The backbone's weights, BN statistics included,
are stored in float16 (half the size; loading casts them back to float32).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.transforms import augment_batch, crop_params, transform_spec
from .backbones import SmallCNN


def to_lab_input(images, resize: int = 36) -> torch.Tensor:
    """uint8 (N, H, W) or (N, 1, H, W) glyphs -> float (N, 1, resize, resize) in [0, 1], resized once
    with antialiasing (the lab's ``small`` transform then crops and normalises)."""
    x = torch.as_tensor(np.asarray(images)).float().div_(255.0)
    x = x[:, None] if x.dim() == 3 else x
    return F.interpolate(x, size=(resize, resize), mode="bilinear", antialias=True, align_corners=False)


def pretrain_small_cnn(width: int = 16, steps: int = 1500, batch: int = 128, lr: float = 2e-3,
                       per_class: int = 24, seed: int = 0, root: str | None = None,
                       progress: bool = True) -> tuple[dict, dict]:
    """Train SmallCNN(1, width) + a linear classifier on the "pretrain" glyphs.

    Returns (backbone state_dict in float16, info {classes, images, steps, final_ce, final_acc,
    seconds}). Cosine learning-rate decay to 0; the run is deterministic for a seed on one thread.
    """
    from ..data.glyphs import load_glyphs

    torch.manual_seed(seed)
    ds = load_glyphs("pretrain", root=root, per_class=per_class)
    x_all = to_lab_input(ds.images)                                 # (N, 1, 36, 36)
    y_all = torch.as_tensor(ds.labels, dtype=torch.long)
    net = SmallCNN(1, width)
    clf = torch.nn.Linear(net.feature_dim, ds.num_classes)
    opt = torch.optim.Adam(list(net.parameters()) + list(clf.parameters()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    mean, std, _ = transform_spec("small")                          # (x - 0.5) / 0.5, no mirroring
    t0, ce_hist, acc_hist = time.perf_counter(), [], []
    for step in tqdm(range(steps), desc="pretrain", disable=not progress):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, len(y_all), (batch,), generator=gen)
        top, left, flips = crop_params(gen, batch, x_all.shape[-1], 32, train=True, flip=False)
        x = augment_batch(x_all[idx], top, left, flips, 32, mean, std, out_channels=1)
        logits = clf(net(x))
        loss = F.cross_entropy(logits, y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ce_hist.append(float(loss.detach()))
        acc_hist.append(float((logits.argmax(1) == y_all[idx]).float().mean()))
    tail = max(1, steps // 10)
    info = {"classes": ds.num_classes, "images": len(y_all), "steps": steps, "width": width,
            "final_ce": float(np.mean(ce_hist[-tail:])), "final_acc": float(np.mean(acc_hist[-tail:])),
            "seconds": time.perf_counter() - t0}
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    return state, info
