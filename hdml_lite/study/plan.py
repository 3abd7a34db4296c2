"""The study's plan: which runs, with which settings, in which folders (no training here).

A regime is a family of presets named ``<regime>_<loss>``: ``lab`` (the converged lab regime:
a pretrained small CNN fine-tuned to a plateau) or ``scratch`` (200 steps from scratch).
Method names in every CSV are ``<regime>_<key>`` with ``key`` in ``KEYS``.

Stages (all on the embedded glyphs, every run with its preset's step budget):

1. ``select_lr``: every method (HDML included: its own lr, at the preset's alpha), lr in
   ``Settings.lrs``, seed 0, on 80% of the train classes, scored on the other 20%
   (``data.val_classes=0.2``: validation classes; the test classes are never used to choose).
2. ``select_alpha``: HDML(N-pair) and HDML(triplet) at their chosen lr; alpha = -J_avg ln(p)
   for p in ``pull_targets``, J_avg measured in their lr-selection run (median over its second
   half), ``select_seeds`` seeds each; alpha with the best mean validation R@1.
3. ``select_bn``: HDML(N-pair)'s ``hdml.bn_stats`` (official | real) at its chosen alpha,
   ``select_seeds`` paired seeds (the preset's value reuses the alpha-stage runs).
4. ``select_fractions``: HDC's fractions (``hdc_fractions``) at its chosen lr, ``select_seeds``
   seeds (the preset's value with seed 0 is the lr-selection run).
5. ``final``: every method with its chosen values, trained on all train classes, the final
   model scored on the test classes: ``seeds_key`` seeds for N-pair, HDML(N-pair), triplet,
   HDML(triplet), ``seeds_rest`` for the others. The two ablations (no softmax, no
   reconstruction) use HDML(N-pair)'s lr, alpha and bn_stats; HDML(triplet) keeps its
   preset's bn_stats; contrastive at HDC's batch (``contrastive_hdcbatch``) has its own lr.

A stage's choice is made once its whole grid has finished; runs that need a choice wait for it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from .stats import PULL_TARGETS, alpha_grid

REGIMES = ("lab", "scratch")
BASELINES = ("contrastive", "triplet", "semihard", "lifted", "npair", "angular")
HDML_BASE = {"hdml_npair": "npair", "hdml_triplet": "triplet"}        # HDML key -> its base loss key
ABLATIONS = {"hdml_npair_nosoftmax": ("hdml.softmax=false",), "hdml_npair_norecon": ("hdml.recon=false",)}
HDC_BATCH = "contrastive_hdcbatch"                                    # contrastive at HDC's batch
SELECT_LR = BASELINES + ("hdc", HDC_BATCH) + tuple(HDML_BASE)        # methods with their own lr selection
KEY_METHODS = ("npair", "hdml_npair", "triplet", "hdml_triplet")     # seeds_key seeds in the final stage
KEYS = BASELINES + ("hdml_triplet", "hdml_npair", "hdc", HDC_BATCH) + tuple(ABLATIONS)   # table order
CURVE_KEYS = ("npair", "hdml_npair") + tuple(ABLATIONS)              # evaluated along the final runs
MECHANISM_KEYS = ("hdml_npair", "hdml_triplet") + tuple(ABLATIONS)   # per-step HDML diagnostics
STAGES = ("select_lr", "select_alpha", "select_bn", "select_fractions", "final")
VAL_CLASSES = 0.2
BN_VALUES = ("official", "real")

FAST = ["train.steps=6", "train.eval_every=0", "train.ckpt_every=0", "data.max_classes=10",
        "data.max_per_class=6", "data.batch_classes=4", "data.images_per_class=2", "model.width=4",
        "model.embedding_size=8", "hdml.block=2", "hdml.gen_hidden=16", "hdc.head_dim=8", "train.device=cpu",
        "model.pretrained=false"]          # fast: code path only, no pretrained weights file needed


def method_name(regime: str, key: str) -> str:
    return f"{regime}_{key}"


def method_key(name: str) -> str:
    """``lab_hdml_npair`` -> ``hdml_npair`` (any regime prefix removed)."""
    for r in REGIMES:
        if name.startswith(r + "_"):
            return name[len(r) + 1:]
    return name


@dataclass(frozen=True)
class Run:
    """One training run: a preset plus overrides, in its own folder ``runs/<stage>/<name>``."""
    stage: str
    method: str                      # table name, e.g. lab_hdml_npair_norecon
    preset: str
    seed: int
    lr: float
    alpha: float | None = None
    extra: tuple = ()                # further overrides (ablations, bn_stats, fractions, batch)
    setting: str = ""                # what ``extra`` selects, for the folder name and selection.csv

    @property
    def validation(self) -> bool:
        return self.stage != "final"

    def folder(self) -> str:
        tag = f"lr{self.lr:g}" + (f"_a{self.alpha:.4g}" if self.alpha is not None else "")
        if self.setting:
            tag += "_" + self.setting.replace("=", "-").replace(",", "-").replace(".", "p")
        return f"{self.method}__{tag}__seed{self.seed}"


@dataclass
class Settings:
    regime: str
    runs: Path                       # run folders: runs/study/<regime>[/steps<N>]
    base: list                       # overrides applied to every run
    steps: int                       # every run's budget (the presets', or --steps)
    lrs: tuple = (3e-4, 1e-3, 3e-3)
    pull_targets: tuple = PULL_TARGETS
    select_seeds: int = 3            # seeds of the alpha, bn_stats and fraction selections
    seeds_key: int = 5               # final seeds of N-pair, HDML(N-pair), triplet, HDML(triplet)
    seeds_rest: int = 3              # final seeds of the other methods
    hdc_fractions: tuple = ((1.0, 0.5, 0.2), (1.0, 1.0, 1.0))
    curve_evals: int = 5             # evaluations along the final runs of CURVE_KEYS
    fast: bool = False
    stages: tuple = STAGES           # stages this invocation may train (others: read only)
    defaults: dict = field(default_factory=dict)   # preset values: alpha, bn_stats, fractions, hdc batch

    def name(self, key: str) -> str:
        return method_name(self.regime, key)

    def eval_every(self) -> int:
        return max(1, self.steps // max(1, self.curve_evals))


def preset_defaults(regime: str) -> dict:
    """The preset values the plan needs (raises ConfigError naming a missing preset)."""
    from ..presets import get_preset

    hn, ht, hdc = (get_preset(method_name(regime, k)) for k in ("hdml_npair", "hdml_triplet", "hdc"))
    return {"alpha": {"hdml_npair": hn.hdml.alpha, "hdml_triplet": ht.hdml.alpha},
            "bn_stats": getattr(hn.hdml, "bn_stats", None),
            "fractions": tuple(float(f) for f in hdc.hdc.fractions),
            "hdc_batch": (hdc.data.batch_classes, hdc.data.images_per_class),
            "steps": hn.train.steps}


def make_settings(regime: str = "lab", runs_root: str | Path = "runs/study", steps: int = 0, fast: bool = False,
                  **kw) -> Settings:
    """The study's settings. ``steps`` > 0 overrides every preset's budget; ``fast``: 6 steps,
    tiny data, one seed, one lr, three pull targets (the tests)."""
    if regime not in REGIMES:
        raise ValueError(f"regime {regime!r}; expected one of {', '.join(REGIMES)}")
    defaults = preset_defaults(regime)
    if fast:
        opts = dict(lrs=(1e-3,), pull_targets=(1.0, 0.5, 0.1), select_seeds=1, seeds_key=2, seeds_rest=1,
                    curve_evals=2)
        opts.update(kw)
        return Settings(regime=regime, runs=Path(runs_root) / "fast" / regime, base=list(FAST), steps=6, fast=True,
                        defaults=defaults, **opts)
    base, root = [], Path(runs_root) / regime
    if steps > 0:
        base = [f"train.steps={steps}", f"train.ckpt_every={max(1, steps // 4)}"]
        root = root / f"steps{steps}"
    return Settings(regime=regime, runs=root, base=base, steps=steps or defaults["steps"], defaults=defaults, **kw)


@dataclass
class Choices:
    """What the finished selection runs chose so far (a method is absent until its grid is complete)."""
    lr: dict = field(default_factory=dict)          # key -> lr
    j_avg: dict = field(default_factory=dict)       # HDML key -> J_avg measured at its chosen lr
    alpha: dict = field(default_factory=dict)       # HDML key -> alpha
    bn_stats: str | None = None                     # HDML(N-pair) and its ablations
    fractions: tuple | None = None                  # HDC


def overrides(run: Run, s: Settings) -> list[str]:
    """The config overrides of ``run`` (on top of its preset)."""
    ov = list(s.base) + [f"train.seed={run.seed}", f"optim.lr={run.lr:g}", "train.progress=false",
                         f"train.out_dir={s.runs / run.stage / run.folder()}",
                         f"data.val_classes={VAL_CLASSES if run.validation else 0.0}"]
    curves = run.stage == "final" and method_key(run.method) in CURVE_KEYS
    ov.append(f"train.eval_every={s.eval_every() if curves else 0}")
    if run.alpha is not None:
        ov.append(f"hdml.alpha={run.alpha!r}")
    return ov + list(run.extra)


def eval_splits(run: Run) -> tuple[str, ...]:
    """Selection runs are scored on the validation classes only (the alpha sweep also shows the
    test classes, never used to choose); final runs on the test classes only."""
    if run.stage == "select_alpha":
        return ("val", "test")
    return ("val",) if run.validation else ("test",)


def hdc_batch_extra(s: Settings) -> tuple:
    bc, ipc = s.defaults["hdc_batch"]
    return ("data.sampler=m_per_class", f"data.batch_classes={bc}", f"data.images_per_class={ipc}")


def _preset_and_extra(key: str, s: Settings) -> tuple[str, tuple]:
    if key == HDC_BATCH:
        from ..presets import PRESETS

        if s.name(HDC_BATCH) in PRESETS:      # the regime's own preset (same batch as its HDC preset)
            return s.name(HDC_BATCH), ()
        return s.name("contrastive"), hdc_batch_extra(s)
    if key in ABLATIONS:
        return s.name("hdml_npair"), ABLATIONS[key]
    return s.name(key), ()


def fractions_setting(fr) -> str:
    return "fractions=" + ",".join(f"{f:g}" for f in fr)


# ---------------------------------------------------------------- the stages
def plan_select_lr(s: Settings) -> list[Run]:
    runs = []
    for key in SELECT_LR:
        preset, extra = _preset_and_extra(key, s)
        runs += [Run("select_lr", s.name(key), preset, 0, lr, None, extra) for lr in s.lrs]
    return runs


def lr_run(s: Settings, key: str, lr: float) -> Run:
    """The lr-selection run of ``key`` at ``lr`` (seed 0)."""
    return next(r for r in plan_select_lr(s) if r.method == s.name(key) and r.lr == lr)


def plan_select_alpha(s: Settings, ch: Choices) -> list[Run]:
    runs = []
    for key in HDML_BASE:
        if key in ch.lr and key in ch.j_avg:
            for a in alpha_grid(ch.j_avg[key], s.pull_targets):
                runs += [Run("select_alpha", s.name(key), s.name(key), seed, ch.lr[key], a)
                         for seed in range(s.select_seeds)]
    return runs


def pull_targets_of(s: Settings, ch: Choices, key: str) -> dict:
    """{alpha: its pull target p} of ``key``'s alpha grid."""
    return dict(zip(alpha_grid(ch.j_avg[key], s.pull_targets), s.pull_targets))


