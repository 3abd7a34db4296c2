"""Figures and ``results/README.md`` from the study's CSV files (rerunnable: ``python -m hdml_lite.study report``).

Reads ``lab_table.csv``, ``verdicts.csv``, ``sweep.csv``, ``selection.csv``, ``mechanism.csv``,
``engagement.csv``, ``curves.csv`` and ``study.json`` in the results folder; writes
``lab_table.png``, ``sweep.png``, ``mechanism.png``, ``curves.png`` and ``README.md``. The
verdicts are computed by a fixed rule (``stats.paired_verdict``), not written by hand;
hand-written notes can be added in ``notes.md`` beside the CSV files and are included verbatim.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .collect import estimate_markdown
from .files import read_rows
from .paper import DISPLAY, compare_markdown, split_name
from .plan import KEYS, STAGES, method_key
from .verdicts import CLAIMS, paired

TABLE_METRICS = ("nmi", "f1", "r1", "r2", "r4", "r8", "map_r")
NAMES = {"nmi": "NMI", "f1": "F1", "r1": "R@1", "r2": "R@2", "r4": "R@4", "r8": "R@8", "map_r": "MAP@R"}
REGIME_TEXT = {"lab": "converged lab regime (pretrained small CNN fine-tuned to a plateau)",
               "scratch": "scratch regime (small CNN trained from scratch, short budget)"}


def label(method: str) -> str:
    return DISPLAY.get(split_name(method)[1], method)


def ordered(rows: list[dict]) -> list[dict]:
    """Rows in the table's order (plan.KEYS first, other methods after, each by seed)."""
    rank = {k: i for i, k in enumerate(KEYS)}
    return sorted(rows, key=lambda r: (rank.get(method_key(str(r["method"])), len(KEYS)), str(r["method"]),
                                       r.get("seed", 0)))


def by_method(rows: list[dict], metric: str) -> dict:
    """{method: np.array of the metric over seeds (fractions)}, in the rows' order."""
    out: dict = {}
    for r in rows:
        if isinstance(r.get(metric), float):
            out.setdefault(r["method"], []).append(r[metric])
    return {m: np.array(v) for m, v in out.items()}


def fmt(v, scale: float = 100.0, digits: int = 1) -> str:
    """mean ± std (sample std, ddof=1) of ``v`` times ``scale``; one value alone; "-" for none."""
    if v is None or len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{scale * v[0]:.{digits}f}"
    return f"{scale * np.mean(v):.{digits}f} ± {scale * np.std(v, ddof=1):.{digits}f}"


