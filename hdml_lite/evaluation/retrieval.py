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
the i-th positive then sits at rank i + m_i. Everything comes from ONE pass over
the similarity matrix S = E E^T in blocks of its upper triangle (S is symmetric, so
each block serves its rows' queries and its columns' queries: about half the
matmuls). Items are sorted by class and blocks start at class boundaries, so a
query's positives all lie in its diagonal block (read from there first) and the
other blocks hold only negatives.
A block only yields its entries at least as similar as a per-query threshold (rows or
columns whose maximum is below it are skipped); each such entry v adds one to bin
j = #{positives of q more similar than v} of q's histogram, and m = cumsum of the
histogram. The threshold starts at q's LAST positive (a negative below all positives
changes no m_i) and rises as counts accumulate: a positive whose rank i + m_i already
exceeds R is out of the top R for good, so only negatives above the last positive still
inside the top R matter, plus those above the best positive while that count is below
max(ks) (Recall@K). So few entries pass, whatever N. No top-k, no sort, no loop over
queries. Blocks are sized from N (about 1,024 rows: a block and its operands stay in
the CPU cache).

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


BLOCK = 1024  # target block size (rows) of the similarity pass when ``chunk`` is None (CPU: cache-sized)
BLOCK_GPU = 8192  # on an accelerator: fewer, larger kernels


