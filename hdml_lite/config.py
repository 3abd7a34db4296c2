"""Dataclass configs: composable, saved inside every checkpoint, overridable by dotted key.

    cfg = get_preset("lab_npair")                       # a named preset (hdml_lite.presets)
    cfg = apply_overrides(cfg, ["hdml.alpha=1.0", "train.steps=200"])
    cfg.hdml.alpha                                      # 1.0

Unknown keys and values of the wrong type raise ``ConfigError`` naming the key,
the value, and the closest valid keys (``python -m hdml_lite config --keys`` lists them all).
``validate`` is the one check of a whole config: every value's type and range, whether the
config came from the command line, a preset, Python code or a checkpoint (``from_dict``); it
also expands ``~`` and ``$VARIABLES`` in every path key (``PATH_KEYS``), the same way.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import numbers
import os
import re
import typing
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A bad preset name, config key or value."""


@dataclass
class DataConfig:
    dataset: str = "glyphs"          # glyphs | cub | cars196 | sop | omniglot | folder
    root: str = ""                   # data folder; "" -> $HDML_DATA if set, else
                                    #   $XDG_CACHE_HOME/hdml_lite (default ~/.cache/hdml_lite)
    split_file: str = ""             # folder datasets: optional explicit split file
    image_size: int = 32             # crop fed to the network (paper: 227)
    resize: int = 36                 # resize before cropping (paper: 256)
    transforms: str = "small"        # small | paper (METHOD §1.7) | paper_noflip (HDC)
    sampler: str = "npair"           # npair | triplet | m_per_class
    batch_classes: int = 32          # per sampler: npair: classes per batch (2 images each, N-pair's N) | triplet:
                                    #   triplets per batch (anchor classes drawn with replacement when there are
                                    #   fewer training classes) | m_per_class: classes per batch (images_per_class
                                    #   each); npair and m_per_class need >= 2 classes (negatives) and that many
                                    #   training classes (after data.val_classes)
    images_per_class: int = 2        # m_per_class: images per class in a batch (npair always takes 2, triplet 3 per triplet)
    val_classes: float = 0.0         # fraction of TRAIN classes held out for validation
    skip_corrupt: bool = False       # skip unreadable images (and report the count)
    num_workers: int = 0             # DataLoader worker processes preparing training batches (0: in-process)
    channels: int = 0                # 0: auto: grey glyphs/omniglot; an image dataset whose images are all grey
                                    #   is read as grey (train records 1), else RGB | 1 grey | 3 RGB
    invert: str = "auto"             # auto | true | false: 255 - pixel on image files (never on the glyphs). auto:
                                    #   true only for the pretrained small CNN on dark ink on a light background
                                    #   (its glyphs are light ink on dark); train records the choice
    cache: str = ""                  # "" off | "auto" (<dataset root>/hdml_cache) | a folder: pre-resized uint8 copy
    max_classes: int = 0             # >0: keep only the first N classes of each split (fast mode)
    max_per_class: int = 0           # >0: keep only N images per class (fast mode)


@dataclass
class ModelConfig:
    backbone: str = "small_cnn"      # small_cnn | googlenet | resnet18 | resnet50
    embedding_size: int = 64         # paper: 512 (official: 128/256/512 per dataset)
    pretrained: bool = False         # torchvision: ImageNet weights; small_cnn: the lab's glyph-pretrained weights (presets set it)
    weights_path: str = ""           # local ImageNet weights file (offline)
    width: int = 32                  # small_cnn base width
    bn_momentum: float = 0.1         # momentum of the embedding head's and the generator's BatchNorm (PyTorch
                                    #   convention; the released HDML code: 0.01 = 1 - tf's 0.99; METHOD §1.9)
    bn_eps: float = 1e-5             # epsilon of those BatchNorm layers (PyTorch's default; released code: tf's 1e-3)


@dataclass
class LossConfig:
    name: str = "npair"              # contrastive | triplet | semihard | lifted | npair | angular
    margin: float = 1.0              # triplet / semihard / lifted margin (contrastive: pos_margin, neg_margin)
    reduction: str = "sum"           # triplet: sum (official) | mean
    l2_reg: float = 3e-3             # N-pair embedding L2 term (METHOD §1.6)
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
    form: str = "paper"              # paper | official (METHOD §1.2 / §1.3 reductions)
    j_avg_mode: str = "epoch"        # epoch (paper) | block (official 64-step block means)
    block: int = 64                  # steps per block in block mode
    j_init: float = 1e6              # initial J_avg and J_gen
    softmax: bool = True             # ablation: False removes J_soft
    recon: bool = True               # ablation: False removes J_recon
    bn_stats: str = "official"       # official: synthetic pass updates the embedding BN's running stats | real: it does not (METHOD §1.9)


