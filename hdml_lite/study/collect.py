"""Paper protocol on a GPU: collect finished runs into the study's CSV format, and estimate run times.

    python -m hdml_lite.study collect /content/drive/MyDrive/hdml_runs --out results/paper_runs.csv
    python -m hdml_lite.study estimate                      # the Colab T4 time estimate per paper preset

``collect`` walks the given folders for ``metrics.json`` (written when a run finishes) and
writes one row per run: ``method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s`` (+ ``r10,r100,r1000``
for SOP), scores as fractions, like ``results/lab_table.csv``. Unfinished runs (a
checkpoint but no metrics) are listed so they can be resumed.

The time estimate is arithmetic, not a measurement (no GPU was available where the kit was
written): see ``estimate_hours`` for every assumption.
"""
from __future__ import annotations

import json
from pathlib import Path

from .files import TABLE_COLUMNS, write_csv

SOP_EXTRA = ("r10", "r100", "r1000")

# --- assumptions of the estimate (all stated in results/README.md) --------------------
GOOGLENET_GMACS_224 = 1.5      # GoogLeNet forward, multiply-adds per 224x224 image (torchvision: 1.50 GMACs)
TRAIN_FACTOR = 3.0             # forward + backward ~ 3x the forward cost
T4_EFFECTIVE_TFLOPS = 8.0      # T4: 65 TFLOPS fp16 tensor peak; ~12% reached by a small-batch CNN with AMP
COLAB_DECODE_IMG_S = 300.0     # JPEG decode + resize + crop on Colab's 2 vCPUs (2 DataLoader workers)
TEST_IMAGES = {"cub": 5924, "cars196": 8131, "sop": 60502}


def find_runs(roots) -> tuple[list[Path], list[Path]]:
    """(finished run folders, unfinished ones) under ``roots``."""
    done, pending = [], []
    for root in roots:
        root = Path(root)
        for ck in sorted(set(root.rglob("metrics.json")) | set(root.rglob("checkpoint.pt"))):
            d = ck.parent
            if (d / "metrics.json").is_file():
                done.append(d)
            elif d not in pending:
                pending.append(d)
    return sorted(set(done)), [d for d in pending if d not in done]


def run_row(path: Path) -> dict:
    m = json.loads((Path(path) / "metrics.json").read_text())
    test = m.get("test") or {}
    return {"method": m.get("name", Path(path).name), "seed": m.get("seed", 0), "train_s": m.get("train_s"),
            **{k: v for k, v in test.items() if k in TABLE_COLUMNS or k in SOP_EXTRA}}


def collect(roots, out: str | Path) -> list[dict]:
    """Write ``out`` (CSV) from the finished runs under ``roots``; returns the rows."""
    done, pending = find_runs(roots)
    rows = [run_row(d) for d in done]
    cols = list(TABLE_COLUMNS) + [k for k in SOP_EXTRA if any(k in r for r in rows)]
    write_csv(Path(out), rows, cols)
    print(f"{len(rows)} finished run(s) -> {out}")
    for d in pending:
        print(f"unfinished (rerun its train command to resume): {d}")
    return rows


def estimate_hours(preset: str) -> dict:
    """Colab T4 time estimate for one run of a paper preset (an ESTIMATE, see the constants).

    GPU time = images seen x GoogLeNet training FLOPs / T4 effective throughput; input time
    = images / decode rate; a step waits for the slower of the two. Evaluation = (test images
    x evaluations) forward passes, also bounded by decoding.
    """
    from ..presets import get_preset

    cfg = get_preset(preset)
    d = cfg.data
    batch = d.batch_classes * (3 if d.sampler == "triplet" else d.images_per_class)   # triplet: a, p, n
    images = batch * cfg.train.steps
    gflop_img = 2 * GOOGLENET_GMACS_224 * (d.image_size / 224) ** 2       # forward FLOPs per image
    gpu_s = images * gflop_img * TRAIN_FACTOR / (T4_EFFECTIVE_TFLOPS * 1e3)
    input_s = images / COLAB_DECODE_IMG_S
    n_eval = (cfg.train.steps // cfg.train.eval_every if cfg.train.eval_every else 0) or 1
    test = TEST_IMAGES[d.dataset]
    eval_s = n_eval * test * max(gflop_img / (T4_EFFECTIVE_TFLOPS * 1e3), 1 / COLAB_DECODE_IMG_S)
    total = max(gpu_s, input_s) + eval_s
    return {"preset": preset, "steps": cfg.train.steps, "batch": batch, "images": images,
            "gpu_h": gpu_s / 3600, "input_h": input_s / 3600, "evals": n_eval, "eval_h": eval_s / 3600,
            "total_h": total / 3600}


def estimate_markdown(presets=None) -> str:
    from ..presets import list_presets

    presets = presets or [p for p in list_presets() if not p.startswith(("lab_", "scratch_"))]
    lines = ["| preset | steps | batch | images seen | GPU compute (h) | JPEG decoding (h) | evaluations | "
             "evaluation (h) | estimated total (h) |", "|---|---|---|---|---|---|---|---|---|"]
    for p in presets:
        e = estimate_hours(p)
        lines.append(f"| `{p}` | {e['steps']} | {e['batch']} | {e['images'] / 1e6:.2f} M | {e['gpu_h']:.2f} | "
                     f"{e['input_h']:.2f} | {e['evals']} | {e['eval_h']:.2f} | **{e['total_h']:.1f}** |")
    return "\n".join(lines) + "\n"


# --- the lab study's cost (CPU, not a GPU estimate) ---------------------------------------
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
                g = dict(grid, select_seeds=1) if rep else grid
                s = Settings(specs=(Spec(a, a, kind="hdml"), Spec(b, b)), runs=Path("."), base=[], steps=400,
                             start={"alpha": {a: 1.0}}, seeds_key=SEEDS, max_seeds=SEEDS, seeds_rest=SEEDS,
                             fixed=fixed, replicate=rep, parity=rep, **g)
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
             f"   hypotheses: {h_runs} runs ({h_eq:.0f} in 400-step equivalents; one selection as committed: "
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