def plan_select_bn(s: Settings, ch: Choices) -> list[tuple[str, Run]]:
    """(setting, run) pairs; the preset's bn_stats value reuses the alpha-stage runs."""
    key = "hdml_npair"
    default = s.defaults.get("bn_stats")
    if default is None or key not in ch.alpha:
        return []
    out = []
    for v in BN_VALUES:
        for seed in range(s.select_seeds):
            if v == default:
                run = Run("select_alpha", s.name(key), s.name(key), seed, ch.lr[key], ch.alpha[key])
            else:
                run = Run("select_bn", s.name(key), s.name(key), seed, ch.lr[key], ch.alpha[key],
                          (f"hdml.bn_stats={v}",), f"bn_stats={v}")
            out.append((f"bn_stats={v}", run))
    return out


def plan_select_fractions(s: Settings, ch: Choices) -> list[tuple[str, Run]]:
    """(setting, run) pairs; the preset's fractions at seed 0 reuse the lr-selection run."""
    if "hdc" not in ch.lr:
        return []
    out = []
    for fr in s.hdc_fractions:
        fr = tuple(float(f) for f in fr)
        setting = fractions_setting(fr)
        for seed in range(s.select_seeds):
            if fr == s.defaults["fractions"] and seed == 0:
                run = lr_run(s, "hdc", ch.lr["hdc"])
            else:
                extra = () if fr == s.defaults["fractions"] else (f"hdc.fractions={list(fr)}",)
                run = Run("select_fractions", s.name("hdc"), s.name("hdc"), seed, ch.lr["hdc"], None, extra,
                          "" if not extra else setting)
            out.append((setting, run))
    return out


