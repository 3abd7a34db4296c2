"""Clustering metrics (METHOD §4): NMI and pair-counting F1 of k-means.

k-means runs on the L2-normalised test embeddings with k = number of TEST classes
(the official HDML code hard-codes 98, wrong for CUB): scikit-learn ``KMeans``,
Lloyd's algorithm, seeded. Restarts: ``n_init`` (``train.kmeans_restarts``); 0 = auto
(``kmeans_n_init``): 10 starts when k <= 200, where they are cheap and one start is noisy
(on 5 test classes NMI moved 3-8 points between k-means seeds), else 1. The released HDML
code used ``KMeans(n_clusters, random_state=1)`` with that era's default of 10 restarts
(METHOD §1.9), which the paper presets reproduce (``train.kmeans_restarts=10``,
``train.kmeans_seed=1``). Settings left to ``None`` depend on k:

- k <= 1000 (CUB, Cars, Omniglot): k-means++ initialisation, ``max_iter=300``
  (scikit-learn's defaults; seconds).
- k > 1000 (SOP: 11,316 clusters for 60,502 points): random initialisation and
  ``max_iter=20``, the settings of pytorch-metric-learning's faiss k-means. One Lloyd
  iteration costs N * k * D (60k x 11k x 512); k-means++ would add k sequential
  seeding steps over all N points (measured: not done after 10 minutes on 2 busy cores).

BLAS is held to one thread during the fit (scikit-learn's Lloyd loop does the
same; its k-means++ seeding does not, and makes thousands of tiny multi-threaded
BLAS calls that crawl on a shared machine: 6,050 points, k = 1,132: 277 s -> 15 s).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from threadpoolctl import threadpool_limits


def _pairs(counts: np.ndarray) -> int:
    """Number of unordered pairs inside groups of the given sizes: sum C(n, 2)."""
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pair_f1(labels_true, labels_pred) -> float:
    """Pair-counting F1: a pair is 'predicted positive' when both items share a cluster,
    'positive' when they share a class. From the contingency table (n_class x n_cluster,
    sparse), with no loop over the n^2 pairs:

        TP = sum_ij C(n_ij, 2),  precision = TP / sum_j C(b_j, 2),  recall = TP / sum_i C(a_i, 2)

    (a_i class sizes, b_j cluster sizes). F1 = 2PR / (P + R); 0 when TP = 0, and 1 when
    neither labelling has any pair (all singletons: they agree).
    """
    c = contingency_matrix(np.asarray(labels_true), np.asarray(labels_pred), sparse=True)
    tp = _pairs(c.data)
    pos_true = _pairs(np.asarray(c.sum(axis=1)).ravel())
    pos_pred = _pairs(np.asarray(c.sum(axis=0)).ravel())
    if pos_true == 0 and pos_pred == 0:
        return 1.0
    if tp == 0:
        return 0.0
    precision, recall = tp / pos_pred, tp / pos_true
    return 2 * precision * recall / (precision + recall)


AUTO_MAX_K = 200        # n_init=0 (auto): AUTO_RESTARTS starts up to this many clusters, 1 above
AUTO_RESTARTS = 10


def kmeans_n_init(n_clusters: int, n_init: int = 0) -> int:
    """k-means starts: ``n_init`` when > 0, else auto: ``AUTO_RESTARTS`` when k <= ``AUTO_MAX_K``, else 1."""
    if n_init > 0:
        return int(n_init)
    return AUTO_RESTARTS if n_clusters <= AUTO_MAX_K else 1


def kmeans_labels(emb, n_clusters: int, seed: int = 0, n_init: int = 1,
                  max_iter: int | None = None, init: str | None = None) -> np.ndarray:
    """k-means cluster ids (N,) of the L2-normalised embeddings (N, D); see module docstring.
    n_init: starts (0: auto, ``kmeans_n_init``)."""
    x = F.normalize(torch.as_tensor(emb).detach().float().cpu(), dim=1).numpy()
    large = n_clusters > 1000
    km = KMeans(n_clusters=n_clusters, n_init=kmeans_n_init(n_clusters, n_init), algorithm="lloyd", random_state=seed,
                max_iter=(20 if large else 300) if max_iter is None else max_iter,
                init=("random" if large else "k-means++") if init is None else init)
    with threadpool_limits(limits=1, user_api="blas"):
        return km.fit_predict(x)


def cluster_metrics(emb, labels, n_clusters: int | None = None, seed: int = 0, n_init: int = 1,
                    max_iter: int | None = None, init: str | None = None) -> dict:
    """{"nmi": ..., "f1": ...} of k-means on emb (N, D) against labels (N,).

    n_clusters defaults to the number of distinct labels (the test classes).
    NMI: scikit-learn's normalized_mutual_info_score (arithmetic normalisation).
    n_init: k-means starts (0: auto, ``kmeans_n_init``).
    """
    labels = np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)
    k = len(np.unique(labels)) if n_clusters is None else int(n_clusters)
    pred = kmeans_labels(emb, k, seed=seed, n_init=n_init, max_iter=max_iter, init=init)
    return {"nmi": float(normalized_mutual_info_score(labels, pred)),
            "f1": float(pair_f1(labels, pred))}
