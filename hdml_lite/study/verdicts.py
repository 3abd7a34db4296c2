"""The paper's claims as paired comparisons of the final runs, and their verdicts.

Each claim is "A > B" (the paper's direction). Seed i of A is paired with seed i of B (same
data order and initial head); ``stats.paired_verdict`` gives the mean difference, the 95%
t-interval and the verdict (supported / contradicted / undecided).
"""
from __future__ import annotations

from .files import VERDICT_COLUMNS
from .plan import HDC_BATCH, method_name
from .stats import paired_verdict

# (claim, A, B) with A, B method keys (plan.KEYS): the paper says A > B
CLAIMS = (("HDML(N-pair) > N-pair", "hdml_npair", "npair"),
          ("HDML(triplet) > triplet", "hdml_triplet", "triplet"),
          ("HDML(N-pair) > HDML(N-pair) without softmax", "hdml_npair", "hdml_npair_nosoftmax"),
          ("HDML(N-pair) without reconstruction > N-pair", "hdml_npair_norecon", "npair"),
          ("HDC > contrastive at HDC's batch", "hdc", HDC_BATCH))
METRICS = ("r1", "nmi")


def paired(table: list[dict], a: str, b: str, metric: str) -> tuple[list[int], list[float], list[float]]:
    """(seeds both methods have, A's scores, B's scores) from lab_table rows."""
    va = {r["seed"]: r[metric] for r in table if r["method"] == a and metric in r}
    vb = {r["seed"]: r[metric] for r in table if r["method"] == b and metric in r}
    seeds = sorted(set(va) & set(vb))
    return seeds, [va[k] for k in seeds], [vb[k] for k in seeds]


def verdict_rows(table: list[dict], regime: str) -> list[dict]:
    """One row per claim and metric (verdicts.csv columns, plus ``seeds`` and ``diffs``)."""
    out = []
    for claim, a, b in CLAIMS:
        for metric in METRICS:
            seeds, xa, xb = paired(table, method_name(regime, a), method_name(regime, b), metric)
            v = paired_verdict(xa, xb)
            out.append({"claim": claim, "metric": metric, **{k: v[k] for k in VERDICT_COLUMNS[2:]},
                        "seeds": seeds, "diffs": v["diffs"]})
    return out
