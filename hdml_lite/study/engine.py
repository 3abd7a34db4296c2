"""The comparison engine's execution and choices: train the plan's runs (resumable, in parallel
processes), read them back, and make every stage's choice by one rule.

Shared by ``python -m hdml_lite compare`` (study/compare.py) and the lab study (study/lab.py).
A run whose ``metrics.json`` exists is skipped, an interrupted one resumes from its checkpoint,
so rerunning a command continues it. Choice rule (``choose``): the best mean validation MAP@R
over the seeds; ties: R@1, then the smaller value. The test classes are never used to choose.
"""
from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

from .plan import (SELECT_METRIC, STAGES, TIE_METRIC, Choices, Run, Settings, claim_budgets, eval_splits,
                   final_runs_of, fractions_setting, lr_runs, overrides, plan_all, plan_final, plan_select_alpha,
                   plan_select_bn, plan_select_fractions, plan_select_lr, pull_targets_of)
from .sequential import verdict_row, with_holm
from .stats import second_half_median

FAILED = "failed.json"     # a run stopped by a non-finite loss: scored 0 in selection, left out of tables
METRIC_KEYS = ("r1", "r2", "r4", "r8", "map_r", "nmi", "f1")


# ---------------------------------------------------------------- execution
_EVAL_CACHE: dict = {}


def _eval_sets(cfg, splits) -> dict:
    """The evaluation sets of ``splits`` (METHOD §4), cached per process."""
    from ..data import config_channels, load_dataset
    from ..evaluation import materialise

    in_ch = config_channels(cfg)
    d = cfg.data
    out = {}
    for split in splits:
        key = (split, d.dataset, d.root, d.image_size, d.resize, d.transforms, d.val_classes, d.max_classes,
               d.max_per_class, d.channels, in_ch, d.split_file)
        if key not in _EVAL_CACHE:
            _EVAL_CACHE[key] = materialise(load_dataset(d, split, in_channels=in_ch, train_transform=False))
        out[split] = _EVAL_CACHE[key]
    return out


def run_one(preset: str, ovr: list[str], splits=("test",)) -> str:
    """Train one run unless its metrics.json exists; returns its folder. Records the seconds spent
    in intermediate evaluations (``eval_s.json``) so that training time can exclude them."""
    from ..config import apply_overrides
    from ..data.report import resolve_data
    from ..presets import get_preset
    from ..training import trainer

    cfg = apply_overrides(get_preset(preset), ovr)
    out = Path(cfg.train.out_dir)
    if (out / "metrics.json").is_file():
        return str(out)
    eval_s = [0.0]
    evaluate = trainer.evaluate

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return evaluate(*a, **k)
        finally:
            eval_s[0] += time.perf_counter() - t0

    trainer.evaluate = timed
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    try:   # the run's own report (pre-flight, threads, mechanism) goes to its folder, not the comparison's screen
        with open(out / "train.log", "a") as log, contextlib.redirect_stdout(log):
            res = trainer.train(cfg, eval_sets=_eval_sets(resolve_data(cfg)[0], splits))
    finally:
        trainer.evaluate = evaluate
    final_eval = sum(1 for e in res.history["eval"] if e["step"] == cfg.train.steps)
    n_evals = max(1, len({(e["step"], e["split"]) for e in res.history["eval"]}))
    # the final evaluation runs after the timed loop: subtract only the intermediate ones
    inter = eval_s[0] * (n_evals - final_eval) / n_evals
    (out / "eval_s.json").write_text(json.dumps({"eval_s": eval_s[0], "intermediate_eval_s": inter,
                                                 "cpu_s": time.process_time() - cpu0,
                                                 "wall_s": time.perf_counter() - wall0}))
    return str(out)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _job(args):
    from ..training.method import NonFiniteLossError

    t0 = time.perf_counter()
    try:
        path = run_one(*args)
    except NonFiniteLossError as exc:    # e.g. too high an lr: recorded, the comparison goes on
        path = next(o.split("=", 1)[1] for o in args[1] if o.startswith("train.out_dir="))
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / FAILED).write_text(json.dumps({"error": str(exc)}))
    return path, time.perf_counter() - t0


def run_dir(run: Run, s: Settings) -> Path:
    return s.runs / run.stage / run.folder()


