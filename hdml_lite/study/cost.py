"""The lab study's and the hypotheses' cost on this kind of machine (CPU, not a GPU estimate):

    python -m hdml_lite.study estimate          # the Colab T4 table, then these lines

Run counts come from the plans themselves (plan.py: the replicate design, one selection budget);
CPU-seconds per run from the committed ``results/study.json`` and ``hypotheses.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

STUDY_TARGET_H = 3.0          # issue 25: the study and the hypotheses regenerate in <= 3 h on 2 cores


def _measured(path: Path, key: str = "cpu_s_per_run") -> float | None:
    try:
        return float(json.loads(Path(path).read_text())[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def hypotheses_counts(study_json: str | Path = "results/study.json") -> list[tuple[str, int, int, float]]:
    """(arm, runs at the replicate design, runs at one selection, steps factor) of every hypothesis
    arm, from hypotheses.py's grid, seeds and arms (no data read): the arm's two methods with one
    selection budget (``parity``), one seed per grid point per replicate; H3 and H4 take the
    study's choices when ``study_json`` exists (no selection)."""
    from .hypotheses import ARMS, GRID, LOSSES, SEEDS
    from .plan import Settings, Spec, plan_counts

    have_study = Path(study_json).is_file()
    out = []
    arms = [(h, st, ov) for h, st, ov in ARMS] + [("H4 labels kept", "alpha fixed", {})]
    for hyp, setting, ov in arms:
        for loss in LOSSES:
            a, b = f"lab_hdml_{loss}", f"lab_{loss}"
            fixed = {a: {"lr": 1e-3, "alpha": 1.0}, b: {"lr": 1e-3}} if have_study and hyp[:2] in ("H3", "H4") \
                else {}
            grid = dict(GRID, pull_targets=(GRID["pull_targets"][0],)) if hyp.startswith("H4") else dict(GRID)
            counts = {}
            for rep in (True, False):
                g = dict(grid, select_seeds=1) if rep else dict(grid)
                parity = g.pop("parity", False) or rep
                s = Settings(specs=(Spec(a, a, kind="hdml"), Spec(b, b)), runs=Path("."), base=[], steps=400,
                             start={"alpha": {a: 1.0}}, seeds_key=SEEDS, max_seeds=SEEDS, seeds_rest=SEEDS,
                             fixed=fixed, replicate=rep, parity=parity, **g)
                counts[rep] = sum(plan_counts(s).values())
            factor = 4.0 if any("train.steps=1600" in o for o in sum(ov.values(), [])) else 1.0
            out.append((f"{hyp}, {setting}, {loss}", counts[True], counts[False], factor))
    return out


def study_cost_lines(jobs: int = 2, results: str | Path = "results") -> list[str]:
    """The lab study's and the hypotheses' run counts under the replicate design and their CPU time
    on ``jobs`` processes of one thread, from the CPU-seconds per run measured in the committed
    ``results/study.json`` and ``hypotheses.json`` (an estimate: runs x CPU-s per run / jobs; a
    busy machine is slower), against the 3-hour target."""
    from .lab import make_settings
    from .plan import plan_counts_at

    results = Path(results)
    s = make_settings("lab")
    cpu_study = _measured(results / "study.json") or 40.0
    cpu_hyp = _measured(results / "hypotheses.json") or cpu_study
    lo = sum(plan_counts_at(s, s.seeds_key).values())
    hi = sum(plan_counts_at(s, s.max_seeds).values())
    hyp = hypotheses_counts(results / "study.json")
    h_runs = sum(n for _, n, _, _ in hyp)
    h_eq = sum(n * f for _, n, _, f in hyp)          # in 400-step run equivalents (H3 runs 4x the steps)
    hours = lambda runs, cpu: runs * cpu / max(1, jobs) / 3600  # noqa: E731
    lines = [f"== the lab study and the hypotheses, replicate design, on {jobs} process(es) of one thread "
             f"(CPU-s per run measured in {results}/study.json: {cpu_study:.1f}, hypotheses.json: {cpu_hyp:.1f})",
             f"   study: {lo} runs at {s.seeds_key} replicates, {hi} if every headline claim runs to {s.max_seeds}: "
             f"{hours(lo, cpu_study):.1f}-{hours(hi, cpu_study):.1f} h",
             f"   hypotheses: {h_runs} runs ({h_eq:.0f} in 400-step equivalents; one selection, as the hypotheses run: "
             f"{sum(n for _, _, n, _ in hyp)}): {hours(h_eq, cpu_hyp):.1f} h"]
    h_once = sum(n * f for _, _, n, f in hyp)
    for name, h in (("replicate", hours(h_eq, cpu_hyp)), ("one selection", hours(h_once, cpu_hyp))):
        total_lo, total_hi = hours(lo, cpu_study) + h, hours(hi, cpu_study) + h
        verdict = "within" if total_hi <= STUDY_TARGET_H else "over" if total_lo > STUDY_TARGET_H else "possibly over"
        lines.append(f"   study + hypotheses ({name}): {total_lo:.1f}-{total_hi:.1f} h: {verdict} the "
                     f"{STUDY_TARGET_H:g} h target")
    wall = _measured(results / "study.json", "wall_s")
    done = _measured(results / "study.json", "runs_done")
    if wall and done:         # the committed study's wall clock per run (2 processes; includes start-up, loading)
        lines.append(f"   by the committed study's wall clock ({wall / done:.1f} s per run on its "
                     f"{_measured(results / 'study.json', 'jobs') or jobs:.0f} processes): study "
                     f"{lo * wall / done / 3600:.1f}-{hi * wall / done / 3600:.1f} h")
    return lines
