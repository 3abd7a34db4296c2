"""HDCMethod: the cascade trained with hard-aware routing, following the Method contract
(``hdml_lite.training.method``; METHOD §2).

One forward pass of the shared trunk per batch gives three normalised embeddings;
``cascade_loss`` sums the three head losses; one backward, one optimizer step.
Batches come from an m-per-class sampler (official: 10 classes x 10 images); all
pairs of the batch are used, so the batch order does not matter.

Optimizer (``make_optimizer`` over ``hdc_param_groups``), ``hdc.param_groups``:
- ``"plain"``: the trunk at ``optim.lr``, the three heads at ``optim.lr * optim.head_lr_mult``,
  every parameter with ``optim.weight_decay``.
- ``"released"`` (the released solver/prototxt, METHOD §2): weights at lr with weight decay,
  biases at 2x lr with no decay (Caffe's lr_mult 2 / decay_mult 0); the embedding FCs (each
  head's last FC) at ``lr * head_lr_mult`` (prototxt: lr_mult 10, bias 20); heads 1-2's 1x1 conv
  and FC 1024 (aux-initialised) at lr like the trunk. BatchNorm weights (torchvision's GoogLeNet
  has BN, the Caffe one has none) take the lr with no decay.
HDC presets use SGD, momentum 0.9, weight decay 2e-4.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..training.method import (Method, check_finite, make_optimizer, metric_param_groups, read_floats,
                               register_method)
from .embed import concat_heads
from .loss import LOSS_SCALES, ROUTINGS, cascade_loss
from .model import CascadeModel

PARAM_GROUPS = ("plain", "released")

NUM_HEADS = 3


def _check_hdc_config(hdc) -> None:
    if hdc.routing not in ROUTINGS:
        raise ValueError(f"hdc.routing={hdc.routing!r}; expected one of {', '.join(ROUTINGS)}")
    if len(hdc.fractions) != NUM_HEADS or not all(0 < f <= 1 for f in hdc.fractions):
        raise ValueError(f"hdc.fractions={hdc.fractions!r}; expected {NUM_HEADS} values in (0, 1]")
    if len(hdc.head_weights) != NUM_HEADS:
        raise ValueError(f"hdc.head_weights={hdc.head_weights!r}; expected {NUM_HEADS} values")
    if hdc.loss_scale not in LOSS_SCALES:
        raise ValueError(f"hdc.loss_scale={hdc.loss_scale!r}; expected one of {', '.join(LOSS_SCALES)}")
    if hdc.param_groups not in PARAM_GROUPS:
        raise ValueError(f"hdc.param_groups={hdc.param_groups!r}; expected one of {', '.join(PARAM_GROUPS)}")
    if hdc.eval_head not in (-1, *range(1, NUM_HEADS + 1)):
        raise ValueError(f"hdc.eval_head={hdc.eval_head!r}; expected -1 (weighted concat) or a head 1..{NUM_HEADS}")


def hdc_param_groups(model: CascadeModel, optim_cfg, mode: str = "plain") -> list[dict]:
    """Parameter groups for HDC's optimizer (see the module docstring): dicts with params, lr,
    base_lr and (released mode) weight_decay. Every parameter lands in exactly one group."""
    if mode == "plain":
        return metric_param_groups(model, optim_cfg)
    if mode not in PARAM_GROUPS:
        raise ValueError(f"hdc.param_groups={mode!r}; expected one of {', '.join(PARAM_GROUPS)}")
    lr, wd, mult = optim_cfg.lr, optim_cfg.weight_decay, optim_cfg.head_lr_mult
    embed_ids = {id(p) for layer in model.embedding_layers() for p in layer.parameters()}
    norm_ids = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for p in m.parameters(recurse=False)}
    groups: dict[str, dict] = {}

    def put(key: str, p, group_lr: float, decay: float) -> None:
        g = groups.setdefault(key, {"params": [], "lr": group_lr, "base_lr": group_lr, "weight_decay": decay,
                                    "name": key})
        g["params"].append(p)

    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        base = lr * mult if id(p) in embed_ids else lr
        prefix = "embed" if id(p) in embed_ids else "net"
        if id(p) in norm_ids and not name.endswith("bias"):
            put(f"{prefix}_norm", p, base, 0.0)
        elif name.endswith("bias"):
            put(f"{prefix}_bias", p, 2 * base, 0.0)
        else:
            put(f"{prefix}_weight", p, base, wd)
    return list(groups.values())


@register_method("hdc")
class HDCMethod(Method):
    """Hard-Aware Deeply Cascaded embedding. ``train_step`` returns loss, loss_h1, loss_h2, loss_h3."""

    name = "hdc"

    def __init__(self, cfg: Config, num_classes: int, in_channels: int, device: torch.device):
        super().__init__(cfg, num_classes, in_channels, device)
        _check_hdc_config(cfg.hdc)
        m = cfg.model
        self.model = CascadeModel(m.backbone, in_channels, head_dim=cfg.hdc.head_dim, pretrained=m.pretrained,
                                  weights_path=m.weights_path, width=m.width,
                                  aux_init=cfg.hdc.aux_init).to(device)
        self.modules = {"model": self.model}
        groups = hdc_param_groups(self.model, cfg.optim, cfg.hdc.param_groups)
        self.optimizers = {"metric": make_optimizer(groups, cfg.optim)}

    def train_step(self, x: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, float]:
        hdc = self.cfg.hdc
        self.train()
        opt = self.optimizers["metric"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            zs = self.model(x)  # 3 x (B, head_dim), normalised, float32
        loss, per_head = cascade_loss(zs, labels, hdc.fractions, hdc.routing, hdc.neg_factor, hdc.loss_scale)
        terms = {"loss": loss, **{f"loss_h{k + 1}": j for k, j in enumerate(per_head)}}
        logs = read_floats(terms)                      # the step's one host synchronisation
        check_finite(logs, step)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()
        return logs

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3 * head_dim) weighted concat (hdc.eval_head = -1) or (B, head_dim) for head 1, 2 or 3."""
        self.eval()
        with self.autocast():
            zs = self.model(x)
        if self.cfg.hdc.eval_head == -1:
            return concat_heads(zs, self.cfg.hdc.head_weights)
        return zs[self.cfg.hdc.eval_head - 1].float()