def is_done(run: Run, s: Settings) -> bool:
    d = run_dir(run, s)
    return (d / "metrics.json").is_file() or (d / FAILED).is_file()


def is_failed(run: Run, s: Settings) -> bool:
    d = run_dir(run, s)
    return (d / FAILED).is_file() and not (d / "metrics.json").is_file()


def execute(runs: list[Run], s: Settings, jobs: int = 2, log=print, bar=None) -> dict:
    """Train the unfinished ``runs`` in ``jobs`` processes (0: in this process).
    Returns {stage: wall seconds of its runs trained here}. ``bar``: a tqdm bar advanced per run."""
    todo = [r for r in runs if not is_done(r, s)]
    log(f"{len(runs) - len(todo)} of {len(runs)} runs already done; {len(todo)} to go")
    per_stage: dict = {}
    if not todo:
        return per_stage
    args = [(r.preset, overrides(r, s), eval_splits(r)) for r in todo]
    stage_of = {str(run_dir(r, s)): r.stage for r in todo}
    t0 = time.perf_counter()
    if jobs <= 0:
        results = (_job(a) for a in args)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"          # inherited by the spawned workers
        os.environ["MKL_NUM_THREADS"] = "1"
        pool = mp.get_context("spawn").Pool(jobs, initializer=_init_worker)
        results = pool.imap_unordered(_job, args)
    try:
        for i, (path, sec) in enumerate(results, 1):
            st = stage_of.get(str(Path(path)), "?")
            per_stage[st] = per_stage.get(st, 0.0) + sec
            if bar is not None:
                bar.update(1)
            log(f"[{i}/{len(todo)}] {st}/{Path(path).name} done in {sec:.0f} s "
                f"(elapsed {time.perf_counter() - t0:.0f} s)")
    except BaseException:
        if jobs > 0:
            pool.terminate()   # an error, Ctrl-C or SIGTERM: no worker trains on (its run resumes next time)
            pool.join()
        raise
    if jobs > 0:
        pool.close()
        pool.join()
    return per_stage


# ---------------------------------------------------------------- reading results
_READ_CACHE: dict = {}


def read_run(path: Path) -> dict:
    """metrics.json + history.json (+ eval_s.json) of a finished run (cached by path)."""
    path = Path(path)
    key = str(path)
    if key not in _READ_CACHE and not (path / "metrics.json").is_file() and (path / FAILED).is_file():
        zero = {k: 0.0 for k in METRIC_KEYS}
        hist = path / "history.json"
        return {"failed": True, "val": zero, "test": None, "train_s": 0.0, "intermediate_eval_s": 0.0,
                "timing": {}, "history": json.loads(hist.read_text()) if hist.is_file() else {"train": [], "eval": []}}
    if key not in _READ_CACHE:
        m = json.loads((path / "metrics.json").read_text())
        m["history"] = json.loads((path / "history.json").read_text())
        ev = path / "eval_s.json"
        m["timing"] = json.loads(ev.read_text()) if ev.is_file() else {}
        m["intermediate_eval_s"] = m["timing"].get("intermediate_eval_s", 0.0)
        _READ_CACHE[key] = m
    return _READ_CACHE[key]


def val_row(stage: str, run: Run, s: Settings, setting: str = "") -> dict:
    val = read_run(run_dir(run, s))["val"]
    return {"stage": stage, "method": run.method, "lr": run.lr, "alpha": run.alpha, "setting": setting,
            "seed": run.seed, "val_r1": val["r1"], "val_nmi": val["nmi"], "val_f1": val["f1"],
            "val_map_r": val["map_r"], "chosen": 0}


def _groups(rows: list[dict], key: str) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    return groups


def _mean(rows: list[dict], metric: str) -> float:
    return sum(r[f"val_{metric}"] for r in rows) / len(rows)


def choose(rows: list[dict], key: str):
    """The value of ``key`` with the best mean validation MAP@R over its rows (seeds); ties: mean
    R@1, then the smaller value (strings: the first listed)."""
    groups = _groups(rows, key)
    order = list(groups)

    def score(v):
        tie = -v if isinstance(v, (int, float)) else -order.index(v)
        return round(_mean(groups[v], SELECT_METRIC), 6), round(_mean(groups[v], TIE_METRIC), 6), tie

    return max(order, key=score)


def _mark(rows: list[dict], key: str):
    value = choose(rows, key)
    for r in rows:
        r["chosen"] = int(r[key] == value)
    return value


