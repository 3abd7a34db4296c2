"""Is the training budget enough? Whether R@1 was still rising over the last quarter of a run.

    check = budget_check(history["eval"], steps=400)      # {"rising": True, "rise": 0.031, ...} or None
    print(budget_line(check))

The lab presets' budgets (400 steps) were chosen where the baseline's validation R@1 plateaus on
the glyphs; on other data it may still be climbing. ``train`` prints this on any dataset other
than the glyphs, and ``compare`` can call the same function on its runs.
"""
from __future__ import annotations

MIN_RISE = 0.01          # R@1 (a fraction) gained over the last quarter that counts as "still rising"


def budget_check(eval_rows: list[dict], steps: int, split: str | None = None,
                 min_rise: float = MIN_RISE) -> dict | None:
    """R@1 over the last quarter of a run, from its ``history["eval"]`` rows ({step, split, r1, ...}).

    split: "val" when the run has validation rows, else "test" (a learning curve, never used to
    pick a model). Compares the last evaluation at or before step ``steps - steps // 4`` (and
    before ``steps``: never the final evaluation with itself) with the evaluation at ``steps``.
    Returns None when the run has no such pair of evaluations (e.g. ``train.eval_every=0``: only
    the final one), else
    {"split", "from_step", "to_step", "r1_from", "r1_to", "rise", "rising", "suggested_steps"}
    (suggested_steps: twice the budget when rising, else None)."""
    if split is None:
        split = "val" if any(r.get("split") == "val" for r in eval_rows) else "test"
    rows = sorted((r for r in eval_rows if r.get("split") == split and "r1" in r), key=lambda r: r["step"])
    end = [r for r in rows if r["step"] == steps]
    start = [r for r in rows if 0 < r["step"] <= steps - steps // 4 and r["step"] < steps]
    if not end or not start:
        return None
    a, b = start[-1], end[-1]
    rise = float(b["r1"]) - float(a["r1"])
    rising = rise > min_rise
    return {"split": split, "from_step": int(a["step"]), "to_step": int(b["step"]), "r1_from": float(a["r1"]),
            "r1_to": float(b["r1"]), "rise": rise, "rising": bool(rising),
            "suggested_steps": 2 * steps if rising else None}


def budget_line(check: dict | None, steps: int | None = None) -> str:
    """One line for the user about ``budget_check``'s result."""
    if check is None:
        return ("budget: cannot tell whether R@1 still rose over the last quarter: the run has no evaluation "
                "before it, only the final one (train.eval_every=0, or larger than 3/4 of train.steps); set "
                "train.eval_every to a quarter of train.steps or less")
    name = "validation" if check["split"] == "val" else "test-curve"
    what = (f"budget: {name} R@1 {'rose' if check['rise'] >= 0 else 'changed'} {100 * check['rise']:+.1f} points "
            f"over the last quarter (step {check['from_step']}: {100 * check['r1_from']:.1f} -> step "
            f"{check['to_step']}: {100 * check['r1_to']:.1f})")
    if check["rising"]:
        return f"{what}: still rising; try train.steps={check['suggested_steps']}"
    return f"{what}: about flat, train.steps={check['to_step']} looks enough"