def final_extra(key: str, s: Settings, ch: Choices) -> tuple | None:
    """The chosen settings of ``key`` as overrides, or None while a choice is missing."""
    _, extra = _preset_and_extra(key, s)
    if key == "hdml_npair" or key in ABLATIONS:
        if s.defaults.get("bn_stats") is not None:
            if ch.bn_stats is None:
                return None
            extra = extra + (f"hdml.bn_stats={ch.bn_stats}",)
    if key == "hdc":
        if ch.fractions is None:
            return None
        extra = extra + (f"hdc.fractions={list(ch.fractions)}",)
    return extra


def plan_final(s: Settings, ch: Choices) -> list[Run]:
    """The final runs whose choices are known; HDML, its baselines and ablations first."""
    runs = []
    for key in KEYS:
        lr_key = "hdml_npair" if key in ABLATIONS else key
        alpha_key = lr_key if lr_key in HDML_BASE else None
        if lr_key not in ch.lr or (alpha_key and alpha_key not in ch.alpha):
            continue
        extra = final_extra(key, s, ch)
        if extra is None:
            continue
        preset, _ = _preset_and_extra(key, s)
        n = s.seeds_key if key in KEY_METHODS else s.seeds_rest
        runs += [Run("final", s.name(key), preset, seed, ch.lr[lr_key], ch.alpha.get(alpha_key) if alpha_key else None,
                     extra) for seed in range(n)]
    first = set(KEY_METHODS) | set(ABLATIONS)
    return sorted(runs, key=lambda r: (method_key(r.method) not in first, r.seed))


