"""What ``train`` prints after the final evaluation, and adds to metrics.json.

- An HDML run: HDML's mechanism, the engagement lines the demo prints
  (``hdml.diagnostics.engagement`` / ``engagement_lines`` on the run's training rows).
- A dataset other than the glyphs: the budget check (``training.budget.budget_check``): whether
  R@1 still rose by more than a point over the last quarter of the run.

It lives outside ``training/`` because it reads HDML's diagnostics, and the training package
knows methods only through the registry.
"""
from __future__ import annotations

from .training.budget import budget_check, budget_line


def closing_report(cfg, history: dict, echo: bool = True) -> dict:
    """Print the lines (``echo``); return {"mechanism": {"engaged", "lines"}} and/or {"budget": ...}
    for metrics.json."""
    out = {}
    if cfg.train.method == "hdml":
        from .hdml.diagnostics import engagement, engagement_lines

        result = engagement(history["train"], cfg.hdml.alpha)
        lines = engagement_lines(result)
        if echo:
            print(mechanism_heading(cfg))
            print("\n".join("  " + ln for ln in lines))
        out["mechanism"] = {"engaged": bool(result.get("engaged")), "lines": lines}
    if cfg.data.dataset != "glyphs":
        check = budget_check(history["eval"], cfg.train.steps)
        if echo:
            print(budget_line(check))
        out["budget"] = check
    return out


def mechanism_heading(cfg) -> str:
    return f"HDML's mechanism in {cfg.name} (alpha={cfg.hdml.alpha:g}, docs/METHOD.md §5):"
