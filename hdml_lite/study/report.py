"""Figures and ``results/README.md`` from the study's CSV files (rerunnable: ``python -m hdml_lite.study report``).

Reads ``lab_table.csv``, ``curves.csv``, ``sweep.csv``, ``selection.csv`` and ``study.json``
in the results folder, writes ``lab_table.png``, ``curves.png``, ``sweep.png`` and
``README.md``. The verdicts on the paper's claims are computed from the numbers by
``verdict`` (a fixed rule, stated in the README), not written by hand; hand-written
notes can be added in ``notes.md`` beside the CSV files and are included verbatim.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .collect import estimate_markdown
from .paper import DISPLAY, compare_markdown, read_rows, split_name

TABLE_METRICS = ("nmi", "f1", "r1", "r2", "r4", "r8", "map_r")
NAMES = {"nmi": "NMI", "f1": "F1", "r1": "R@1", "r2": "R@2", "r4": "R@4", "r8": "R@8", "map_r": "MAP@R"}


ORDER = ("lab_contrastive", "lab_triplet", "lab_semihard", "lab_lifted", "lab_npair", "lab_angular",
         "lab_hdml_triplet", "lab_hdml_npair", "lab_hdc", "lab_hdml_npair_nosoftmax", "lab_hdml_npair_norecon")


def label(method: str) -> str:
    return DISPLAY.get(split_name(method)[1], method)


def ordered(rows: list[dict]) -> list[dict]:
    """Rows in the table's order (ORDER first, other methods after, each by seed)."""
    rank = {m: i for i, m in enumerate(ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["method"], len(ORDER)), str(r["method"]), r.get("seed", 0)))


def by_method(rows: list[dict], metric: str) -> dict:
    """{method: np.array of the metric over seeds (fractions)}, in the CSV's order."""
    out: dict = {}
    for r in rows:
        if isinstance(r.get(metric), float):
            out.setdefault(r["method"], []).append(r[metric])
    return {m: np.array(v) for m, v in out.items()}


def fmt(v: np.ndarray, scale: float = 100.0, digits: int = 1) -> str:
    if v is None or len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{scale * v[0]:.{digits}f}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std():.{digits}f}"


def verdict(a: np.ndarray, b: np.ndarray) -> str:
    """Is A > B? "yes" when every seed of A beats every seed of B; "direction only" when the mean
    is higher but the seed ranges overlap; "no" when the mean is not higher."""
    if len(a) == 0 or len(b) == 0:
        return "no data"
    if a.mean() <= b.mean():
        return "no"
    return "yes" if a.min() > b.max() else "direction only (seed ranges overlap)"


# ---------------------------------------------------------------- figures
def plot_table(rows: list[dict], path: Path, metrics=("r1", "nmi", "f1")) -> None:
    import matplotlib.pyplot as plt

    from ..viz.plots import OKABE_ITO, save_figure

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.75 * len(methods) * len(metrics) / 2), 3.8))
    width = 0.8 / len(metrics)
    x = np.arange(len(methods))
    for i, m in enumerate(metrics):
        vals = by_method(rows, m)
        mean = [100 * vals[k].mean() for k in methods]
        std = [100 * vals[k].std() for k in methods]
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, mean, width, yerr=std, capsize=2,
               color=OKABE_ITO[i], label=NAMES[m])
    ax.set_xticks(x, [label(k) for k in methods], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test classes, % (mean ± std over seeds)")
    ax.set_title("Lab study: final models on the test classes")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_curves(rows: list[dict], path: Path) -> None:
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
                         title="Learning curves on the test classes (mean, min-max band over seeds); paper fig. 4-5")


