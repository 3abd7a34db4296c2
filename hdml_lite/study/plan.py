"""The comparison engine's plan: which runs, with which settings, in which folders (no training here).

One engine serves ``python -m hdml_lite compare`` (any presets, any data set) and the lab study
(``python -m hdml_lite.study lab``: the glyphs, every loss, plus its extra stages). A comparison is
a tuple of ``Spec`` (one per method) and the ``Settings`` below; every method gets the same
selection procedure, budget and seeds.

Stages (every run with the same step budget):

1. ``select_lr``: every method with its own lr (``Spec.lr_of`` empty), lr in ``Settings.lrs``,
   ``lr_seeds`` seeds, on the train classes minus a class-disjoint validation split
   (``data.val_classes``), scored on the validation classes. HDML runs at its start alpha,
   HDC at its start fractions (``Settings.start``: the comparison's own values, never read
   back from presets that a study rewrites).
2. ``select_alpha``: each HDML method at its chosen lr; alpha = -J_avg ln(p) for p in
   ``pull_targets``, J_avg measured in its lr-selection run (median over the second half),
   ``select_seeds`` seeds each.
3. ``select_bn`` (the study only, ``Settings.bn_key``): ``hdml.bn_stats`` official | real at the
   chosen alpha; the start value reuses the alpha-stage runs.
4. ``select_fractions``: each HDC method's fractions (``hdc_fractions``) at its chosen lr,
   ``select_seeds`` seeds (the start value with seed 0 is the lr-selection run).
5. ``final``: every method with its chosen values, trained on all train classes, the final model
   scored on the test classes; ``seeds_key`` paired seeds for the headline methods, raised one at
   a time up to ``max_seeds`` while a headline verdict is undecided (``Choices.seeds``),
   ``seeds_key`` for methods marked ``Spec.key_seeds`` (the study's weight-matched arm and the
   ablation it is compared with), and ``seeds_rest`` for the others.

``Settings.fixed`` gives some methods' lr (and alpha) instead of selecting them: the hypotheses'
longer runs (H3) and labels-kept arm (H4) take the study's own choices, made the same way for
every method (study/hypotheses.py).

Choice rule (engine.choose): the best mean validation MAP@R over the seeds (``SELECT_METRIC``:
R@1 saturates near 94% on the lab's validation classes; MAP@R, recommended by Musgrave et al.,
ECCV 2020, does not), ties broken by R@1, then the smaller value. Every setting a stage varies
(lr, alpha, bn_stats, fractions) is an explicit override and part of the run's folder name.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .stats import PULL_TARGETS, alpha_grid

STAGES = ("select_lr", "select_alpha", "select_bn", "select_fractions", "final")
BN_VALUES = ("official", "real")
SELECT_METRIC = "map_r"           # validation metric of every choice (see the module docstring)
TIE_METRIC = "r1"


@dataclass(frozen=True)
class Spec:
    """One method of a comparison."""
    key: str                         # table name (the study: lab_hdml_npair; compare: the preset name)
    preset: str
    extra: tuple = ()                # overrides on top of the preset (ablations, HDC's batch, ...)
    kind: str = "plain"              # "plain" | "hdml" | "hdc": which stages select its settings
    lr_of: str = ""                  # key whose chosen lr (alpha, bn_stats) it uses; "" = its own selection
    headline: bool = True            # seeds_key .. max_seeds final seeds (else seeds_rest)
    curves: bool = False             # evaluated along its final runs (learning curves)
    beta_match: str = ""             # key of the full HDML whose weight_syn this run's beta matches
    key_seeds: bool = False          # not headline, yet seeds_key final seeds (not raised), not seeds_rest


@dataclass(frozen=True)
class Run:
    """One training run: a preset plus overrides, in its own folder ``<runs>/<stage>/<folder>``."""
    stage: str
    method: str                      # Spec.key
    preset: str
    seed: int
    lr: float
    alpha: float | None = None
    extra: tuple = ()                # further overrides (ablations, bn_stats, fractions, batch)
    setting: str = ""                # what the stage varies besides lr/alpha, for folder and selection.csv

    @property
    def validation(self) -> bool:
        return self.stage != "final"

    def folder(self) -> str:
        tag = f"lr{self.lr:g}" + (f"_a{self.alpha:.4g}" if self.alpha is not None else "")
        if self.setting:
            tag += "_" + self.setting.replace("=", "-").replace(",", "-").replace(".", "p").replace(";", "_")
        return f"{self.method}__{tag}__seed{self.seed}"


@dataclass
class Settings:
    specs: tuple                     # Spec per method, in table order
    runs: Path                       # run folders
    base: list                       # overrides applied to every run (data, steps, batch rule, ...)
    steps: int                       # every run's budget
    regime: str = ""                 # the study's regime ("lab" | "scratch"); "" for compare
    start: dict = field(default_factory=dict)   # {"alpha": {key: a}, "bn_stats": v, "fractions": (..)}
    lrs: tuple = (3e-4, 1e-3, 3e-3)
    pull_targets: tuple = PULL_TARGETS
    lr_seeds: int = 1                # seeds of the lr selection
    select_seeds: int = 3            # seeds of the alpha, bn_stats and fraction selections
    seeds_key: int = 5               # final seeds of the headline methods ...
    max_seeds: int = 10              # ... raised up to this while a headline verdict is undecided
    seeds_rest: int = 3              # final seeds of the other methods
    hdc_fractions: tuple = ((1.0, 0.5, 0.2), (1.0, 1.0, 1.0))
    bn_key: str = ""                 # the HDML method whose bn_stats is selected ("" = none)
    val_classes: float = 0.2
    curve_evals: int = 5             # evaluations along the final runs of curve specs
    claims: tuple = ()               # (claim text, key A, key B): "A > B"; headline ones first
    headline_claims: int = 0         # how many of ``claims`` drive the seed count
    margin: float = 0.01             # equivalence margin (fraction: 0.01 = 1 point of R@1/NMI)
    fast: bool = False
    stages: tuple = STAGES           # stages this invocation may train (others: read only)
    fixed: dict = field(default_factory=dict)   # {key: {"lr": x, "alpha": a}}: given, not selected

    def spec(self, key: str) -> Spec:
        return next(sp for sp in self.specs if sp.key == key)

    def keys(self, kind: str | None = None) -> list[str]:
        return [sp.key for sp in self.specs if kind is None or sp.kind == kind]

    def eval_every(self) -> int:
        return max(1, self.steps // max(1, self.curve_evals))


@dataclass
class Choices:
    """What the finished runs chose so far (a method is absent until its grid is complete)."""
    lr: dict = field(default_factory=dict)          # key -> lr
    j_avg: dict = field(default_factory=dict)       # HDML key -> J_avg measured at its chosen lr
    alpha: dict = field(default_factory=dict)       # HDML key -> alpha
    bn_stats: str | None = None                     # Settings.bn_key's choice
    fractions: dict = field(default_factory=dict)   # HDC key -> fractions
    seeds: dict = field(default_factory=dict)       # headline key -> final seeds needed so far
    beta: dict = field(default_factory=dict)        # weight-matched key -> beta


def fractions_setting(fr) -> str:
    return "fractions=" + ",".join(f"{f:g}" for f in fr)


def lr_key(s: Settings, key: str) -> str:
    """The key whose lr, alpha and bn_stats ``key`` uses."""
    return s.spec(key).lr_of or key


def _fixed(s: Settings, key: str, bn: str | None) -> tuple[tuple, str]:
    """(explicit overrides, folder setting) of an HDML run besides lr/alpha: its bn_stats."""
    extra, setting = tuple(s.spec(key).extra), ""
    if bn is not None:
        extra += (f"hdml.bn_stats={bn}",)
        setting = f"bn={bn}"
    return extra, setting


def overrides(run: Run, s: Settings) -> list[str]:
    """The config overrides of ``run`` (on top of its preset)."""
    ov = list(s.base) + [f"train.seed={run.seed}", f"optim.lr={run.lr:g}", "train.progress=false",
                         f"train.out_dir={s.runs / run.stage / run.folder()}",
                         f"data.val_classes={s.val_classes if run.validation else 0.0}"]
    curves = run.stage == "final" and s.spec(run.method).curves
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


# ---------------------------------------------------------------- the stages
def _hdml_run(s: Settings, stage: str, key: str, seed: int, lr: float, alpha: float, bn: str | None,
              setting_extra: str = "", more: tuple = ()) -> Run:
    extra, setting = _fixed(s, key, bn)
    setting = ";".join(x for x in (setting, setting_extra) if x)
    return Run(stage, key, s.spec(key).preset, seed, lr, alpha, extra + tuple(more), setting)


def _hdc_run(s: Settings, stage: str, key: str, seed: int, lr: float, fr) -> Run:
    fr = tuple(float(f) for f in fr)
    extra = tuple(s.spec(key).extra) + (f"hdc.fractions={list(fr)}",)
    return Run(stage, key, s.spec(key).preset, seed, lr, None, extra, fractions_setting(fr))


def plan_select_lr(s: Settings) -> list[Run]:
    runs = []
    for sp in s.specs:
        if sp.lr_of or "lr" in s.fixed.get(sp.key, {}):
            continue
        for lr in s.lrs:
            for seed in range(s.lr_seeds):
                if sp.kind == "hdml":
                    runs.append(_hdml_run(s, "select_lr", sp.key, seed, lr, s.start["alpha"][sp.key],
                                          s.start.get("bn_stats")))
                elif sp.kind == "hdc":
                    runs.append(_hdc_run(s, "select_lr", sp.key, seed, lr, s.start["fractions"]))
                else:
                    runs.append(Run("select_lr", sp.key, sp.preset, seed, lr, None, tuple(sp.extra)))
    return runs


def lr_runs(s: Settings, key: str, lr: float) -> list[Run]:
    """The lr-selection runs of ``key`` at ``lr``."""
    return [r for r in plan_select_lr(s) if r.method == key and r.lr == lr]


def plan_select_alpha(s: Settings, ch: Choices) -> list[Run]:
    runs = []
    for key in s.keys("hdml"):
        if s.spec(key).lr_of or "alpha" in s.fixed.get(key, {}) or key not in ch.lr or key not in ch.j_avg:
            continue
        for a in alpha_grid(ch.j_avg[key], s.pull_targets):
            runs += [_hdml_run(s, "select_alpha", key, seed, ch.lr[key], a, s.start.get("bn_stats"))
                     for seed in range(s.select_seeds)]
    return runs


def pull_targets_of(s: Settings, ch: Choices, key: str) -> dict:
    """{alpha: its pull target p} of ``key``'s alpha grid."""
    return dict(zip(alpha_grid(ch.j_avg[key], s.pull_targets), s.pull_targets))


