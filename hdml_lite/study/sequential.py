"""Sequential verdicts with a controlled error rate: the add-a-seed rule and its boundary.

    sequential_verdict(d, n0=5, n_max=10, margin=0.01)   # the verdict the engine prints, d (n,) = A - B
    levels(5, 10)                   # the per-look levels of the design: (two-sided test, each one-sided TOST)
    error_rates(reps=20000)         # the decision function's error rates at sd 0.5, 1, 2, 3 points
    optional_stopping()             # the lesson: adding seeds until significant, nominal 5% vs the boundary
    with_holm(rows)                 # Holm within each family of verdict rows

The rule. A headline claim starts at ``n0`` paired seeds and gets one more at a time, up to
``n_max``, while a verdict is undecided. Every look uses the same per-look levels (a Pocock-type
boundary): the two-sided t-test at ``level`` and each of the two one-sided tests of the
equivalence (TOST) at ``level_tost`` (``stats.look_stats``). The first look that decides fixes the
verdict (it is not revised by seeds added later for the other metric); the verdict row records that
look and its levels. A comparison at a fixed number of seeds (``n_max <= n0``) keeps the plain 5%
tests.

The levels. ``level`` is the 5% quantile, under no difference, of the smallest two-sided p over
the looks; ``level_tost`` the 5% quantile of the smallest one-sided p at a true difference of
exactly the margin (``calibrate``: the kit's own ``look_stats`` on simulated normal differences).
So the chance that *any* look of the design gives a false "supported"/"contradicted" is 5%, and the
same for a false "equivalent": both bounds hold whatever decides when to stop adding seeds (here
the other metric of the claim shares the seeds), and at every sd of a paired difference, because a
t-statistic under its null does not depend on the sd (for the TOST, the worst case is an sd far
below the margin, where the test on the far side always passes). The rates of the actual rule are
at or below 5% (``error_rates``; ``python -m hdml_lite.study error-rates``). A level calibrated on
the actual rule at its worst sd among 0.5-3 points would be a little looser for the TOST (about
0.023 per look instead of 0.019 at n = 5..10); this one holds at any sd and any stopping rule.

Why Pocock and not an alpha-spending function: the looks are equal steps of one seed, the rule is
"one more seed while undecided", and a constant level per look is one number a student can check
by hand against the printed p; spending functions (O'Brien-Fleming) put almost no level on the
first looks, where this design mostly decides. The price: the last look is stricter than 5%.

Why these bounds suit Holm: ``sequential_p`` maps the smallest p over the looks to the overall
error rate of the whole design (``seq_p <= a`` exactly when a boundary calibrated for overall
level ``a`` is crossed), a valid p-value, so the families' Holm correction uses it.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .stats import FEWER, MIN_SEEDS, NO_SPREAD, VERDICTS, holm, look_stats, prob_improvement

NOMINAL = 0.05
DESIGN = (5, 10)                     # the study's and compare's default: 5 paired seeds, up to 10
# Overall levels at which the boundary is tabled: Holm needs 0.05 / k for a family of k tests.
ALPHAS = tuple(sorted({0.5, 0.2, 0.1, 1e-3, 5e-4, 2e-4, 1e-4} | {round(0.05 / k, 12) for k in range(1, 21)}))

# Per-look levels (two-sided test, one-sided TOST) at each overall level of ALPHAS, for the design
# (5, 10), from 2,000,000 simulated designs. Reproduce with:
#   python -c "from hdml_lite.study.sequential import calibrate; print(calibrate(5, 10, reps=2_000_000))"
TABLE = {
    (5, 10): {"alphas": ALPHAS,
              "test": (2.09402e-05, 4.20239e-05, 0.000112463, 0.00023566, 0.00064123, 0.000674772, 0.000714377,
                        0.000758451, 0.000811535, 0.000868444, 0.000935449, 0.00101996, 0.00111558, 0.00122485,
                        0.00135189, 0.00151615, 0.00171914, 0.00199428, 0.00234819, 0.00288831, 0.0036917, 0.005076,
                        0.00797605, 0.0173473, 0.0385007, 0.0866246, 0.263988),
              "tost": (1.93481e-05, 4.07951e-05, 0.000116588, 0.000252436, 0.000670327, 0.000712406, 0.000753429,
                        0.000805185, 0.000860023, 0.000921653, 0.000992942, 0.00107523, 0.00116271, 0.00128662,
                        0.00143296, 0.00162245, 0.00184317, 0.00213444, 0.0025242, 0.00309351, 0.00396772, 0.00544809,
                        0.00861855, 0.0191988, 0.0433301, 0.100016, 0.322761)},
}


def _design(n0: int, n_max: int) -> tuple[int, int]:
    """The looks that can decide: from max(n0, 3) to n_max (fewer than 3 seeds never decide)."""
    return max(int(n0), MIN_SEEDS), int(n_max)


def is_fixed(n0: int, n_max: int) -> bool:
    lo, hi = _design(n0, n_max)
    return hi <= lo


def _null_min_p(n0: int, n_max: int, reps: int, seed: int, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """The smallest p over the looks n0..n_max of simulated designs, (reps,) each: two-sided p of the
    t-test at no difference, and one-sided p of the TOST at a difference of exactly the margin with an
    sd far below it (``look_stats``, the decision function's own statistics)."""
    rng = np.random.default_rng(seed)
    lo, hi = _design(n0, n_max)
    m2, m1 = [], []
    far = 1e6                                   # margin in sd units: the near side's test always passes
    for start in range(0, reps, chunk):
        z = rng.standard_normal((min(chunk, reps - start), hi))
        a2 = np.full(len(z), np.inf)
        a1 = np.full(len(z), np.inf)
        for n in range(lo, hi + 1):
            a2 = np.fmin(a2, look_stats(z[:, :n], 1.0, 1.0, far)["p"])
            a1 = np.fmin(a1, look_stats(far + z[:, :n], 1.0, 1.0, far)["p_tost"])
        m2.append(a2)
        m1.append(a1)
    return np.concatenate(m2), np.concatenate(m1)


def calibrate(n0: int, n_max: int, reps: int = 200_000, seed: int = 0) -> dict:
    """{"alphas": ALPHAS, "test": per-look two-sided levels, "tost": per-look one-sided levels}: for
    each overall level a in ALPHAS, the a-quantile of the smallest p over the looks (``_null_min_p``).
    A fixed design gives the levels themselves."""
    if is_fixed(n0, n_max):
        return {"alphas": ALPHAS, "test": ALPHAS, "tost": ALPHAS}
    m2, m1 = _null_min_p(n0, n_max, reps, seed)
    q = lambda m: tuple(float(f"{x:.6g}") for x in np.quantile(m, ALPHAS, method="inverted_cdf"))  # noqa: E731
    return {"alphas": ALPHAS, "test": q(m2), "tost": q(m1)}


@lru_cache(maxsize=32)
def _table(n0: int, n_max: int) -> dict:
    key = _design(n0, n_max)
    if key in TABLE and TABLE[key] is not None:
        return TABLE[key]
    return calibrate(*key)          # another design: calibrated here (200,000 designs, seeded), once per process


def levels(n0: int, n_max: int, overall: float = NOMINAL) -> tuple[float, float]:
    """(level, level_tost): the per-look levels of the design n0..n_max at the overall level
    ``overall`` (one of ALPHAS); (overall, overall) for a fixed design."""
    if is_fixed(n0, n_max):
        return overall, overall
    t = _table(n0, n_max)
    i = min(range(len(ALPHAS)), key=lambda k: abs(ALPHAS[k] - overall))
    return t["test"][i], t["tost"][i]


def sequential_p(min_p, n0: int, n_max: int, kind: str = "test"):
    """The overall error rate of the design at its smallest p over the looks: the overall level a at
    which the boundary would just be crossed (log-log interpolation between the tabled levels, exact
    at each of ALPHAS; below the smallest, the Bonferroni bound). Fixed design: p itself."""
    x = np.asarray(min_p, dtype=float)
    if is_fixed(n0, n_max):
        return x if x.ndim else float(x)
    t = _table(n0, n_max)
    c = np.array(t[kind], dtype=float)
    a = np.array(t["alphas"], dtype=float)
    looks = _design(n0, n_max)[1] - _design(n0, n_max)[0] + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(np.clip(x, 1e-300, 1.0))
        out = np.exp(np.interp(lx, np.log(np.r_[c, 1.0]), np.log(np.r_[a, 1.0])))
        out = np.where(x < c[0], np.minimum(looks * x, a[0]), out)
        out = np.where(np.isnan(x), np.nan, np.round(out, 15))     # exact at the tabled levels
    return out if out.ndim else float(out)


def sequential_verdict(d, n0: int, n_max: int, margin: float, level: float | None = None,
                       level_tost: float | None = None):
    """The verdict of the add-a-seed rule from paired differences d (..., n) = A - B (fractions).

    Looks at n0, n0 + 1, ..., min(n, n_max) seeds (one look at n if n < n0, or for a fixed
    design n_max <= n0); the first look that decides fixes the verdict; its statistics are
    reported. level, level_tost: the per-look levels (default: ``levels(n0, n_max)``; the
    lesson passes 0.05 to show the nominal rule). Returns, for a 1-d d, a dict of numbers:
    n_seeds (n), look, level, level_tost, mean_diff, ci_low, ci_high (the 1 - level interval),
    tost_low, tost_high (the 1 - 2 level_tost interval), margin, p, p_tost (overall, over the
    looks so far: ``sequential_p``), verdict and reason ("" or why it is undecided: fewer than
    3 seeds, no spread, stopped at n of n_max seeds); for d with leading dims, arrays of those
    (``code``: 0 undecided, 1 supported, 2 contradicted, 3 equivalent, instead of verdict).
    """
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    fixed = n_max <= n0
    default = levels(n0, n_max)
    a = default[0] if level is None else level
    ae = default[1] if level_tost is None else level_tost
    looks = [n] if fixed or n <= n0 else list(range(n0, min(n, n_max) + 1))
    shape = d.shape[:-1]
    res = None
    decided = np.zeros(shape, dtype=bool)
    min_p = np.full(shape, np.inf)
    min_pt = np.full(shape, np.inf)
    for L in looks:
        st = look_stats(d[..., :L], a, ae, margin)
        live = ~decided
        min_p = np.where(live, np.fmin(min_p, st["p"]), min_p)
        min_pt = np.where(live, np.fmin(min_pt, st["p_tost"]), min_pt)
        st["look"] = np.full(shape, L)
        if res is None:
            res = st
        else:
            for k, v in st.items():
                res[k] = np.where(live, v, res[k])
        decided |= st["code"] != 0
    min_p = np.where(np.isinf(min_p), np.nan, min_p)
    min_pt = np.where(np.isinf(min_pt), np.nan, min_pt)
    if fixed or (level is not None and level_tost is not None):
        seq_p, seq_pt = min_p, min_pt
    else:
        seq_p, seq_pt = sequential_p(min_p, n0, n_max, "test"), sequential_p(min_pt, n0, n_max, "tost")
    out = {"n_seeds": n, "look": res["look"], "level": a, "level_tost": ae, "mean_diff": res["mean"],
           "ci_low": res["ci_low"], "ci_high": res["ci_high"], "tost_low": res["tost_low"],
           "tost_high": res["tost_high"], "margin": margin, "p": seq_p, "p_tost": seq_pt, "code": res["code"],
           "why": res["why"]}
    if d.ndim > 1:
        return out
    code, why = int(res["code"]), int(res["why"])
    reason = ("", FEWER, NO_SPREAD)[why]
    if not code and not why and not fixed and n < n_max:
        reason = f"stopped at {n} of {n_max} seeds"
    scal = {k: (float(v) if isinstance(v, (np.ndarray, np.floating, float)) else v) for k, v in out.items()
            if k not in ("code", "why")}
    scal.update(n_seeds=n, look=int(res["look"]), verdict=VERDICTS[(3, 0, 1, 2)[code]], reason=reason)
    return scal


def verdict_row(xa, xb, n0: int, n_max: int, margin: float) -> dict:
    """One claim on one metric from paired scores (seed i of A with seed i of B): the sequential
    verdict (``sequential_verdict``) and P(A > B) with its bootstrap interval over all paired seeds."""
    xa, xb = np.asarray(xa, dtype=float), np.asarray(xb, dtype=float)
    if xa.shape != xb.shape or xa.ndim != 1:
        raise ValueError(f"paired scores need equal 1-d shapes, got {xa.shape} and {xb.shape}")
    d = xa - xb
    v = sequential_verdict(d, n0, n_max, margin)
    pi, lo, hi = prob_improvement(d)
    return v | {"diffs": d.tolist(), "p_improve": pi, "p_improve_low": lo, "p_improve_high": hi}


def with_holm(rows: list[dict], alpha: float = NOMINAL) -> list[dict]:
    """Holm within each family (``row["family"]``): ``p_holm`` (the difference tests' p) and
    ``p_tost_holm`` (the equivalence tests'), each adjusted over the family's rows, and
    ``verdict_holm``: the raw verdict where its adjusted p is at most ``alpha``, else undecided. So in
    a family the chance of any false "supported"/"contradicted" is at most 5%, and the same for any
    false "equivalent". Returns new rows (the input is not changed)."""
    out = [dict(r) for r in rows]
    for fam in dict.fromkeys(r.get("family", "") for r in out):
        mine = [r for r in out if r.get("family", "") == fam]
        ph = holm([r.get("p", math.nan) for r in mine])
        pth = holm([r.get("p_tost", math.nan) for r in mine])
        for r, a, b in zip(mine, ph, pth):
            v = r["verdict"]
            tol = alpha * (1 + 1e-9)     # k * (0.05 / k) in floating point
            keep = (v in ("supported", "contradicted") and a <= tol) or (v == "equivalent" and b <= tol)
            r.update(p_holm=float(a), p_tost_holm=float(b), verdict_holm=v if keep else "undecided")
    return out


def verdict_text(v: dict, key: str = "verdict") -> str:
    """A verdict with its reason when undecided: "undecided (no spread)"."""
    text = str(v.get(key, ""))
    reason = v.get("reason") if isinstance(v.get("reason"), str) else ""
    if text == "undecided" and key == "verdict" and reason:
        return f"undecided ({reason})"
    if text == "undecided" and key == "verdict_holm" and v.get("verdict") != "undecided":
        return "undecided (after Holm)"
    return text


# ---------------------------------------------------------------- checks and the lesson
SDS = (0.5, 1.0, 2.0, 3.0)          # sd of a paired difference, points


def error_rates(reps: int = 20_000, sds=SDS, n0: int = DESIGN[0], n_max: int = DESIGN[1], margin: float = 0.01,
                seed: int = 1, level: float | None = None, level_tost: float | None = None) -> dict:
    """The decision function's error rates over the whole add-a-seed procedure, by simulation
    (normal paired differences, sd in points): {"type1": {sd: P(supported or contradicted | true
    difference 0)}, "equiv_at_margin": {sd: P(equivalent | true difference = margin)}, "reps": reps,
    "se": {...}: the Monte-Carlo standard errors}. Seeded: deterministic."""
    rng = np.random.default_rng(seed)
    t1, eq, se1, se2 = {}, {}, {}, {}
    for sd in sds:
        z = rng.standard_normal((reps, n_max))
        c0 = sequential_verdict(sd / 100 * z, n0, n_max, margin, level, level_tost)["code"]
        z = rng.standard_normal((reps, n_max))
        c1 = sequential_verdict(margin + sd / 100 * z, n0, n_max, margin, level, level_tost)["code"]
        t1[sd] = float(np.isin(c0, (1, 2)).mean())
        eq[sd] = float((c1 == 3).mean())
        se1[sd] = math.sqrt(max(t1[sd] * (1 - t1[sd]), 1e-12) / reps)
        se2[sd] = math.sqrt(max(eq[sd] * (1 - eq[sd]), 1e-12) / reps)
    return {"type1": t1, "equiv_at_margin": eq, "reps": reps, "se": {"type1": se1, "equiv_at_margin": se2}}


def optional_stopping(reps: int = 20_000, n0: int = DESIGN[0], n_max: int = DESIGN[1], sd: float = 1.0,
                      seed: int = 0) -> dict:
    """The lesson: A and B equal (true difference 0, paired sd ``sd`` points). How often does the
    kit's decision function call a difference ("supported" or "contradicted")?
    {"fixed": at n0 seeds, once, at 5%; "nominal": adding a seed while undecided, up to n_max, each
    look at 5%; "boundary": the same rule at the calibrated per-look levels; "levels": those levels}."""
    z = np.random.default_rng(seed).standard_normal((reps, n_max)) * sd / 100
    rate = lambda c: float(np.isin(c, (1, 2)).mean())  # noqa: E731
    fixed = sequential_verdict(z[:, :n0], n0, n0, 0.01)["code"]
    nominal = sequential_verdict(z, n0, n_max, 0.01, NOMINAL, NOMINAL)["code"]
    boundary = sequential_verdict(z, n0, n_max, 0.01)["code"]
    return {"fixed": rate(fixed), "nominal": rate(nominal), "boundary": rate(boundary),
            "levels": levels(n0, n_max), "reps": reps}


def error_rates_lines(res: dict, n0: int = DESIGN[0], n_max: int = DESIGN[1]) -> list[str]:
    """error_rates as a table and one JSON line."""
    import json

    lv = levels(n0, n_max)
    lines = [f"add-a-seed rule: {n0} paired seeds, one more while undecided, up to {n_max}; per-look levels "
             f"{lv[0]:.4g} (two-sided test), {lv[1]:.4g} (each one-sided test of the TOST); margin 1 point; "
             f"{res['reps']} simulated comparisons per cell",
             f"{'sd of a paired difference (points)':>36} {'P(supported or contradicted | 0)':>34} "
             f"{'P(equivalent | margin)':>24}"]
    for sd in res["type1"]:
        lines.append(f"{sd:>36g} {res['type1'][sd]:>27.4f} ± {res['se']['type1'][sd]:.4f} "
                     f"{res['equiv_at_margin'][sd]:>17.4f} ± {res['se']['equiv_at_margin'][sd]:.4f}")
    lines.append(json.dumps({"type1": {str(k): v for k, v in res["type1"].items()},
                             "equiv_at_margin": {str(k): v for k, v in res["equiv_at_margin"].items()},
                             "reps": res["reps"]}))
    return lines
