"""Why does HDML not help in the lab? Each hypothesis is an arm of ``compare`` (the same engine, so
lr and alpha are selected the same way for the baseline and HDML), for N-pair and for triplet.

    python -m hdml_lite.study hypotheses --plan            # the arms and their runs
    python -m hdml_lite.study hypotheses                   # all arms -> results/hypotheses.csv
    python -m hdml_lite.study hypotheses --fast            # tiny settings (the tests) -> runs/trial/hypotheses

- H1 headroom: 4 and 8 images per class (every split), so the baseline is far from saturated.
- H2 in-batch negatives: N-pair batches of 8 classes (16 images); triplet at the same image count
  (5 triplets, 15 images): a batch holds few hard negatives.
- H3 length: 4x the steps (1,600).
- H4 labels kept: where the study's trade-off (results/tradeoff.csv) finds a pull target at which
  labels are kept (b), hardness adapts (d) and the synthetics are harder than the real negatives
  (e), HDML with alpha fixed at that target; where none exists, one principled change that should
  keep labels: a 10x larger J_soft weight (``hdml.softmax_factor=1e5``).

The grid (``GRID``) is one replicate of the study's: lrs 3e-4 and 1e-3, pull targets 1, 0.5, 0.1 and
0.01, one seed per grid point, and one selection budget (``parity``: the baseline's lr grid gets as
many runs as HDML's lr x alpha grid, 6 each). Unlike the study, each arm selects once for all its
seeds (intervals hold the seeds' noise, not the selection's): the replicate design would cost about
twice as much as all arms' CPU budget allows (study/cost.py).

H3 and H4 keep the study's data and batches, so they take the study's choices instead of selecting
again (``<study>/study.json``; ``--study``, default ``results``): each method's lr and HDML's alpha,
as chosen in most replicates (for alpha, the pull target chosen most: ``files.study_choices``);
H4's alpha is the trade-off's at its pull target (``<study>/tradeoff.csv``). One choice procedure
for baseline and HDML, made at 400 steps (so H3's lr is not re-tuned for its 4x budget, for either
method), at a fraction of the cost. Without a study.json (the tests), they select like the other
arms. Verdicts: HDML - baseline, supported / contradicted / equivalent / undecided.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .files import HYPOTHESES_COLUMNS, HYPOTHESES_SEED_COLUMNS, read_rows, study_choices, write_csv

GRID = dict(lrs=(3e-4, 1e-3), pull_targets=(1.0, 0.5, 0.1, 0.01), select_seeds=1, parity=True)
SEEDS = 5
LOSSES = ("npair", "triplet")
ARMS = (("H1 headroom", "4 images per class", {"*": ["data.max_per_class=4"]}),
        ("H1 headroom", "8 images per class", {"*": ["data.max_per_class=8"]}),
        ("H2 in-batch negatives", "8 classes (N-pair) / 5 triplets per batch",
         {"npair": ["data.batch_classes=8"], "triplet": ["data.batch_classes=5"]}),
        ("H3 length", "1,600 steps (4x)", {"*": ["train.steps=1600", "train.ckpt_every=400"]}))
SOFTMAX_X10 = "hdml.softmax_factor=100000.0"


def labels_kept_target(tradeoff_csv: str | Path, loss: str) -> float | None:
    """The largest hardness (smallest pull target) at which the trade-off's medians over seeds meet
    conditions v2 b, d and e's ordering (tables.tradeoff_groups), for HDML(``loss``); None if none
    (or no file)."""
    from .tables import tradeoff_groups

    path = Path(tradeoff_csv)
    if not path.is_file():
        return None
    rows = [r for r in read_rows(path) if str(r["method"]).endswith(f"hdml_{loss}")]
    ok = [g["pull_target"] for g in tradeoff_groups(rows) if g["ok"]]
    return min(ok) if ok else None


def tradeoff_alpha(tradeoff_csv: str | Path, loss: str, pull_target: float) -> float:
    """HDML(``loss``)'s alpha at ``pull_target`` in the study's trade-off table."""
    rows = [r for r in read_rows(tradeoff_csv) if str(r["method"]).endswith(f"hdml_{loss}")
            and abs(float(r["pull_target"]) - pull_target) < 1e-9]
    return float(rows[0]["alpha"])


def arms(out: str | Path = "results") -> list[tuple]:
    """(hypothesis, setting, loss, overrides, grid changes, fixed choices or None) for every arm and
    loss; ``out`` holds the study's study.json and tradeoff.csv."""
    out = Path(out)
    res = []
    for hyp, setting, ov in ARMS:
        for loss in LOSSES:
            fixed = study_choices(out / "study.json", loss) if hyp.startswith("H3") else None
            res.append((hyp, setting, loss, list(ov.get(loss, ov.get("*", []))), {}, fixed))
    for loss in LOSSES:
        p = labels_kept_target(out / "tradeoff.csv", loss)
        fixed = study_choices(out / "study.json", loss)
        if p is None:
            res.append(("H4 labels kept", "no alpha keeps labels: J_soft weight x10", loss, [SOFTMAX_X10], {}, None))
            continue
        if fixed is not None:
            fixed[f"lab_hdml_{loss}"]["alpha"] = tradeoff_alpha(out / "tradeoff.csv", loss, p)
        res.append(("H4 labels kept", f"alpha at pull target {p:g} (labels kept there)", loss, [],
                    {"pull_targets": (p,)}, fixed))
    return res


