"""Toy class manifolds in 2-D and the hardness-aware augmentation drawn on them (paper figs 1-2).

    toy = toy_manifolds()                          # three noisy curved classes, one chosen tuple
    geom = augmentation_geometry(toy, alpha=3.0, j_avg=2.0)
    draw_augmentation(ax, toy, geom)

The synthetic negative comes from the library (``hdml_lite.hdml.augment_triplet``),
never from a copy of its formula. The "generated" point is a CARTOON of what the
generator G and the re-embedding g aim for (label- and hardness-preserving): the
point of the negative class's manifold nearest to the synthetic negative. The real
generator is learnt (``hdml_lite.hdml.Generator``); notebook 04 shows its output.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..hdml.augment import augment_triplet, pull_factor
from ..hdml.objective import synthetic_weight
from .palette import LEGEND_PT, ROLE_COLORS, SERIES

MARKERS = ("o", "s", "^")
CLASS_ROLES = ("positive", "negative", "other")     # toy class 0: the anchor's; 1: the negative's; 2: another


def _curves(t: np.ndarray) -> list[np.ndarray]:
    """Centre lines of the three toy classes at parameters t (T,) in [0, 1] -> 3 x (T, 2)."""
    return [
        np.stack([-2.5 + 5.0 * t, -1.0 + 0.7 * np.sin(np.pi * t)], 1),          # class 0: a bump
        np.stack([-2.5 + 5.0 * t, 1.9 - 0.7 * np.sin(np.pi * t)], 1),           # class 1: a dip above it
        np.stack([3.9 + 0.9 * np.cos(np.pi * (0.5 + t)), 0.45 + 1.8 * np.sin(np.pi * (0.5 + t))], 1),  # an arc
    ]


@dataclass
class ToyData:
    """Points (N, 2), labels (N,), class centre lines (3 x (T, 2)) and one tuple (indices)."""
    points: np.ndarray
    labels: np.ndarray
    curves: list
    anchor: int
    positive: int
    negative: int

    def tuple_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(anchor, positive, negative), each (2,)."""
        return self.points[self.anchor], self.points[self.positive], self.points[self.negative]


def toy_manifolds(n_per_class: int = 40, noise: float = 0.12, seed: int = 0) -> ToyData:
    """Three classes lying on curves (the "class manifolds" of the paper's fig. 1).

    The tuple: an anchor in the middle of class 0, a positive near its left end and a
    negative from class 1, far to the right (an easy negative: d- > d+).
    """
    rng = np.random.default_rng(seed)
    pts, labels = [], []
    for k, curve in enumerate(_curves(rng.uniform(0, 1, n_per_class))):
        pts.append(curve + noise * rng.normal(size=curve.shape))
        labels.append(np.full(n_per_class, k))
    points, labels = np.concatenate(pts), np.concatenate(labels)
    dense = _curves(np.linspace(0, 1, 400))

    def nearest(k: int, target) -> int:
        idx = np.flatnonzero(labels == k)
        return int(idx[np.argmin(((points[idx] - np.asarray(target)) ** 2).sum(1))])

    anchor = nearest(0, _curves(np.array([0.5]))[0][0])
    positive = nearest(0, _curves(np.array([0.3]))[0][0])
    negative = nearest(1, _curves(np.array([0.95]))[1][0])
    return ToyData(points, labels, dense, anchor, positive, negative)


def _nearest_on_curve(curve: np.ndarray, q: np.ndarray) -> np.ndarray:
    return curve[np.argmin(((curve - q) ** 2).sum(1))]


def augmentation_geometry(toy: ToyData, alpha: float, j_avg: float) -> dict:
    """Where the synthetic negative of the toy tuple lands, from ``hdml_lite.hdml.augment_triplet``.

    Returns a dict of (2,) coordinates ``anchor, positive, negative, synthetic, generated`` and
    scalars ``d_pos, d_neg, d_syn`` (distances to the anchor), ``factor`` = exp(-alpha/J_avg),
    ``alpha``, ``j_avg``. ``generated`` is the cartoon of G + g (see the module docstring).
    """
    a, p, n = toy.tuple_points()
    t = lambda v: torch.as_tensor(v, dtype=torch.float64)[None]  # (1, 2)
    syn = augment_triplet(t(a), t(p), t(n), alpha, j_avg)[0].numpy()
    gen = _nearest_on_curve(toy.curves[int(toy.labels[toy.negative])], syn)
    dist = lambda u: float(np.linalg.norm(u - a))
    return {"anchor": a, "positive": p, "negative": n, "synthetic": syn, "generated": gen,
            "d_pos": dist(p), "d_neg": dist(n), "d_syn": dist(syn), "d_gen": dist(gen),
            "factor": pull_factor(alpha, j_avg), "alpha": float(alpha), "j_avg": float(j_avg)}


