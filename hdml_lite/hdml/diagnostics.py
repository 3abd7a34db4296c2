"""Is HDML's mechanism switched on? Per-step diagnostics and the four engagement conditions
(docs/METHOD.md §5).

HDML only works when four things happen together, and each can be read off a training run:

1. the softmax classifier learns the classes (``acc_real``), so J_soft can keep labels;
2. the synthetic loss gets real weight, ``weight_syn = 1 - exp(-beta / J_gen)``;
3. the pull factor ``exp(-alpha / J_avg)`` is neither ~1 (no pulling) nor ~0 (every
   negative pulled all the way to d+ from the start: no adaptation);
4. the generated negatives keep the hardness they were given: ``hard_gen`` (after the
   generator and the embedding) is close to ``hard_aug`` (what the augmentor asked for),
   and no easier than the real negatives (``hard_real``).

Hardness is a ratio of distances, d(anchor, negative) / d(anchor, positive), the median over
the batch: 1 means "as close as the positive" (hardest the augmentor makes), larger is easier.

The ratio functions are pure functions of embeddings; ``HDMLMethod.train_step`` logs them
every step; ``engagement`` reads the logged rows of a run.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# the thresholds of the four conditions (docs/METHOD.md §5)
MIN_ACC_REAL = 0.5          # 1. classifier accuracy on real features at the end of the run
MIN_WEIGHT_SYN = 0.3        # 2. mean synthetic weight over the second half
PULL_RANGE = (0.01, 0.99)   # 3. pull factor strictly inside this range ...
MIN_PULL_SHARE = 0.5        #    ... on at least this share of the steps
MAX_GEN_DRIFT = 0.25        # 4. |median hard_gen / median hard_aug - 1| at most this


def _ratio(d_an: Tensor, d_ap: Tensor) -> Tensor:
    return d_an / d_ap.clamp_min(1e-12)


@torch.no_grad()
def npair_hardness(anchors: Tensor, candidates: Tensor) -> Tensor:
    """Median of d(a_i, c_ij) / d(a_i, c_ii) over i != j for an N-pair layout: a 0-d float32
    tensor on the embeddings' device (no host synchronisation; ``float()`` it to read it).

    anchors: (N, D); candidates: (N, N, D) with candidates[i, i] the positive of anchor i, or
    (N, D) positives (the real batch, where candidate j of every anchor is positive j).
    """
    a = anchors.float()
    c = candidates.float()
    if c.dim() == 2:
        c = c.unsqueeze(0).expand(a.shape[0], *c.shape)
    d = (c - a.unsqueeze(1)).pow(2).sum(-1).sqrt()                 # (N, N): d(a_i, c_ij)
    ratio = _ratio(d, d.diagonal().unsqueeze(1))
    n = a.shape[0]
    off = ratio.flatten()[1:].view(n - 1, n + 1)[:, :-1]           # the i != j entries, no mask (no sync)
    return off.median()


@torch.no_grad()
def triplet_hardness(a: Tensor, p: Tensor, n: Tensor) -> Tensor:
    """Median of d(a, n) / d(a, p) over the triplets (a 0-d float32 tensor). a, p, n: (T, D)."""
    d_an = (n.float() - a.float()).pow(2).sum(-1).sqrt()
    d_ap = (p.float() - a.float()).pow(2).sum(-1).sqrt()
    return _ratio(d_an, d_ap).median()


@torch.no_grad()
def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of rows whose arg-max is the label (a 0-d float32 tensor). logits (M, C), labels (M,)."""
    return (logits.argmax(1) == labels).float().mean()


def _median(values: list[float]) -> float:
    vals = sorted(v for v in values if math.isfinite(v))
    if not vals:
        return float("nan")
    m = len(vals) // 2
    return vals[m] if len(vals) % 2 else 0.5 * (vals[m - 1] + vals[m])


def engagement(train_rows: list[dict], alpha: float | None = None) -> dict:
    """The four engagement conditions of a run, from its ``history["train"]`` rows.

    Returns {"classifier", "weight", "pull", "hardness": {"value", "threshold", "ok", "text"},
    "engaged": bool}. ``alpha`` is only used in the text (the pull factor is logged).
    Rows without the diagnostics (not an HDML run) give ``engaged = False`` and NaN values.
    """
    rows = [r for r in train_rows if "acc_real" in r]
    nan = float("nan")
    if not rows:
        empty = {"value": nan, "threshold": nan, "ok": False, "text": "no HDML diagnostics in this run"}
        return {k: dict(empty) for k in ("classifier", "weight", "pull", "hardness")} | {"engaged": False}
    half = rows[len(rows) // 2:]
    tail = rows[-max(1, len(rows) // 20):]                         # "at the end": the last 5% of steps
    acc_end = sum(r["acc_real"] for r in tail) / len(tail)
    w_mean = sum(r["weight_syn"] for r in half) / len(half)
    lo, hi = PULL_RANGE
    share = sum(lo < r["pull_factor"] < hi for r in rows) / len(rows)
    gen, real, aug = (_median([r[k] for r in half]) for k in ("hard_gen", "hard_real", "hard_aug"))
    drift = abs(gen / aug - 1.0) if aug and math.isfinite(aug) else nan
    hard_ok = bool(gen <= real and drift <= MAX_GEN_DRIFT)
    a = "" if alpha is None else f" at alpha={alpha:g}"
    out = {
        "classifier": {"value": acc_end, "threshold": MIN_ACC_REAL, "ok": bool(acc_end >= MIN_ACC_REAL),
                       "text": f"acc_real at the end {acc_end:.2f} (needs >= {MIN_ACC_REAL})"},
        "weight": {"value": w_mean, "threshold": MIN_WEIGHT_SYN, "ok": bool(w_mean >= MIN_WEIGHT_SYN),
                   "text": f"mean weight_syn over the second half {w_mean:.2f} (needs >= {MIN_WEIGHT_SYN})"},
        "pull": {"value": share, "threshold": MIN_PULL_SHARE, "ok": bool(share >= MIN_PULL_SHARE),
                 "text": f"pull_factor in ({lo}, {hi}) on {100 * share:.0f}% of the steps{a} "
                         f"(needs >= {100 * MIN_PULL_SHARE:.0f}%)"},
        "hardness": {"value": gen, "threshold": real, "ok": hard_ok,
                     "text": f"median hard_gen {gen:.2f} vs hard_real {real:.2f} (needs <=) and hard_aug "
                             f"{aug:.2f} (needs within {100 * MAX_GEN_DRIFT:.0f}%: off by {100 * drift:.0f}%)"},
    }
    out["engaged"] = all(v["ok"] for v in out.values())
    return out


def engagement_lines(result: dict) -> list[str]:
    """Human-readable lines for ``engagement``'s result (demo, study, notebooks)."""
    names = {"classifier": "1. classifier learns", "weight": "2. synthetics weigh",
             "pull": "3. pull factor adapts", "hardness": "4. generator keeps hardness"}
    lines = [f"{names[k]:<28} {'yes' if result[k]['ok'] else 'NO ':<4} {result[k]['text']}" for k in names]
    lines.append(f"{'engaged (all four)':<28} {'yes' if result['engaged'] else 'NO'}")
    return lines
