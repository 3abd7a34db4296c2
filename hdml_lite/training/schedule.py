"""Learning-rate schedule as a pure function of the step (so it can be plotted)."""
from __future__ import annotations


def lr_scale(step: int, milestones: list, gamma: float) -> float:
    """Multiply by ``gamma`` at every milestone already reached: gamma ** #{m <= step}.

    Official HDML Cars196: milestones [5632, 6848], gamma 0.5 (METHOD §1.7).
    """
    return float(gamma) ** sum(1 for m in milestones if step >= int(m))
