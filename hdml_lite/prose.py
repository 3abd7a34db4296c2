"""Sentences about numbers, for the notebooks: each regime word comes from a number, never typed by hand.

    pull_regime(0.9)          # "mild"
    pull_sentence(0.9)        # "a pull factor of 0.90, a mild pull: each synthetic negative keeps 90% of ..."
    count_phrase(5, "map")    # "5 maps"

The pull factor is lambda = exp(-alpha / J_avg) in z^ = z + lambda_d (z- - z) (docs/METHOD.md §1.1:
the new distance is d+ + (d- - d+) * lambda). lambda = 1: the negative stays where it is (no pull);
lambda -> 0: it is pulled to distance d+ (the strongest pull). A factor of 0.9 is therefore a MILD
pull and 0.01 an extreme one. Every function here is pure, with tests at its boundaries
(tests/test_notebook_prose.py).
"""
from __future__ import annotations

import math

# (lowest factor of the regime, word): checked from the top; a factor >= 0.99 is "no pull"
PULL_REGIMES = ((0.99, "no"), (0.7, "mild"), (0.25, "moderate"), (0.05, "strong"), (0.0, "extreme"))


def pull_regime(factor: float) -> str:
    """The pull factor's regime word: "no" (>= 0.99), "mild" [0.7, 0.99), "moderate" [0.25, 0.7),
    "strong" [0.05, 0.25), "extreme" (< 0.05: every negative pulled almost to d+).

    Raises ValueError outside [0, 1] (a factor exp(-alpha / J_avg) with alpha, J_avg >= 0)."""
    f = float(factor)
    if not (0.0 <= f <= 1.0) or math.isnan(f):
        raise ValueError(f"pull factor {factor!r}: expected a number in [0, 1] (exp(-alpha / J_avg))")
    for low, word in PULL_REGIMES:
        if f >= low:
            return word
    return "extreme"     # unreachable: the last regime starts at 0


def pull_sentence(factor: float) -> str:
    """One clause on what a pull factor does to a negative at distance d- > d+ from its anchor:
    it moves to d+ + (d- - d+) * factor, i.e. keeps ``factor`` of its excess distance."""
    f = float(factor)
    word = pull_regime(f)
    keeps = f"each synthetic negative keeps {100 * f:.0f}% of its distance beyond $d^+$"
    if word == "no":
        return f"a pull factor of {f:.2f}, no pull to speak of: {keeps} (the synthetic negatives are the real ones)"
    if word == "extreme":
        return (f"a pull factor of {f:.2g}, an extreme pull: {keeps}, so every negative sits almost at $d^+$ "
                "and nothing is left to adapt")
    stays = {"mild": "it stays near the real negative", "moderate": "it moves a good part of the way to $d^+$",
             "strong": "it moves most of the way to $d^+$"}[word]
    return f"a pull factor of {f:.2f}, a {word} pull: {keeps} ({stays})"


def count_phrase(n: int, noun: str, plural: str | None = None) -> str:
    """"1 run", "5 runs", "0 maps" (``plural`` for irregular nouns)."""
    n = int(n)
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def labels_phrase(acc_syn: float, threshold: float = 0.5) -> str:
    """"labels kept" when at least ``threshold`` of the synthetics are classified into their intended
    class (engagement condition b), else "labels lost"."""
    return "labels kept" if float(acc_syn) >= threshold else "labels lost"


def condition_in_both(name: str, ok_a: bool, ok_b: bool, a: str, b: str) -> str:
    """Whether an engagement condition passes in two runs, as said: "passes in both runs",
    "fails in both runs", or which one it passes in."""
    if ok_a and ok_b:
        return f"the {name} condition passes in both runs"
    if not ok_a and not ok_b:
        return f"the {name} condition fails in both runs"
    return f"the {name} condition passes in {a if ok_a else b} only (a flipped verdict)"


def fractions_phrase(fractions) -> str:
    """HDC's fractions (one per head) and what they select: (1, 1, 1) selects nothing."""
    fr = tuple(float(f) for f in fractions)
    text = "(" + ", ".join(f"{f:g}" for f in fr) + ")"
    if all(f == 1 for f in fr):
        return (f"fractions {text}: no head selects anything, so it measures the cascade of heads "
                "**without hard mining**, not the mining this notebook shows")
    kept = ", ".join(f"head {k + 1} the hardest {100 * f:.0f}%" for k, f in enumerate(fr))
    return f"fractions {text}: {kept}"


def hardness_phrase(hard_gen: float, hard_real: float) -> str:
    """Generated negatives against real ones, in units of d+ (lower = closer to the anchor = harder)."""
    if hard_gen > hard_real:
        return "farther from the anchor (easier) than the real negatives"
    return "no farther from the anchor than the real negatives (harder, as HDML intends)"