@dataclass
class HDCConfig:
    fractions: list = field(default_factory=lambda: [1.0, 0.5, 0.2])  # hardest fraction kept per head
    routing: str = "top"             # top (released code) | nested (paper)
    neg_factor: float = 10.0         # weight of the negative-pair term
    head_weights: list = field(default_factory=lambda: [1.0, 1.0, 1.0])  # test-time concat weights
    head_dim: int = 128              # per-head embedding size
    eval_head: int = -1              # -1: weighted concat of all heads; 1, 2, 3: that head alone (1-based)
    loss_scale: str = "autograd"     # autograd (d(sum/count)) | released (released gradient scale: count/2)
    param_groups: str = "plain"      # plain (trunk lr, heads lr*head_lr_mult) | released (biases 2x lr, no decay;
                                    #   only the embedding FCs at lr*head_lr_mult)
    aux_init: bool = True            # GoogLeNet + ImageNet weights: heads 1-2 conv/fc1 from aux1/aux2 (released)


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
    seed: int = 0                    # seeds init, sampling and every step (resumable, reproducible)
    eval_every: int = 100            # evaluate (val split if any, else test) every N steps; 0: only at end
    ckpt_every: int = 100            # checkpoint every N steps (and at the end)
    out_dir: str = "runs/default"    # checkpoints, history, plots
    device: str = "auto"             # auto | cpu | cuda
    amp: bool = True                 # mixed precision on CUDA (ignored on CPU)
    eval_batch: int = 256            # images per forward pass at evaluation
    progress: bool = True            # tqdm progress bars
    threads: int = 0                 # CPU threads per run (torch.set_num_threads); 0: auto (1 on CPU, see trainer)
    kmeans_restarts: int = 0         # k-means n_init for NMI/F1; 0: auto = 10 starts when k (test classes) <= 200,
                                    #   else 1 (paper presets: the released HDML code's 10; SOP 1)
    kmeans_seed: int = 0             # k-means random_state (released HDML code: 1)


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
    """Rebuild a Config from ``to_dict`` output (e.g. loaded from a checkpoint or a JSON file),
    checked as strictly as command-line overrides: every key through ``set_key`` (its type), then
    ``validate`` (ranges). Keys missing from ``d`` keep their defaults (an older checkpoint)."""
    cfg = Config()
    if not isinstance(d, dict):
        raise ConfigError(f"the config is a {type(d).__name__}, not a dict of sections; expected the output of "
                          f"config.to_dict")
    for section, values in d.items():
        if section == "name":
            set_key(cfg, "name", values)
            continue
        if not dataclasses.is_dataclass(getattr(cfg, str(section), None)):
            raise ConfigError(unknown_key_message(str(section), cfg, what="config section"))
        if not isinstance(values, dict):
            raise ConfigError(f"config section {section}={values!r}: expected a dict of keys (e.g. "
                              f"{{\"steps\": 600}})")
        for k, v in values.items():
            set_key(cfg, f"{section}.{k}", v)
    return validate(cfg)


def valid_keys(cfg: Config) -> list[str]:
    keys = ["name"]
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(sub)]
    return keys


def unknown_key_message(key: str, cfg: Config | None = None, what: str = "config key") -> str:
    """One line for an unknown key: the closest two or three valid keys, then where to list them all."""
    keys = valid_keys(cfg if cfg is not None else Config())
    if what == "config section":
        keys = sorted({k.split(".")[0] for k in keys if "." in k})
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
    last = key.rsplit(".", 1)[-1]                       # the right field in the wrong section
    close += [k for k in keys if k.rsplit(".", 1)[-1] == last and k not in close]
    close = close[:3]
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return (f"unknown {what} {key!r}; {hint}`python -m hdml_lite config --keys` lists all {len(keys)} "
            f"valid {'sections' if what == 'config section' else 'keys'} (`config` with their meaning)")


