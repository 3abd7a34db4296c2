"""The comparison engine's plan: which runs, with which settings, in which folders (no training here).

One engine serves ``python -m hdml_lite compare`` (any presets, any data set) and the lab study
(``python -m hdml_lite.study lab``: the glyphs, every loss, plus its extra stages). A comparison is
a tuple of ``Spec`` (one per method) and the ``Settings`` below; every method gets the same
selection procedure and seeds. Its selection budget (runs per replicate, ``selection_budgets``) is
the same for every method only with ``Settings.parity`` (the study's design): each method's lr
grid then gets as many seeds as it takes to reach the largest method's budget (HDML: lr grid +
alpha grid), and where that cannot be exact the budgets are printed beside the verdicts.

Two designs (``Settings.replicate``):

- ``replicate=True`` (the study's, ``make_settings``): a replicate is the whole pipeline. Final
  seed ``r`` is replicate ``r``: its own selection runs (seeds ``sel_seed(r, j)`` = 100 (r + 1) + j,
  never a final seed), its own choices from them (``Choices.reps[r]``), then its final run with
  those choices, scored on the test classes. A paired interval over replicates therefore holds the
  noise of the selection as well as the seeds' (Bouthillier et al., MLSys 2021), and
  ``choice_counts`` says how often each value was chosen.
- ``replicate=False`` (``compare``'s default, and the committed first study): one selection
  (seeds 0, 1, ...), its choices used by every final seed; intervals cover seed noise only.

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

In the replicate design every stage below runs once per replicate, with that replicate's seeds.

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
    replicate: bool = False          # whole-pipeline replicates (module docstring); False: select once
    parity: bool = False             # one selection budget: lr seeds raised per method (selection_budgets)

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
    rep: int | None = None                          # the replicate these choices belong to (None: select once)
    reps: dict = field(default_factory=dict)        # replicate design: r -> that replicate's Choices


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


# ---------------------------------------------------------------- seeds and budgets
def sel_seed(s: Settings, rep: int | None, j: int) -> int:
    """The training seed of the ``j``-th selection seed of replicate ``rep`` (None: one selection,
    seed j). Replicate r uses 100 (r + 1) + j: disjoint from every final seed (0 .. max_seeds - 1)
    and from every other replicate's."""
    if rep is None:
        return j
    if not 0 <= j < 100:
        raise ValueError(f"selection seed index {j}: expected 0..99 per replicate")
    return 100 * (rep + 1) + j


def _own_selection(s: Settings, key: str) -> bool:
    return not s.spec(key).lr_of and "lr" not in s.fixed.get(key, {})


def natural_budget(s: Settings, key: str, lr_seeds: int) -> int:
    """Selection runs of ``key`` per replicate with ``lr_seeds`` seeds per lr (reused runs counted once);
    0 for a method that takes another's choices (``Spec.lr_of``, ``Settings.fixed``)."""
    if not _own_selection(s, key):
        return 0
    sp, n = s.spec(key), len(s.lrs) * lr_seeds
    if sp.kind == "hdml" and "alpha" not in s.fixed.get(key, {}):
        n += len(s.pull_targets) * s.select_seeds
        if s.bn_key == key:
            n += (len(BN_VALUES) - 1) * s.select_seeds
    elif sp.kind == "hdc":
        start = tuple(float(f) for f in s.start.get("fractions", ()))
        for fr in s.hdc_fractions:
            reused = min(lr_seeds, s.select_seeds) if tuple(float(f) for f in fr) == start else 0
            n += s.select_seeds - reused
    return n


def target_budget(s: Settings) -> int:
    """The budget every method is raised to under ``parity``: the largest natural budget."""
    return max([natural_budget(s, k, s.lr_seeds) for k in s.keys()] + [0])


def lr_seeds_of(s: Settings, key: str) -> int:
    """Seeds per lr of ``key``'s lr selection: ``lr_seeds``; under ``parity`` the fewest seeds (at
    least ``lr_seeds``) whose budget reaches ``target_budget`` (a baseline's lr grid gets as many runs
    as HDML's lr x alpha grid)."""
    if not s.parity or not _own_selection(s, key):
        return s.lr_seeds
    want, n = target_budget(s), s.lr_seeds
    while natural_budget(s, key, n) < want:
        n += 1
    return n


def selection_budgets(s: Settings) -> dict:
    """{key: selection runs per replicate} of every method that selects its own settings."""
    return {k: natural_budget(s, k, lr_seeds_of(s, k)) for k in s.keys() if _own_selection(s, k)}


def claim_budgets(s: Settings, a: str, b: str) -> tuple[int, int]:
    """(A's, B's) selection runs per replicate: the budget of the method whose choices each uses."""
    bud = selection_budgets(s)
    return bud.get(lr_key(s, a), 0), bud.get(lr_key(s, b), 0)


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


