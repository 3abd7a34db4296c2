"""HDCMethod: the cascade trained with hard-aware routing, following the Method contract
(``hdml_lite.training.method``; HDML_SPEC section 2).

One forward pass of the shared trunk per batch gives three normalised embeddings;
``cascade_loss`` sums the three head losses; one backward, one optimizer step.
Batches come from an m-per-class sampler (official: 10 classes x 10 images); all
pairs of the batch are used, so the batch order does not matter.

Optimizer (``make_optimizer``): the trunk at ``optim.lr``, the three heads at
``optim.lr * optim.head_lr_mult``; HDC presets use SGD, momentum 0.9, weight decay 2e-4.
"""
from __future__ import annotations

import torch

from ..config import Config
from ..training.method import Method, check_finite, make_optimizer, metric_param_groups
from .embed import concat_heads
from .loss import ROUTINGS, cascade_loss
from .model import CascadeModel

NUM_HEADS = 3


def _check_hdc_config(hdc) -> None:
    if hdc.routing not in ROUTINGS:
        raise ValueError(f"hdc.routing={hdc.routing!r}; expected one of {', '.join(ROUTINGS)}")
    if len(hdc.fractions) != NUM_HEADS or not all(0 < f <= 1 for f in hdc.fractions):
        raise ValueError(f"hdc.fractions={hdc.fractions!r}; expected {NUM_HEADS} values in (0, 1]")
    if len(hdc.head_weights) != NUM_HEADS:
        raise ValueError(f"hdc.head_weights={hdc.head_weights!r}; expected {NUM_HEADS} values")
    if hdc.eval_head not in (-1, *range(1, NUM_HEADS + 1)):
        raise ValueError(f"hdc.eval_head={hdc.eval_head!r}; expected -1 (weighted concat) or a head 1..{NUM_HEADS}")


class HDCMethod(Method):
    """Hard-Aware Deeply Cascaded embedding. ``train_step`` returns loss, loss_h1, loss_h2, loss_h3."""

    name = "hdc"

    def __init__(self, cfg: Config, num_classes: int, in_channels: int, device: torch.device):
        super().__init__(cfg, num_classes, in_channels, device)
        _check_hdc_config(cfg.hdc)
        m = cfg.model
        self.model = CascadeModel(m.backbone, in_channels, head_dim=cfg.hdc.head_dim, pretrained=m.pretrained,
                                  weights_path=m.weights_path, width=m.width).to(device)
        self.modules = {"model": self.model}
        self.optimizers = {"metric": make_optimizer(metric_param_groups(self.model, cfg.optim), cfg.optim)}

    def train_step(self, x: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, float]:
        hdc = self.cfg.hdc
        self.train()
        opt = self.optimizers["metric"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            zs = self.model(x)  # 3 x (B, head_dim), normalised, float32
        loss, per_head = cascade_loss(zs, labels, hdc.fractions, hdc.routing, hdc.neg_factor)
        terms = {"loss": loss, **{f"loss_h{k + 1}": j for k, j in enumerate(per_head)}}
        check_finite(terms, step)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3 * head_dim) weighted concat (hdc.eval_head = -1) or (B, head_dim) for head 1, 2 or 3."""
        self.eval()
        with self.autocast():
            zs = self.model(x)
        if self.cfg.hdc.eval_head == -1:
            return concat_heads(zs, self.cfg.hdc.head_weights)
        return zs[self.cfg.hdc.eval_head - 1].float()
