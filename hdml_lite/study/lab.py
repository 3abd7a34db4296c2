"""The lab study: run the plan (resumable, 2 processes), read the choices, write the CSV files.

    python -m hdml_lite.study lab                          # the converged lab regime -> results/
    python -m hdml_lite.study lab --regime scratch         # 200 steps from scratch -> results/scratch/
    python -m hdml_lite.study lab --plan                   # print the runs per stage and stop
    python -m hdml_lite.study lab --fast --out /tmp/s      # the same code path on tiny settings (tests)

The stages and their rules are in ``plan.py``. The study proceeds in rounds: each round trains
every run the choices so far determine (selection runs first), then re-reads the choices; it
stops when a round has nothing left to train. A run whose ``metrics.json`` exists is skipped,
an interrupted one resumes from its checkpoint, so rerunning the command continues the study.
Choice rule: highest mean validation Recall@1 over the seeds (ties: NMI, then the smaller
value). The test classes are never used for a choice.
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

from .files import (CONDITIONS, CURVE_COLUMNS, ENGAGEMENT_COLUMNS, MECHANISM_COLUMNS, MECHANISM_KEYS,
                    SELECTION_COLUMNS, SWEEP_COLUMNS, TABLE_COLUMNS, VERDICT_COLUMNS, write_csv)
from .plan import (CURVE_KEYS, HDML_BASE, MECHANISM_KEYS as MECHANISM_METHODS, SELECT_LR,
                   STAGES, Choices, Run, Settings, eval_splits, fractions_setting, lr_run, method_key, overrides,
                   plan_all, plan_counts, plan_final, plan_select_alpha, plan_select_bn, plan_select_fractions,
                   plan_select_lr, pull_targets_of)
from .stats import second_half_median
from .verdicts import verdict_rows

MECHANISM_MAX_ROWS = 16000          # mechanism.csv stays under ~2 MB
BUDGET_S = 2 * 3600                 # the lab regime's budget: 2 hours of wall-clock on 2 cores


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
               d.max_per_class, d.channels, in_ch)
        if key not in _EVAL_CACHE:
            _EVAL_CACHE[key] = materialise(load_dataset(d, split, in_channels=in_ch, train_transform=False))
        out[split] = _EVAL_CACHE[key]
    return out


def run_one(preset: str, ovr: list[str], splits=("test",)) -> str:
    """Train one run unless its metrics.json exists; returns its folder. Records the seconds spent
    in intermediate evaluations (``eval_s.json``) so that training time can exclude them."""
    from ..config import apply_overrides
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
    try:
        res = trainer.train(cfg, eval_sets=_eval_sets(cfg, splits))
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


FAILED = "failed.json"     # a run stopped by a non-finite loss: scored 0 in selection, left out of tables


def _job(args):
    from ..training.method import NonFiniteLossError

    t0 = time.perf_counter()
    try:
        path = run_one(*args)
    except NonFiniteLossError as exc:    # e.g. too high an lr: recorded, the study goes on
        path = next(o.split("=", 1)[1] for o in args[1] if o.startswith("train.out_dir="))
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / FAILED).write_text(json.dumps({"error": str(exc)}))
    return path, time.perf_counter() - t0


def is_done(run: Run, s: Settings) -> bool:
    d = s.runs / run.stage / run.folder()
    return (d / "metrics.json").is_file() or (d / FAILED).is_file()


def is_failed(run: Run, s: Settings) -> bool:
    d = s.runs / run.stage / run.folder()
    return (d / FAILED).is_file() and not (d / "metrics.json").is_file()


def run_dir(run: Run, s: Settings) -> Path:
    return s.runs / run.stage / run.folder()


def execute(runs: list[Run], s: Settings, jobs: int = 2, log=print) -> dict:
    """Train the unfinished ``runs`` in ``jobs`` processes (0: in this process).
    Returns {stage: wall seconds of its runs trained here}."""
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
            log(f"[{i}/{len(todo)}] {st}/{Path(path).name} done in {sec:.0f} s "
                f"(elapsed {time.perf_counter() - t0:.0f} s)")
    finally:
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
        zero = {k: 0.0 for k in ("r1", "r2", "r4", "r8", "map_r", "nmi", "f1")}
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


def _val_row(stage: str, run: Run, s: Settings, setting: str = "") -> dict:
    val = read_run(run_dir(run, s))["val"]
    return {"stage": stage, "method": run.method, "lr": run.lr, "alpha": run.alpha, "setting": setting,
            "seed": run.seed, "val_r1": val["r1"], "val_nmi": val["nmi"], "val_f1": val["f1"],
            "val_map_r": val["map_r"], "chosen": 0}


def choose(rows: list[dict], key: str):
    """The value of ``key`` with the best mean validation R@1 over its rows (seeds); ties: mean NMI,
    then the smaller value (strings: the first listed)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    order = list(groups)

    def score(v):
        g = groups[v]
        r1 = sum(r["val_r1"] for r in g) / len(g)
        nmi = sum(r["val_nmi"] for r in g) / len(g)
        tie = -v if isinstance(v, (int, float)) else -order.index(v)
        return round(r1, 6), round(nmi, 6), tie

    return max(order, key=score)


