"""Embed a test set and score it: the one entry point training, the CLI and notebooks use.

    emb, labels = compute_embeddings(method.embed, test_set, device=device)
    evaluate_embeddings(emb, labels, ks=ks_for("sop"))
    # {"r1": .., "r10": .., "r100": .., "r1000": .., "map_r": .., "r_precision": .., "nmi": .., "f1": ..}

All scores are fractions in [0, 1] (the papers print percentages). The test images are
transformed once per process and reused by every later evaluation (``eval_set.py``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .clustering import cluster_metrics
from .eval_set import eval_tensors
from .retrieval import retrieval_metrics

SMALL_KS = (1, 2, 4, 8)  # CUB-200-2011, Cars196 (METHOD §4)
SOP_KS = (1, 10, 100, 1000)  # Stanford Online Products
SOP_NAMES = {"sop", "stanford_online_products", "online_products", "ebay"}


def ks_for(num_classes_or_name) -> tuple[int, ...]:
    """Recall@K cut-offs: (1, 10, 100, 1000) for SOP (by name, or >= 1000 test classes), else (1, 2, 4, 8)."""
    if isinstance(num_classes_or_name, str):
        return SOP_KS if num_classes_or_name.lower() in SOP_NAMES else SMALL_KS
    return SOP_KS if int(num_classes_or_name) >= 1000 else SMALL_KS


def evaluate_embeddings(emb, labels, ks: Sequence[int] = SMALL_KS, cluster: bool = True,
                        device=None, chunk: int | None = None, seed: int = 0, n_init: int = 1) -> dict:
    """Flat dict of floats: r{K} for K in ks, map_r, r_precision, and (if cluster) nmi, f1.

    emb: (N, D) embeddings (normalised inside), labels: (N,) class ids. k-means: ``n_init``
    restarts, ``random_state=seed`` (the released HDML code: 10 and 1; ``train.kmeans_restarts``
    and ``train.kmeans_seed``). ``chunk``: retrieval block size (None: adapted to N).
    """
    out = retrieval_metrics(emb, labels, ks, device=device, chunk=chunk)
    if cluster:
        out.update(cluster_metrics(emb, labels, seed=seed, n_init=n_init))
    return out


def compute_embeddings(embed_fn: Callable[[torch.Tensor], torch.Tensor], dataset, batch_size: int = 256,
                       device=None, progress: bool = False, num_workers: int = 0, cache: bool = True):
    """Run embed_fn over dataset in order -> (emb (N, D) float32 CPU tensor, labels (N,) np.int64).

    dataset yields (x, label). Batches are moved to ``device`` when given (else left as
    loaded). An nn.Module embed_fn is put in eval mode and restored afterwards; if it
    returns a tuple (e.g. MetricModel's (y, z)), the last element is the embedding.

    cache: the transformed images come from the process's evaluation-set cache
    (``eval_set.eval_tensors``: transformed once, reused by every later evaluation of the same
    images; bit-identical inputs). A set that is not cached (too large, random transform, a
    dataset type of its own) goes through a DataLoader with ``num_workers`` processes, and
    pinned memory when ``device`` is a GPU, so that the copy overlaps the forward pass.
    Runs under ``torch.inference_mode``.
    """
    device = torch.device(device) if device is not None else None
    pin = device is not None and device.type == "cuda"
    data = eval_tensors(dataset, workers=num_workers) if cache else None
    if data is not None:
        loader = data.batches(batch_size, pin=pin)
        total = -(-len(data) // batch_size)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            pin_memory=pin)
        total = len(loader)
    if progress:
        from tqdm.auto import tqdm
        loader = tqdm(loader, desc="embed", leave=False, total=total)
    was_training = isinstance(embed_fn, nn.Module) and embed_fn.training
    if was_training:
        embed_fn.eval()
    embs, labels = [], []
    try:
        with torch.inference_mode():
            for x, y in loader:
                if device is not None:
                    x = x.to(device, non_blocking=True)
                z = embed_fn(x)
                if isinstance(z, (tuple, list)):
                    z = z[-1]
                embs.append(z.detach().float().to("cpu", non_blocking=pin))
                labels.append(torch.as_tensor(y).reshape(-1).cpu())
            if pin:
                torch.cuda.synchronize(device)      # the non_blocking copies to the host are done
    finally:
        if was_training:
            embed_fn.train()
    if not embs:
        raise ValueError("empty dataset")
    return torch.cat(embs), torch.cat(labels).numpy().astype(np.int64)


def evaluate(embed_fn, dataset, ks: Sequence[int] | None = None, cluster: bool = True, device=None,
             batch_size: int = 256, progress: bool = False, seed: int = 0, kmeans_restarts: int = 1,
             num_workers: int = 0) -> dict:
    """compute_embeddings + evaluate_embeddings; ks default from the number of classes (ks_for).

    ``seed`` and ``kmeans_restarts``: k-means ``random_state`` and ``n_init`` (``kmeans_args(cfg)``
    gives them from a config). ``num_workers``: DataLoader workers for a set that is not in the
    evaluation-set cache (the trainer passes ``data.num_workers``)."""
    emb, labels = compute_embeddings(embed_fn, dataset, batch_size=batch_size, device=device,
                                     progress=progress, num_workers=num_workers)
    if ks is None:
        ks = ks_for(len(np.unique(labels)))
    return evaluate_embeddings(emb, labels, ks=ks, cluster=cluster, device=device, seed=seed,
                               n_init=kmeans_restarts)


def kmeans_args(cfg) -> dict:
    """``evaluate`` keyword arguments for k-means from a Config: seed and kmeans_restarts."""
    return {"seed": int(cfg.train.kmeans_seed), "kmeans_restarts": int(cfg.train.kmeans_restarts)}
