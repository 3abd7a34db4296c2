"""HDML's mechanism over training steps: is it switched on? (docs/METHOD.md §5)

    plot_mechanism({"HDML": run.history, "HDML without J_soft": other.history})

Four panels, one colour per method (``palette.color_for``), each series lightly smoothed
(a moving average over about a twentieth of the run):

1. classifier accuracy on real features ``acc_real`` (solid) and label preservation
   ``acc_syn`` (dashed: the same classifier on the generated features, against the
   labels they should keep);
2. the weight of the synthetic loss ``weight_syn = 1 - exp(-beta / J_gen)``;
3. the pull factor ``exp(-alpha / J_avg)`` (log scale: 1 = no pulling, ~0 = every
   negative pulled to d+);
4. hardness, the median d(anchor, negative) / d(anchor, positive) of the real negatives
   ``hard_real`` (solid), of the augmentor's z^ ``hard_aug`` (dashed) and of the
   generated, re-embedded z~ ``hard_gen`` (dotted); 1 = as close as the positive.

Runs without a key (a baseline, an older run) are left out of that panel; a panel with
no data says so.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from .palette import FIG_MAX_W, LEGEND_PT, color_for
from .plots import moving_average, save_figure

PANELS = (   # four panels in a 2 x 2 grid, at most FIG_MAX_W wide (a laptop screen)
    ("Classifier: real accuracy (solid),\nlabel kept on synthetics (dashed)",
     (("acc_real", "-"), ("acc_syn", "--")), "accuracy", False),
    ("Weight of the synthetic loss J_syn", (("weight_syn", "-"),), "1 - exp(-beta / J_gen)", False),
    ("Pull factor\n(1 = no pulling, ~0 = pulled to d+)", (("pull_factor", "-"),), "exp(-alpha / J_avg)", True),
    ("Hardness: real (solid), z^ (dashed), z~ (dotted)",
     (("hard_real", "-"), ("hard_aug", "--"), ("hard_gen", ":")), "median d(a, n) / d(a, p)", False),
)


def series(history: dict, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` in ``history["train"]``, finite values only."""
    rows = [r for r in history.get("train", []) if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return np.array([r["step"] for r in rows]), np.array([float(r[key]) for r in rows])


def light_window(n: int) -> int:
    """Moving-average window for n points: about n / 20, at least 1, at most 25."""
    return int(max(1, min(25, n // 20)))


def plot_mechanism(histories: dict, path: str | Path | None = None, title: str = "HDML's mechanism over training"):
    """Four panels of HDML's per-step diagnostics for each run in ``histories`` ({label: history}).

    Returns the figure (saved to ``path`` and closed when given).
    """
    fig, axes = plt.subplots(2, 2, figsize=(FIG_MAX_W, 7.2))
    axes = axes.ravel()
    colours = {label: color_for(label, i) for i, label in enumerate(histories)}
    for ax, (panel_title, keys, ylabel, log) in zip(axes, PANELS):
        drawn = 0
        for label, hist in histories.items():
            for k, (key, ls) in enumerate(keys):
                steps, vals = series(hist, key)
                if len(vals) == 0:
                    continue
                xs, ys = moving_average(steps, vals, light_window(len(vals)))
                if log:
                    ys = np.maximum(ys, 1e-12)
                ax.plot(xs, ys, color=colours[label], ls=ls, lw=1.6, label=label if k == 0 else "_" + label)
                drawn += 1
        if drawn == 0:
            ax.text(0.5, 0.5, "not logged by these runs", ha="center", va="center", transform=ax.transAxes,
                    color="0.4")
        if log and drawn:
            ax.set_yscale("log")
        if keys[0][0] == "hard_real" and drawn:
            ax.axhline(1.0, color="black", lw=0.8, ls="-.", label="d+ (as close as the positive)")
        if keys[0][0] in ("acc_real", "weight_syn"):
            ax.set_ylim(-0.03, 1.03)
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if drawn:
            handles, names = ax.get_legend_handles_labels()
            if len(keys) > 1:                      # which line style is which series
                handles += [Line2D([], [], color="0.3", ls=ls) for _, ls in keys]
                names += [key for key, _ in keys]
            ax.legend(handles, names, fontsize=LEGEND_PT)
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