def plan_select_bn(s: Settings, ch: Choices) -> list[tuple[str, Run]]:
    """(setting, run) pairs; the start value reuses the alpha-stage runs (the same run)."""
    key = s.bn_key
    if not key or key not in ch.alpha:
        return []
    out = []
    for v in BN_VALUES:
        stage = "select_alpha" if v == s.start.get("bn_stats") else "select_bn"
        out += [(f"bn_stats={v}", _hdml_run(s, stage, key, seed, ch.lr[key], ch.alpha[key], v))
                for seed in range(s.select_seeds)]
    return out


def plan_select_fractions(s: Settings, ch: Choices) -> list[tuple[str, Run]]:
    """(setting, run) pairs per HDC method; the start fractions at seed 0 reuse its lr-selection run."""
    out = []
    for key in s.keys("hdc"):
        if key not in ch.lr:
            continue
        for fr in s.hdc_fractions:
            fr = tuple(float(f) for f in fr)
            for seed in range(s.select_seeds):
                start = fr == tuple(float(f) for f in s.start["fractions"]) and seed < s.lr_seeds
                out.append((fractions_setting(fr), _hdc_run(s, "select_lr" if start else "select_fractions",
                                                            key, seed, ch.lr[key], fr)))
    return out


def final_runs_of(s: Settings, ch: Choices, key: str, n: int) -> list[Run] | None:
    """The ``n`` final runs of ``key`` with its chosen settings, or None while a choice is missing."""
    sp, src = s.spec(key), lr_key(s, key)
    if src not in ch.lr:
        return None
    lr = ch.lr[src]
    if s.spec(src).kind == "hdml":
        if src not in ch.alpha or (s.bn_key == src and ch.bn_stats is None):
            return None
        bn = ch.bn_stats if s.bn_key == src else s.start.get("bn_stats")
        setting, more = "", ()
        if sp.beta_match:
            if key not in ch.beta:
                return None
            setting, more = f"beta={ch.beta[key]:.4g}", (f"hdml.beta={ch.beta[key]!r}",)
        return [_hdml_run(s, "final", key, seed, lr, ch.alpha[src], bn, setting, more) for seed in range(n)]
    if sp.kind == "hdc":
        if key not in ch.fractions:
            return None
        return [_hdc_run(s, "final", key, seed, lr, ch.fractions[key]) for seed in range(n)]
    return [Run("final", key, sp.preset, seed, lr, None, tuple(sp.extra)) for seed in range(n)]


