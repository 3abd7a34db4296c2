"""Is HDML's mechanism switched on? Per-step diagnostics and the engagement conditions
(docs/METHOD.md §5.3).

HDML's premise is that the generator turns harder embeddings into synthetics that are both
**hard** and **label-preserving**, by an amount that **adapts** to training. Conditions v2
check exactly that, each on numbers a run logs every step (second half of training):

a. the softmax classifier learns the classes (``acc_real`` >= 0.5 at the end);
b. labels kept: the classifier gives the synthetics their intended class (median ``acc_syn``
   >= 0.5);
c. synthetics count, and real samples too: mean ``weight_syn = 1 - exp(-beta / J_gen)`` in
   [0.3, 0.9] (at 1.0 the real loss drops out altogether);
d. hardness adapts: median pull factor ``exp(-alpha / J_avg)`` in [0.05, 0.95] (not ~1: nothing
   pulled; not ~0: every negative pulled all the way to d+);
e. harder, and preserved: median ``hard_gen`` below median ``hard_real``, and within 25% of
   ``hard_aug`` (what the augmentor asked for).

The first version (v1: a, weight >= 0.3, pull factor inside (0.01, 0.99) on half the steps,
hard_gen <= hard_real within the 25% drift) is kept beside v2 in every table: it passed in runs
whose negatives sat at 1.03 d+ and whose synthetics had mostly lost their label.

Hardness is a ratio of distances, d(anchor, negative) / d(anchor, positive), the median over
the batch: 1 means "as close as the positive" (hardest the augmentor makes), larger is easier.

The ratio functions are pure functions of embeddings; ``HDMLMethod.train_step`` logs them
every step; ``engagement`` reads the logged rows of a run.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# the thresholds of conditions v1 (docs/METHOD.md §5.3)
MIN_ACC_REAL = 0.5          # 1. classifier accuracy on real features at the end of the run
MIN_WEIGHT_SYN = 0.3        # 2. mean synthetic weight over the second half
PULL_RANGE = (0.01, 0.99)   # 3. pull factor strictly inside this range ...
MIN_PULL_SHARE = 0.5        #    ... on at least this share of the steps
MAX_GEN_DRIFT = 0.25        # 4. |median hard_gen / median hard_aug - 1| at most this
CONDITIONS_V1 = ("classifier", "weight", "pull", "hardness")

# conditions v2 (docs/METHOD.md §5.3), fixed before the results were read: a. classifier as v1;
MIN_ACC_SYN = 0.5           # b. second-half median acc_syn (synthetics keep their label)
WEIGHT_RANGE_V2 = (0.3, 0.9)  # c. second-half mean weight_syn: synthetics count, real samples too
PULL_RANGE_V2 = (0.05, 0.95)  # d. second-half median pull factor: hardness adapts
#                             e. median hard_gen < median hard_real, and within MAX_GEN_DRIFT of hard_aug
CONDITIONS_V2 = ("classifier", "labels", "weight", "pull", "hardness")


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


def _cond(value: float, threshold, ok: bool, text: str) -> dict:
    return {"value": value, "threshold": threshold, "ok": bool(ok), "text": text}


def _summary(rows: list[dict]) -> dict:
    """The numbers both versions read: end accuracy, second-half means and medians."""
    half = rows[len(rows) // 2:]
    tail = rows[-max(1, len(rows) // 20):]                         # "at the end": the last 5% of steps
    med = {k: _median([r[k] for r in half if k in r]) for k in ("hard_gen", "hard_real", "hard_aug", "acc_syn",
                                                                   "pull_factor")}
    aug = med["hard_aug"]
    return {"acc_end": sum(r["acc_real"] for r in tail) / len(tail),
            "w_mean": sum(r["weight_syn"] for r in half) / len(half),
            "pull_share": sum(PULL_RANGE[0] < r["pull_factor"] < PULL_RANGE[1] for r in rows) / len(rows),
            "drift": abs(med["hard_gen"] / aug - 1.0) if aug and math.isfinite(aug) else float("nan"), **med}


def _engagement_v1(m: dict, a: str) -> dict:
    """The first version (kept beside v2 in every table): four conditions, loose bounds."""
    lo, hi = PULL_RANGE
    gen, real, aug, drift = m["hard_gen"], m["hard_real"], m["hard_aug"], m["drift"]
    out = {
        "classifier": _cond(m["acc_end"], MIN_ACC_REAL, m["acc_end"] >= MIN_ACC_REAL,
                            f"acc_real at the end {m['acc_end']:.2f} (needs >= {MIN_ACC_REAL})"),
        "weight": _cond(m["w_mean"], MIN_WEIGHT_SYN, m["w_mean"] >= MIN_WEIGHT_SYN,
                        f"mean weight_syn over the second half {m['w_mean']:.2f} (needs >= {MIN_WEIGHT_SYN})"),
        "pull": _cond(m["pull_share"], MIN_PULL_SHARE, m["pull_share"] >= MIN_PULL_SHARE,
                      f"pull_factor in ({lo}, {hi}) on {100 * m['pull_share']:.0f}% of the steps{a} "
                      f"(needs >= {100 * MIN_PULL_SHARE:.0f}%)"),
        "hardness": _cond(gen, real, gen <= real and drift <= MAX_GEN_DRIFT,
                          f"median hard_gen {gen:.2f} vs hard_real {real:.2f} (needs <=) and hard_aug "
                          f"{aug:.2f} (needs within {100 * MAX_GEN_DRIFT:.0f}%: off by {100 * drift:.0f}%)"),
    }
    out["engaged"] = all(v["ok"] for v in out.values())
    return out


def _engagement_v2(m: dict, a: str) -> dict:
    """Conditions v2 (fixed before the results were read): what the paper claims of the synthetics."""
    wlo, whi = WEIGHT_RANGE_V2
    plo, phi = PULL_RANGE_V2
    gen, real, aug, drift = m["hard_gen"], m["hard_real"], m["hard_aug"], m["drift"]
    acc_syn, pull = m["acc_syn"], m["pull_factor"]
    out = {
        "classifier": _cond(m["acc_end"], MIN_ACC_REAL, m["acc_end"] >= MIN_ACC_REAL,
                            f"acc_real at the end {m['acc_end']:.2f} (needs >= {MIN_ACC_REAL})"),
        "labels": _cond(acc_syn, MIN_ACC_SYN, acc_syn >= MIN_ACC_SYN,
                        f"median acc_syn over the second half {acc_syn:.2f}: synthetics the classifier "
                        f"gives their intended class (needs >= {MIN_ACC_SYN})"),
        "weight": _cond(m["w_mean"], WEIGHT_RANGE_V2, wlo <= m["w_mean"] <= whi,
                        f"mean weight_syn over the second half {m['w_mean']:.2f} (needs {wlo}-{whi}: the "
                        f"synthetics count, and so do the real samples)"),
        "pull": _cond(pull, PULL_RANGE_V2, plo <= pull <= phi,
                      f"median pull factor over the second half {pull:.3g}{a} (needs {plo}-{phi}: "
                      f"negatives neither left alone nor all pulled to d+)"),
        "hardness": _cond(gen, real, gen < real and drift <= MAX_GEN_DRIFT,
                          f"median hard_gen {gen:.2f} vs hard_real {real:.2f} (needs <) and hard_aug "
                          f"{aug:.2f} (needs within {100 * MAX_GEN_DRIFT:.0f}%: off by {100 * drift:.0f}%)"),
    }
    out["engaged"] = all(v["ok"] for v in out.values())
    return out


def engagement(train_rows: list[dict], alpha: float | None = None) -> dict:
    """The engagement conditions of a run, from its ``history["train"]`` rows (docs/METHOD.md §5.3).

    Returns the v2 conditions at the top level, {"classifier", "labels", "weight", "pull",
    "hardness": {"value", "threshold", "ok", "text"}, "engaged": bool}, plus ``"v1"``: the
    first version's four conditions and its "engaged" (kept beside v2 in every table), and
    ``"numbers"``: the medians and means both read. ``alpha`` is only used in the text.
    Rows without the diagnostics (not an HDML run) give ``engaged = False`` and NaN values.
    """
    rows = [r for r in train_rows if "acc_real" in r]
    nan = float("nan")
    if not rows:
        empty = {"value": nan, "threshold": nan, "ok": False, "text": "no HDML diagnostics in this run"}
        v1 = {k: dict(empty) for k in CONDITIONS_V1} | {"engaged": False}
        return {k: dict(empty) for k in CONDITIONS_V2} | {"engaged": False, "v1": v1, "numbers": {}}
    m = _summary(rows)
    a = "" if alpha is None else f" at alpha={alpha:g}"
    return _engagement_v2(m, a) | {"v1": _engagement_v1(m, a), "numbers": m}


NAMES_V2 = {"classifier": "a. classifier learns", "labels": "b. labels kept", "weight": "c. synthetics count",
            "pull": "d. hardness adapts", "hardness": "e. harder, and preserved"}


def engagement_lines(result: dict) -> list[str]:
    """Human-readable lines for ``engagement``'s result (demo, train, study, notebooks): the v2
    conditions with the numbers behind each, then the verdict of both versions (v1: another,
    earlier and looser set of four conditions, not the first four of a-e; METHOD §5.3)."""
    lines = [f"{NAMES_V2[k]:<28} {'yes' if result[k]['ok'] else 'NO ':<4} {result[k]['text']}" for k in NAMES_V2]
    v1 = result.get("v1", {}).get("engaged")
    lines.append(f"{'engaged (v2, all five)':<28} {'yes' if result['engaged'] else 'NO'}"
                 + ("" if v1 is None else f"   v1 (an earlier, looser set of conditions, docs/METHOD.md §5.3): "
                                          f"{'yes' if v1 else 'no'}"))
    return lines
