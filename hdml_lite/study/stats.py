"""The study's small pure functions: the alpha grid that spans the pull factor, paired verdicts.

    alpha_grid(1.7, (1, 0.5, 0.1))          # alphas with exp(-alpha / 1.7) = 1, 0.5, 0.1
    paired_verdict([0.52, 0.55], [0.50, 0.51])   # mean difference, 95% t-interval, verdict
"""
from __future__ import annotations

import math

import numpy as np

PULL_TARGETS = (1.0, 0.9, 0.7, 0.5, 0.3, 0.1, 0.01)


def alpha_grid(j_avg: float, targets=PULL_TARGETS) -> list[float]:
    """alpha = -J_avg ln(p) for each target pull factor p in (0, 1] (METHOD §1.1: the factor is
    exp(-alpha / J_avg), so at this J_avg each alpha gives exactly its p; p = 1 -> alpha = 0).

    j_avg: the J_avg the tracker reaches (> 0). Returns one alpha per target, same order.
    """
    if not (j_avg > 0 and math.isfinite(j_avg)):
        raise ValueError(f"J_avg={j_avg!r}: expected a finite positive number")
    out = []
    for p in targets:
        if not 0 < p <= 1:
            raise ValueError(f"pull target {p!r}: expected 0 < p <= 1")
        out.append(0.0 if p == 1 else -j_avg * math.log(p))
    return out


def second_half_median(values) -> float:
    """Median of the second half of a sequence (the part after the tracker has settled); NaN if empty."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    v = v[len(v) // 2:]
    return float(np.median(v)) if v else float("nan")


def t_quantile(q: float, df: int) -> float:
    """Student-t quantile (scipy.stats.t.ppf; scipy is a dependency of scikit-learn)."""
    from scipy.stats import t

    return float(t.ppf(q, df))


VERDICTS = ("supported", "contradicted", "equivalent", "undecided")
DEFAULT_MARGIN = 0.01       # 1 point of R@1 / NMI (scores are fractions)


def paired_verdict(a, b, level: float = 0.95, margin: float = DEFAULT_MARGIN) -> dict:
    """Is A > B (the paper's direction), A < B, or are they equivalent? From paired per-seed scores.

    a, b: sequences of the same length n (seed i of A paired with seed i of B).
    Differences d = a - b; mean, and the t-interval mean ± t_{(1+level)/2, n-1} sd(d) / sqrt(n).
    verdict: "supported" if the 95% interval lies above 0, "contradicted" if below 0; else
    "equivalent" if the 90% interval lies inside (-margin, +margin) (two one-sided tests at 5%:
    any effect is smaller than the margin); else "undecided" (always with n < 2: no interval).
    Returns {"n_seeds", "diffs", "mean_diff", "ci_low", "ci_high", "tost_low", "tost_high",
    "margin", "verdict"}.
    """
    if not margin > 0:
        raise ValueError(f"margin={margin!r}: expected a positive number (a fraction: 0.01 = 1 point)")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need equal 1-d shapes, got {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    lo = hi = tlo = thi = float("nan")
    if n >= 2:
        se = float(d.std(ddof=1)) / math.sqrt(n)
        half = t_quantile((1 + level) / 2, n - 1) * se
        lo, hi = mean - half, mean + half
        half90 = t_quantile(0.95, n - 1) * se          # two one-sided tests at 5%: the 90% interval
        tlo, thi = mean - half90, mean + half90
    if lo > 0:
        verdict = "supported"
    elif hi < 0:
        verdict = "contradicted"
    elif -margin < tlo and thi < margin:
        verdict = "equivalent"
    else:
        verdict = "undecided"
    return {"n_seeds": n, "diffs": d.tolist(), "mean_diff": mean, "ci_low": lo, "ci_high": hi,
            "tost_low": tlo, "tost_high": thi, "margin": margin, "verdict": verdict}