def plot_sweep(rows: list[dict], path: Path, reference: dict | None = None, chosen: float | None = None) -> None:
    import matplotlib.pyplot as plt

    from ..viz.plots import OKABE_ITO, save_figure

    alphas = sorted({float(r["alpha"]) for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, m in zip(axes, ("r1", "nmi")):
        for i, split in enumerate(("val", "test")):
            vals = [[100 * r[m] for r in rows if float(r["alpha"]) == a and r["split"] == split] for a in alphas]
            ax.plot(alphas, [np.mean(v) if v else np.nan for v in vals], marker="o", color=OKABE_ITO[i],
                    label=f"HDML (N-pair), {split} classes")
            if reference and split in reference and reference[split]:
                ax.axhline(100 * reference[split][m], color=OKABE_ITO[i], ls="--", lw=1,
                           label=f"N-pair, {split} classes")
        if chosen is not None:
            ax.axvline(chosen, color="grey", ls=":", lw=1, label=f"chosen alpha = {chosen:g}")
        lin = max(min([a for a in alphas if a > 0] or [1.0]), 1e-3)
        ax.set_xscale("symlog", linthresh=lin)
        ax.set_xlim(-0.1 * lin, 1.5 * max(alphas + [lin]))
        ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
        ax.minorticks_off()
        ax.set_xlabel("alpha (pulling factor; 0 = no pulling; symlog axis)")
        ax.set_ylabel(f"{NAMES[m]} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Pulling-factor sweep (paper fig. 6-7): seed 0, trained on 80% of the train classes")
    fig.tight_layout()
    save_figure(fig, path)


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


def selection_table(rows: list[dict]) -> str:
    lines = ["| stage | method | lr | alpha | val R@1 | val NMI | val F1 | val MAP@R | chosen |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        alpha = "" if r.get("alpha") in (None, "") else f"{r['alpha']:g}"
        lines.append(f"| {r['stage']} | {label(r['method'])} | {r['lr']:g} | {alpha} | {100 * r['val_r1']:.1f} | "
                     f"{100 * r['val_nmi']:.1f} | {100 * r['val_f1']:.1f} | {100 * r['val_map_r']:.1f} | "
                     f"{'**yes**' if int(r['chosen']) else ''} |")
    return "\n".join(lines)


def sweep_table(rows: list[dict]) -> str:
    alphas = sorted({float(r["alpha"]) for r in rows})
    lines = ["| alpha | val R@1 | val NMI | test R@1 | test NMI |", "|---|---|---|---|---|"]
    for a in alphas:
        cell = {}
        for split in ("val", "test"):
            for m in ("r1", "nmi"):
                v = [r[m] for r in rows if float(r["alpha"]) == a and r["split"] == split]
                cell[split, m] = f"{100 * np.mean(v):.1f}" if v else "-"
        lines.append(f"| {a:g} | {cell['val', 'r1']} | {cell['val', 'nmi']} | {cell['test', 'r1']} | "
                     f"{cell['test', 'nmi']} |")
    return "\n".join(lines)


def _gap(a: np.ndarray, b: np.ndarray) -> str:
    return f"{100 * (a.mean() - b.mean()):+.1f} points ({fmt(a)} vs {fmt(b)})"


def claims(table: list[dict], sweep: list[dict], study: dict) -> str:
    """The paper's claims, each with the lab numbers and the rule's verdict."""
    r1, nmi = by_method(table, "r1"), by_method(table, "nmi")
    get = lambda d, k: d.get(k, np.array([]))  # noqa: E731
    out = ["| paper's claim | lab evidence (R@1; NMI), mean ± std over seeds, % | supported? |", "|---|---|---|"]

    def row(text, a, b):
        va, vn = verdict(get(r1, a), get(r1, b)), verdict(get(nmi, a), get(nmi, b))
        if a not in r1 or b not in r1:
            out.append(f"| {text} | no data | no data |")
            return
        out.append(f"| {text} | R@1 {_gap(r1[a], r1[b])}; NMI {_gap(nmi[a], nmi[b])} | R@1: {va}; NMI: {vn} |")

    row("HDML improves N-pair (tables 1-3)", "lab_hdml_npair", "lab_npair")
    row("HDML improves triplet (tables 1-3)", "lab_hdml_triplet", "lab_triplet")
    row("N-pair beats triplet (tables 1-3)", "lab_npair", "lab_triplet")
    row("Without the softmax term, HDML is (much) worse (fig. 5)", "lab_hdml_npair", "lab_hdml_npair_nosoftmax")
    row("Without reconstruction, HDML still beats the baseline (fig. 5)", "lab_hdml_npair_norecon", "lab_npair")
    row("HDC's cascade beats its single contrastive loss (HDC paper)", "lab_hdc", "lab_contrastive")
    if "lab_hdml_npair" in r1 and "lab_hdml_triplet" in r1:
        gn = r1["lab_hdml_npair"].mean() - get(r1, "lab_npair").mean()
        gt = r1["lab_hdml_triplet"].mean() - get(r1, "lab_triplet").mean()
        out.append(f"| HDML's gain is larger for triplet than for N-pair (tables 1-3) | R@1 gain: triplet "
                   f"{100 * gt:+.1f}, N-pair {100 * gn:+.1f} | {'yes' if gt > gn else 'no'} (means only) |")
    best = max(r1, key=lambda k: r1[k].mean()) if r1 else None
    if best and len(set(r1) & set(ORDER[:9])) < 9:
        out.append("| HDML (N-pair) has the best R@1 of the compared methods (tables 1-3) | not every method "
                   "has finished | no data |")
    elif best:
        out.append(f"| HDML (N-pair) has the best R@1 of the compared methods (tables 1-3) | best: {label(best)} "
                   f"({fmt(r1[best])}) | {'yes' if best == 'lab_hdml_npair' else 'no'} |")
    val = [r for r in sweep if r["split"] == "val"]
    if val:
        alphas = sorted({float(r["alpha"]) for r in val})
        mean = {a: np.mean([r["r1"] for r in val if float(r["alpha"]) == a]) for a in alphas}
        peak = max(alphas, key=lambda a: mean[a])
        inner = alphas[0] < peak < alphas[-1]
        out.append(f"| Performance rises with alpha, peaks at an intermediate value, then falls (fig. 6-7) | "
                   f"val R@1 by alpha: " + ", ".join(f"{a:g}: {100 * mean[a]:.1f}" for a in alphas)
                   + f" (peak at {peak:g}) | {'yes' if inner else 'no'} (one seed) |")
    return "\n".join(out)


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


def write_report(out: str | Path) -> Path:
    """Figures + README.md in ``out`` from the CSV files there. Returns the README path."""
    out = Path(out)
    study = json.loads((out / "study.json").read_text()) if (out / "study.json").is_file() else {}
    load = lambda n: read_rows(out / n) if (out / n).is_file() else []  # noqa: E731
    table, curves, sweep, selection = load("lab_table.csv"), load("curves.csv"), load("sweep.csv"), load("selection.csv")
    for r in table + curves + sweep + selection:
        for k in ("seed", "step"):
            if isinstance(r.get(k), float):
                r[k] = int(r[k])
    table = ordered(table)
    if table:
        plot_table(table, out / "lab_table.png")
    if curves:
        plot_curves(curves, out / "curves.png")
    if sweep:
        plot_sweep(sweep, out / "sweep.png", study.get("sweep_reference"), (study.get("alpha") or {}).get("lab_hdml_npair"))
    text = render(study, table, curves, sweep, selection, out)
    path = out / "README.md"
    path.write_text(text)
    return path


def render(study: dict, table, curves, sweep, selection, out: Path) -> str:
    steps, seeds = study.get("steps", "?"), study.get("seeds", "?")
    fast = study.get("fast")
    lr, alpha = study.get("lr", {}), study.get("alpha", {})
    n_runs = study.get("runs_total") or len(selection) + len(table)
    notes = (out / "notes.md").read_text() if (out / "notes.md").is_file() else ""
    done, total = study.get("runs_done"), study.get("runs_total")
    partial = (f"**PARTIAL: {done} of {total} runs had finished when this page was written; the study "
               f"is still running. Rerun `python -m hdml_lite.study lab` (it skips finished runs) to "
               f"complete it and regenerate this page.**" if done is not None and total and done < total else "")
    cpu = study.get("cpu_s_per_run")
    cost = (f" Measured CPU time: {cpu:.0f} s per run on average (training and evaluations, "
            f"`time.process_time`, {study.get('cpu_s_measured_runs')} runs), so the {total} runs need about "
            f"{cpu * total / 60:.0f} CPU-minutes: **about {cpu * total / 120:.0f} minutes on 2 idle cores**."
            if cpu and total else "")
    parts = [f"""# Reproduction study

{'**FAST MODE: tiny data and 6 steps; the numbers below mean nothing, only the code path is real.**' if fast else ''}
{partial}

What this folder holds: a lab analogue of the HDML paper's tables 1-3 and figures 4-7 on the
kit's embedded glyph dataset (zero-shot: the test classes are never seen in training), run on
a CPU with the lab presets, plus a runbook and a comparison generator for the paper's
protocol on a GPU. All scores are on the **test classes**, for the **final** model, in %.

| file | what | regenerate with |
|---|---|---|
| `lab_table.csv` | one row per method and seed: `method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s` (fractions; train_s = seconds in the training loop, evaluations excluded) | `python -m hdml_lite.study lab` |
| `curves.csv` | learning curves `method,seed,step,split,nmi,f1,r1` | same |
| `sweep.csv` | alpha sweep `alpha,seed,split,r1,nmi,f1` (validation and test classes) | same |
| `selection.csv` | every hyper-parameter selection run, scored on the validation classes | same |
| `study.json` | the settings, chosen values and duration | same |
| `lab_table.png`, `curves.png`, `sweep.png`, this README | figures and tables | `python -m hdml_lite.study report` (from the CSV files, seconds) |

The whole study is one command, `python -m hdml_lite.study lab` (runs in `runs/study/`,
git-ignored; rerun it after an interruption: finished runs are skipped, an interrupted run
resumes from its checkpoint).{cost}
The test suite runs the same code path on tiny settings: `python -m hdml_lite.study lab --fast --out /tmp/study`.

## Protocol

- Data: the embedded glyphs (177 train classes, 177 disjoint test classes, 48 images per
  class, 32x32 grey), model: the small CNN of the lab presets (width 16, embedding 64),
  Adam. Every run has the **same budget: {steps} training steps** (the lab presets' budget,
  the same for all methods, chosen so that the whole study of {n_runs} runs fits
  in about an hour on 2 CPU cores), batches of ~64 images (N-pair: 32 classes x 2;
  triplet: 22 triplets; others: 16 classes x 4; HDC: 10 classes x 6).
- Hyper-parameter selection, on a **validation split of the training classes** (never on
  the test classes): `data.val_classes={study.get('val_classes', 0.2)}` holds out 20% of the
  train classes; seed 0; the highest validation Recall@1 wins (ties: NMI).
  - every baseline and HDC: lr in {study.get('lrs', [])};
  - HDML (N-pair): alpha in {study.get('alphas_npair', [])}, HDML (triplet): alpha in
    {study.get('alphas_triplet', [])}, each at the lr chosen for its baseline loss.
    The lab's J_avg falls from about 6 to 1.7 over an N-pair run and from about 100 to 11 over
    a triplet run (a sum over 22 triplets), so these grids span the pull factor exp(-alpha/J_avg)
    from 1 (no pulling) to ~0 (N-pair; every negative pulled to d+) or ~0.1 (triplet).
    Other HDML settings are the lab presets' (official form, 20-step blocks for J_avg/J_gen,
    beta 1e4, lambda 0.5, softmax factor 1e4, lr_gen 1e-2, s_lr 1e-3).
- Final runs: the chosen values, **{seeds} seed{'s' if seeds != 1 else ''}**, trained on **all** train classes
  (`data.val_classes=0`), the final model scored on the test classes.

Chosen values: """ + ", ".join(f"{label(k)}: lr {v:g}" for k, v in lr.items())
        + "; " + ", ".join(f"{label(k)}: alpha {v:g}" for k, v in alpha.items()) + "."]
    if table:
        parts.append(f"""
## Tables 1-3 analogue: test classes, final models, mean ± std over seeds (%)

{main_table(table)}

The "w/o" rows are the ablations of figure 5 (HDML (N-pair) with `hdml.softmax=false` /
`hdml.recon=false`). Training time: wall-clock seconds in the training loop per run,
evaluations excluded, measured while several runs shared the 2 cores with other jobs of the
machine: compare orders of magnitude only (HDML's extra cost is the generator and classifier,
small next to the CNN).

![final models](lab_table.png)
""")
    if curves:
        parts.append("""
## Figures 4-5 analogue: learning curves

N-pair, HDML (N-pair) and its two ablations, evaluated on the test classes during training
(for the curves only: the reported model is always the final one). Line: mean over seeds;
band: min-max.

![learning curves](curves.png)
""")
    if sweep:
        parts.append(f"""
## Figures 6-7 analogue: the pulling factor alpha

These are the alpha-selection runs of HDML (N-pair): seed 0, trained on 80% of the train
classes, scored on the held-out validation classes (which chose alpha) and on the test
classes (shown, not used). Dashed: N-pair at its chosen lr in the same setting. alpha = 0
means no pulling (the synthetic branch still runs, on unmodified negatives).

{sweep_table(sweep)}

![alpha sweep](sweep.png)
""")
    if table:
        parts.append(f"""
## Which of the paper's claims the lab data support

Rule (fixed in `hdml_lite/study/report.py`, `verdict`): **yes** when every seed of the first
method beats every seed of the second; **direction only** when its mean is higher but the seed
ranges overlap; **no** when its mean is not higher. This is a small dataset, a small CNN and a
short budget: a "no" here says the effect does not show up in this setting, not that the paper
is wrong on CUB/Cars196/SOP, and a "yes" does not confirm the paper's numbers.

{claims(table, sweep, study)}
""")
    if notes:
        parts.append("\n" + notes.strip() + "\n")
    if selection:
        parts.append(f"""
## Hyper-parameter selection runs (validation classes, seed 0)

{selection_table(selection)}
""")
    if table:
        parts.append(f"""
## Beside the paper's numbers

`python -m hdml_lite.study compare results/lab_table.csv --dataset cars` prints the lab rows
beside the paper's Cars196 rows (docs/METHOD.md §1.8). They are different datasets, so the gap
says nothing about fidelity; compare the ordering of methods only.

{compare_markdown(table, 'cars')}""")
    parts.append("\n" + RUNBOOK.replace("{estimates}", estimate_markdown()))
    return "\n".join(p.rstrip() + "\n" for p in parts)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(write_report(sys.argv[1] if len(sys.argv) > 1 else "results"))