def n_final(s: Settings, ch: Choices, key: str) -> int:
    if s.spec(key).key_seeds:
        return s.seeds_key
    if not s.spec(key).headline:
        return s.seeds_rest
    return max(s.seeds_key, ch.seeds.get(key, s.seeds_key))


def plan_final(s: Settings, ch: Choices) -> list[Run]:
    """The final runs whose choices are known; headline methods first, seed by seed."""
    runs = []
    for sp in s.specs:
        got = final_runs_of(s, ch, sp.key, n_final(s, ch, sp.key))
        runs += got or []
    return sorted(runs, key=lambda r: (not s.spec(r.method).headline, r.seed))


def dummy_choices(s: Settings) -> Choices:
    """Placeholder choices: the full plan's shape (run counts) before anything has run."""
    own = [sp.key for sp in s.specs if not sp.lr_of]
    return Choices(lr={k: s.lrs[0] for k in own}, j_avg={k: 1.0 for k in s.keys("hdml")},
                   alpha={k: 0.0 for k in s.keys("hdml")}, bn_stats=s.start.get("bn_stats") if s.bn_key else None,
                   fractions={k: tuple(s.start["fractions"]) for k in s.keys("hdc")},
                   beta={sp.key: 1.0 for sp in s.specs if sp.beta_match})


