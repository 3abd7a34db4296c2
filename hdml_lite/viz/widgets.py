"""Slider update functions (plain functions, testable without a browser) and thin ipywidgets wrappers.

    update_augmentation(alpha, j_avg)          -> dict of 2-D coordinates and distances (toy picture)
    update_tsne_alpha(alpha, maps)             -> the map of the model trained with that alpha
    update_synthetic(alpha, explorer)          -> where that alpha puts the synthetic negatives in a map

Each takes ``draw=True`` to also build a matplotlib figure (returned under "fig"). The
``*_widget`` functions wrap them with ``ipywidgets.interactive``; in a notebook, display
the returned widget. ``continuous_update=False``: the figure is redrawn when the slider
is released.
"""
from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np

from .palette import FIG_MAX_W, LEGEND_PT, ROLE_COLORS
from .toy import ToyData, augmentation_geometry, draw_augmentation, toy_manifolds
from .tsne import thumbnail_scatter


@lru_cache(maxsize=1)
def _default_toy() -> ToyData:
    return toy_manifolds()


# ---------------------------------------------------------------- the toy augmentation (notebook 01)
def update_augmentation(alpha: float, j_avg: float, toy: ToyData | None = None, draw: bool = False) -> dict:
    """Synthetic negative of the toy tuple at (alpha, J_avg): see ``toy.augmentation_geometry``."""
    toy = toy or _default_toy()
    geom = augmentation_geometry(toy, alpha, j_avg)
    if draw:
        fig, ax = plt.subplots(figsize=(FIG_MAX_W, 4.6))
        draw_augmentation(ax, toy, geom)
        fig.tight_layout()
        geom["fig"] = fig
    return geom


def augmentation_widget(toy: ToyData | None = None, alpha: float = 2.0, j_avg: float = 2.0):
    """Sliders for alpha and J_avg that move the toy synthetic negative."""
    import ipywidgets as w

    def show(alpha, j_avg):
        update_augmentation(alpha, j_avg, toy, draw=True)
        plt.show()

    return w.interactive(
        show,
        alpha=w.FloatSlider(value=alpha, min=0.0, max=20.0, step=0.25, description="alpha", continuous_update=False),
        j_avg=w.FloatLogSlider(value=j_avg, base=10, min=-1, max=2, step=0.05, description="J_avg",
                               continuous_update=False))


# ---------------------------------------------------------------- maps of models trained with different alpha
def nearest_alpha(alpha: float, available) -> float:
    """The available alpha closest to ``alpha`` (sliders may land between trained values)."""
    available = sorted(float(a) for a in available)
    return available[int(np.argmin([abs(a - float(alpha)) for a in available]))]


def update_tsne_alpha(alpha: float, maps: dict, images=None, draw: bool = False, n_thumbs: int = 40,
                      class_names=None) -> dict:
    """The t-SNE map of the model trained with ``alpha`` (the nearest trained one).

    maps: {alpha: {"coords": (N, 2), "labels": (N,), optional "metrics": {...}}}.
    Returns {"alpha", "points" (N, 2), "labels", "metrics"} (+ "fig" when draw).
    """
    a = nearest_alpha(alpha, maps)
    m = maps[a]
    out = {"alpha": a, "points": np.asarray(m["coords"]), "labels": np.asarray(m["labels"]),
           "metrics": m.get("metrics", {})}
    if draw:
        fig, ax = plt.subplots(figsize=(7, 7))
        r1 = out["metrics"].get("r1")
        title = f"HDML trained with alpha = {a:g}" + (f"  (test R@1 {100 * r1:.1f}%)" if r1 is not None else "")
        thumbnail_scatter(ax, out["points"], images, out["labels"], n_thumbs=n_thumbs, title=title,
                          class_names=class_names)
        fig.tight_layout()
        out["fig"] = fig
    return out


def tsne_alpha_widget(maps: dict, images=None, n_thumbs: int = 40, class_names=None):
    """A slider over the trained alphas showing each model's map."""
    import ipywidgets as w

    def show(alpha):
        update_tsne_alpha(alpha, maps, images, draw=True, n_thumbs=n_thumbs, class_names=class_names)
        plt.show()

    options = [(f"{a:g}", a) for a in sorted(maps)]
    return w.interactive(show, alpha=w.SelectionSlider(options=options, value=options[0][1], description="alpha",
                                                       continuous_update=False))