def _mark(rows: list[dict], key: str):
    value = choose(rows, key)
    for r in rows:
        r["chosen"] = int(r[key] == value)
    return value


def _complete(runs: list[Run], s: Settings) -> bool:
    return bool(runs) and all(is_done(r, s) for r in runs)


def j_avg_of(run: Run, s: Settings) -> float:
    """The J_avg the tracker reached: median of the logged ``j_avg`` over the second half of the run."""
    return second_half_median(r.get("j_avg") for r in read_run(run_dir(run, s))["history"]["train"])


def choices(s: Settings) -> tuple[Choices, list[dict]]:
    """(choices so far, selection.csv rows) from the finished selection runs. A method is chosen
    for only once its whole grid has finished."""
    ch, rows = Choices(), []
    sel = plan_select_lr(s)
    for key in SELECT_LR:
        mine = [r for r in sel if r.method == s.name(key)]
        if _complete(mine, s):
            rr = [_val_row("select_lr", r, s) for r in mine]
            ch.lr[key] = _mark(rr, "lr")
            rows += rr
            if key in HDML_BASE:
                ch.j_avg[key] = j_avg_of(lr_run(s, key, ch.lr[key]), s)
    for key in HDML_BASE:
        if key in ch.j_avg and not (ch.j_avg[key] > 0 and math.isfinite(ch.j_avg[key])):
            del ch.j_avg[key]          # no usable J_avg (a diverged run): no alpha grid
    alpha_runs = plan_select_alpha(s, ch)
    for key in HDML_BASE:
        mine = [r for r in alpha_runs if r.method == s.name(key)]
        if _complete(mine, s):
            targets = pull_targets_of(s, ch, key)
            rr = [dict(_val_row("select_alpha", r, s), setting=f"pull_target={targets[r.alpha]:g}") for r in mine]
            ch.alpha[key] = _mark(rr, "alpha")
            rows += rr
    bn = plan_select_bn(s, ch)
    if bn and _complete([r for _, r in bn], s):
        rr = [_val_row("select_bn", r, s, setting) for setting, r in bn]
        ch.bn_stats = _mark(rr, "setting").split("=", 1)[1]
        rows += rr
    fr = plan_select_fractions(s, ch)
    if fr and _complete([r for _, r in fr], s):
        rr = [_val_row("select_fractions", r, s, setting) for setting, r in fr]
        chosen = _mark(rr, "setting")
        ch.fractions = next(tuple(float(x) for x in f) for f in s.hdc_fractions
                            if fractions_setting(tuple(float(x) for x in f)) == chosen)
        rows += rr
    return ch, rows