def plan_select_lr(s: Settings, rep: int | None = None) -> list[Run]:
    """The lr-selection runs (of replicate ``rep``; None: the one selection)."""
    runs = []
    for sp in s.specs:
        if not _own_selection(s, sp.key):
            continue
        for lr in s.lrs:
            for j in range(lr_seeds_of(s, sp.key)):
                seed = sel_seed(s, rep, j)
                if sp.kind == "hdml":
                    runs.append(_hdml_run(s, "select_lr", sp.key, seed, lr, s.start["alpha"][sp.key],
                                          s.start.get("bn_stats")))
                elif sp.kind == "hdc":
                    runs.append(_hdc_run(s, "select_lr", sp.key, seed, lr, s.start["fractions"]))
                else:
                    runs.append(Run("select_lr", sp.key, sp.preset, seed, lr, None, tuple(sp.extra)))
    return runs


def lr_runs(s: Settings, key: str, lr: float, rep: int | None = None) -> list[Run]:
    """The lr-selection runs of ``key`` at ``lr`` (of replicate ``rep``)."""
    return [r for r in plan_select_lr(s, rep) if r.method == key and r.lr == lr]


def plan_select_alpha(s: Settings, ch: Choices) -> list[Run]:
    runs = []
    for key in s.keys("hdml"):
        if s.spec(key).lr_of or "alpha" in s.fixed.get(key, {}) or key not in ch.lr or key not in ch.j_avg:
            continue
        for a in alpha_grid(ch.j_avg[key], s.pull_targets):
            runs += [_hdml_run(s, "select_alpha", key, sel_seed(s, ch.rep, j), ch.lr[key], a, s.start.get("bn_stats"))
                     for j in range(s.select_seeds)]
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
        out += [(f"bn_stats={v}", _hdml_run(s, stage, key, sel_seed(s, ch.rep, j), ch.lr[key], ch.alpha[key], v))
                for j in range(s.select_seeds)]
    return out


def plan_select_fractions(s: Settings, ch: Choices) -> list[tuple[str, Run]]:
    """(setting, run) pairs per HDC method; the start fractions at the lr stage's seeds reuse its
    lr-selection run."""
    out = []
    for key in s.keys("hdc"):
        if key not in ch.lr:
            continue
        for fr in s.hdc_fractions:
            fr = tuple(float(f) for f in fr)
            for j in range(s.select_seeds):
                start = fr == tuple(float(f) for f in s.start["fractions"]) and j < lr_seeds_of(s, key)
                out.append((fractions_setting(fr), _hdc_run(s, "select_lr" if start else "select_fractions",
                                                            key, sel_seed(s, ch.rep, j), ch.lr[key], fr)))
    return out


def _final_runs(s: Settings, ch: Choices, key: str, seeds) -> list[Run] | None:
    """The final runs of ``key`` at ``seeds`` with the choices ``ch``, or None while a choice is missing."""
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
        return [_hdml_run(s, "final", key, seed, lr, ch.alpha[src], bn, setting, more) for seed in seeds]
    if sp.kind == "hdc":
        if key not in ch.fractions:
            return None
        return [_hdc_run(s, "final", key, seed, lr, ch.fractions[key]) for seed in seeds]
    return [Run("final", key, sp.preset, seed, lr, None, tuple(sp.extra)) for seed in seeds]


def final_runs_of(s: Settings, ch: Choices, key: str, n: int) -> list[Run] | None:
    """The ``n`` final runs of ``key`` with its chosen settings, or None while a choice is missing.
    Replicate design: final seed r with replicate r's choices, for the replicates chosen so far."""
    if s.replicate and ch.rep is None:      # the top-level choices: each replicate's own
        runs = [x for r in range(n) if r in ch.reps for x in (_final_runs(s, ch.reps[r], key, [r]) or [])]
        return runs or None
    if ch.rep is not None:         # one replicate's choices: its own final seed
        return _final_runs(s, ch, key, [ch.rep]) if n >= 1 else []
    return _final_runs(s, ch, key, range(n))


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


def replicates_needed(s: Settings, ch: Choices) -> dict:
    """Replicate design: {key: replicates whose selection it runs} (its own final seeds, or those of
    every method that takes its choices)."""
    need = {k: 0 for k in s.keys()}
    for k in s.keys():
        src = lr_key(s, k)
        need[src] = max(need[src], n_final(s, ch, k))
    return need


def _dummy_one(s: Settings, rep: int | None) -> Choices:
    own = [sp.key for sp in s.specs if not sp.lr_of]
    return Choices(lr={k: s.lrs[0] for k in own}, j_avg={k: 1.0 for k in s.keys("hdml")},
                   alpha={k: 0.0 for k in s.keys("hdml")}, bn_stats=s.start.get("bn_stats") if s.bn_key else None,
                   fractions={k: tuple(s.start["fractions"]) for k in s.keys("hdc")},
                   beta={sp.key: 1.0 for sp in s.specs if sp.beta_match}, rep=rep)


def dummy_choices(s: Settings) -> Choices:
    """Placeholder choices: the full plan's shape (run counts) before anything has run."""
    ch = _dummy_one(s, None)
    if s.replicate:
        ch.reps = {r: _dummy_one(s, r) for r in range(max(s.seeds_key, s.seeds_rest))}
    return ch