# ---------------------------------------------------------------- synthetic negatives placed into a map
def draw_synthetic(ax, explorer, view: dict, title: str | None = None):
    """The map (small grey points; the anchor's class dark grey) with the anchor, its positive, the
    real negatives, the synthetic negatives z^ and their re-embedded generator outputs z~ at one
    alpha (colours: ``palette.ROLE_COLORS``)."""
    c = explorer.coords
    own = explorer.labels == explorer.labels[explorer.anchor]
    size = float(np.clip(3000.0 / len(c), 3.0, 30.0))
    ax.scatter(c[~own, 0], c[~own, 1], s=size, color=ROLE_COLORS["other"], alpha=0.5, linewidths=0)
    ax.scatter(c[own, 0], c[own, 1], s=size, color=ROLE_COLORS["positive"], alpha=0.6, linewidths=0,
               label="anchor's class")
    neg, syn, gen = view["negatives_xy"], view["synthetic_xy"], view["generated_xy"]
    for (x0, y0), (x1, y1) in zip(neg, syn):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="0.35", lw=0.8))
    ax.scatter(*gen.T, s=90, marker="D", facecolor="none", edgecolor=ROLE_COLORS["generated"], lw=2,
               label="generated z~ = g(G(z^)) (eval mode)", zorder=4)
    ax.scatter(*neg.T, s=80, marker="s", facecolor=ROLE_COLORS["negative"], edgecolor="black",
               label="real negatives z-", zorder=5)
    ax.scatter(*syn.T, s=50, marker="X", color=ROLE_COLORS["synthetic"], edgecolor="white", lw=0.6,
               label="synthetic z^ (augment)", zorder=6)
    ax.scatter(*view["positive_xy"], s=90, marker="o", facecolor=ROLE_COLORS["positive"], edgecolor="black",
               label="positive z+", zorder=6)
    ax.scatter(*view["anchor_xy"], s=220, marker="*", color=ROLE_COLORS["anchor"], label="anchor z", zorder=7)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=LEGEND_PT, loc="best", framealpha=0.9)
    ax.set_title(title or (f"alpha = {view['alpha']:.3g}, J_avg = {view['j_avg']:.3g}: "
                           f"exp(-alpha/J_avg) = {view['factor']:.2f}"), fontsize=10)
    return ax


def update_synthetic(alpha: float, explorer, draw: bool = False) -> dict:
    """Positions (map coordinates) of the anchor's synthetic negatives and generated points at
    ``alpha``, from a ``SyntheticExplorer`` (cached after ``explorer.precompute``)."""
    view = dict(explorer.at(alpha))
    if draw:
        fig, axes = plt.subplots(1, 2, figsize=(FIG_MAX_W, 5.0), gridspec_kw={"width_ratios": [1.5, 1]})
        draw_synthetic(axes[0], explorer, view)
        ax = axes[1]
        k = np.arange(len(view["d_neg"]))
        d_pos = max(view["d_pos"], 1e-12)
        ratios = [view["d_neg"] / d_pos, view["d_syn"] / d_pos, view["d_gen"] / d_pos]
        for off, r, c, lab in zip((-0.27, 0.0, 0.27), ratios, [ROLE_COLORS[r] for r in ("negative", "synthetic", "generated")],
                                  ("real z-", "synthetic z^", "generated z~")):
            ax.bar(k + off, r, 0.27, color=c, label=lab)
        ax.axhline(1.0, color="black", ls="--", lw=1, label="d+ = d(z, z+)")
        if max(float(np.max(r)) for r in ratios) > 20:
            ax.set_yscale("log")
        ax.set_xticks(k)
        ax.set_xlabel("negative class j")
        ax.set_ylabel("distance to the anchor / d+")
        ax.set_title("z^ lies between d+ (1) and the real z-", fontsize=10)
        ax.legend(fontsize=LEGEND_PT)
        fig.tight_layout()
        view["fig"] = fig
    return view


def synthetic_widget(explorer):
    """A slider over ``explorer.alphas`` (precompute them first for instant updates)."""
    import ipywidgets as w

    def show(alpha):
        update_synthetic(alpha, explorer, draw=True)
        plt.show()

    options = [(f"{a:.3g}", a) for a in explorer.alphas]
    start = options[len(options) // 2][1]
    return w.interactive(show, alpha=w.SelectionSlider(options=options, value=start, description="alpha",
                                                       continuous_update=False))