# ---------------------------------------------------------------- CSV rows
def table_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        m = read_run(run_dir(r, s))
        rows.append({"method": r.method, "seed": r.seed, **{k: m["test"][k] for k in TABLE_COLUMNS[2:-1]},
                     "train_s": m["train_s"] - m["intermediate_eval_s"]})
    return rows


def curve_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        if method_key(r.method) in CURVE_KEYS:
            for e in read_run(run_dir(r, s))["history"]["eval"]:
                rows.append({"method": r.method, "seed": r.seed, "step": e["step"], "split": e["split"],
                             **{k: e[k] for k in ("nmi", "f1", "r1")}})
    return rows


def pull_factors(train_rows: list[dict], alpha: float) -> list[float]:
    """The logged pull factor of every step (computed from j_avg where a row lacks it)."""
    from ..hdml.augment import pull_factor

    return [r["pull_factor"] if "pull_factor" in r else pull_factor(alpha, r["j_avg"]) for r in train_rows
            if "pull_factor" in r or "j_avg" in r]


def sweep_rows(s: Settings, ch: Choices) -> list[dict]:
    import numpy as np

    rows = []
    for r in plan_select_alpha(s, ch):
        if not is_done(r, s):
            continue
        m = read_run(run_dir(r, s))
        pf = pull_factors(m["history"]["train"], r.alpha)
        target = pull_targets_of(s, ch, method_key(r.method))[r.alpha]
        for split in ("val", "test"):
            if m.get(split):
                rows.append({"method": r.method, "alpha": r.alpha, "pull_target": target, "seed": r.seed,
                             "split": split, **{k: m[split][k] for k in ("r1", "nmi", "f1")},
                             "pull_factor_median": float(np.median(pf)) if pf else None})
    return rows


def mechanism_runs(final: list[Run]) -> list[Run]:
    return [r for r in final if method_key(r.method) in MECHANISM_METHODS]


def mechanism_rows(runs: list[Run], s: Settings) -> list[dict]:
    """Per-step HDML diagnostics of the final HDML runs and ablations, every k-th step (k chosen so
    that the file stays under MECHANISM_MAX_ROWS rows)."""
    if not runs:
        return []
    hist = {r: read_run(run_dir(r, s))["history"]["train"] for r in runs}
    total = sum(len(h) for h in hist.values())
    k = max(1, math.ceil(total / MECHANISM_MAX_ROWS))
    rows = []
    for r, h in hist.items():
        pf = pull_factors(h, r.alpha or 0.0)
        for i, row in enumerate(h):
            if i % k == 0 or i == len(h) - 1:
                rows.append({"method": r.method, "seed": r.seed, "step": row["step"],
                             **{c: row.get(c) for c in MECHANISM_KEYS},
                             "pull_factor": row.get("pull_factor", pf[i] if i < len(pf) else None)})
    return rows


def engagement_rows(runs: list[Run], s: Settings, log=print) -> list[dict]:
    """The four engagement conditions of every final HDML run (hdml.diagnostics.engagement)."""
    try:
        from ..hdml.diagnostics import engagement
    except ImportError as exc:       # pragma: no cover - the module is part of the kit
        log(f"engagement table skipped: {exc}")
        return []
    rows = []
    for r in runs:
        e = engagement(read_run(run_dir(r, s))["history"]["train"], r.alpha)
        row = {"method": r.method, "seed": r.seed, "alpha": r.alpha, "engaged": bool(e.get("engaged"))}
        for c in CONDITIONS:
            for k in ("value", "threshold", "ok"):
                row[f"{c}_{k}"] = e.get(c, {}).get(k)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- the study
def _load_study(path: Path, s: Settings) -> dict:
    """The previous study.json of the same study (same regime, runs folder), else {}."""
    if path.is_file():
        prev = json.loads(path.read_text())
        if (prev.get("regime"), prev.get("runs"), prev.get("steps")) == (s.regime, str(s.runs), s.steps):
            return prev
    return {}


