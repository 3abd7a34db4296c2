"""The study's small pure functions: the alpha grid that spans the pull factor, paired verdicts.

    alpha_grid(1.7, (1, 0.5, 0.1))          # alphas with exp(-alpha / 1.7) = 1, 0.5, 0.1
    paired_verdict([0.52, 0.55, 0.56], [0.50, 0.51, 0.53])   # mean difference, 95% t-interval, verdict
    holm([0.01, 0.04, 0.03])                 # Holm-adjusted p-values of one family
    prob_improvement([0.01, -0.002, 0.004])  # P(A > B) over replicates, bootstrap interval
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
MAX_MARGIN = 0.10           # 10 points: a wider margin calls almost anything "equivalent"
MIN_SEEDS = 3               # no verdict from fewer paired seeds
TIE_TOL = 1e-5              # 0.001 points: scores are written with 6 significant digits, and R@1 moves on a
                            # grid (1/180 on small test sets): paired differences whose sd is below this are tied
FEWER, NO_SPREAD = "fewer than 3 seeds", "no spread"


def check_margin(margin: float) -> float:
    """The equivalence margin (a fraction: 0.01 = 1 point): finite, above 0, at most ``MAX_MARGIN``."""
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and 0 < margin <= MAX_MARGIN):
        raise ValueError(f"margin={margin!r}: expected a finite number above 0 and at most {MAX_MARGIN:g} "
                         f"(a fraction: 0.01 = 1 point of R@1 / NMI)")
    return float(margin)


def look_stats(d, alpha: float, alpha_tost: float, margin: float) -> dict:
    """One look of the paired test: the verdict from the first ``n`` differences.

    d: array (..., n) of paired differences A - B (fractions), any leading shape (the simulations
    pass many replicates at once). alpha: two-sided level of the t-test (0: never significant);
    alpha_tost: level of each of the two one-sided tests (TOST; 0: never equivalent); margin > 0.
    verdict (the rule, in this order): fewer than ``MIN_SEEDS`` differences, or an sd below
    ``TIE_TOL`` -> undecided, with that reason; p <= alpha -> supported (mean > 0) or contradicted;
    p_tost <= alpha_tost -> equivalent (the 1 - 2 alpha_tost interval inside (-margin, +margin));
    else undecided. Returns arrays of shape (...): mean, sd, ci_low/ci_high (the 1 - alpha
    t-interval), tost_low/tost_high (the 1 - 2 alpha_tost interval), p (two-sided), p_tost
    (the larger one-sided p), code (0 undecided, 1 supported, 2 contradicted, 3 equivalent) and
    why (0, 1 = fewer than 3 seeds, 2 = no spread); the intervals need n >= 2, the p-values n >= 3.
    """
    from scipy.stats import t as student

    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    shape = d.shape[:-1]
    nan = np.full(shape, np.nan)
    mean = d.mean(axis=-1) if n else nan.copy()
    sd = d.std(axis=-1, ddof=1) if n >= 2 else nan.copy()
    out = {"mean": mean, "sd": sd, "ci_low": nan.copy(), "ci_high": nan.copy(), "tost_low": nan.copy(),
           "tost_high": nan.copy(), "p": nan.copy(), "p_tost": nan.copy(),
           "code": np.zeros(shape, dtype=int), "why": np.full(shape, 1 if n < MIN_SEEDS else 0, dtype=int)}
    if n < 2:
        return out
    se = sd / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = student.ppf(1 - alpha / 2, n - 1) if alpha > 0 else np.inf
        qe = student.ppf(1 - alpha_tost, n - 1) if alpha_tost > 0 else np.inf
        out["ci_low"], out["ci_high"] = mean - q * se, mean + q * se
        out["tost_low"], out["tost_high"] = mean - qe * se, mean + qe * se
        if n < MIN_SEEDS:
            return out
        spread = sd >= TIE_TOL
        safe = np.where(spread, se, 1.0)
        p = np.where(spread, 2 * student.sf(np.abs(mean) / safe, n - 1), np.nan)
        p_tost = np.where(spread, np.maximum(student.sf((mean + margin) / safe, n - 1),
                                             student.sf((margin - mean) / safe, n - 1)), np.nan)
    sig = spread & (p <= alpha) & (alpha > 0)
    eq = spread & ~sig & (p_tost <= alpha_tost) & (alpha_tost > 0)
    code = np.where(sig & (mean > 0), 1, np.where(sig, 2, np.where(eq, 3, 0)))
    out.update(p=p, p_tost=p_tost, code=code, why=np.where(spread, 0, 2))
    return out


def paired_verdict(a, b, level: float = 0.95, margin: float = DEFAULT_MARGIN) -> dict:
    """Is A > B (the paper's direction), A < B, or are they equivalent? From paired per-seed scores,
    at one fixed number of seeds (no seeds added: the plain tests at 5%; the sequential rule is
    ``sequential.sequential_verdict``).

    a, b: sequences of the same length n (seed i of A paired with seed i of B).
    Differences d = a - b; mean, and the t-interval mean ± t_{(1+level)/2, n-1} sd(d) / sqrt(n).
    verdict: "supported" if the ``level`` interval lies above 0, "contradicted" if below 0; else
    "equivalent" if the 90% interval lies inside (-margin, +margin) (two one-sided tests at 5%:
    any effect is smaller than the margin); else "undecided", always with fewer than 3 seeds or
    differences without spread (ties: ``reason`` says which).
    Returns {"n_seeds", "diffs", "mean_diff", "ci_low", "ci_high", "tost_low", "tost_high",
    "margin", "p", "p_tost", "verdict", "reason"}.
    """
    check_margin(margin)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need equal 1-d shapes, got {a.shape} and {b.shape}")
    d = a - b
    st = look_stats(d, 1 - level, 0.05, margin)
    why = int(st["why"])
    return {"n_seeds": len(d), "diffs": d.tolist(), "mean_diff": float(st["mean"]), "ci_low": float(st["ci_low"]),
            "ci_high": float(st["ci_high"]), "tost_low": float(st["tost_low"]), "tost_high": float(st["tost_high"]),
            "margin": margin, "p": float(st["p"]), "p_tost": float(st["p_tost"]), "verdict": VERDICTS[
                (3, 0, 1, 2)[int(st["code"])]], "reason": ("", FEWER, NO_SPREAD)[why]}


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of m p-values (one family): p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))
    in ascending order. NaN (no test) stays NaN and does not count in m. Shape (m,) -> (m,)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        out[k] = running
    return out


def prob_improvement(d, reps: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """P(A > B): the probability that A beats B on a replicate (Bouthillier et al., MLSys 2021,
    "Accounting for variance in machine learning benchmarks"), estimated over the paired replicates
    d (n,) = A - B as the fraction with A ahead (a tie, |d| < ``TIE_TOL``, counts 1/2), with a
    percentile bootstrap ``level`` interval over the replicates (``reps`` resamples, seeded:
    deterministic). Returns (p, low, high); NaN without replicates, an interval only from 2."""
    d = np.asarray(d, dtype=float)
    if d.ndim != 1 or not len(d):
        return float("nan"), float("nan"), float("nan")
    win = np.where(np.abs(d) < TIE_TOL, 0.5, (d > 0).astype(float))
    if len(d) < 2:
        return float(win.mean()), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(d), size=(reps, len(d)))
    boot = win[idx].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(win.mean()), float(lo), float(hi)
