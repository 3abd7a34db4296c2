"""Barnes-Hut t-SNE maps of embeddings (paper fig. 8), with image thumbnails.

    tsne = fit_tsne(emb)                        # openTSNE, negative_gradient_method="bh"
    xy = place(tsne, new_points)                # new points into the EXISTING map (TSNEEmbedding.transform)
    thumbnail_scatter(ax, np.asarray(tsne), images, labels)

Embeddings are L2-normalised first (the evaluation's geometry: METHOD §4);
``place`` normalises the new points the same way. New points do not move the map:
openTSNE optimises only their positions against the fixed reference points.
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from .palette import CLASS_COLORS, FIG_MAX_W, ROLE_COLORS


def _as_array(emb, normalise: bool) -> np.ndarray:
    """(N, D) tensor or array -> float64 array, rows L2-normalised if asked."""
    x = torch.as_tensor(emb).detach().double().cpu().numpy() if not isinstance(emb, np.ndarray) \
        else emb.astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf")
    if normalise:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def fit_tsne(emb, perplexity: float = 30.0, n_jobs: int | None = None, seed: int = 0, n_iter: int = 500,
             early_exaggeration_iter: int = 250, normalise: bool = True, verbose: bool = False):
    """Barnes-Hut t-SNE of emb (N, D) -> ``openTSNE.TSNEEmbedding`` (N, 2); ``np.asarray`` gives the map.

    perplexity is capped at (N - 1) / 3 so tiny sets work. n_jobs defaults to the CPU count.
    """
    from openTSNE import TSNE

    x = _as_array(emb, normalise)
    if len(x) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(x)}")
    perplexity = min(float(perplexity), (len(x) - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, negative_gradient_method="bh",
                n_jobs=n_jobs or os.cpu_count() or 1, random_state=seed, n_iter=n_iter,
                early_exaggeration_iter=early_exaggeration_iter, verbose=verbose)
    return tsne.fit(x)


def place(embedding, new_points, n_iter: int = 100, normalise: bool = True) -> np.ndarray:
    """Positions (M, 2) of new points (M, D) in an existing map, via ``TSNEEmbedding.transform``.

    Each new point starts at the median position of its nearest reference points and is
    optimised against the fixed map (new points do not interact with each other, so placing
    them in one call or one by one gives the same positions up to the optimiser's noise).
    """
    x = _as_array(new_points, normalise)
    k = int(min(25, len(np.asarray(embedding)) - 1))
    perplexity = min(5.0, (k - 1) / 3.0)
    xy = np.asarray(embedding.transform(x, n_iter=n_iter, k=k, perplexity=perplexity))
    if not np.isfinite(xy).all():
        raise FloatingPointError("t-SNE placement produced non-finite positions")
    return xy


def highlight_classes(labels, n: int = len(CLASS_COLORS)) -> np.ndarray:
    """``n`` class ids to colour in a map, spread evenly over the sorted classes (deterministic)."""
    classes = np.unique(np.asarray(labels))
    n = min(n, len(classes), len(CLASS_COLORS))
    return classes[np.linspace(0, len(classes) - 1, n).round().astype(int)] if n else classes[:0]


def class_colours(labels, highlight=None) -> list[str]:
    """One colour per point: each class in ``highlight`` (default ``highlight_classes``) its own
    ``CLASS_COLORS`` entry, every other class light grey, so that no two classes share a colour."""
    highlight = highlight_classes(labels) if highlight is None else np.asarray(highlight)
    table = {int(c): CLASS_COLORS[k % len(CLASS_COLORS)] for k, c in enumerate(highlight)}
    return [table.get(int(c), ROLE_COLORS["other"]) for c in np.asarray(labels)]


def spread_indices(coords: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to n point indices spread over the map (greedy farthest-point sampling), for thumbnails."""
    coords = np.asarray(coords, dtype=float)
    n = min(n, len(coords))
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(coords)))]
    d = ((coords - coords[chosen[0]]) ** 2).sum(1)
    for _ in range(n - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, ((coords - coords[i]) ** 2).sum(1))
    return np.array(chosen)


def _thumb(img) -> np.ndarray:
    a = np.asarray(img.cpu() if isinstance(img, torch.Tensor) else img)
    if a.ndim == 3:
        a = a[0] if a.shape[0] in (1, 3) and a.shape[0] < a.shape[-1] else a
        if a.ndim == 3:                               # (C, H, W) colour -> (H, W, C)
            a = np.moveaxis(a, 0, -1)
    return a


def thumbnail_scatter(ax, coords, images, labels, n_thumbs: int = 60, zoom: float = 0.9, seed: int = 0,
                      title: str = "t-SNE of the test embeddings", point_size: float | None = None,
                      highlight=None, class_names=None):
    """Scatter of a 2-D map, a few classes coloured (``class_colours``: the rest grey), with image
    thumbnails at spread-out points.

    coords (N, 2), images (N, [C,] H, W) uint8 or float, labels (N,). highlight: class ids to
    colour (default: 8 spread over the classes); class_names: names indexed by label, written
    at the median position of each highlighted class. Returns ax.
    point_size: default shrinks with N (30 for a hundred points, 5 for thousands).
    """
    coords, labels = np.asarray(coords), np.asarray(labels)
    highlight = highlight_classes(labels) if highlight is None else np.asarray(highlight)
    if point_size is None:
        point_size = float(np.clip(3000.0 / max(len(coords), 1), 5.0, 30.0))
    colours = np.array(class_colours(labels, highlight))
    on = np.isin(labels, highlight)
    ax.scatter(coords[~on, 0], coords[~on, 1], s=point_size, c=colours[~on], alpha=0.5, linewidths=0)
    ax.scatter(coords[on, 0], coords[on, 1], s=1.8 * point_size, c=colours[on], alpha=0.95,
               edgecolors="black", linewidths=0.3, zorder=3)
    if images is not None and n_thumbs > 0:
        for i in spread_indices(coords, n_thumbs, seed):
            box = OffsetImage(_thumb(images[i]), zoom=zoom, cmap="gray")
            edge = colours[i] if on[i] else "0.6"
            ab = AnnotationBbox(box, coords[i], frameon=True, pad=0.05, bboxprops=dict(edgecolor=edge, lw=1.2))
            ax.add_artist(ab)
    if class_names is not None:
        for c in highlight:
            mid = np.median(coords[labels == c], axis=0)
            ax.annotate(str(class_names[int(c)]), mid, fontsize=13, weight="bold", ha="center", va="center",
                        color="black", zorder=6, bbox=dict(boxstyle="round,pad=0.15", fc=colours[labels == c][0],
                                                           ec="black", lw=0.6, alpha=0.9))
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def map_grid(n: int, max_cols: int = 3):
    """A figure of ``n`` square panels for maps side by side, at most ``max_cols`` per row and
    FIG_MAX_W inches wide (a laptop screen). Returns (fig, axes): a flat list of ``n`` axes."""
    cols = max(1, min(n, max_cols))
    rows = -(-n // cols)
    side = FIG_MAX_W / cols
    fig, axes = plt.subplots(rows, cols, figsize=(FIG_MAX_W, side * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_tsne_map(coords, labels, images=None, ax=None, title: str = "t-SNE of the test embeddings",
                  n_thumbs: int = 60, zoom: float = 0.9, highlight=None, class_names=None):
    """A new figure (or ``ax``) with ``thumbnail_scatter``; returns the figure."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 8))
    else:
        fig = ax.figure
    thumbnail_scatter(ax, coords, images, labels, n_thumbs=n_thumbs, zoom=zoom, title=title,
                      highlight=highlight, class_names=class_names)
    return fig
