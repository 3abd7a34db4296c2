"""One plain-text metrics table for the command line and the demo (no CLI import needed)."""
from __future__ import annotations

TABLE_KEYS = ("r1", "r2", "r4", "r8", "nmi", "f1", "map_r")


def format_table(rows: dict, keys=TABLE_KEYS, extra: dict | None = None) -> str:
    """``rows``: {name: metrics dict (fractions)} -> a plain-text table in %."""
    width = max(8, *(len(n) for n in rows))
    head = f"{'method':<{width}} " + " ".join(f"{k.upper():>6}" for k in keys)
    if extra:
        head += f" {'train_s':>8}"
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        line = f"{name:<{width}} " + " ".join(f"{100 * m[k]:6.1f}" if k in m else f"{'-':>6}" for k in keys)
        if extra:
            line += f" {extra.get(name, float('nan')):8.0f}"
        lines.append(line)
    return "\n".join(lines)