def _selection_of(s: Settings, ch: Choices) -> list[Run]:
    runs = plan_select_lr(s, ch.rep) + plan_select_alpha(s, ch)
    return runs + [r for _, r in plan_select_bn(s, ch)] + [r for _, r in plan_select_fractions(s, ch)]


def plan_all(s: Settings, ch: Choices) -> list[Run]:
    """Every run that the choices so far determine, selection before final, without duplicates."""
    if not s.replicate:
        return list(dict.fromkeys(_selection_of(s, ch) + plan_final(s, ch)))
    need = replicates_needed(s, ch)
    runs = []
    for r in range(max(need.values(), default=0)):
        sub = ch.reps.get(r) or Choices(rep=r)
        runs += [x for x in _selection_of(s, sub) if r < need[x.method]]
    return list(dict.fromkeys(runs + plan_final(s, ch)))


def plan_counts(s: Settings) -> dict:
    """{stage: number of runs} of the whole plan at ``seeds_key`` (reused runs counted once)."""
    counts = {st: 0 for st in STAGES}
    for r in plan_all(s, dummy_choices(s)):
        counts[r.stage] += 1
    return counts


def plan_counts_at(s: Settings, seeds: int) -> dict:
    """``plan_counts`` with every headline method at ``seeds`` final seeds (replicates): the plan's
    size when the add-a-seed rule runs to ``seeds`` (e.g. ``max_seeds``)."""
    ch = dummy_choices(s)
    ch.seeds = {sp.key: seeds for sp in s.specs if sp.headline}
    if s.replicate:
        ch.reps = {r: _dummy_one(s, r) for r in range(max(seeds, s.seeds_key, s.seeds_rest))}
    counts = {st: 0 for st in STAGES}
    for r in plan_all(s, ch):
        counts[r.stage] += 1
    return counts


_LEGACY = {"replicate": False, "parity": False}     # fields added after the first study: left out of its hash


def _choice_record(ch: Choices) -> dict:
    one = lambda c: {"lr": c.lr, "j_avg": c.j_avg, "alpha": c.alpha, "bn_stats": c.bn_stats,  # noqa: E731
                     "fractions": {k: list(v) for k, v in c.fractions.items()}, "beta": c.beta}
    rec = {**one(ch), "seeds": ch.seeds}
    if ch.reps:
        rec["reps"] = {str(r): one(c) for r, c in sorted(ch.reps.items())}
    return rec


def plan_fingerprint(s: Settings, ch: Choices | None = None) -> str:
    """sha256 (16 hex digits) of every run of the plan: its stage, name, preset and full overrides
    (the runs folder left out, so the hash does not depend on where runs are kept).

    ``ch``: the choices the runs were made with (``engine.choices``): the hash then covers the runs
    as they ran and the choices themselves (every replicate's), so a changed lr, alpha, bn_stats,
    fraction, beta or seed count changes it; study.json records this one. Without ``ch``: the
    design's fingerprint, with placeholder choices for the stages that wait on results (what
    ``--plan --fingerprint`` prints before anything has run). Every setting a stage varies, and every
    start value, is an explicit override, so a change to any of them, to the grids or to the seeds
    changes either."""
    root = str(s.runs)
    items = [(r.stage, r.folder(), r.preset, [o.replace(root, "<runs>") for o in overrides(r, s)])
             for r in plan_all(s, ch if ch is not None else dummy_choices(s))]
    head = {k: v for k, v in asdict(s).items() if k not in ("runs", "stages", "fast", "specs")
            and not (k in _LEGACY and v == _LEGACY[k])}
    blob = {"settings": head, "specs": [asdict(sp) for sp in s.specs], "runs": items}
    if ch is not None:
        blob["choices"] = _choice_record(ch)
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def selections(s: Settings, ch: Choices) -> list[Choices]:
    """The choices of every selection: each replicate's (replicate design), else ``ch`` itself."""
    return [ch.reps[r] for r in sorted(ch.reps)] if s.replicate else [ch]


def budget_rows(s: Settings) -> list[dict]:
    """budgets.csv: each selecting method's selection runs per replicate and its seeds per lr."""
    return [{"method": k, "selection_runs": b, "lr_seeds": lr_seeds_of(s, k)} for k, b in selection_budgets(s).items()]


def choice_record(ch: Choices) -> dict:
    """The choices as study.json records them (``choices_from_record`` reads them back)."""
    return json.loads(json.dumps(_choice_record(ch), default=str))


def choices_from_record(rec: dict) -> Choices:
    """study.json's ``choices_record`` -> Choices (every replicate's): to recompute the fingerprint
    of the runs as they ran without the run folders."""
    def one(d: dict, rep: int | None) -> Choices:
        return Choices(lr=dict(d.get("lr", {})), j_avg=dict(d.get("j_avg", {})), alpha=dict(d.get("alpha", {})),
                       bn_stats=d.get("bn_stats"), fractions={k: tuple(v) for k, v in d.get("fractions", {}).items()},
                       beta=dict(d.get("beta", {})), rep=rep)
    ch = one(rec, None)
    ch.seeds = dict(rec.get("seeds", {}))
    ch.reps = {int(r): one(d, int(r)) for r, d in rec.get("reps", {}).items()}
    return ch
