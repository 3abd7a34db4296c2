"""Dataclass configs: composable, saved inside every checkpoint, overridable by dotted key.

    cfg = get_preset("lab_npair")                       # a named preset (hdml_lite.presets)
    cfg = apply_overrides(cfg, ["hdml.alpha=30", "train.steps=200"])
    cfg.hdml.alpha                                      # 30.0

Unknown keys and values of the wrong type raise ``ConfigError`` naming the key,
the value, and the valid keys.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A bad preset name, config key or value."""


@dataclass
class DataConfig:
    dataset: str = "glyphs"          # glyphs | cub | cars196 | sop | omniglot | folder
    root: str = ""                   # dataset folder; "" -> $HDML_DATA or ./data
    split_file: str = ""             # folder datasets: optional explicit split file
    image_size: int = 32             # crop fed to the network (paper: 227)
    resize: int = 36                 # resize before cropping (paper: 256)
    transforms: str = "small"        # small | paper (HDML_SPEC 1.7) | paper_noflip (HDC)
    sampler: str = "npair"           # npair | triplet | m_per_class
    batch_classes: int = 32          # classes per batch (N-pair: N)
    images_per_class: int = 2        # images per class in a batch (N-pair: 2)
    val_classes: float = 0.0         # fraction of TRAIN classes held out for validation
    skip_corrupt: bool = False       # skip unreadable images (and report the count)
    num_workers: int = 0             # DataLoader workers
    max_classes: int = 0             # >0: keep only the first N classes of each split (fast mode)
    max_per_class: int = 0           # >0: keep only N images per class (fast mode)


@dataclass
class ModelConfig:
    backbone: str = "small_cnn"      # small_cnn | googlenet | resnet18 | resnet50
    embedding_size: int = 64         # paper: 512 (official: 128/256/512 per dataset)
    pretrained: bool = True          # ImageNet weights for torchvision backbones
    weights_path: str = ""           # local ImageNet weights file (offline)
    width: int = 32                  # small_cnn base width


@dataclass
class LossConfig:
    name: str = "npair"              # contrastive | triplet | semihard | lifted | npair | angular
    margin: float = 1.0              # triplet / semihard / lifted margin (contrastive: pos_margin, neg_margin)
    reduction: str = "sum"           # triplet: sum (official) | mean
    l2_reg: float = 3e-3             # N-pair embedding L2 term (HDML_SPEC 1.6)
    angle_deg: float = 45.0          # angular loss
    pos_margin: float = 0.0          # contrastive positive margin
    neg_margin: float = 1.0          # contrastive negative margin


@dataclass
class HDMLConfig:
    alpha: float = 90.0              # pulling factor (paper: 7 triplet, 90 N-pair)
    beta: float = 1e4                # synthetic-loss balance
    lambda_: float = 0.5             # generator balance
    softmax_factor: float = 1e4      # official factor on J_soft
    lr_gen: float = 1e-2             # generator Adam lr
    s_lr: float = 1e-3               # softmax classifier Adam lr
    gen_hidden: int = 512            # generator hidden width
    form: str = "paper"              # paper | official (HDML_SPEC 1.2 / 1.3 reductions)
    j_avg_mode: str = "epoch"        # epoch (paper) | block (official 64-step block means)
    block: int = 64                  # steps per block in block mode
    j_init: float = 1e6              # initial J_avg and J_gen
    softmax: bool = True             # ablation: False removes J_soft
    recon: bool = True               # ablation: False removes J_recon


@dataclass
class HDCConfig:
    fractions: list = field(default_factory=lambda: [1.0, 0.5, 0.2])  # hardest fraction kept per head
    routing: str = "top"             # top (released code) | nested (paper)
    neg_factor: float = 10.0         # weight of the negative-pair term
    head_weights: list = field(default_factory=lambda: [1.0, 1.0, 1.0])  # test-time concat weights
    head_dim: int = 128              # per-head embedding size
    eval_head: int = -1              # -1: weighted concat of all heads; 1, 2, 3: that head alone (1-based)