def draw_augmentation(ax, toy: ToyData, geom: dict, show_generated: bool = True, legend: bool = True):
    """Draw the toy classes, the tuple, the synthetic negative and the circles d+ and d(z, z^).

    Colours: ``palette.ROLE_COLORS`` (the anchor's class grey like the positive, the negative's
    class rose like the negative). When z^ coincides with z- (alpha = 0, or an already hard
    negative) both stay visible: z- is a large square, z^ a smaller cross on top, and the
    generated cartoon a hollow diamond drawn around them.
    """
    for k in range(3):
        m = toy.labels == k
        colour = ROLE_COLORS[CLASS_ROLES[k]]
        ax.plot(*toy.curves[k].T, color=colour, lw=1, alpha=0.35)
        ax.scatter(*toy.points[m].T, s=14, color=colour, marker=MARKERS[k], alpha=0.45,
                   label=f"class {k}" + (" (anchor's)" if k == 0 else " (negative's)" if k == 1 else ""))
    a, p, n, s = geom["anchor"], geom["positive"], geom["negative"], geom["synthetic"]
    ax.plot(*np.stack([a, n]).T, ls="--", color="0.4", lw=1)
    for r, ls, lab in ((geom["d_pos"], ":", r"$d^+ = d(z, z^+)$"), (geom["d_syn"], "-", r"$d(z, \hat{z}^-)$")):
        ax.add_patch(plt.Circle(a, r, fill=False, ls=ls, color="0.3", lw=1, label=lab))
    ax.scatter(*a, s=170, marker="*", color=ROLE_COLORS["anchor"], zorder=5, label=r"anchor $z$")
    ax.scatter(*p, s=80, marker="o", facecolor=ROLE_COLORS["positive"], edgecolor="black", zorder=5,
               label=r"positive $z^+$")
    same = bool(np.linalg.norm(s - n) < 1e-9)
    if show_generated:                                  # below the others, hollow: never hides them
        g = geom["generated"]
        if np.linalg.norm(g - s) > 0.15:
            ax.annotate("", xy=g, xytext=s, arrowprops=dict(arrowstyle="->", color=ROLE_COLORS["generated"], lw=1.5))
        ax.scatter(*g, s=260, marker="D", facecolor="none", edgecolor=ROLE_COLORS["generated"], lw=2, zorder=4,
                   label="generated (cartoon: back on class 1)")
    ax.scatter(*n, s=130, marker="s", facecolor=ROLE_COLORS["negative"], edgecolor="black", zorder=5,
               label=r"negative $z^-$")
    ax.scatter(*s, s=70, marker="X", color=ROLE_COLORS["synthetic"], edgecolor="white", lw=0.8, zorder=6,
               label=r"synthetic $\hat{z}^-$ (augment_triplet)" + (r" $= z^-$ here" if same else ""))
    if same:
        ax.annotate(r"$\hat{z}^- = z^-$", xy=n, xytext=(10, -16), textcoords="offset points", fontsize=9)
    ax.set_aspect("equal")
    ax.set_xlim(-3.3, 5.4)
    ax.set_ylim(-2.6, 3.0)
    ax.set_xlabel("embedding dimension 1")
    ax.set_ylabel("embedding dimension 2")
    ax.set_title(f"alpha = {geom['alpha']:.3g}, J_avg = {geom['j_avg']:.3g}: "
                 f"exp(-alpha/J_avg) = {geom['factor']:.2f}", fontsize=10)
    if legend:
        ax.legend(fontsize=LEGEND_PT, loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9)
    return ax


def plot_pull_factor(ax=None, alphas=(1.0, 7.0, 90.0), j_avg=None):
    """exp(-alpha / J_avg) against J_avg, one curve per alpha (``hdml_lite.hdml.pull_factor``)."""
    ax = ax or plt.subplots(figsize=(4.5, 3.4))[1]
    j = np.logspace(-1, 3, 200) if j_avg is None else np.asarray(j_avg)
    for i, al in enumerate(alphas):
        colour, ls = SERIES[i % len(SERIES)]
        ax.plot(j, [pull_factor(al, v) for v in j], color=colour, ls=ls, label=f"alpha = {al:g}")
    ax.set_xscale("log")
    ax.set_xlabel("J_avg (running metric loss)")
    ax.set_ylabel("exp(-alpha / J_avg)")
    ax.set_title("Pull factor: 1 = no pulling, 0 = pulled to d+")
    ax.legend(fontsize=LEGEND_PT)
    ax.grid(alpha=0.3)
    return ax


def plot_synthetic_weight(ax=None, betas=(5e3, 1e4, 5e4), j_gen=None):
    """1 - exp(-beta / J_gen) against J_gen (``hdml_lite.hdml.synthetic_weight``)."""
    ax = ax or plt.subplots(figsize=(4.5, 3.4))[1]
    j = np.logspace(2, 7, 200) if j_gen is None else np.asarray(j_gen)
    for i, b in enumerate(betas):
        colour, ls = SERIES[i % len(SERIES)]
        ax.plot(j, [synthetic_weight(b, v) for v in j], color=colour, ls=ls, label=f"beta = {b:g}")
    ax.set_xscale("log")
    ax.set_xlabel("J_gen (running generator loss)")
    ax.set_ylabel("weight of J_syn = 1 - exp(-beta / J_gen)")
    ax.set_title("Synthetic-loss weight: small while G is poor")
    ax.legend(fontsize=LEGEND_PT)
    ax.grid(alpha=0.3)
    return ax