_TYPE_WORDS = {int: "int (a whole number)", float: "float (a number)", bool: "bool (true/false)",
               list: "list (e.g. [1,0.5,0.2] or 1,0.5,0.2)", str: "str"}


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
            if not isinstance(v, list):
                raise ValueError
            out = []
            for x in v:
                if isinstance(x, bool) or isinstance(x, (list, dict)) or x is None:
                    expected = VALUE_RULES.get(key, (None, "a flat list of numbers such as [1,0.5,0.2]"))[1]
                    raise ConfigError(f"config key {key}={value}; expected {expected}")
                out.append(x if isinstance(x, (int, float)) else float(x))
            return out
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        if isinstance(exc, ConfigError):
            raise
    raise ConfigError(f"config key {key}: cannot read {value!r} as {_TYPE_WORDS.get(t, getattr(t, '__name__', t))}; "
                      f"`python -m hdml_lite config` lists every key with its type and default")


def set_key(cfg: Config, key: str, value) -> None:
    """Set ``section.field`` (or ``name``) on cfg, checking the key and the type."""
    if key == "name":
        cfg.name = str(value)
        return
    parts = key.split(".")
    if key not in valid_keys(cfg):
        raise ConfigError(unknown_key_message(key, cfg))
    sub = getattr(cfg, parts[0])
    hints = typing.get_type_hints(type(sub))
    t = hints[parts[1]]
    t = typing.get_origin(t) or t
    if key in PATH_KEYS and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        value = _parse(value, t, key)
    elif t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, t) or (t is int and isinstance(value, bool)):
        raise ConfigError(f"config key {key}: expected {t.__name__}, got {value!r} ({type(value).__name__}); "
                          f"`python -m hdml_lite config` lists every key with its type and default")
    check_value(key, value)
    setattr(sub, parts[1], value)


def apply_overrides(cfg: Config, overrides: list[str] | dict | None) -> Config:
    """Return a copy of cfg with ``key=value`` strings (or a {key: value} dict) applied."""
    cfg = copy.deepcopy(cfg)
    if not overrides:
        validate(cfg)
        return cfg
    items = overrides.items() if isinstance(overrides, dict) else []
    if not isinstance(overrides, dict):
        parsed = []
        for o in overrides:
            if "=" not in o:
                raise ConfigError(f"override {o!r} is not of the form key=value (e.g. hdml.alpha=1.0)")
            k, v = o.split("=", 1)
            parsed.append((k.strip(), v))
        items = parsed
    for k, v in items:
        set_key(cfg, k, v)
    validate(cfg)
    return cfg