def block_size(n: int, target: int = BLOCK) -> int:
    """Rows per block for N items: N split into equal blocks of about ``target`` rows."""
    n_blocks = max(1, round(n / target))
    return -(-n // n_blocks)  # ceil(n / n_blocks)


def _class_aligned_bounds(class_start: torch.Tensor, n: int, chunk: int) -> list[int]:
    """Block boundaries [0, ..., n] over rows sorted by class: ceil(n / chunk) blocks of about equal
    size, each boundary moved to the next class start (a class larger than a block stays whole)."""
    starts = class_start.cpu()
    n_blocks = -(-n // chunk)
    bounds = [0]
    for k in range(1, n_blocks):
        i = int(torch.searchsorted(starts, k * n // n_blocks))  # first class starting at or after it
        b = int(starts[i]) if i < len(starts) else n
        if bounds[-1] < b < n:
            bounds.append(b)
    return bounds + [n]


COUNT_BUDGET = 2 ** 22  # entries x R_max compared at once in ``_count_into`` (memory bound)


def _thresholds(hist: torch.Tensor, pos: torch.Tensor, r: torch.Tensor, k_max: int) -> torch.Tensor:
    """Per query, the lowest similarity a negative must reach to still matter (rows of one block).

    hist (c, R_max) counts so far, pos (c, R_max) positives best first, r (c,) R per query.
    A positive is alive while its rank i + m_i <= R (ranks only grow as negatives are counted;
    alive positives form a prefix). Negatives below the last alive positive change no alive
    m_i, and a dead positive stays out of the top R whatever else is counted. Recall@K also
    needs m_0 exactly up to max(ks): while m_0 < k_max the threshold stays <= the best positive.
    -> (c,): the last alive positive; else the best positive while m_0 < k_max; else +inf.
    """
    m = hist.cumsum(1)
    i = torch.arange(1, hist.shape[1] + 1, device=hist.device)
    n_alive = ((i <= r[:, None]) & (i + m <= r[:, None])).sum(1)
    last = pos.gather(1, (n_alive - 1).clamp_min(0)[:, None]).squeeze(1)
    inf = torch.full_like(last, torch.inf)
    thr = torch.where(n_alive > 0, last, torch.where(m[:, 0] < k_max, pos[:, 0], inf))
    return torch.where(r > 0, thr, inf)


def _passing(b: torch.Tensor, thr: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (r, c) of the entries of block b (ci, cj) >= their query's threshold, the queries being
    the rows (dim=1, thr (ci,)) or the columns (dim=0, thr (cj,)). Rows / columns whose maximum is
    below the threshold are skipped first (one max-reduction), so the full comparison runs only
    on the few "hot" ones."""
    hot = (b.amax(dim=dim) >= thr).nonzero().squeeze(1)
    if len(hot) * 2 > len(thr):  # most are hot: compare the whole block
        mask = b >= (thr[:, None] if dim == 1 else thr[None, :])
        return mask.nonzero(as_tuple=True)
    if dim == 1:
        r, c = (b[hot] >= thr[hot, None]).nonzero(as_tuple=True)
        return hot[r], c
    r, c = (b[:, hot] >= thr[None, hot]).nonzero(as_tuple=True)
    return r, hot[c]


def _count_into(hist: torch.Tensor, q: torch.Tensor, v: torch.Tensor, pos: torch.Tensor) -> None:
    """hist[q_e, j_e] += 1 for entries e, with j_e = #{positives of q_e more similar than v_e}.

    hist (N, R_max) int64, q (E,) query ids, v (E,) negative similarities, pos (N, R_max)
    positive similarities, descending, -inf padded. Every v_e is >= q_e's last positive,
    so j_e < R_max."""
    step = max(1, COUNT_BUDGET // pos.shape[1])  # bound the (E, R_max) comparison
    for e0 in range(0, len(q), step):
        qq, vv = q[e0:e0 + step], v[e0:e0 + step]
        j = (pos[qq] > vv[:, None]).sum(1)  # (E,)
        hist.view(-1).index_add_(0, qq * hist.shape[1] + j, torch.ones_like(j))


def retrieval_metrics(emb, labels, ks: Sequence[int] = (1, 2, 4, 8), device=None,
                      chunk: int | None = None) -> dict:
    """Recall@K for K in ks, MAP@R and R-precision from one pass; flat dict of floats in [0, 1].

    emb: (N, D) embeddings (L2-normalised here); labels: (N,) class ids.
    Returns {"r1": ..., "r2": ..., "map_r": ..., "r_precision": ...} (keys r{K} follow ks);
    NaN if no query has a positive. Runs on ``device`` (default: the embeddings' device).
    ``chunk``: rows per block of the similarity pass (None: ``block_size(N)``, larger blocks on a
    GPU); results do not depend on it.
    """
    ks = sorted({int(k) for k in ks})
    e = _normalise(emb, device)
    dev = e.device
    lab = torch.as_tensor(labels).to(dev).long().reshape(-1)
    n = e.shape[0]
    if len(lab) != n:
        raise ValueError(f"{n} embeddings but {len(lab)} labels")
    chunk = block_size(n, BLOCK if dev.type == "cpu" else BLOCK_GPU) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of rows, got {chunk}")
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

    # Blocks of rows that start at class boundaries: every class lies inside one block, so a
    # query's positives all sit in its diagonal block and off-diagonal blocks hold only negatives.
    bounds = _class_aligned_bounds(start, n, chunk)
    offs = torch.arange(r_max + 1, device=dev)
    pos = torch.empty(n, r_max, dtype=e.dtype, device=dev)  # i-th positive, best first, -inf padded
    thr = torch.empty(n, dtype=e.dtype, device=dev)  # negatives below thr[q] cannot matter to q
    hist = torch.zeros(n, r_max, dtype=torch.long, device=dev)
    k_max = ks[-1]
    # Pass A, diagonal blocks: positives, thresholds, and the negatives of the block.
    for a, z in zip(bounds[:-1], bounds[1:]):
        b = e[a:z] @ e[a:z].T  # (c, c) similarities
        rows = torch.arange(z - a, device=dev)
        idx = (start_q[a:z] - a)[:, None] + offs  # (c, R_max + 1) class members (+ overflow)
        ok = (offs < size_q[a:z, None]) & (idx != rows[:, None])
        p = b.gather(1, idx.clamp(max=z - a - 1)).masked_fill(~ok, NEG_INF)
        pos[a:z] = p.sort(dim=1, descending=True).values[:, :r_max]
        thr[a:z] = _thresholds(hist[a:z], pos[a:z], r_q[a:z], k_max)  # the last positive, at first
        _mask_same_class(b, lab[a:z], lab[a:z])
        r, c = _passing(b, thr[a:z], dim=1)
        _count_into(hist, a + r, b[r, c], pos)
        thr[a:z] = _thresholds(hist[a:z], pos[a:z], r_q[a:z], k_max)
    # Pass B, the upper-triangle off-diagonal blocks: negatives only, for the rows' queries and
    # (S is symmetric) the columns' queries.
    for bi, (a, z) in enumerate(zip(bounds[:-1], bounds[1:])):
        for a2, z2 in zip(bounds[bi + 1:-1], bounds[bi + 2:]):
            b = e[a:z] @ e[a2:z2].T  # (ci, cj)
            r, c = _passing(b, thr[a:z], dim=1)
            _count_into(hist, a + r, b[r, c], pos)
            r, c = _passing(b, thr[a2:z2], dim=0)
            _count_into(hist, a2 + c, b[r, c], pos)
            thr[a:z] = _thresholds(hist[a:z], pos[a:z], r_q[a:z], k_max)  # thresholds only rise
            thr[a2:z2] = _thresholds(hist[a2:z2], pos[a2:z2], r_q[a2:z2], k_max)

    # m[q, i] = negatives >= i-th positive: exact for the positives inside the top R, and for
    # i = 0 up to max(ks); a positive out of the top R stays out (see _thresholds).
    m = hist.cumsum(1)  # (N, R_max)
    i = torch.arange(1, r_max + 1, device=dev)
    rank = i + m  # (N, R_max) rank of the i-th positive
    r = r_q[:, None]
    hit = (i <= r) & (rank <= r)  # positive inside the top R
    rq = r_q[valid].double()
    map_r = ((hit * i).double() / rank).sum(1)[valid].div(rq).mean().item()
    r_prec = hit.sum(1)[valid].div(rq).mean().item()
    first = m[:, 0]  # negatives ranked before the best positive
    out = {f"r{k}": (first[valid] < k).double().mean().item() for k in ks}
    out.update(map_r=map_r, r_precision=r_prec)
    return out


def recall_at_k(emb, labels, ks: Sequence[int] = (1, 2, 4, 8), device=None,
                chunk: int | None = None) -> dict:
    """{K: Recall@K} (fractions in [0, 1]); see ``retrieval_metrics``."""
    res = retrieval_metrics(emb, labels, ks, device=device, chunk=chunk)
    return {int(k): res[f"r{int(k)}"] for k in ks}


def map_at_r(emb, labels, device=None, chunk: int | None = None) -> float:
    """MAP@R (Musgrave et al. 2020); see ``retrieval_metrics``."""
    return retrieval_metrics(emb, labels, (1,), device=device, chunk=chunk)["map_r"]


def r_precision(emb, labels, device=None, chunk: int | None = None) -> float:
    """R-precision (Musgrave et al. 2020); see ``retrieval_metrics``."""
    return retrieval_metrics(emb, labels, (1,), device=device, chunk=chunk)["r_precision"]