@dataclass
class OptimConfig:
    optimizer: str = "adam"          # adam | sgd
    lr: float = 1e-3                 # backbone lr
    head_lr_mult: float = 10.0       # new layers' lr = lr * head_lr_mult (paper)
    weight_decay: float = 0.0        # optimizer weight decay (HDC: 2e-4 with SGD)
    wd_loss: float = 0.0             # official HDML explicit 0.5*||w||^2 loss factor
    momentum: float = 0.9            # SGD
    milestones: list = field(default_factory=list)  # steps where lr is multiplied by gamma
    gamma: float = 0.5               # lr factor at each milestone


@dataclass
class TrainConfig:
    method: str = "baseline"         # baseline | hdml | hdc
    steps: int = 600                 # optimisation steps
    seed: int = 0
    eval_every: int = 100            # evaluate (val split if any, else test) every N steps; 0: only at end
    ckpt_every: int = 100            # checkpoint every N steps (and at the end)
    out_dir: str = "runs/default"    # checkpoints, history, plots
    device: str = "auto"             # auto | cpu | cuda
    amp: bool = True                 # mixed precision on CUDA (ignored on CPU)
    eval_batch: int = 256
    progress: bool = True            # tqdm progress bars


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    hdml: HDMLConfig = field(default_factory=HDMLConfig)
    hdc: HDCConfig = field(default_factory=HDCConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "custom"             # preset name, for reports


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> Config:
    """Rebuild a Config from ``to_dict`` output (e.g. loaded from a checkpoint)."""
    cfg = Config()
    for section, values in d.items():
        if section == "name":
            cfg.name = values
            continue
        if not hasattr(cfg, section):
            raise ConfigError(f"unknown config section {section!r}; valid: {', '.join(valid_keys(cfg))}")
        sub = getattr(cfg, section)
        for k, v in values.items():
            if not hasattr(sub, k):
                raise ConfigError(f"unknown config key {section}.{k}; valid keys: {', '.join(valid_keys(cfg))}")
            setattr(sub, k, v)
    return cfg


def valid_keys(cfg: Config) -> list[str]:
    keys = ["name"]
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(sub)]
    return keys


def _parse(value: str, target_type, key: str):
    """Parse a command-line string into the field's type, or raise ConfigError."""
    t = target_type
    try:
        if t is bool:
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t is int:
            return int(value)
        if t is float:
            return float(value)
        if t is str:
            return value
        if t is list:
            v = json.loads(value) if value.strip().startswith("[") else [x for x in value.split(",") if x.strip()]
            return [float(x) if not isinstance(x, (int, float)) else x for x in v]
    except (ValueError, json.JSONDecodeError):
        pass
    raise ConfigError(f"config key {key}: cannot read {value!r} as {getattr(t, '__name__', t)}")


def set_key(cfg: Config, key: str, value) -> None:
    """Set ``section.field`` (or ``name``) on cfg, checking the key and the type."""
    if key == "name":
        cfg.name = str(value)
        return
    parts = key.split(".")
    if len(parts) != 2 or not hasattr(cfg, parts[0]) or not hasattr(getattr(cfg, parts[0]), parts[1]):
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(valid_keys(cfg))}")
    sub = getattr(cfg, parts[0])
    hints = typing.get_type_hints(type(sub))
    t = hints[parts[1]]
    t = typing.get_origin(t) or t
    if isinstance(value, str):
        value = _parse(value, t, key)
    elif t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, t) or (t is int and isinstance(value, bool)):
        raise ConfigError(f"config key {key}: expected {t.__name__}, got {value!r} ({type(value).__name__})")
    setattr(sub, parts[1], value)


def apply_overrides(cfg: Config, overrides: list[str] | dict | None) -> Config:
    """Return a copy of cfg with ``key=value`` strings (or a {key: value} dict) applied."""
    cfg = copy.deepcopy(cfg)
    if not overrides:
        return cfg
    items = overrides.items() if isinstance(overrides, dict) else []
    if not isinstance(overrides, dict):
        parsed = []
        for o in overrides:
            if "=" not in o:
                raise ConfigError(f"override {o!r} is not of the form key=value (e.g. hdml.alpha=30)")
            k, v = o.split("=", 1)
            parsed.append((k.strip(), v))
        items = parsed
    for k, v in items:
        set_key(cfg, k, v)
    return cfg