# ---- value checks: one rule per key that has a range; every float must be finite ----
_POSITIVE = "an integer > 0"
_NON_NEGATIVE = "an integer >= 0"
VALUE_RULES: dict[str, tuple] = {
    # key: (check(value) -> bool, what was expected)
    "data.image_size": (lambda v: v > 0, _POSITIVE),
    "data.resize": (lambda v: v > 0, _POSITIVE),
    "data.batch_classes": (lambda v: v > 0, _POSITIVE),
    "data.images_per_class": (lambda v: v > 0, _POSITIVE),
    "data.val_classes": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    "data.num_workers": (lambda v: v >= 0, _NON_NEGATIVE),
    "data.max_classes": (lambda v: v >= 0, _NON_NEGATIVE + " (0: all)"),
    "data.max_per_class": (lambda v: v >= 0, _NON_NEGATIVE + " (0: all)"),
    "data.channels": (lambda v: v in (0, 1, 3), "0 (dataset default), 1 (grey) or 3 (RGB)"),
    "model.embedding_size": (lambda v: v > 0, _POSITIVE),
    "model.width": (lambda v: v > 0, _POSITIVE),
    "model.bn_momentum": (lambda v: 0 < v <= 1, "a number in (0, 1] (PyTorch convention: 1 - tf's decay)"),
    "model.bn_eps": (lambda v: v > 0, "a number > 0"),
    "loss.margin": (lambda v: v >= 0, "a number >= 0"),
    "loss.l2_reg": (lambda v: v >= 0, "a number >= 0"),
    "loss.angle_deg": (lambda v: 0 < v < 90, "an angle in (0, 90) degrees"),
    "hdml.alpha": (lambda v: v >= 0, "a number >= 0 (0: no pulling)"),
    "hdml.beta": (lambda v: v > 0, "a number > 0"),
    "hdml.lambda_": (lambda v: v >= 0, "a number >= 0"),
    "hdml.softmax_factor": (lambda v: v >= 0, "a number >= 0"),
    "hdml.lr_gen": (lambda v: v > 0, "a learning rate > 0"),
    "hdml.s_lr": (lambda v: v > 0, "a learning rate > 0"),
    "hdml.gen_hidden": (lambda v: v > 0, _POSITIVE),
    "hdml.block": (lambda v: v > 0, _POSITIVE),
    "hdml.j_init": (lambda v: v > 0, "a number > 0"),
    "hdc.fractions": (lambda v: len(v) > 0 and all(0 < x <= 1 for x in v),
                      "a flat list of numbers in (0, 1], one per head, e.g. [1,0.5,0.2]"),
    "hdc.head_weights": (lambda v: len(v) > 0 and all(x >= 0 for x in v),
                         "a flat list of numbers >= 0, one per head, e.g. [1,1,1]"),
    "hdc.head_dim": (lambda v: v > 0, _POSITIVE),
    "hdc.neg_factor": (lambda v: v >= 0, "a number >= 0"),
    "optim.lr": (lambda v: 0 < v <= 100, "a learning rate in (0, 100]"),
    "optim.head_lr_mult": (lambda v: v > 0, "a number > 0"),
    "optim.weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "optim.wd_loss": (lambda v: v >= 0, "a number >= 0"),
    "optim.momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "optim.milestones": (lambda v: all(x >= 0 and float(x).is_integer() for x in v),
                         "a flat list of step numbers >= 0, e.g. [5000,8000]"),
    "optim.gamma": (lambda v: v > 0, "a number > 0"),
    "train.steps": (lambda v: v > 0, _POSITIVE),
    "train.seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32) (numpy's seed range)"),
    "train.eval_every": (lambda v: v >= 0, _NON_NEGATIVE + " (0: only at the end)"),
    "train.ckpt_every": (lambda v: v >= 0, _NON_NEGATIVE + " (0: only at the end)"),
    "train.eval_batch": (lambda v: v > 0, _POSITIVE),
    "train.threads": (lambda v: v >= 0, _NON_NEGATIVE + " (0: auto)"),
    "train.kmeans_restarts": (lambda v: v >= 0, _NON_NEGATIVE + " (0: auto, 10 when k <= 200 else 1)"),
    # evaluation settings are checked here, with the rest, not at the final evaluation after training
    "train.kmeans_seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32) (k-means random_state)"),
    "hdc.eval_head": (lambda v: v == -1 or 1 <= v <= 3, "-1 (weighted concat of the heads) or a head 1, 2 or 3"),
}
# keys that hold a file or folder: ``~`` and ``$VARIABLES`` are expanded in each (``expand_path``), the
# same way, by ``validate`` (bash leaves ``~`` unexpanded after ``key=``)
PATH_KEYS = ("data.root", "data.split_file", "data.cache", "model.weights_path", "train.out_dir")
_VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")
# keys whose value is one of a few words
CHOICES: dict[str, tuple[str, ...]] = {
    "data.invert": ("auto", "true", "false"),
}
# The smallest data.image_size each backbone accepts (a training forward pass runs), measured by
# scripts/min_input_size.py for the metric model and HDC's cascade alike (tests/test_config.py checks it).
MIN_IMAGE_SIZE = {"small_cnn": 16, "googlenet": 15, "resnet18": 1, "resnet50": 1}


def check_value(key: str, value) -> None:
    """Raise ConfigError (one line: key, value, what was expected) when ``value`` is out of range.

    Every float, and every number in a list, must be finite (nan / inf are rejected here,
    before a run starts, not as a non-finite loss later)."""
    numbers = value if isinstance(value, list) else [value]
    for x in numbers:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            if isinstance(value, list):
                raise ConfigError(f"config key {key}={value!r}; expected a flat list of numbers")
            continue
        if not math.isfinite(x):
            raise ConfigError(f"config key {key}={value!r}; expected a finite number")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"config key {key}={value!r}; expected one of {', '.join(CHOICES[key])}")
    rule = VALUE_RULES.get(key)
    if rule is None or isinstance(value, bool) or not isinstance(value, (int, float, list)):
        return
    check, expected = rule
    if not check(value):
        raise ConfigError(f"config key {key}={value!r}; expected {expected}")


