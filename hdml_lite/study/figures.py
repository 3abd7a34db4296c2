"""The study's figures (results/*.png): pure functions of CSV rows, one colour per method."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .tables import NAMES, by_method, label, sweep_points


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
    # R@1 at every evaluation; NMI and F1 (k-means) at the final one only (training/trainer.py)
    plot_learning_curves(histories, metrics=("r1", "nmi", "f1"), split="test", path=path,
                         title=f"{regime} regime: learning curves on the test classes (mean, min-max over seeds)")


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
            if split == "val":      # one label per grid point, alternately above and below (readable near p = 1)
                for j, p in enumerate(pts):
                    ax.annotate(f"p={p['pull_target']:g}\nα={p['alpha']:.2g}", (p["pull_factor"], 100 * p["mean"]),
                                fontsize=6, textcoords="offset points", ha="center",
                                xytext=(0, 6 if j % 2 == 0 else -18))
        ref = (reference or {}).get(meth)
        if ref:
            ax.axhline(100 * ref["r1"], color="grey", ls="--", lw=1, label="base loss, val classes, seed 0")
        if chosen and meth in chosen:
            pc = [p for p in sweep_points(rows, meth, "val") if math.isclose(p["alpha"], chosen[meth], rel_tol=1e-4)]
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


def plot_tradeoff(rows: list[dict], path: Path, regime: str) -> None:
    """acc_syn (labels kept) against hardness (hard_gen / hard_real), one point per run of the alpha
    grid, coloured by the pull target; one panel per HDML method."""
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    targets = sorted({r["pull_target"] for r in rows}, reverse=True)
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4), squeeze=False)
    for ax, meth in zip(axes[0], methods):
        for i, p in enumerate(targets):
            pts = [r for r in rows if r["method"] == meth and r["pull_target"] == p and "hard_ratio" in r]
            ax.scatter([r["hard_ratio"] for r in pts], [r["acc_syn"] for r in pts], color=cmap(i / max(1, len(targets) - 1)),
                       label=f"p = {p:g}", s=30)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("hardness kept: median hard_gen / hard_real (lower = harder)")
        ax.set_ylabel("labels kept: median acc_syn")
        ax.set_title(label(meth))
        ax.legend(title="pull target", fontsize=8)
    fig.suptitle(f"Hardness-label trade-off over the alpha grid ({regime} regime, validation classes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


