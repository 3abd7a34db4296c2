"""J_avg and J_gen bookkeeping (METHOD §1.5).

J_avg (the running metric loss) sets how hard the synthetic negatives are;
J_gen (the running generator loss) sets how much the synthetics weigh. Both are
constants within a step and change only when a period closes:

- mode "block" (official code): the mean over the previous ``block`` steps (64),
  held fixed until the next block completes. ``update`` closes a block by itself.
- mode "epoch" (paper): the mean over the last epoch. The caller closes an epoch
  with ``end_epoch()``; ``HDMLMethod`` does it every ``steps_per_epoch`` updates.

Both start at ``j_init`` (official 1e6: almost no pulling, weight ~0.01 on the
synthetics during the first period). NaN / inf values are skipped; a period in
which every value was skipped keeps the previous mean.
"""
from __future__ import annotations

import math

MODES = ("block", "epoch")


class LossTracker:
    """Period means of J_m and J_gen. ``update(j_m, j_gen)`` once per step, then read
    ``j_avg`` / ``j_gen`` (the values of the last closed period)."""

    def __init__(self, mode: str = "block", block: int = 64, j_init: float = 1e6):
        if mode not in MODES:
            raise ValueError(f"hdml.j_avg_mode={mode!r}; expected one of {', '.join(MODES)}")
        if mode == "block" and block < 1:
            raise ValueError(f"hdml.block={block}; must be >= 1")
        self.mode = mode
        self.block = block
        self.j_init = float(j_init)
        self._j_avg = float(j_init)
        self._j_gen = float(j_init)
        self._sum = [0.0, 0.0]      # running sums of (J_m, J_gen) in the open period
        self._count = [0, 0]        # finite values counted
        self.steps_in_period = 0    # updates since the period opened (NaN steps included)
        self.periods_closed = 0

    @property
    def j_avg(self) -> float:
        """Mean J_m of the last closed period (j_init before the first one closes)."""
        return self._j_avg

    @property
    def j_gen(self) -> float:
        """Mean J_gen of the last closed period (j_init before the first one closes)."""
        return self._j_gen

    def update(self, j_m: float, j_gen: float) -> None:
        for k, v in enumerate((float(j_m), float(j_gen))):
            if math.isfinite(v):
                self._sum[k] += v
                self._count[k] += 1
        self.steps_in_period += 1
        if self.mode == "block" and self.steps_in_period >= self.block:
            self._close()

    def end_epoch(self) -> None:
        """Close the current epoch (mode "epoch" only): J_avg, J_gen <- its means."""
        if self.mode != "epoch":
            raise RuntimeError("end_epoch() is for mode 'epoch'; mode 'block' closes blocks in update()")
        self._close()

    def _close(self) -> None:
        if self._count[0]:
            self._j_avg = self._sum[0] / self._count[0]
        if self._count[1]:
            self._j_gen = self._sum[1] / self._count[1]
        self._sum = [0.0, 0.0]
        self._count = [0, 0]
        self.steps_in_period = 0
        self.periods_closed += 1

    def state_dict(self) -> dict:
        return {"mode": self.mode, "block": self.block, "j_init": self.j_init, "j_avg": self._j_avg,
                "j_gen": self._j_gen, "sum": list(self._sum), "count": list(self._count),
                "steps_in_period": self.steps_in_period, "periods_closed": self.periods_closed}

    def load_state_dict(self, state: dict) -> None:
        self.mode, self.block, self.j_init = state["mode"], state["block"], state["j_init"]
        self._j_avg, self._j_gen = state["j_avg"], state["j_gen"]
        self._sum, self._count = list(state["sum"]), list(state["count"])
        self.steps_in_period, self.periods_closed = state["steps_in_period"], state["periods_closed"]