# ---------------------------------------------------------------- figures
def plot_table(rows: list[dict], path: Path, regime: str, metrics=("r1", "nmi", "f1")) -> None:
    import matplotlib.pyplot as plt

    from ..viz.plots import OKABE_ITO, save_figure

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.75 * len(methods) * len(metrics) / 2), 3.8))
    width = 0.8 / len(metrics)
    x = np.arange(len(methods))
    for i, m in enumerate(metrics):
        vals = by_method(rows, m)
        mean = [100 * vals[k].mean() for k in methods]
        std = [100 * vals[k].std(ddof=1) if len(vals[k]) > 1 else 0.0 for k in methods]
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, mean, width, yerr=std, capsize=2,
               color=OKABE_ITO[i], label=NAMES[m])
    ax.set_xticks(x, [label(k) for k in methods], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test classes, % (mean ± std over seeds)")
    ax.set_title(f"{regime} regime: final models on the test classes")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_curves(rows: list[dict], path: Path, regime: str) -> None:
    from ..viz.plots import plot_learning_curves

    hist: dict = {}
    for r in rows:
        if r["split"] == "test":
            per_seed = hist.setdefault(label(r["method"]), {})
            per_seed.setdefault(r["seed"], {"train": [], "eval": []})["eval"].append(r)
    histories = {k: [h for _, h in sorted(v.items())] for k, v in hist.items()}
    for hs in histories.values():
        for h in hs:
            h["eval"].sort(key=lambda e: e["step"])
    plot_learning_curves(histories, metrics=("nmi", "f1", "r1"), split="test", path=path,
                         title=f"{regime} regime: learning curves on the test classes (mean, min-max over seeds)")


def sweep_points(rows: list[dict], method: str, split: str, metric: str = "r1") -> list[dict]:
    """Per alpha of ``method``: pull target, measured pull factor (mean over seeds of the
    per-run medians), and the metric's mean, min and max over seeds. Sorted by pull target."""
    out = []
    mine = [r for r in rows if r.get("method", method) == method and r["split"] == split]
    for a in sorted({float(r["alpha"]) for r in mine}):
        g = [r for r in mine if float(r["alpha"]) == a]
        v = [r[metric] for r in g if isinstance(r.get(metric), float)]
        pf = [r["pull_factor_median"] for r in g if isinstance(r.get("pull_factor_median"), float)]
        out.append({"alpha": a, "pull_target": g[0].get("pull_target", float("nan")),
                    "pull_factor": float(np.mean(pf)) if pf else float("nan"), "n": len(v),
                    "mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))})
    return sorted(out, key=lambda p: -p["pull_target"] if isinstance(p["pull_target"], float) else 0)


def plot_sweep(rows: list[dict], path: Path, regime: str, reference: dict | None = None,
               chosen: dict | None = None) -> None:
    """R@1 against the measured pull factor, one panel per HDML loss: mean over seeds (line) and
    min-max (band), validation classes (chose alpha) and test classes (shown only)."""
    import matplotlib.pyplot as plt

    from ..viz.plots import OKABE_ITO, save_figure

    methods = list(dict.fromkeys(r.get("method", f"{regime}_hdml_npair") for r in rows))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.8 * len(methods), 3.8), squeeze=False)
    for ax, meth in zip(axes[0], methods):
        for i, split in enumerate(("val", "test")):
            pts = sweep_points(rows, meth, split)
            if not pts:
                continue
            x = [p["pull_factor"] for p in pts]
            ax.plot(x, [100 * p["mean"] for p in pts], marker="o", color=OKABE_ITO[i],
                    label=f"{split} classes, mean over {max(p['n'] for p in pts)} seed(s)")
            ax.fill_between(x, [100 * p["min"] for p in pts], [100 * p["max"] for p in pts], color=OKABE_ITO[i],
                            alpha=0.2, lw=0)
            if split == "val":
                for p in pts:
                    ax.annotate(f"a={p['alpha']:.3g}", (p["pull_factor"], 100 * p["mean"]), fontsize=6,
                                textcoords="offset points", xytext=(2, 4))
        ref = (reference or {}).get(meth)
        if ref:
            ax.axhline(100 * ref["r1"], color="grey", ls="--", lw=1, label="base loss, val classes, seed 0")
        if chosen and meth in chosen:
            pc = [p for p in sweep_points(rows, meth, "val") if math.isclose(p["alpha"], chosen[meth], rel_tol=1e-6)]
            if pc:
                ax.axvline(pc[0]["pull_factor"], color="black", ls=":", lw=1, label=f"chosen alpha {chosen[meth]:.3g}")
        xs = [p["pull_factor"] for p in sweep_points(rows, meth, "val")]
        if xs and min(xs) > 0:      # targets span 0.01-1: a log axis spaces them evenly
            ax.set_xscale("log")
            ax.set_xlim(min(xs) / 1.5, 1.5)
        else:
            ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("pull factor exp(-alpha / J_avg), measured median per run\n(1 = no pulling, 0 = pulled to d+)")
        ax.set_ylabel("R@1 (%)")
        ax.set_title(label(meth), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{regime} regime: alpha sweep (paper fig. 6-7), band = min-max over seeds", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_mechanism_from_rows(rows: list[dict], path: Path, regime: str) -> None:
    """mechanism.csv rows (seed 0 of each method) -> ``viz.mechanism.plot_mechanism``."""
    from ..viz.mechanism import plot_mechanism

    histories: dict = {}
    for r in rows:
        if r["seed"] == min(x["seed"] for x in rows if x["method"] == r["method"]):
            histories.setdefault(label(r["method"]), {"train": [], "eval": []})["train"].append(r)
    for h in histories.values():
        h["train"].sort(key=lambda r: r["step"])
    plot_mechanism(histories, path, title=f"{regime} regime: HDML's mechanism over training (first seed)")


# ---------------------------------------------------------------- markdown
def main_table(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cols = {m: by_method(rows, m) for m in TABLE_METRICS + ("train_s",)}
    head = "| method | seeds | " + " | ".join(NAMES[m] for m in TABLE_METRICS) + " | train s |"
    lines = [head, "|" + "---|" * (len(TABLE_METRICS) + 3)]
    for k in methods:
        n = len(cols["r1"].get(k, []))
        cells = [fmt(cols[m].get(k)) for m in TABLE_METRICS]
        lines.append(f"| {label(k)} | {n} | " + " | ".join(cells) + f" | {fmt(cols['train_s'].get(k), 1.0, 0)} |")
    return "\n".join(lines)


def _pts(x) -> str:
    return "-" if not isinstance(x, float) or not math.isfinite(x) else f"{100 * x:+.2f}"


def verdict_table(verdicts: list[dict], table: list[dict], regime: str) -> str:
    """verdicts.csv rows, with the per-seed differences read back from the table."""
    from .plan import method_name

    pairs = {claim: (a, b) for claim, a, b in CLAIMS}
    lines = ["| paper's claim (A > B) | metric | seeds | per-seed A - B (points) | mean (points) | 95% t-interval | "
             "verdict |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        diffs = ""
        if v["claim"] in pairs:
            a, b = pairs[v["claim"]]
            _, xa, xb = paired(table, method_name(regime, a), method_name(regime, b), v["metric"])
            diffs = ", ".join(f"{100 * (p - q):+.1f}" for p, q in zip(xa, xb))
        n = int(v.get("n_seeds", 0))
        ci = (f"[{_pts(v.get('ci_low'))}, {_pts(v.get('ci_high'))}]" if isinstance(v.get("ci_low"), float)
              and math.isfinite(v["ci_low"]) else "- (fewer than 2 seeds)")
        lines.append(f"| {v['claim']} | {NAMES.get(v['metric'], v['metric'])} | {n} | {diffs or '-'} | "
                     f"{_pts(v.get('mean_diff'))} | {ci} | **{v['verdict']}** |")
    return "\n".join(lines)


def selection_table(rows: list[dict]) -> str:
    lines = ["| stage | method | lr | alpha | setting | seed | val R@1 | val NMI | val F1 | val MAP@R | chosen |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        alpha = f"{r['alpha']:.4g}" if isinstance(r.get("alpha"), float) else ""
        lines.append(f"| {r['stage']} | {label(r['method'])} | {r['lr']:g} | {alpha} | {r.get('setting', '')} | "
                     f"{r['seed']} | {100 * r['val_r1']:.1f} | {100 * r['val_nmi']:.1f} | {100 * r['val_f1']:.1f} | "
                     f"{100 * r['val_map_r']:.1f} | {'**yes**' if int(r['chosen']) else ''} |")
    return "\n".join(lines)


def sweep_table(rows: list[dict]) -> str:
    lines = ["| method | pull target p | alpha | measured pull factor | seeds | val R@1 mean [min, max] | "
             "test R@1 mean |", "|---|---|---|---|---|---|---|"]
    for meth in dict.fromkeys(r.get("method", "") for r in rows):
        test = {p["alpha"]: p for p in sweep_points(rows, meth, "test")}
        for p in sweep_points(rows, meth, "val"):
            t = test.get(p["alpha"])
            t_mean = "-" if t is None else f"{100 * t['mean']:.1f}"
            lines.append(f"| {label(meth)} | {p['pull_target']:g} | {p['alpha']:.4g} | {p['pull_factor']:.3f} | "
                         f"{p['n']} | {100 * p['mean']:.1f} [{100 * p['min']:.1f}, {100 * p['max']:.1f}] | {t_mean} |")
    return "\n".join(lines)


def paired_selection_lines(selection: list[dict]) -> list[str]:
    """For the selection stages that compare two settings over paired seeds (bn_stats, HDC
    fractions): second setting - first, validation R@1, per seed, mean and 95% t-interval."""
    from .stats import paired_verdict

    lines = []
    for stage in ("select_bn", "select_fractions"):
        rows = [r for r in selection if r["stage"] == stage]
        settings = list(dict.fromkeys(r.get("setting", "") for r in rows))
        if len(settings) != 2:
            continue
        a = {r["seed"]: r["val_r1"] for r in rows if r.get("setting", "") == settings[1]}
        b = {r["seed"]: r["val_r1"] for r in rows if r.get("setting", "") == settings[0]}
        seeds = sorted(set(a) & set(b))
        v = paired_verdict([a[k] for k in seeds], [b[k] for k in seeds])
        ci = (f"95% t-interval [{100 * v['ci_low']:+.2f}, {100 * v['ci_high']:+.2f}]" if len(seeds) > 1
              else "one seed: no interval")
        chosen = next((r.get("setting") for r in rows if int(r["chosen"])), "?")
        lines.append(f"- {label(rows[0]['method'])}, `{settings[1]}` minus `{settings[0]}`, validation R@1 per seed: "
                     + ", ".join(f"{100 * d:+.1f}" for d in v["diffs"])
                     + f" points; mean {100 * v['mean_diff']:+.2f}, {ci}; chosen: `{chosen}`.")
    return lines


def engagement_table(rows: list[dict]) -> str:
    from .files import CONDITIONS

    names = {"classifier": "1. classifier (acc_real at end)", "weight": "2. weight_syn (2nd-half mean)",
             "pull": "3. pull factor (share of steps inside)", "hardness": "4. hard_gen (vs hard_real)"}
    lines = ["| method | seed | alpha | " + " | ".join(names[c] for c in CONDITIONS) + " | engaged |",
             "|" + "---|" * (len(CONDITIONS) + 4)]

    def cell(r, c):
        v, t, ok = r.get(f"{c}_value"), r.get(f"{c}_threshold"), r.get(f"{c}_ok")
        num = lambda x: f"{x:.3g}" if isinstance(x, float) and math.isfinite(x) else "nan"  # noqa: E731
        mark = "ok" if ok in (1, 1.0, True) else "NO"
        return f"{num(v)} (thr {num(t)}) {mark}"

    for r in rows:
        alpha = f"{r['alpha']:.3g}" if isinstance(r.get("alpha"), float) else "-"
        lines.append(f"| {label(r['method'])} | {r['seed']} | {alpha} | " + " | ".join(cell(r, c) for c in CONDITIONS)
                     + f" | {'**yes**' if r.get('engaged') in (1, 1.0, True) else 'no'} |")
    return "\n".join(lines)


def timing_table(study: dict) -> str:
    counts = study.get("runs_per_stage", {})
    done = study.get("runs_done_per_stage", {})
    wall = study.get("stage_wall_s", {})
    lines = ["| stage | runs planned | runs finished | run wall-clock, summed (min) |", "|---|---|---|---|"]
    for st in STAGES:
        if st in counts:
            lines.append(f"| {st} | {counts[st]} | {done.get(st, '-')} | {wall.get(st, 0.0) / 60:.1f} |")
    lines.append(f"| **total** | {study.get('runs_total', '-')} | {study.get('runs_done', '-')} | "
                 f"{sum(wall.values()) / 60:.1f} |")
    return "\n".join(lines)


def write_report(out: str | Path) -> Path:
    """Figures + README.md in ``out`` from the CSV files there. Returns the README path."""
    out = Path(out)
    study = json.loads((out / "study.json").read_text()) if (out / "study.json").is_file() else {}
    regime = study.get("regime", "lab")
    load = lambda n: read_rows(out / n) if (out / n).is_file() else []  # noqa: E731
    data = {n: load(f"{n}.csv") for n in ("lab_table", "curves", "sweep", "selection", "verdicts", "mechanism",
                                         "engagement")}
    data["lab_table"] = ordered(data["lab_table"])
    if data["lab_table"]:
        plot_table(data["lab_table"], out / "lab_table.png", regime)
    if data["curves"]:
        plot_curves(data["curves"], out / "curves.png", regime)
    if data["sweep"]:
        plot_sweep(data["sweep"], out / "sweep.png", regime, study.get("sweep_reference"), study.get("alpha"))
    if data["mechanism"]:
        plot_mechanism_from_rows(data["mechanism"], out / "mechanism.png", regime)
    path = out / "README.md"
    path.write_text(render(study, data, out))
    return path


RUNBOOK = """\
## Paper protocol on a GPU (runbook)

The lab study above runs on a CPU with a tiny CNN. The paper's protocol (GoogLeNet
pretrained on ImageNet, 227x227 crops, batch 128/120, 8000 steps) needs a GPU. On Colab:

```python
# Colab cell 1 (run it again after every disconnect): install, mount Drive. The runs live on
# Drive, so a disconnect loses at most the steps since the last checkpoint.
!pip install -q git+https://github.com/hdml-lite/hdml_lite
from google.colab import drive
drive.mount('/content/drive')
%env HDML_DATA=/content/data
%env RUNS=/content/drive/MyDrive/hdml_runs
```

```bash
# cell 2: the data (md5-checked; /content is wiped by a disconnect, so rerun this cell too;
# Cars196 has no public host any more: see the main README for the manual files)
!python -m hdml_lite download cub

# cell 3: train, one command per run. After a disconnect, rerun cells 1-2 and the SAME
# command: it resumes from $RUNS/<run>/checkpoint.pt (written atomically every 500 steps).
!python -m hdml_lite train --preset cub_npair      train.out_dir=$RUNS/cub_npair_s0
!python -m hdml_lite train --preset cub_hdml_npair train.out_dir=$RUNS/cub_hdml_npair_s0
# more seeds: train.seed=1 train.out_dir=$RUNS/cub_hdml_npair_s1
# the official code's settings: --preset cub_hdml_npair_official; triplet: cub_triplet, cub_hdml_triplet

# cell 4 (optional): score a checkpoint again; train already scores the final model on the test classes
!python -m hdml_lite eval --checkpoint $RUNS/cub_hdml_npair_s0/checkpoint.pt

# cell 5: every finished run -> the study's CSV format, then the table beside the paper's numbers
!python -m hdml_lite.study collect $RUNS --out $RUNS/paper_runs.csv
!python -m hdml_lite.study compare $RUNS/paper_runs.csv
```

`collect` lists unfinished runs (a checkpoint, no `metrics.json`): rerun their train
command. A run resumed from a checkpoint ends with the same weights as an uninterrupted
one (the trainer seeds every step from `(seed, step)`); only the data order of the
DataLoader workers is not part of that guarantee on GPU, and cuDNN is not deterministic.
The reported model is the final one (no selection on the test classes, docs/METHOD.md §4).

### How long a run takes on a Colab T4: an ESTIMATE, not a measurement

No GPU was available where this kit was written, so the times below are arithmetic,
from stated assumptions (``hdml_lite/study/collect.py``, ``python -m hdml_lite.study estimate``):

- GoogLeNet: 1.5 GMACs = 3.0 GFLOPs per 224x224 forward pass, x (227/224)^2 for 227 crops
  (HDC: 224); training (forward + backward) ~ 3x the forward pass.
- T4: 65 TFLOPS fp16 tensor-core peak; a small-batch CNN with mixed precision reaches
  perhaps 12% of it: 8 TFLOPS effective.
- Input: JPEG decoding + resize + crop on Colab's 2 vCPUs: ~300 images/s. This, not the
  GPU, is the bottleneck: ~1 M training images per 8000-step run take ~0.9 h of decoding
  against ~0.3 h of GPU compute.
- Evaluation: every `train.eval_every` = 500 steps, the whole test set (SOP: 60,502
  images, which is why SOP runs are longer; raise `train.eval_every` there if needed).

{estimates}
So one HDML or baseline run of the paper's protocol is roughly 1-2 hours on a T4 (CUB
and Cars196 about 1 h, SOP about 2 h), and the HDC presets (30k-60k steps) 3-12 hours:
more than one Colab session, which is what the checkpoint-and-rerun workflow is for.
Colab's free sessions end after a few hours of use or ~90 minutes idle; each rerun of the
same command loses at most `train.ckpt_every` steps.
"""



def _commands(regime: str) -> str:
    out = "results" if regime == "lab" else "results/scratch"
    flag = "" if regime == "lab" else " --regime scratch"
    return f"""```bash
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1      # one thread per process; the study runs --jobs 2 processes
python -m hdml_lite.study lab{flag} --plan       # the runs per stage (nothing trained)
python -m hdml_lite.study lab{flag}              # everything: selection, final runs, CSV, figures, this page
python -m hdml_lite.study lab{flag} --stages select_lr,select_alpha   # or a stage at a time (others only read)
python -m hdml_lite.study lab{flag} --export     # CSV + figures + README from the runs finished so far
python -m hdml_lite.study report --out {out}     # figures + README from the CSV files (seconds)
```
Runs live in `runs/study/{regime}/` (git-ignored). Rerunning a command continues the study:
finished runs (with `metrics.json`) are skipped, an interrupted run resumes from its checkpoint."""


def render(study: dict, data: dict, out: Path) -> str:
    regime = study.get("regime", "lab")
    table, sweep, selection = data["lab_table"], data["sweep"], data["selection"]
    R = f"{regime} regime"
    done, total = study.get("runs_done"), study.get("runs_total")
    notes = (out / "notes.md").read_text() if (out / "notes.md").is_file() else ""
    other = ("\nThe other regime: [scratch regime](scratch/README.md)." if (out / "scratch" / "README.md").is_file()
             else "\nThe other regime: [converged lab regime](../README.md)." if regime == "scratch" else "")
    parts = [f"""# Reproduction study: {REGIME_TEXT.get(regime, regime)}

{'**FAST MODE: tiny data and 6 steps; the numbers below mean nothing, only the code path is real.**' if study.get('fast') else ''}
{f'**PARTIAL: {done} of {total} runs had finished when this page was written. Rerun the study command below (it skips finished runs) to complete it.**' if done is not None and total and done < total else ''}

A lab analogue of the HDML paper's tables 1-3 and figures 4-7 (and HDC's cascade) on the
kit's embedded glyph dataset (zero-shot: the test classes are never seen in training and
never used for a choice). Every number on this page is measured by the commands below; the
verdicts come from a fixed rule. **A result that contradicts the paper is a finding, reported
as such**, not an error to tune away: this is a small dataset and a small CNN, so a
contradiction says the effect does not show up in this setting, and a support does not
confirm the paper's numbers on CUB, Cars196 or SOP.{other}

## Commands that regenerate everything

{_commands(regime)}

| file | what |
|---|---|
| `verdicts.csv` | `claim,metric,n_seeds,mean_diff,ci_low,ci_high,verdict` (fractions) |
| `lab_table.csv` | final runs, test classes: `method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s` |
| `sweep.csv` | alpha sweep: `alpha,pull_target,seed,split,r1,nmi,f1,pull_factor_median,method` |
| `selection.csv` | every selection run on the validation classes, `chosen` = 1 on the chosen value |
| `mechanism.csv` | HDML's per-step diagnostics of the final HDML runs (every k-th step) |
| `engagement.csv` | the four engagement conditions of each final HDML run |
| `curves.csv` | learning curves of N-pair, HDML(N-pair) and its ablations on the test classes |
| `study.json` | settings, chosen values, run counts, durations |
"""]
    if data["verdicts"]:
        parts.append(f"""
## The paper's claims: verdicts ({R})

Paired seeds (seed i of A against seed i of B), differences A - B in points of %, the mean
and its 95% Student-t interval. **supported**: the interval lies above 0 (the paper's
direction); **contradicted**: it lies below 0; **undecided**: it contains 0 (or fewer than 2
seeds). Rule: `hdml_lite/study/stats.py`, `paired_verdict`.

{verdict_table(data['verdicts'], table, regime)}
""")
    if table:
        parts.append(f"""
## Tables 1-3 analogue: final models on the test classes ({R}), mean ± std over seeds (%)

{main_table(table)}

std: sample standard deviation over seeds. train s: seconds in the training loop per run
(evaluations excluded), measured while 2 runs shared the cores: compare orders of magnitude.
"Contrastive (HDC's batch)" is the contrastive loss at HDC's batch (classes x images per
class of the HDC preset), HDC's fair baseline. The "w/o" rows are the ablations of paper
figure 5 (`hdml.softmax=false`, `hdml.recon=false`).

![final models](lab_table.png)
""")
    if sweep:
        js = ", ".join(f"{label(k)}: {v:.3g}" for k, v in (study.get("j_avg") or {}).items())
        parts.append(f"""
## Figures 6-7 analogue: the pull factor ({R})

The grid spans the pull factor: alpha = -J_avg ln(p) for p in {study.get('pull_targets')},
with J_avg the median of the tracker's `j_avg` over the second half of each HDML method's
lr-selection run at the chosen lr ({js}). {study.get('select_seeds', '?')} seeds per value, on the
validation classes (which chose alpha; test classes shown, never used). x: the measured
median pull factor of each run (mean over seeds); band: min-max over seeds; dashed: the base
loss at its chosen lr (seed 0, validation classes).

{sweep_table(sweep)}

![alpha sweep](sweep.png)
""")
    if data["engagement"] or data["mechanism"]:
        parts.append(f"""
## Is HDML's mechanism switched on? ({R})

The four engagement conditions (docs/METHOD.md §5; `hdml_lite.hdml.diagnostics.engagement`) of
every final HDML run: value, threshold and whether it holds. A run where a condition fails
does not test the paper's mechanism, whatever its score.

{engagement_table(ordered(data['engagement'])) if data['engagement'] else 'no engagement rows'}

![mechanism](mechanism.png)
""")
    if data["curves"]:
        parts.append(f"""
## Figures 4-5 analogue: learning curves ({R})

N-pair, HDML (N-pair) and its two ablations, evaluated on the test classes during training
(for the curves only: the reported model is always the final one).

![learning curves](curves.png)
""")
    lr, alpha = study.get("lr", {}), study.get("alpha", {})
    parts.append(f"""
## Protocol ({R})

- Every run of a method family has the same budget: **{study.get('steps', '?')} training steps**
  (the {regime} presets' budget), batches of ~64 images.
- Selection on a **validation split of the train classes** (`data.val_classes=0.2`), never on
  the test classes; the highest mean validation R@1 wins (ties: NMI, then the smaller value).
  - lr: every method has its own, from {study.get('lrs')}, seed 0. HDML (N-pair) and HDML
    (triplet) get their own lr selection too (at the preset's alpha); their ablations use
    HDML (N-pair)'s lr, alpha and bn_stats.
  - alpha: see the pull-factor section; HDML (N-pair) and HDML (triplet) separately.
  - `hdml.bn_stats` (official | real): HDML (N-pair) at its chosen alpha, {study.get('select_seeds', '?')}
    paired seeds; the choice applies to HDML (N-pair) and its ablations (HDML (triplet) keeps
    the preset's value, {(study.get('defaults') or {}).get('bn_stats')}).
  - HDC fractions from {study.get('hdc_fractions')}, {study.get('select_seeds', '?')} seeds, at HDC's chosen lr.
- Final runs: trained on **all** train classes, the final model scored on the test classes;
  {study.get('seeds_key', '?')} seeds for N-pair, HDML (N-pair), triplet, HDML (triplet),
  {study.get('seeds_rest', '?')} for the others.

Chosen values: """ + "; ".join([", ".join(f"{label(k)} lr {v:g}" for k, v in lr.items()),
                                 ", ".join(f"{label(k)} alpha {v:.4g}" for k, v in alpha.items()),
                                 f"bn_stats {study.get('bn_stats')}", f"HDC fractions {study.get('fractions')}"]) + ".\n")
    if selection:
        paired_lines = "\n".join(paired_selection_lines(selection))
        parts.append(f"""
## Selection runs ({R}, validation classes)

{paired_lines}

{selection_table(selection)}
""")
    wall = study.get("wall_s")
    cpu = study.get("cpu_s_per_run")
    parts.append(f"""
## Timings ({R})

Whole study: **{(wall or 0) / 60:.1f} min** wall-clock over {study.get('invocations', '?')} invocation(s),
with {study.get('jobs', '?')} parallel process(es)""" + (f"; {cpu:.0f} CPU-seconds per run on average"
                                                          if cpu else "") + f""".

{timing_table(study)}
""")
    if notes:
        parts.append("\n" + notes.strip() + "\n")
    if table:
        parts.append(f"""
## Beside the paper's numbers ({R})

`python -m hdml_lite.study compare {out.as_posix()}/lab_table.csv --dataset cars` sets the lab rows
beside the paper's Cars196 rows (docs/METHOD.md §1.8). Different datasets: compare the
ordering of methods only.

{compare_markdown(table, 'cars')}""")
    parts.append("\n" + RUNBOOK.replace("{estimates}", estimate_markdown()))
    return "\n".join(p.rstrip() + "\n" for p in parts)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(write_report(sys.argv[1] if len(sys.argv) > 1 else "results"))
