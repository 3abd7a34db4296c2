"""The Method contract: a method owns its modules, optimizers and extra state;
the trainer (``training/trainer.py``) owns the loop, checkpoints and evaluation.

``BaselineMethod`` is the plain metric model trained with one baseline loss
(``hdml_lite.losses.metric_loss``). HDML (``hdml_lite.hdml.method``) and HDC
(``hdml_lite.hdc.method``) follow the same contract.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Config
from ..device import amp_enabled, autocast
from ..models import build_metric_model


def fused_kwargs(params_groups: list[dict]) -> dict:
    """``{"fused": True}`` when every parameter is on a CUDA device, else ``{}`` (CPU: torch's default
    implementation, as before). A fused optimizer also takes the AMP GradScaler's inf check on the
    device: without it ``scaler.step`` reads ``found_inf`` back to the host once per optimizer, which
    is a host synchronisation per optimizer per step (HDML has three)."""
    params = [p for g in params_groups for p in (g["params"] if isinstance(g, dict) else [g])]
    return {"fused": True} if params and all(p.is_cuda and p.is_floating_point() for p in params) else {}


def make_optimizer(params_groups: list[dict], optim_cfg) -> torch.optim.Optimizer:
    """Adam or SGD over parameter groups ``[{"params": [...], "lr": ...}, ...]`` (fused on CUDA)."""
    if optim_cfg.optimizer == "adam":
        return torch.optim.Adam(params_groups, weight_decay=optim_cfg.weight_decay, **fused_kwargs(params_groups))
    if optim_cfg.optimizer == "sgd":
        return torch.optim.SGD(params_groups, momentum=optim_cfg.momentum, weight_decay=optim_cfg.weight_decay,
                               **fused_kwargs(params_groups))
    raise ValueError(f"optim.optimizer={optim_cfg.optimizer!r}; expected adam or sgd")


def metric_param_groups(model, optim_cfg) -> list[dict]:
    """Backbone at lr, new layers (embedding head) at lr * head_lr_mult (the paper's 10x)."""
    new = {id(p) for p in model.new_layers()}
    backbone = [p for p in model.parameters() if id(p) not in new]
    return [
        {"params": backbone, "lr": optim_cfg.lr, "base_lr": optim_cfg.lr},
        {"params": model.new_layers(), "lr": optim_cfg.lr * optim_cfg.head_lr_mult,
         "base_lr": optim_cfg.lr * optim_cfg.head_lr_mult},
    ]


def weight_decay_loss(modules, factor: float) -> torch.Tensor | float:
    """Official HDML explicit weight decay: factor * 0.5 * sum ||w||^2 over non-BN parameters
    (biases included) (METHOD §1.6). Returns 0.0 when factor is 0."""
    if factor == 0:
        return 0.0
    total = 0.0
    for m in modules:
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                continue
            for p in mod.parameters(recurse=False):
                if p.requires_grad:
                    total = total + p.float().pow(2).sum()
    return 0.5 * factor * total


METHOD_REGISTRY: dict[str, type] = {}   # train.method name -> Method subclass


def register_method(name: str):
    """Class decorator: make a Method subclass available as ``train.method=<name>``.

        @register_method("hdml")
        class HDMLMethod(Method): ...

    The trainer builds methods from ``METHOD_REGISTRY`` only; ``hdml_lite/__init__.py``
    imports the built-in methods so that they are registered."""
    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}) decorates Method subclasses, not {cls!r}")
        old = METHOD_REGISTRY.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"train.method {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        METHOD_REGISTRY[name] = cls
        return cls
    return decorate


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or infinite; raised BEFORE any parameter update of that step."""


def check_finite(terms: dict, step: int) -> None:
    """Raise NonFiniteLossError naming the first non-finite loss term (no update happens).

    terms: {name: float or tensor}; floats (from ``read_floats``) cost no host synchronisation."""
    for name, value in terms.items():
        if isinstance(value, torch.Tensor):
            bad = not torch.isfinite(value.detach()).all()
            shown = float(value.detach().float().mean()) if bad else 0.0
        else:
            bad, shown = not math.isfinite(value), value
        if bad:
            raise NonFiniteLossError(
                f"non-finite loss term {name!r} = {shown} at step {step}; "
                f"no update was applied. Lower the learning rate (optim.lr) or check the data.")


def read_floats(values: dict) -> dict[str, float]:
    """{name: 0-d tensor or number} -> {name: float}, with ONE host synchronisation for all the
    tensors: they are stacked (as float32) and read with a single ``.tolist()``. What a training
    step logs goes through here once, so that a GPU step does not stall on each value."""
    keys = [k for k, v in values.items() if isinstance(v, torch.Tensor)]
    out = {k: float(v) for k, v in values.items() if not isinstance(v, torch.Tensor)}
    if keys:
        read = torch.stack([values[k].detach().float().reshape(()) for k in keys]).tolist()
        out.update(zip(keys, read))
    return {k: out[k] for k in values}


class Method:
    """Base class. Subclasses set ``self.modules`` and ``self.optimizers`` and implement
    ``train_step`` and ``embed``."""

    name = "method"

    def __init__(self, cfg: Config, num_classes: int, in_channels: int, device: torch.device):
        self.cfg = cfg
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.device = device
        self.amp = amp_enabled(device, cfg.train.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def autocast(self):
        return autocast(self.device, self.amp)

    def train(self) -> None:
        for m in self.modules.values():
            m.train()

    def eval(self) -> None:
        for m in self.modules.values():
            m.eval()

    def set_lr_scale(self, scale: float) -> None:
        """Multiply every group's base learning rate by ``scale`` (trainer's schedule)."""
        for opt in self.optimizers.values():
            for g in opt.param_groups:
                g.setdefault("base_lr", g["lr"])
                g["lr"] = g["base_lr"] * scale

    def train_step(self, x: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # state beyond modules/optimizers (e.g. HDML's J_avg tracker); override when needed
    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.load_extra_state(state.get("extra", {}))


@register_method("baseline")
class BaselineMethod(Method):
    """Metric model + one baseline loss; one Adam/SGD optimizer with the 10x head lr."""

    name = "baseline"

    def __init__(self, cfg: Config, num_classes: int, in_channels: int, device: torch.device):
        super().__init__(cfg, num_classes, in_channels, device)
        self.model = build_metric_model(cfg.model, in_channels).to(device)
        self.modules = {"model": self.model}
        self.optimizers = {"metric": make_optimizer(metric_param_groups(self.model, cfg.optim), cfg.optim)}

    def train_step(self, x: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, float]:
        from ..losses import metric_loss

        self.train()
        opt = self.optimizers["metric"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            _, z = self.model(x)  # (B, D)
        z = z.float()
        j_m = metric_loss(self.cfg.loss, z, labels)
        loss = j_m + weight_decay_loss([self.model], self.cfg.optim.wd_loss)
        logs = read_floats({"loss": loss, "j_m": j_m})      # the step's one host synchronisation
        check_finite({"j_m": logs["j_m"], "loss": logs["loss"]}, step)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()
        return logs

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        with self.autocast():
            _, z = self.model(x)
        return z.float()