def _complete(runs: list[Run], s: Settings) -> bool:
    return bool(runs) and all(is_done(r, s) for r in runs)


def history_median(run: Run, s: Settings, name: str) -> float:
    """Median of a logged per-step value over the second half of ``run``."""
    return second_half_median(r.get(name) for r in read_run(run_dir(run, s))["history"]["train"])


def choices(s: Settings) -> tuple[Choices, list[dict]]:
    """(choices so far, selection.csv rows) from the finished runs. A method is chosen for only once
    its whole grid has finished. Replicate design (``Settings.replicate``): every replicate's choices
    from its own selection runs (``ch.reps[r]``; rows carry ``replicate``); the top-level fields are
    replicate 0's (what one line can show), ``choice_counts`` tells how often each value won."""
    if not s.replicate:
        ch, rows = _choices_one(s, None)
        _seed_choices(s, ch)
        return ch, rows
    ch, rows = Choices(), []
    for r in range(max(s.max_seeds, s.seeds_key, s.seeds_rest)):
        sub, rr = _choices_one(s, r)
        ch.reps[r] = sub
        rows += [dict(x, replicate=r) for x in rr]
    first = ch.reps[0]
    ch.lr, ch.j_avg, ch.alpha, ch.bn_stats = dict(first.lr), dict(first.j_avg), dict(first.alpha), first.bn_stats
    ch.fractions, ch.beta = dict(first.fractions), dict(first.beta)
    _seed_choices(s, ch)
    return ch, rows


