"""Plots a person would rather look at than read: learning curves, losses, sample grids.

Colours: ``hdml_lite.viz.palette`` (one colour per method; black and greys for other series).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .palette import FIG_MAX_W, LEGEND_PT, SERIES, color_for

# The Okabe-Ito colours (kept for code outside viz/ that indexes them; viz/ itself uses palette.py)
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ("-", "--", ":", "-.")
METRIC_NAMES = {"r1": "Recall@1", "nmi": "NMI", "f1": "F1", "map_r": "MAP@R", "r2": "Recall@2"}
METRIC_NAMES.update({"r4": "Recall@4", "r8": "Recall@8", "r_precision": "R-precision"})


def save_figure(fig, path: str | Path) -> None:
    """Write ``fig`` to ``path`` (parent folders made, 110 dpi) and close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def eval_curve(history: dict, metric: str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` on ``split`` from a trainer history."""
    rows = [e for e in history["eval"] if e["split"] == split and metric in e]
    return np.array([e["step"] for e in rows]), np.array([e[metric] for e in rows])


def plot_learning_curves(histories: dict, metrics=("r1", "nmi", "f1"), split: str = "test",
                         path: str | Path | None = None, title: str = "Learning curves"):
    """One panel per metric, one line per run. ``histories``: {label: history or [histories over seeds]}.

    With several seeds per label, the line is the mean and the band the min-max spread.
    Colours: ``palette.color_for(label)``; labels naming the same method differ by line style.
    NMI and F1 (k-means) are computed at the final evaluation only (training/trainer.py): their panel
    shows one point per run and says so.
    """
    colours = [color_for(label, i) for i, label in enumerate(histories)]
    styles = [LINESTYLES[colours[:i].count(c) % len(LINESTYLES)] for i, c in enumerate(colours)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(min(FIG_MAX_W, 3.2 * len(metrics)), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        longest = 0
        for i, (label, hs) in enumerate(histories.items()):
            hs = hs if isinstance(hs, list) else [hs]
            curves = [eval_curve(h, metric, split) for h in hs]
            n = min(len(c[0]) for c in curves)
            if n == 0:
                continue
            steps = curves[0][0][:n]
            vals = np.stack([c[1][:n] for c in curves]) * 100
            colour = colours[i]
            longest = max(longest, n)
            ax.plot(steps, vals.mean(0), marker="o", ms=3 if n > 1 else 6, color=colour, ls=styles[i], label=label)
            if len(hs) > 1:
                ax.fill_between(steps, vals.min(0), vals.max(0), color=colour, alpha=0.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{METRIC_NAMES.get(metric, metric)} (%)")
        ax.set_title(f"{METRIC_NAMES.get(metric, metric)} on {split} classes"
                     + ("\n(final evaluation only)" if longest == 1 else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=LEGEND_PT)
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def smoothing_window(n: int, max_window: int = 20) -> int:
    """Moving-average window for a series of n points: about n / 10, at least 1, at most ``max_window``."""
    return int(max(1, min(max_window, n // 10)))


def moving_average(steps, vals, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the trailing moving average over ``window`` points (NaN-free input (T,))."""
    steps, vals = np.asarray(steps), np.asarray(vals, dtype=float)
    if len(vals) == 0 or window <= 1:
        return steps, vals
    return steps[window - 1:], np.convolve(vals, np.ones(window) / window, mode="valid")


def plot_loss(history: dict, keys=("loss",), path=None, title="Training loss", labels: dict | None = None,
              log: bool = False):
    """Training losses against steps, a moving average over ``smoothing_window(n)`` steps (about
    a tenth of the run, at most 20: a 6-step run is drawn unsmoothed). ``labels``: legend text per
    key (default: the key), so that the legend can use the title's names."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    w = 1
    for i, k in enumerate(keys):
        steps = np.array([r["step"] for r in history["train"] if k in r])
        vals = np.array([r[k] for r in history["train"] if k in r])
        if len(vals) == 0:
            continue
        w = smoothing_window(len(vals))
        colour, ls = SERIES[i % len(SERIES)]
        ax.plot(*moving_average(steps, vals, w), color=colour, ls=ls, label=(labels or {}).get(k, k))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (moving average over {w} steps)" if w > 1 else "loss (per step)")
    ax.set_title(title)
    ax.legend(fontsize=LEGEND_PT)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_class_grid(dataset, n_classes: int = 12, per_class: int = 8, seed: int = 0,
                    title: str = "Samples per class"):
    """A grid of images: one row per class (spread over the split), ``per_class`` random samples each.

    dataset: an ArrayDataset-like object with ``.images`` (N, C, H, W) uint8, ``.labels`` (N,)
    and ``.class_names``. The row label is the class name.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(dataset.labels)
    rows = classes[np.linspace(0, len(classes) - 1, min(n_classes, len(classes))).round().astype(int)]
    cell = min(0.75, (FIG_MAX_W - 0.8) / max(1, per_class))
    fig, axes = plt.subplots(len(rows), per_class, figsize=(cell * per_class + 0.8, cell * len(rows) + 0.5),
                             squeeze=False)
    for r, c in enumerate(rows):
        idx = np.flatnonzero(dataset.labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False)
        for k, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if k < len(pick):
                img = np.asarray(dataset.images[pick[k]])
                ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1), cmap="gray")
        axes[r][0].set_ylabel(str(dataset.class_names[c]), rotation=0, ha="right", va="center", fontsize=11)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_hdml_state(history: dict, alpha: float, beta: float, title: str = "HDML's running state"):
    """From an HDML run's history: J_avg and J_gen (log scale), the pull factor exp(-alpha/J_avg)
    (``hdml_lite.hdml.pull_factor``) and the synthetic-loss weight 1 - exp(-beta/J_gen)."""
    from ..hdml.augment import pull_factor

    rows = [r for r in history["train"] if "j_avg" in r]
    steps = np.array([r["step"] for r in rows])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(FIG_MAX_W, 3.6))
    (c0, s0), (c1, s1) = SERIES[:2]
    a1.plot(steps, [r["j_avg"] for r in rows], color=c0, ls=s0, label="J_avg (metric loss)")
    a1.plot(steps, [r["j_gen_avg"] for r in rows], color=c1, ls=s1, label="J_gen (generator loss)")
    a1.set_yscale("log")
    a1.set_xlabel("training step")
    a1.set_ylabel("running mean (log scale)")
    a1.set_title("Running losses (held fixed within a block)")
    a1.legend(fontsize=LEGEND_PT)
    a1.grid(alpha=0.3)
    a2.plot(steps, [pull_factor(alpha, r["j_avg"]) for r in rows], color=c0, ls=s0,
            label=f"exp(-alpha/J_avg), alpha = {alpha:g}")
    a2.plot(steps, [r["weight_syn"] for r in rows], color=c1, ls=s1, label=f"weight of J_syn, beta = {beta:g}")
    a2.set_ylim(-0.05, 1.05)
    a2.set_xlabel("training step")
    a2.set_ylabel("factor")
    a2.set_title("How hard, and how much the synthetics count")
    a2.legend(fontsize=LEGEND_PT)
    a2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_npair_batch(images, labels, n_pairs: int = 8, class_names=None,
                     title: str = "An N-pair batch: class-major pairs"):
    """The first ``n_pairs`` pairs of a batch in the NPairSampler's order [c0a, c0b, c1a, c1b, ...]:
    anchors on the top row, positives below. images: (B, C, H, W) (network input, any range);
    class_names: optional names indexed by label, for the column titles."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    n_pairs = min(n_pairs, len(images) // 2)
    cell = min(1.1, (FIG_MAX_W - 0.8) / max(1, n_pairs))
    fig, axes = plt.subplots(2, n_pairs, figsize=(cell * n_pairs + 0.8, 2.8), squeeze=False)
    for k in range(n_pairs):
        for r, name in enumerate(("anchor", "positive")):
            ax = axes[r][k]
            img = images[2 * k + r]
            ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(name)
        c = int(labels[2 * k])
        axes[0][k].set_title(f"class {c}" + (f": {class_names[c]}" if class_names is not None else ""), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