def dummy_choices(s: Settings) -> Choices:
    """Placeholder choices: the full plan's shape (run counts) before anything has run."""
    return Choices(lr={k: s.lrs[0] for k in SELECT_LR}, j_avg={k: 1.0 for k in HDML_BASE},
                   alpha={k: 0.0 for k in HDML_BASE},
                   bn_stats=s.defaults.get("bn_stats"), fractions=s.defaults["fractions"])


def plan_all(s: Settings, ch: Choices) -> list[Run]:
    """Every run that the choices so far determine, selection before final, without duplicates."""
    runs = plan_select_lr(s) + plan_select_alpha(s, ch)
    runs += [r for _, r in plan_select_bn(s, ch)] + [r for _, r in plan_select_fractions(s, ch)]
    runs += plan_final(s, ch)
    return list(dict.fromkeys(runs))


def plan_counts(s: Settings) -> dict:
    """{stage: number of runs} of the whole study (reused runs counted once, in their own stage)."""
    counts = {st: 0 for st in STAGES}
    for r in plan_all(s, dummy_choices(s)):
        counts[r.stage] += 1
    return counts


def copy_settings(s: Settings, **kw) -> Settings:
    out = copy.copy(s)
    for k, v in kw.items():
        setattr(out, k, v)
    return out