def export(out: str | Path, s: Settings, timing: dict | None = None, log=print) -> dict:
    """CSV files, study.json, figures and README from the runs finished so far (a partial
    study gives partial tables; ``python -m hdml_lite.study lab --export`` any time).

    timing: {"wall_s": ..., "stage_s": {...}, "round_s": [...]} of this invocation; added to
    the durations of earlier invocations of the same study recorded in study.json."""
    out = Path(out)
    ch, sel_rows = choices(s)
    final = [r for r in plan_final(s, ch) if is_done(r, s) and not is_failed(r, s)]
    failed = [r for r in plan_all(s, ch) if is_failed(r, s)]
    for r in failed:
        log(f"non-finite loss, left out (selection: scored 0): {r.stage}/{r.folder()}")
    table = table_rows(final, s)
    write_csv(out / "selection.csv", sel_rows, SELECTION_COLUMNS)
    write_csv(out / "lab_table.csv", table, TABLE_COLUMNS)
    write_csv(out / "curves.csv", curve_rows(final, s), CURVE_COLUMNS)
    write_csv(out / "sweep.csv", sweep_rows(s, ch), SWEEP_COLUMNS)
    write_csv(out / "verdicts.csv", verdict_rows(table, s.regime), VERDICT_COLUMNS)
    mech = mechanism_runs(final)
    write_csv(out / "mechanism.csv", mechanism_rows(mech, s), MECHANISM_COLUMNS)
    write_csv(out / "engagement.csv", engagement_rows(mech, s, log), ENGAGEMENT_COLUMNS)

    counts = plan_counts(s)
    done_runs = [r for r in plan_all(s, ch) if is_done(r, s)]
    prev = _load_study(out / "study.json", s)
    info = {"regime": s.regime, "steps": s.steps, "fast": s.fast, "runs": str(s.runs),
            "lrs": list(s.lrs), "pull_targets": list(s.pull_targets), "select_seeds": s.select_seeds,
            "seeds_key": s.seeds_key, "seeds_rest": s.seeds_rest,
            "hdc_fractions": [list(f) for f in s.hdc_fractions], "val_classes": 0.2,
            "eval_every_curves": s.eval_every(), "defaults": {k: v for k, v in s.defaults.items()},
            "lr": {s.name(k): v for k, v in ch.lr.items()}, "j_avg": {s.name(k): v for k, v in ch.j_avg.items()},
            "alpha": {s.name(k): v for k, v in ch.alpha.items()}, "bn_stats": ch.bn_stats,
            "fractions": list(ch.fractions) if ch.fractions else None,
            "failed_runs": [f"{r.stage}/{r.folder()}" for r in failed], "runs_per_stage": counts, "runs_total": sum(counts.values()), "runs_done": len(done_runs),
            "runs_done_per_stage": {st: sum(r.stage == st for r in done_runs) for st in STAGES}}
    for key in HDML_BASE:   # the sweep's reference: the base loss at its chosen lr, seed 0, validation classes
        base = HDML_BASE[key]
        if base in ch.lr:
            info.setdefault("sweep_reference", {})[s.name(key)] = read_run(run_dir(lr_run(s, base, ch.lr[base]), s))["val"]
    runs_s = [read_run(run_dir(r, s))["timing"] for r in done_runs]
    info["run_wall_s_per_stage"] = {st: sum(read_run(run_dir(r, s))["timing"].get("wall_s", 0.0)
                                            for r in done_runs if r.stage == st) for st in STAGES}
    cpu = [t["cpu_s"] for t in runs_s if t.get("cpu_s") is not None]
    if cpu:   # CPU seconds per run (training + evaluations), time.process_time
        info["cpu_s_per_run"] = sum(cpu) / len(cpu)
        info["cpu_s_measured_runs"] = len(cpu)
    timing = timing or {}
    info["wall_s"] = prev.get("wall_s", 0.0) + timing.get("wall_s", 0.0)
    stage_s = dict(prev.get("stage_wall_s", {}))
    for st, sec in timing.get("stage_s", {}).items():
        stage_s[st] = stage_s.get(st, 0.0) + sec
    info["stage_wall_s"] = stage_s       # wall seconds of the runs of each stage (parallel runs add up)
    info["rounds"] = prev.get("rounds", []) + timing.get("rounds", [])
    info["invocations"] = prev.get("invocations", 0) + (1 if timing else 0)
    info["jobs"] = timing.get("jobs", prev.get("jobs"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(info, indent=1))
    from .report import write_report

    write_report(out)
    log(f"exported {len(done_runs)} of {info['runs_total']} runs to {out}")
    return info


def plan_summary(s: Settings, jobs: int) -> str:
    """The runs per stage and, once runs have finished here, the time they predict."""
    counts = plan_counts(s)
    ch, _ = choices(s)
    done = [r for r in plan_all(s, ch) if is_done(r, s)]
    lines = [f"== study plan, regime {s.regime!r}: {s.steps} steps per run, runs in {s.runs}"]
    for st in STAGES:
        lines.append(f"   {st:<18}{counts[st]:>4} runs  ({sum(r.stage == st for r in done)} done)")
    total = sum(counts.values())
    lines.append(f"   {'total':<18}{total:>4} runs  ({len(done)} done)")
    cores = max(1, jobs)
    lines.append(f"   budget: 2 h on {cores} core(s) allows {BUDGET_S * cores / total:.0f} s per run on average")
    walls = [read_run(run_dir(r, s))["timing"].get("wall_s") for r in done]
    walls = [w for w in walls if w]
    if walls:
        per = sum(walls) / len(walls)
        left = (total - len(done)) * per / cores
        lines.append(f"   measured {per:.0f} s per run here ({len(walls)} runs): about {left / 60:.0f} min left with "
                     f"{cores} process(es)" + ("  ** over the 2 h budget **" if left > BUDGET_S else ""))
    else:
        lines.append("   no run finished yet: no measured estimate (rerun --plan after the first runs)")
    return "\n".join(lines)


def run_study(out: str | Path, s: Settings, jobs: int = 2, log=print) -> dict:
    """Every stage in ``s.stages``, in rounds, then the CSV files, figures and README in ``out``."""
    import torch

    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if jobs <= 0:
        torch.set_num_threads(1)
    stage_s: dict = {}
    rounds = []
    try:
        log(plan_summary(s, jobs))
        for i in range(1, 20):
            ch, _ = choices(s)
            todo = [r for r in plan_all(s, ch) if r.stage in s.stages and not is_done(r, s)]
            if not todo:
                break
            counts = {st: sum(r.stage == st for r in todo) for st in STAGES if any(r.stage == st for r in todo)}
            log(f"== round {i}: " + ", ".join(f"{st} {n}" for st, n in counts.items()))
            tr = time.perf_counter()
            for st, sec in execute(todo, s, jobs, log).items():
                stage_s[st] = stage_s.get(st, 0.0) + sec
            rounds.append({"runs": counts, "wall_s": time.perf_counter() - tr})
            ch, _ = choices(s)
            log("   chosen so far: lr " + ", ".join(f"{k} {v:g}" for k, v in ch.lr.items())
                + "; alpha " + ", ".join(f"{k} {v:.3g}" for k, v in ch.alpha.items())
                + f"; bn_stats {ch.bn_stats}; HDC fractions {ch.fractions}")
        wall = time.perf_counter() - t0
        info = export(out, s, {"wall_s": wall, "stage_s": stage_s, "rounds": rounds, "jobs": jobs}, log)
    finally:
        torch.set_num_threads(threads)
    log(f"== done in {wall:.0f} s (" + ", ".join(f"{st} {sec:.0f} s" for st, sec in stage_s.items())
        + f"): {out}")
    return info