def _choices_one(s: Settings, rep: int | None) -> tuple[Choices, list[dict]]:
    """One selection's choices and rows: replicate ``rep``'s, or (None) the one selection."""
    ch, rows = Choices(rep=rep), []
    for key, given in s.fixed.items():          # taken from elsewhere (e.g. the study), not selected here
        if "lr" in given:
            ch.lr[key] = given["lr"]
        if "alpha" in given:
            ch.alpha[key] = given["alpha"]
    sel = plan_select_lr(s, rep)
    for sp in s.specs:
        mine = [r for r in sel if r.method == sp.key]
        if mine and _complete(mine, s):
            rr = [val_row("select_lr", r, s) for r in mine]
            ch.lr[sp.key] = _mark(rr, "lr")
            rows += rr
            if sp.kind == "hdml":
                j = [history_median(r, s, "j_avg") for r in lr_runs(s, sp.key, ch.lr[sp.key], rep)]
                j = [x for x in j if x > 0 and math.isfinite(x)]
                if j:                     # no usable J_avg (a diverged run): no alpha grid
                    ch.j_avg[sp.key] = sorted(j)[len(j) // 2]
    alpha_runs = plan_select_alpha(s, ch)
    for key in s.keys("hdml"):
        mine = [r for r in alpha_runs if r.method == key]
        if mine and _complete(mine, s):
            targets = pull_targets_of(s, ch, key)
            rr = [dict(val_row("select_alpha", r, s), setting=f"pull_target={targets[r.alpha]:g}") for r in mine]
            ch.alpha[key] = _mark(rr, "alpha")
            rows += rr
    bn = plan_select_bn(s, ch)
    if bn and _complete([r for _, r in bn], s):
        rr = [dict(val_row("select_bn", r, s, setting), stage="select_bn") for setting, r in bn]
        ch.bn_stats = _mark(rr, "setting").split("=", 1)[1]
        rows += rr
    fr = plan_select_fractions(s, ch)
    for key in s.keys("hdc"):
        mine = [(st, r) for st, r in fr if r.method == key]
        if mine and _complete([r for _, r in mine], s):
            rr = [dict(val_row("select_fractions", r, s, setting), stage="select_fractions") for setting, r in mine]
            chosen = _mark(rr, "setting")
            ch.fractions[key] = next(tuple(float(x) for x in f) for f in s.hdc_fractions
                                     if fractions_setting(tuple(float(x) for x in f)) == chosen)
            rows += rr
    _beta_choices(s, ch)
    return ch, rows


def _beta_choices(s: Settings, ch: Choices) -> None:
    """Weight-matched arms: beta' = -J_gen' ln(1 - w), with w the full HDML's mean weight_syn over the
    second half of its seed-0 final run and J_gen' the second-half median J_gen of the arm's base
    (the same method at the preset's beta, seed 0): the synthetic weight 1 - exp(-beta' / J_gen')
    then equals the full method's."""
    for sp in s.specs:
        if not sp.beta_match:
            continue
        full = (final_runs_of_done(s, ch, sp.beta_match) or [None])[0]
        base = (final_runs_of_done(s, ch, _unmatched(s, sp.key)) or [None])[0]
        if full is None or base is None:
            continue
        w = history_median(full, s, "weight_syn")
        j = history_median(base, s, "j_gen_avg")
        if 0 < w < 1 and j > 0 and math.isfinite(j):
            ch.beta[sp.key] = -j * math.log(1.0 - w)


def _unmatched(s: Settings, key: str) -> str:
    """The spec that the weight-matched ``key`` modifies: same preset and extra, no beta match."""
    sp = s.spec(key)
    return next((o.key for o in s.specs if o.preset == sp.preset and o.extra == sp.extra and not o.beta_match), "")


def final_runs_of_done(s: Settings, ch: Choices, key: str) -> list[Run] | None:
    if not key:
        return None
    runs = final_runs_of(s, ch, key, 1)
    return [r for r in runs if is_done(r, s) and not is_failed(r, s)] if runs else None


def _seed_choices(s: Settings, ch: Choices) -> None:
    """Headline claims: one more paired seed at a time, up to ``max_seeds``, while the verdict on R@1
    or NMI is undecided (a sequential design: every look at the boundary of sequential.py, the first
    decision of each metric kept; stated with the results)."""
    for _, a, b in s.claims[:s.headline_claims]:
        n = s.seeds_key
        while n < s.max_seeds:
            ch.seeds[a] = ch.seeds[b] = n
            runs = [r for r in plan_final(s, ch) if r.method in (a, b) and r.seed < n]
            if len(runs) < 2 * n or not all(is_done(r, s) for r in runs):
                break
            table = table_rows([r for r in runs if not is_failed(r, s)], s)
            design = (s.seeds_key, s.max_seeds)          # the boundary of sequential.py at every look
            if all(claim_verdict(table, a, b, m, s.margin, design)["verdict"] != "undecided" for m in ("r1", "nmi")):
                break
            n += 1
        ch.seeds[a] = max(ch.seeds.get(a, n), n)
        ch.seeds[b] = max(ch.seeds.get(b, n), n)


# ---------------------------------------------------------------- tables and verdicts
def table_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        m = read_run(run_dir(r, s))
        rows.append({"method": r.method, "seed": r.seed, **{k: m["test"][k] for k in METRIC_KEYS},
                     "train_s": m["train_s"] - m["intermediate_eval_s"]})
    return rows


def paired(table: list[dict], a: str, b: str, metric: str) -> tuple[list[int], list[float], list[float]]:
    """(seeds both methods have, A's scores, B's scores) from table rows."""
    va = {r["seed"]: r[metric] for r in table if r["method"] == a and metric in r}
    vb = {r["seed"]: r[metric] for r in table if r["method"] == b and metric in r}
    seeds = sorted(set(va) & set(vb))
    return seeds, [va[k] for k in seeds], [vb[k] for k in seeds]


def claim_verdict(table: list[dict], a: str, b: str, metric: str, margin: float, design=None) -> dict:
    """The verdict on "a > b" from the paired seeds of ``table``. design: (n0, n_max) of the add-a-seed
    rule (sequential.sequential_verdict: the boundary at every look); None: a fixed number of seeds
    (the plain 5% tests)."""
    seeds, xa, xb = paired(table, a, b, metric)
    n0, n_max = design or (len(seeds), len(seeds))
    return verdict_row(xa, xb, n0, n_max, margin) | {"seeds": seeds}


def verdict_rows(table: list[dict], s: Settings, metrics=("r1", "nmi")) -> list[dict]:
    """One row per claim and metric (verdicts.csv columns, plus ``seeds`` and ``diffs``). Families
    (Holm within each, ``sequential.with_holm``): the headline claims (``s.headline_claims``, the
    add-a-seed rule) and the others ("ablations", at a fixed number of seeds)."""
    out = []
    for i, (claim, a, b) in enumerate(s.claims):
        headline = i < s.headline_claims
        for metric in metrics:
            v = claim_verdict(table, a, b, metric, s.margin, (s.seeds_key, s.max_seeds) if headline else None)
            budget_a, budget_b = claim_budgets(s, a, b)        # selection runs per replicate, beside the verdict
            out.append({"claim": claim, "family": "headline" if headline else "ablations", "a": a, "b": b,
                        "metric": metric, **v, "budget_a": budget_a, "budget_b": budget_b})
    return with_holm(out)


def selection_noise(rows: list[dict]) -> list[dict]:
    """Per (stage, method): the chosen value's mean validation MAP@R, the runner-up's, the gap, and
    whether the gap is within seed noise: below 2 standard errors of a difference of two means,
    with the seed sd pooled over every selection group that has >= 2 seeds (one sd for all: the
    same data, budget and metric)."""
    groups: dict = {}
    for r in rows:       # replicate design: one group per replicate (its own selection)
        groups.setdefault((r["stage"], r["method"], r.get("replicate")), {}).setdefault(
            choice_value(r), []).append(r[f"val_{SELECT_METRIC}"])
    ss, dof = 0.0, 0
    for per in groups.values():
        for xs in per.values():
            if len(xs) >= 2:
                m = sum(xs) / len(xs)
                ss += sum((x - m) ** 2 for x in xs)
                dof += len(xs) - 1
    sd = math.sqrt(ss / dof) if dof else float("nan")
    out = []
    for (stage, method, rep), per in groups.items():
        means = sorted(((sum(v) / len(v), len(v), k) for k, v in per.items()), reverse=True)
        if len(means) < 2:
            continue
        (m1, n1, _), (m2, n2, _) = means[0], means[1]
        se = sd * math.sqrt(1 / n1 + 1 / n2) if math.isfinite(sd) else float("nan")
        out.append({"stage": stage, "method": method, "best": m1, "runner_up": m2, "gap": m1 - m2,
                    "noise_se": se, "within_noise": bool(math.isfinite(se) and m1 - m2 < 2 * se),
                    "seed_sd": sd, "n_values": len(means), "replicate": rep})
    return out


def choice_value(row: dict):
    """The value a selection.csv row's stage chooses: the setting (bn_stats, fractions), the pull
    target (alpha: the alpha itself depends on each replicate's J_avg), or the lr."""
    if row["stage"] in ("select_bn", "select_fractions"):
        return row.get("setting")
    if row["stage"] == "select_alpha":
        return row.get("setting") or row.get("alpha")
    return row.get("lr")


def choice_counts(rows: list[dict]) -> list[dict]:
    """How often each value was chosen across replicates: per (stage, method, value), the
    replicates that chose it, of those that completed the stage (choice_counts.csv)."""
    per: dict = {}
    for r in rows:
        key = (r["stage"], r["method"])
        reps, chosen = per.setdefault(key, ({}, {}))
        v = choice_value(r)
        reps.setdefault(v, set()).add(r.get("replicate"))
        if r.get("chosen"):
            chosen.setdefault(v, set()).add(r.get("replicate"))
    out = []
    for (stage, method), (reps, chosen) in per.items():
        total = len(set().union(*reps.values()))
        for v in reps:
            out.append({"stage": stage, "method": method, "value": v, "chosen": len(chosen.get(v, ())),
                        "replicates": total, "share": len(chosen.get(v, ())) / total if total else float("nan")})
    return out


def run_rounds(s: Settings, jobs: int, log=print, bar=None) -> dict:
    """Train every run that the choices so far determine, in rounds, until a round has nothing left.
    Returns {"stage_s": ..., "rounds": [...]}."""
    stage_s, rounds = {}, []
    for i in range(1, 40):
        ch, _ = choices(s)
        todo = [r for r in plan_all(s, ch) if r.stage in s.stages and not is_done(r, s)]
        if not todo:
            break
        if bar is not None:
            bar.total = max(bar.total or 0, bar.n + len(todo))
            bar.refresh()
        counts = {st: sum(r.stage == st for r in todo) for st in STAGES if any(r.stage == st for r in todo)}
        log(f"== round {i}: " + ", ".join(f"{st} {n}" for st, n in counts.items()))
        tr = time.perf_counter()
        for st, sec in execute(todo, s, jobs, log, bar).items():
            stage_s[st] = stage_s.get(st, 0.0) + sec
        rounds.append({"runs": counts, "wall_s": time.perf_counter() - tr})
    return {"stage_s": stage_s, "rounds": rounds}
