"""Plots a person would rather look at than read: learning curves, result bars.

Colours: the Okabe-Ito palette, readable for colour-blind readers.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
METRIC_NAMES = {"r1": "Recall@1", "nmi": "NMI", "f1": "F1", "map_r": "MAP@R", "r2": "Recall@2"}


def eval_curve(history: dict, metric: str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` on ``split`` from a trainer history."""
    rows = [e for e in history["eval"] if e["split"] == split and metric in e]
    return np.array([e["step"] for e in rows]), np.array([e[metric] for e in rows])


def plot_learning_curves(histories: dict, metrics=("r1", "nmi", "f1"), split: str = "test",
                         path: str | Path | None = None, title: str = "Learning curves"):
    """One panel per metric, one line per run. ``histories``: {label: history or [histories over seeds]}.

    With several seeds per label, the line is the mean and the band the min-max spread.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (label, hs) in enumerate(histories.items()):
            hs = hs if isinstance(hs, list) else [hs]
            curves = [eval_curve(h, metric, split) for h in hs]
            n = min(len(c[0]) for c in curves)
            if n == 0:
                continue
            steps = curves[0][0][:n]
            vals = np.stack([c[1][:n] for c in curves]) * 100
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            ax.plot(steps, vals.mean(0), marker="o", ms=3, color=colour, label=label)
            if len(hs) > 1:
                ax.fill_between(steps, vals.min(0), vals.max(0), color=colour, alpha=0.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{METRIC_NAMES.get(metric, metric)} (%)")
        ax.set_title(f"{METRIC_NAMES.get(metric, metric)} on {split} classes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_loss(history: dict, keys=("loss",), path=None, title="Training loss"):
    """Training losses against steps (a moving average of 20 steps)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, k in enumerate(keys):
        steps = np.array([r["step"] for r in history["train"] if k in r])
        vals = np.array([r[k] for r in history["train"] if k in r])
        if len(vals) == 0:
            continue
        w = min(20, len(vals))
        smooth = np.convolve(vals, np.ones(w) / w, mode="valid")
        ax.plot(steps[w - 1:], smooth, color=OKABE_ITO[i % len(OKABE_ITO)], label=k)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (moving average)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