def run_hypotheses(out: str | Path = "results", runs: str | Path = "runs/hypotheses", jobs: int = 2,
                   fast: bool = False, plan: bool = False, log=print, study: str | Path | None = None) -> list[dict]:
    """Every arm through ``compare``; writes ``<out>/hypotheses.csv``. Returns its rows.
    ``study``: the folder whose study.json and tradeoff.csv H3 and H4 read (default: ``out``; the CLI's
    default is results/, so that ``--out`` elsewhere does not silently change the arms).
    ``fast`` (tiny settings) refuses an ``out`` in the committed results (ConfigError)."""
    from .compare import run_compare
    from .lab import FAST
    from .trial import refuse_committed

    if fast and not plan:
        refuse_committed(out, ["--fast"], "hypotheses run", "hypotheses")

    rows, folders, per_seed = [], [], []
    grid = dict(GRID)
    seeds = SEEDS
    base = []
    if fast:
        grid = dict(lrs=(1e-3,), pull_targets=(1.0, 0.1), select_seeds=1)
        seeds, base = 2, [o for o in FAST if not o.startswith("data.max_per_class")]
    study = Path(out if study is None else study)
    log(f"H3, H4: the study in {study}/ ("
        + ("study.json: its choices" if (study / "study.json").is_file() else "no study.json: they select")
        + ", " + ("tradeoff.csv: H4's pull target" if (study / "tradeoff.csv").is_file()
                  else "no tradeoff.csv: H4 is the J_soft x10 arm") + ")")
    for hyp, setting, loss, ov, change, fixed in arms(study):
        if fast and any(o.startswith("train.steps") for o in ov):
            ov = ["train.steps=8"]
        g = {**grid, **change}
        slug = re.sub(r"[^a-z0-9]+", "_", setting.lower()).strip("_")[:40]
        folder = Path(runs) / f"{hyp.split()[0]}_{loss}_{slug}"
        folders.append(folder)
        log(f"== {hyp}, {setting}, {loss}: {folder}")
        res = run_compare([f"lab_hdml_{loss}", f"lab_{loss}"], "glyphs", base + ov, seeds=seeds, max_seeds=seeds,
                          out=str(folder), jobs=0 if fast else jobs, plan=plan, log=log, fixed=fixed, **g)
        if plan:
            continue
        eng = read_rows(folder / "engagement.csv") if (folder / "engagement.csv").is_file() else []
        n_eng = sum(r.get("engaged_v2") in (1, 1.0) for r in eng if r["method"] == f"lab_hdml_{loss}")
        n_all = sum(r["method"] == f"lab_hdml_{loss}" for r in eng)
        for v in res["verdicts"]:
            rows.append({"hypothesis": hyp, "setting": setting, "loss": loss, **v, "family": "hypotheses",
                         "engaged_v2": f"{n_eng}/{n_all}", "hdml_alpha": res["choices"].alpha.get(f"lab_hdml_{loss}")})
        per_seed += [{"hypothesis": hyp, "setting": setting, "loss": loss, **r} for r in res["table"]]
    if not plan:
        from .sequential import with_holm

        rows = with_holm(rows)          # one family: every arm and metric (Holm over all of them)
        write_csv(Path(out) / "hypotheses.csv", rows, HYPOTHESES_COLUMNS)
        write_csv(Path(out) / "hypotheses_per_seed.csv", per_seed, HYPOTHESES_SEED_COLUMNS)
        info = {"arms": len(folders), "seeds": seeds, "grid": {k: list(v) if isinstance(v, tuple) else v
                                                               for k, v in grid.items()},
                "fast": fast, "jobs": jobs, **cost(folders)}
        (Path(out) / "hypotheses.json").write_text(json.dumps(info, indent=1))
        from ..results_data import sync_if_repo_results

        sync_if_repo_results(out)       # the copy an installed kit (Colab) reads
    return rows


def cost(folders: list[Path]) -> dict:
    """What the arms cost: finished runs, wall seconds (summed over the arms' compare.json, every
    invocation) and mean CPU-seconds per run (the runs' eval_s.json)."""
    wall, cpu, n = 0.0, [], 0
    for folder in folders:
        path = folder / "compare.json"
        if path.is_file():
            wall += json.loads(path.read_text()).get("wall_s", 0.0)
        for m in folder.glob("runs/*/*/metrics.json"):
            n += 1
            e = m.parent / "eval_s.json"
            if e.is_file():
                cpu.append(json.loads(e.read_text()).get("cpu_s", 0.0))
    return {"runs": n, "wall_s": wall, "cpu_s_per_run": sum(cpu) / len(cpu) if cpu else None}