def expand_path(key: str, value: str) -> str:
    """``value`` with ``$NAME`` / ``${NAME}`` replaced by the environment variable, then a leading
    ``~`` (or ``~user``) by the home folder. An unset variable is a ConfigError naming ``key``."""
    def variable(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in os.environ:
            raise ConfigError(f"config key {key}={value!r}: the environment variable ${name} is not set; "
                              f"expected a path whose variables are set")
        return os.environ[name]

    return os.path.expanduser(_VARIABLE.sub(variable, value)) if value else value


def _type_ok(value, t) -> bool:
    """``value`` fits the field type ``t`` (an int where a float is expected; numpy scalars count)."""
    if isinstance(value, bool):
        return t is bool
    if t is int:
        return isinstance(value, numbers.Integral)
    if t is float:
        return isinstance(value, numbers.Real)
    if t is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, t)


def validate(cfg: Config) -> Config:
    """Check every value of ``cfg``: its type (the field's), ``VALUE_RULES`` and finiteness;
    expands ``~`` and ``$VARIABLES`` in ``PATH_KEYS`` in place. Returns cfg."""
    if not isinstance(cfg.name, str):
        raise ConfigError(f"config key name={cfg.name!r}: expected str")
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            hints = typing.get_type_hints(type(sub))
            for g in dataclasses.fields(sub):
                key, value = f"{f.name}.{g.name}", getattr(sub, g.name)
                t = typing.get_origin(hints[g.name]) or hints[g.name]
                if key in PATH_KEYS and isinstance(value, os.PathLike):   # a pathlib.Path set in Python
                    value = os.fspath(value)
                    setattr(sub, g.name, value)
                if not _type_ok(value, t):
                    raise ConfigError(f"config key {key}={value!r} ({type(value).__name__}); expected "
                                      f"{_TYPE_WORDS.get(t, getattr(t, '__name__', t))}")
                if key in PATH_KEYS:
                    value = expand_path(key, value)
                    setattr(sub, g.name, value)
                check_value(key, value)
    need = MIN_IMAGE_SIZE.get(cfg.model.backbone, 1)
    if cfg.data.image_size < need:
        raise ConfigError(f"config key data.image_size={cfg.data.image_size}: model.backbone={cfg.model.backbone} "
                          f"accepts images of at least {need}x{need} pixels; expected data.image_size >= {need} "
                          f"(and data.resize >= data.image_size)")
    return cfg


# ---- `python -m hdml_lite config`: every key, its value and its comment, read from this file ----
def key_comments() -> dict[str, str]:
    """{"section.key": trailing comment} parsed from the dataclass sources in this module
    (a comment-only line right below a field continues that field's comment)."""
    import inspect
    import io
    import tokenize

    out: dict[str, str] = {}
    for f in dataclasses.fields(Config):
        cls = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if not (cls and dataclasses.is_dataclass(cls)):
            continue
        names = {g.name for g in dataclasses.fields(cls)}
        src = inspect.getsource(cls)
        last, line_key = None, {}
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.string in names:
                line_key[tok.start[0]] = last = tok.string
            elif tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                key = line_key.get(tok.start[0])
                if key is not None:
                    out[f"{f.name}.{key}"] = text
                elif last is not None and f"{f.name}.{last}" in out and tok.line.strip().startswith("#"):
                    out[f"{f.name}.{last}"] += " " + text
            elif tok.type == tokenize.NL and tok.line.strip() == "":
                last = None
    out["name"] = "preset name, for reports"
    return out


def describe(cfg: Config | None = None) -> list[str]:
    """One line per key: ``section.key = value  # comment`` (and the default when cfg differs)."""
    cfg = cfg if cfg is not None else Config()
    default, comments = Config(), key_comments()
    rows = []
    for key in valid_keys(cfg):
        sec, _, k = key.partition(".")
        value = getattr(getattr(cfg, sec), k) if k else getattr(cfg, sec)
        dval = getattr(getattr(default, sec), k) if k else getattr(default, sec)
        note = comments.get(key, "")
        if value != dval:
            note = f"{note} (default: {json.dumps(dval)})".strip()
        rows.append((key, json.dumps(value), note))
    wk = max(len(r[0]) for r in rows)
    wv = max(len(r[1]) for r in rows)
    return [f"{k:<{wk}} = {v:<{wv}}  # {n}" if n else f"{k:<{wk}} = {v}" for k, v, n in rows]
