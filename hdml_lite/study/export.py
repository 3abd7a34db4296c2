"""The lab study's files: CSV rows from the finished runs, study.json, then figures and README.

``export`` never destroys results: it refuses to replace a folder that holds a complete study
with a partial one (``--force`` to do it anyway), naming how many runs are finished; a fast study
is never exported into the committed results folder, not even with ``--force`` (trial.py; the
command line refuses partial studies there too).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..config import ConfigError
from .engine import (choice_counts, choices, is_done, is_failed, read_run, run_dir, selection_noise, table_rows,
                     verdict_rows)
from .files import (BUDGET_COLUMNS, CHOICE_COUNT_COLUMNS, CONDITIONS, CURVE_COLUMNS, ENGAGEMENT_COLUMNS,
                    MECHANISM_COLUMNS, MECHANISM_KEYS, NOISE_COLUMNS, SELECTION_COLUMNS, SWEEP_COLUMNS, TABLE_COLUMNS,
                    TRADEOFF_COLUMNS, VERDICT_COLUMNS, write_csv)
from .plan import (STAGES, Choices, Run, Settings, budget_rows, lr_runs, plan_all, plan_counts, plan_final,
                   plan_fingerprint, plan_select_alpha, pull_targets_of, selection_budgets, selections, choice_record)
from .stats import second_half_median

MECHANISM_MAX_ROWS = 16000          # mechanism.csv stays under ~2 MB


def curve_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        if s.spec(r.method).curves:
            for e in read_run(run_dir(r, s))["history"]["eval"]:
                rows.append({"method": r.method, "seed": r.seed, "step": e["step"], "split": e["split"],
                             **{k: e.get(k) for k in ("nmi", "f1", "r1")}})   # nmi, f1: final step only
    return rows


def pull_factors(train_rows: list[dict], alpha: float) -> list[float]:
    """The logged pull factor of every step (computed from j_avg where a row lacks it)."""
    from ..hdml.augment import pull_factor

    return [r["pull_factor"] if "pull_factor" in r else pull_factor(alpha, r["j_avg"]) for r in train_rows
            if "pull_factor" in r or "j_avg" in r]


def _alpha_runs(s: Settings, ch: Choices) -> list[tuple[Choices, Run]]:
    """(its selection's choices, run) of every finished alpha-grid run, every replicate's."""
    return [(c, r) for c in selections(s, ch) for r in plan_select_alpha(s, c) if is_done(r, s) and not is_failed(r, s)]


def sweep_rows(s: Settings, ch: Choices) -> list[dict]:
    rows = []
    for c, r in _alpha_runs(s, ch):
        m = read_run(run_dir(r, s))
        pf = pull_factors(m["history"]["train"], r.alpha)
        target = pull_targets_of(s, c, r.method)[r.alpha]
        for split in ("val", "test"):
            if m.get(split):
                rows.append({"method": r.method, "alpha": r.alpha, "pull_target": target, "seed": r.seed,
                             "split": split, **{k: m[split][k] for k in ("r1", "nmi", "f1")},
                             "pull_factor_median": float(np.median(pf)) if pf else None})
    return rows


def tradeoff_rows(s: Settings, ch: Choices) -> list[dict]:
    """The hardness-label trade-off over the alpha grid (validation classes): per run, the
    second-half medians of the pull factor, acc_syn and hard_gen / hard_real, and validation MAP@R, R@1."""
    rows = []
    for c, r in _alpha_runs(s, ch):
        m = read_run(run_dir(r, s))
        h = m["history"]["train"]
        med = lambda k: second_half_median(x.get(k) for x in h)  # noqa: E731
        real = med("hard_real")
        rows.append({"method": r.method, "alpha": r.alpha, "pull_target": pull_targets_of(s, c, r.method)[r.alpha],
                     "seed": r.seed, "pull_median": med("pull_factor"), "acc_syn": med("acc_syn"),
                     "hard_ratio": med("hard_gen") / real if real and math.isfinite(real) else None,
                     "val_map_r": m["val"]["map_r"], "val_r1": m["val"]["r1"]})
    return rows


def mechanism_runs(s: Settings, final: list[Run]) -> list[Run]:
    return [r for r in final if s.spec(r.method).kind == "hdml"]


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


def engagement_row(method: str, seed: int, alpha, train_rows: list[dict]) -> dict:
    """One engagement.csv row: the v2 conditions' values and verdicts, and both versions' verdicts."""
    from ..hdml.diagnostics import engagement

    e = engagement(train_rows, alpha)
    row = {"method": method, "seed": seed, "alpha": alpha, "engaged_v2": bool(e["engaged"]),
           "engaged_v1": bool(e["v1"]["engaged"]), "acc_syn": e["numbers"].get("acc_syn"),
           "pull_median": e["numbers"].get("pull_factor")}
    for c in CONDITIONS:
        row[f"{c}_value"], row[f"{c}_ok"] = e[c]["value"], e[c]["ok"]
    return row


def engagement_rows(runs: list[Run], s: Settings) -> list[dict]:
    return [engagement_row(r.method, r.seed, r.alpha, read_run(run_dir(r, s))["history"]["train"]) for r in runs]


def _load_study(path: Path, s: Settings) -> dict:
    """The previous study.json of the same study (same regime, runs folder), else {}."""
    if path.is_file():
        prev = json.loads(path.read_text())
        same_runs = Path(prev.get("runs", "")).resolve() == Path(s.runs).resolve()   # relative or absolute
        if (prev.get("regime"), prev.get("steps")) == (s.regime, s.steps) and same_runs:
            return prev
    return {}


def runs_record(runs: Path) -> str:
    """The runs folder as study.json records it: relative to the working directory when inside it
    (so the file does not name this machine's folders)."""
    try:
        return str(Path(runs).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(runs)


def check_export(out: str | Path, done: int, total: int, force: bool) -> None:
    """Refuse to replace a folder holding a complete study with a partial export (ConfigError)."""
    path = Path(out) / "study.json"
    if force or done >= total or not path.is_file():
        return
    try:
        prev = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if prev.get("runs_done", 0) >= prev.get("runs_total", 1) > 0:
        raise ConfigError(f"{out} holds a complete study ({prev['runs_done']} of {prev['runs_total']} runs); this "
                          f"export has only {done} of {total} runs finished, so it would replace complete tables with "
                          f"partial ones; write it elsewhere (--out DIR) or pass --force to replace them")


def export(out: str | Path, s: Settings, timing: dict | None = None, log=print, force: bool = False) -> dict:
    """CSV files, study.json, figures and README from the runs finished so far (a partial study
    gives partial tables; ``python -m hdml_lite.study lab --export`` any time).

    timing: {"wall_s": ..., "stage_s": {...}, "rounds": [...]} of this invocation; added to
    the durations of earlier invocations of the same study recorded in study.json."""
    out = Path(out)
    from .trial import refuse_committed

    refuse_committed(out, ["--fast"] if s.fast else [], default=s.regime or "lab")    # a fast study: never into results/ (trial.py)
    ch, sel_rows = choices(s)
    planned = plan_all(s, ch)
    done_runs = [r for r in planned if is_done(r, s)]
    counts = plan_counts(s)
    total = max(len(planned), sum(counts.values()))
    check_export(out, len(done_runs), total, force)
    final = [r for r in plan_final(s, ch) if is_done(r, s) and not is_failed(r, s)]
    failed = [r for r in planned if is_failed(r, s)]
    for r in failed:
        log(f"non-finite loss, left out (selection: scored 0): {r.stage}/{r.folder()}")
    table = table_rows(final, s)
    noise = selection_noise(sel_rows)
    write_csv(out / "selection.csv", sel_rows, SELECTION_COLUMNS)
    write_csv(out / "selection_noise.csv", noise, NOISE_COLUMNS)
    write_csv(out / "choice_counts.csv", choice_counts(sel_rows), CHOICE_COUNT_COLUMNS)
    write_csv(out / "budgets.csv", budget_rows(s), BUDGET_COLUMNS)
    write_csv(out / "lab_table.csv", table, TABLE_COLUMNS)
    write_csv(out / "curves.csv", curve_rows(final, s), CURVE_COLUMNS)
    write_csv(out / "sweep.csv", sweep_rows(s, ch), SWEEP_COLUMNS)
    write_csv(out / "tradeoff.csv", tradeoff_rows(s, ch), TRADEOFF_COLUMNS)
    write_csv(out / "verdicts.csv", verdict_rows(table, s), VERDICT_COLUMNS)
    mech = mechanism_runs(s, final)
    write_csv(out / "mechanism.csv", mechanism_rows(mech, s), MECHANISM_COLUMNS)
    write_csv(out / "engagement.csv", engagement_rows(mech, s), ENGAGEMENT_COLUMNS)

    prev = _load_study(out / "study.json", s)
    info = {"regime": s.regime, "steps": s.steps, "fast": s.fast, "runs": runs_record(s.runs),
            "plan_fingerprint": plan_fingerprint(s, ch), "fingerprint_of": "the runs as they ran, choices included",
            "choices_record": choice_record(ch),
            "design": "replicate" if s.replicate else "once", "parity": s.parity,
            "selection_budgets": selection_budgets(s), "select_metric": "map_r", "margin": s.margin,
            "lrs": list(s.lrs), "pull_targets": list(s.pull_targets), "lr_seeds": s.lr_seeds,
            "select_seeds": s.select_seeds, "seeds_key": s.seeds_key, "max_seeds": s.max_seeds,
            "seeds_rest": s.seeds_rest, "hdc_fractions": [list(f) for f in s.hdc_fractions],
            "val_classes": s.val_classes, "eval_every_curves": s.eval_every(),
            "start": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.start.items()},
            "lr": dict(ch.lr), "j_avg": dict(ch.j_avg), "alpha": dict(ch.alpha), "bn_stats": ch.bn_stats,
            "fractions": {k: list(v) for k, v in ch.fractions.items()}, "beta": dict(ch.beta),
            "final_seeds": dict(ch.seeds),
            **({"replicate_choices": {str(r): {"lr": c.lr, "alpha": c.alpha, "j_avg": c.j_avg, "beta": c.beta,
                                               "fractions": {k: list(v) for k, v in c.fractions.items()}}
                                      for r, c in sorted(ch.reps.items()) if c.lr}} if s.replicate else {}),
            "failed_runs": [f"{r.stage}/{r.folder()}" for r in failed], "runs_per_stage": counts,
            "runs_total": total, "runs_done": len(done_runs),
            "runs_done_per_stage": {st: sum(r.stage == st for r in done_runs) for st in STAGES}}
    for sp in s.specs:   # the sweep's reference: the base loss at its chosen lr, seed 0, validation classes
        if sp.kind == "hdml" and not sp.lr_of:
            base = next((o.key for o in s.specs if o.key == sp.key.replace("hdml_", "")), None)
            ref = lr_runs(s, base, ch.lr[base], 0 if s.replicate else None)[:1] if base in ch.lr else []
            if ref and is_done(ref[0], s) and not is_failed(ref[0], s):
                info.setdefault("sweep_reference", {})[sp.key] = read_run(run_dir(ref[0], s))["val"]
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
    from ..results_data import sync_if_repo_results

    sync_if_repo_results(out)           # the copy an installed kit (Colab) reads
    log(f"exported {len(done_runs)} of {info['runs_total']} runs to {out}")
    return info