def plan_all(s: Settings, ch: Choices) -> list[Run]:
    """Every run that the choices so far determine, selection before final, without duplicates."""
    runs = plan_select_lr(s) + plan_select_alpha(s, ch)
    runs += [r for _, r in plan_select_bn(s, ch)] + [r for _, r in plan_select_fractions(s, ch)]
    runs += plan_final(s, ch)
    return list(dict.fromkeys(runs))


def plan_counts(s: Settings) -> dict:
    """{stage: number of runs} of the whole plan at ``seeds_key`` (reused runs counted once)."""
    counts = {st: 0 for st in STAGES}
    for r in plan_all(s, dummy_choices(s)):
        counts[r.stage] += 1
    return counts


def plan_fingerprint(s: Settings) -> str:
    """sha256 (16 hex digits) of every run of the plan: its stage, name, preset and full overrides
    (placeholder choices for the stages that wait on results; the runs folder left out, so the
    hash does not depend on where runs are kept). Every setting a stage varies, and every start
    value, is an explicit override, so a change to any of them, to the grids or to the seeds
    changes it."""
    root = str(s.runs)
    items = [(r.stage, r.folder(), r.preset, [o.replace(root, "<runs>") for o in overrides(r, s)])
             for r in plan_all(s, dummy_choices(s))]
    head = {k: v for k, v in asdict(s).items() if k not in ("runs", "stages", "fast", "specs")}
    blob = json.dumps({"settings": head, "specs": [asdict(sp) for sp in s.specs], "runs": items},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
