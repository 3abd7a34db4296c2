"""Where a trained HDML model's synthetic negatives land in a t-SNE map of its test embeddings.

    ex = SyntheticExplorer(method, tsne, z_test, labels, anchor=0)
    ex.precompute(ex.alphas)                 # one batched TSNEEmbedding.transform for the slider grid
    view = ex.at(alpha)                      # dict of 2-D positions and distances (cached: fast)

For the chosen test anchor z (class c), a positive z+ (another image of c) and K other
classes j (two images each: a_j, p_j), the N-pair augmentation
(``hdml_lite.hdml.augment_npair``) pulls every p_j toward z with reference d(z, z+);
row 0 of its output holds z's synthetic negatives z^_j. The generator maps them to
features, y~_j = G(z^_j), and the SAME embedding layer re-embeds them, z~_j = g(y~_j)
(METHOD §1.2-1.3), both in eval mode. Both sets are L2-normalised and placed into the
existing map with ``place`` (openTSNE ``transform``); the map itself does not move.
"""
from __future__ import annotations

import numpy as np
import torch

from ..hdml.augment import augment_npair, pull_factor
from .tsne import place


@torch.no_grad()
def synthesize(method, anchors: torch.Tensor, positives: torch.Tensor, alpha: float, j_avg: float) -> dict:
    """Synthetic negatives of anchor row 0 and their re-embedded generator outputs.

    anchors, positives: (N, E) embeddings, row i of both from class i (row 0: the chosen anchor).
    Returns {"z_hat": (N-1, E) z^_0j for j != 0, "z_gen": (N-1, E) g(G(z^_0j))}, float32 CPU.
    """
    device = next(method.generator.parameters()).device
    cand = augment_npair(anchors.float().to(device), positives.float().to(device), alpha, j_avg)  # (N, N, E)
    z_hat = cand[0, 1:]                                            # (N-1, E): row 0 without its positive
    method.eval()
    z_gen = method.model.head(method.generator(z_hat))             # (N-1, E): z~ = g(G(z^))
    return {"z_hat": z_hat.float().cpu(), "z_gen": z_gen.float().cpu()}


def default_alphas(j_avg: float, extra=()) -> list[float]:
    """A slider grid around the model's J_avg: alpha / J_avg in {0, 1/8, ..., 8}, plus ``extra``."""
    vals = {0.0, *(float(f"{j_avg * r:.3g}") for r in (0.125, 0.25, 0.5, 1, 2, 4, 8)), *map(float, extra)}
    return sorted(vals)


class SyntheticExplorer:
    """State behind the t-SNE synthetic-negative slider (see the module docstring).

    method: a trained HDMLMethod; tsne: openTSNE TSNEEmbedding of the normalised test
    embeddings ``z`` (N, E) (unnormalised, as ``method.embed`` returns them); labels (N,).
    j_avg: defaults to the method's current J_avg (its tracker). n_iter: transform iterations.
    """

    def __init__(self, method, tsne, z, labels, anchor: int = 0, n_negatives: int = 8, j_avg: float | None = None,
                 seed: int = 0, n_iter: int = 100):
        self.method, self.tsne = method, tsne
        self.z = torch.as_tensor(z).float().cpu()
        self.labels = np.asarray(labels)
        self.coords = np.asarray(tsne)
        self.j_avg = float(method.tracker.j_avg if j_avg is None else j_avg)
        self.n_iter = n_iter
        self.cache: dict[float, dict] = {}
        rng = np.random.default_rng(seed)
        c = self.labels[anchor]
        same = np.flatnonzero(self.labels == c)
        same = same[same != anchor]
        if len(same) == 0:
            raise ValueError(f"anchor {anchor}: its class has no other test image to serve as the positive")
        others = [k for k in np.unique(self.labels) if k != c and (self.labels == k).sum() >= 2]
        classes = rng.permutation(others)[:n_negatives]
        pairs = [rng.permutation(np.flatnonzero(self.labels == k))[:2] for k in classes]
        self.anchor, self.positive = int(anchor), int(same[0])
        self.anchor_rows = np.array([self.anchor] + [int(p[0]) for p in pairs])    # (N,) a_j
        self.positive_rows = np.array([self.positive] + [int(p[1]) for p in pairs])  # (N,) p_j
        self.negatives = self.positive_rows[1:]                                    # (K,) real negatives
        cfg_alpha = float(method.cfg.hdml.alpha)
        self.alphas = default_alphas(self.j_avg, extra=(cfg_alpha,))

    def synthesize(self, alpha: float) -> dict:
        return synthesize(self.method, self.z[self.anchor_rows], self.z[self.positive_rows], alpha, self.j_avg)

    def _distances(self, pts: torch.Tensor) -> np.ndarray:
        return (pts - self.z[self.anchor]).norm(dim=1).numpy()

    def _view(self, alpha: float, syn: dict, xy_hat: np.ndarray, xy_gen: np.ndarray) -> dict:
        za, zp = self.z[self.anchor], self.z[self.positive]
        return {"alpha": float(alpha), "j_avg": self.j_avg, "factor": pull_factor(alpha, self.j_avg),
                "anchor_xy": self.coords[self.anchor], "positive_xy": self.coords[self.positive],
                "negatives_xy": self.coords[self.negatives], "synthetic_xy": xy_hat, "generated_xy": xy_gen,
                "d_pos": float((za - zp).norm()), "d_neg": self._distances(self.z[self.negatives]),
                "d_syn": self._distances(syn["z_hat"]), "d_gen": self._distances(syn["z_gen"])}

    def precompute(self, alphas=None) -> None:
        """Place the synthetics of every alpha in ``alphas`` with ONE transform call; cache the views."""
        alphas = [float(a) for a in (self.alphas if alphas is None else alphas) if float(a) not in self.cache]
        if not alphas:
            return
        syns = [self.synthesize(a) for a in alphas]
        pts = torch.cat([torch.cat([s["z_hat"], s["z_gen"]]) for s in syns])     # (len * 2K, E)
        xy = place(self.tsne, pts, n_iter=self.n_iter).reshape(len(alphas), 2, -1, 2)
        for a, s, p in zip(alphas, syns, xy):
            self.cache[a] = self._view(a, s, p[0], p[1])

    def at(self, alpha: float) -> dict:
        """The view at ``alpha``: cached when precomputed, else placed now (and cached)."""
        alpha = float(alpha)
        if alpha not in self.cache:
            self.precompute([alpha])
        return self.cache[alpha]
