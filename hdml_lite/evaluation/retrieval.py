"""Retrieval metrics (METHOD §4): Recall@K, MAP@R, R-precision, chunked kNN.

Every query is compared with every OTHER test item (leave-one-out, the query
itself excluded), by cosine similarity of L2-normalised embeddings, which ranks
like Euclidean distance.

- Recall@K: fraction of queries with at least one same-class item among their
  K nearest neighbours (the papers' R@K; pytorch-metric-learning's
  ``precision_at_1`` at K = 1 only).
- MAP@R and R-precision (Musgrave et al. 2020): R = number of other items of the
  query's class; R-precision = (positives in the top R) / R, MAP@R = (1/R) * sum
  of precision@i over the ranks i <= R that hold a positive.
Queries whose class has no other item have no positive and are left out of all
three (as in pytorch-metric-learning).

How it is fast (``retrieval_metrics``): all three metrics only need, per query q,
    m_i = number of negatives (other classes) at least as similar as q's i-th positive;
the i-th positive then sits at rank i + m_i. The positives' similarities are
gathered directly (few per query); the negatives come from ONE pass over the
similarity matrix in (chunk x chunk) blocks of its upper triangle (S = E E^T is
symmetric, so each block serves its rows and its columns: half the matmuls), keeping
    - the top-R_max negative similarities per query   -> MAP@R, R-precision, small K
    - the count of negatives >= the best positive     -> Recall@K for any K (e.g. 1000)
so no top-1000 list is ever built.

Ties: metrics use similarity values only (never indices), and a negative exactly
as similar as a positive counts as ranked BEFORE it (ties count against the
query). So results do not depend on the order of the data or on the top-k
implementation; a collapsed model (all embeddings equal) gets R@K = 0, not a
random score. ``knn`` (which returns indices) breaks ties by the smaller index.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

NEG_INF = float("-inf")


def _normalise(emb, device=None) -> torch.Tensor:
    """(N, D) array-like -> L2-normalised float tensor on ``device`` (float64 kept, else float32)."""
    e = torch.as_tensor(emb)
    e = e.to(device=device if device is not None else e.device,
             dtype=torch.float64 if e.dtype == torch.float64 else torch.float32)
    if e.dim() != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {tuple(e.shape)}")
    if not torch.isfinite(e).all():
        raise ValueError("embeddings contain NaN or inf")
    return F.normalize(e, dim=1)


def knn(emb, k: int, chunk: int = 4096, device=None) -> torch.Tensor:
    """Indices (N, k) int64 (CPU) of each item's k nearest OTHER items, nearest first.

    emb: (N, D), L2-normalised here. One (chunk, N) similarity block at a time.
    Ties are broken by the smaller index, deterministically.
    """
    e = _normalise(emb, device)
    n = e.shape[0]
    if not 0 < k < n:
        raise ValueError(f"need 0 < k < N = {n}, got k = {k}")
    out = torch.empty(n, k, dtype=torch.long)
    kk = min(k + 1, n - 1)  # one extra to see whether a tie crosses the cut
    for i0 in range(0, n, chunk):
        i1 = min(i0 + chunk, n)
        s = e[i0:i1] @ e.T  # (c, N)
        rows = torch.arange(i1 - i0, device=e.device)
        s[rows, rows + i0] = NEG_INF  # the query itself
        v, idx = s.topk(kk, dim=1)
        idx, p = idx.sort(dim=1)  # order: by value, then by index
        v, p = v.gather(1, p).sort(dim=1, descending=True, stable=True)
        idx = idx.gather(1, p)[:, :k]
        if kk > k:
            tied = (v[:, k - 1] == v[:, k]).nonzero().squeeze(1)
            if len(tied):  # a tie crosses the cut: redo those rows with a full stable sort
                idx[tied] = s[tied].sort(dim=1, descending=True, stable=True).indices[:, :k]
        out[i0:i1] = idx.cpu()
    return out


def _mask_same_class(b: torch.Tensor, la: torch.Tensor, lb: torch.Tensor) -> None:
    """Set b[i, j] = -inf where la[i] == lb[j] (positives and the query itself), in place.

    la, lb are sorted, so same-class entries lie in one sub-rectangle (often empty)."""
    if la[-1] < lb[0] or lb[-1] < la[0]:
        return
    r0 = torch.searchsorted(la, lb[:1]).item()  # first row with label >= smallest column label
    r1 = torch.searchsorted(la, lb[-1:], right=True).item()
    c0 = torch.searchsorted(lb, la[:1]).item()
    c1 = torch.searchsorted(lb, la[-1:], right=True).item()
    sub = b[r0:r1, c0:c1]
    sub.masked_fill_(la[r0:r1, None] == lb[None, c0:c1], NEG_INF)


# Per-block top-k values. torch.topk over thousands of columns costs ~25x a max-reduction,
# so it runs on few candidates: split each row into G groups of g entries; the k groups
# with the largest maxima hold a top-k multiset (every top-k entry lies in a group whose
# max is >= it), so one max-pass, a top-k over the G group maxima and one over the k*g
# candidates replace it. Exact, values only (ties cannot change a multiset of values).
GROUP = 16


def _top_rows(b: torch.Tensor, k: int, g: int = GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k values (r, k) of each row of b (r, c) (contiguous), descending, and row maxima (r,)."""
    r, c = b.shape
    if c % g or c < 4 * k * g:
        return b.topk(min(k, c), dim=1).values, b.amax(dim=1)
    grouped = b.view(r, g, c // g)  # group m = columns m, m + c/g, m + 2c/g, ... (a fast max)
    group_max = grouped.amax(dim=1)  # (r, G)
    groups = group_max.topk(k, dim=1).indices  # (r, k)
    cand = grouped.gather(2, groups[:, None, :].expand(r, g, k))  # (r, g, k)
    return cand.reshape(r, g * k).topk(k, dim=1).values, group_max.amax(dim=1)


def _top_cols(b: torch.Tensor, k: int, g: int = GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k values (c, k) of each COLUMN of b (r, c), and column maxima (c,), without a transpose."""
    r, c = b.shape
    if r % g or r < 4 * k * g:
        return b.T.topk(min(k, r), dim=1).values, b.amax(dim=0)
    group_max = b.view(r // g, g, c).amax(dim=1)  # (G, c): group m = rows m*g .. m*g + g-1
    groups = group_max.T.topk(k, dim=1).indices  # (c, k)
    rows = groups[:, :, None] * g + torch.arange(g, device=b.device)  # (c, k, g)
    cand = b.take(rows * c + torch.arange(c, device=b.device)[:, None, None])  # b[rows, col]
    return cand.view(c, k * g).topk(k, dim=1).values, group_max.amax(dim=0)


def retrieval_metrics(emb, labels, ks: Sequence[int] = (1, 2, 4, 8), device=None,
                      chunk: int | None = None) -> dict:
    """Recall@K for K in ks, MAP@R and R-precision from one pass; flat dict of floats in [0, 1].

    emb: (N, D) embeddings (L2-normalised here); labels: (N,) class ids.
    Returns {"r1": ..., "r2": ..., "map_r": ..., "r_precision": ...} (keys r{K} follow ks);
    NaN if no query has a positive. Runs on ``device`` (default: the embeddings' device).
    """
    ks = sorted({int(k) for k in ks})
    chunk = 8192 if chunk is None else int(chunk)
    e = _normalise(emb, device)
    dev = e.device
    lab = torch.as_tensor(labels).to(dev).long().reshape(-1)
    n = e.shape[0]
    if len(lab) != n:
        raise ValueError(f"{n} embeddings but {len(lab)} labels")
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")

    # Sort by class (metrics are order-free): a class is then a contiguous run of rows.
    lab, order = torch.sort(lab, stable=True)
    e = e[order]
    _, size = torch.unique_consecutive(lab, return_counts=True)
    start = torch.cumsum(size, 0) - size
    size_q, start_q = size.repeat_interleave(size), start.repeat_interleave(size)  # (N,)
    r_q = size_q - 1  # R: other items of the query's class
    valid = r_q > 0
    r_max = int(r_q.max())
    nan = float("nan")
    if r_max == 0:
        return {**{f"r{k}": nan for k in ks}, "map_r": nan, "r_precision": nan}

    # Positive similarities, best first: pos[q, i] = i-th positive's similarity, -inf padded.
    pos = torch.full((n, r_max + 1), NEG_INF, dtype=e.dtype, device=dev)
    offs = torch.arange(r_max + 1, device=dev)
    step = max(1, 2 ** 24 // ((r_max + 1) * e.shape[1]))  # bound the (step, R+1, D) gather
    for i0 in range(0, n, step):
        i1 = min(i0 + step, n)
        idx = start_q[i0:i1, None] + offs  # (c, R_max + 1) class members (+ overflow)
        ok = (offs < size_q[i0:i1, None]) & (idx != torch.arange(i0, i1, device=dev)[:, None])
        s = torch.bmm(e[idx.clamp(max=n - 1)], e[i0:i1, :, None]).squeeze(2)
        pos[i0:i1] = s.masked_fill(~ok, NEG_INF)
    pos = pos.sort(dim=1, descending=True).values[:, :r_max]  # (N, R_max)

    # One pass over the upper-triangle blocks of S = E E^T, same-class entries masked.
    # Block (I, J) leaves, for each query of I, its top negatives against J in slot J, and
    # for each query of J the same in slot I; one top-k over the slots at the end.
    k_neg = r_max  # top negatives kept per query: enough for MAP@R / R-precision
    need_count = ks[-1] > k_neg  # Recall@K beyond the top list: count instead
    n_blocks = (n + chunk - 1) // chunk
    slots = torch.full((n, n_blocks, k_neg), NEG_INF, dtype=e.dtype, device=dev)
    count = torch.zeros(n, dtype=torch.int32, device=dev)
    best = torch.where(valid, pos[:, 0], torch.inf)  # count negatives >= the best positive
    for bi, i0 in enumerate(range(0, n, chunk)):
        i1 = min(i0 + chunk, n)
        for bj, j0 in enumerate(range(i0, n, chunk), start=bi):
            j1 = min(j0 + chunk, n)
            b = e[i0:i1] @ e[j0:j1].T  # (ci, cj) similarities
            _mask_same_class(b, lab[i0:i1], lab[j0:j1])
            top, row_max = _top_rows(b, k_neg)
            slots[i0:i1, bj, :top.shape[1]] = top
            if need_count:  # only rows whose max reaches their threshold can count anything
                hot = (row_max >= best[i0:i1]).nonzero().squeeze(1)
                if len(hot):
                    count[i0 + hot] += (b[hot] >= best[i0 + hot, None]).sum(1, dtype=torch.int32)
            if bj != bi:  # the same block, seen from its columns' queries
                top, col_max = _top_cols(b, k_neg)
                slots[j0:j1, bi, :top.shape[1]] = top
                if need_count:
                    hot = (col_max >= best[j0:j1]).nonzero().squeeze(1)
                    if len(hot):
                        count[j0 + hot] += (b[:, hot] >= best[None, j0 + hot]).sum(0, dtype=torch.int32)
    top_neg = slots.view(n, -1).topk(k_neg, dim=1).values  # (N, k_neg) descending
    del slots

    # m[q, i] = negatives >= i-th positive (saturates at k_neg: then beyond rank R anyway).
    m = k_neg - torch.searchsorted(top_neg.flip(1).contiguous(), pos.contiguous(), right=False)
    i = torch.arange(1, r_max + 1, device=dev)
    rank = i + m  # (N, R_max) rank of the i-th positive
    r = r_q[:, None]
    hit = (i <= r) & (rank <= r)  # positive inside the top R
    rq = r_q[valid].double()
    map_r = ((hit * i).double() / rank).sum(1)[valid].div(rq).mean().item()
    r_prec = hit.sum(1)[valid].div(rq).mean().item()
    first = count if need_count else m[:, 0]  # negatives ranked before the best positive
    out = {f"r{k}": (first[valid] < k).double().mean().item() for k in ks}
    out.update(map_r=map_r, r_precision=r_prec)
    return out


def recall_at_k(emb, labels, ks: Sequence[int] = (1, 2, 4, 8), device=None,
                chunk: int = 8192) -> dict:
    """{K: Recall@K} (fractions in [0, 1]); see ``retrieval_metrics``."""
    res = retrieval_metrics(emb, labels, ks, device=device, chunk=chunk)
    return {int(k): res[f"r{int(k)}"] for k in ks}


def map_at_r(emb, labels, device=None, chunk: int = 8192) -> float:
    """MAP@R (Musgrave et al. 2020); see ``retrieval_metrics``."""
    return retrieval_metrics(emb, labels, (1,), device=device, chunk=chunk)["map_r"]


def r_precision(emb, labels, device=None, chunk: int = 8192) -> float:
    """R-precision (Musgrave et al. 2020); see ``retrieval_metrics``."""
    return retrieval_metrics(emb, labels, (1,), device=device, chunk=chunk)["r_precision"]
