"""Pinned runs: the CPU-budget runs the notebooks use, shipped with the kit and loaded in a second.

    from hdml_lite.pinned import get_run
    run = get_run(notebook_config("lab_hdml_npair", budget=budget))     # pinned, or trained (HDML_TRAIN=1)
    run.history, run.metrics, run.train_s, run.method                   # as train(cfg) returns them

By default a notebook loads the pinned copy of a run (``hdml_lite/pinned/data``: metrics, histories,
diagnostics, probes, two models and the t-SNE maps of the alpha sweep), so the six notebooks run in
minutes. ``HDML_TRAIN=1`` trains instead (``train(cfg)``, resumed from ``runs/notebooks/<budget>/``),
and so does a run the pinned set lacks or a ``full`` budget (a GPU: the pinned runs are CPU-budget
runs). Whenever a student's own finished run of the same settings exists, its scores are printed
beside the pinned ones: a difference is visible, never silent.

Regenerate the pinned set with ``python -m hdml_lite.study notebooks`` (hdml_lite/pinned/generate.py).
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .plan import PINNED_BUDGET, RunSpec, grid_j_avg, notebook_runs, sweep_grid

__all__ = ["PinnedRun", "TrainSwitchError", "get_run", "run_config", "load_pinned", "pinned_dir", "pinned_keys", "train_requested",
           "RunSpec", "notebook_runs", "sweep_grid", "grid_j_avg", "PINNED_BUDGET"]

SWITCH = "HDML_TRAIN"


class TrainSwitchError(ValueError):
    """A bad HDML_TRAIN value. In IPython it shows as its one-line message (no traceback)."""

    def _render_traceback_(self):
        return [f"TrainSwitchError: {self}"]


def train_requested() -> bool:
    """HDML_TRAIN=1: train every run instead of loading its pinned copy (unset or 0: load)."""
    v = os.environ.get(SWITCH, "").strip()
    if v not in ("", "0", "1"):
        raise TrainSwitchError(f"{SWITCH}={v!r}: expected 1 (train the runs) or 0 / unset (load the pinned runs)")
    return v == "1"


def pinned_dir() -> Path:
    """The pinned set: ``$HDML_PINNED`` when set (tests, a regenerated copy), else the package's data folder."""
    return Path(os.environ.get("HDML_PINNED") or Path(__file__).resolve().parent / "data")


def _store():
    return _read_store(str(pinned_dir()))


@lru_cache(maxsize=4)
def _read_store(folder: str):
    from .store import read_arrays, read_index

    folder = Path(folder)
    if not (folder / "runs.json.gz").is_file():
        return None
    return read_index(folder), read_arrays(folder)


def pinned_keys() -> list[str]:
    s = _store()
    return sorted(s[0]["runs"]) if s else []


class PinnedRun:
    """A pinned run with the attributes of ``train``'s RunResult (``history``, ``metrics``, ``train_s``,
    ``out_dir``: where a student's own run of it would go) plus ``probes`` (probed runs), ``tsne``
    ({"coords", "labels"} for the sweep's maps), ``cfg`` (the CPU-budget config it was trained with)
    and ``method`` (built from the pinned weights on first use; only runs whose weights are pinned)."""

    pinned = True

    def __init__(self, key: str, rec: dict, arrays: dict):
        from ..viz.notebook import notebook_config
        from .store import unpack

        self.key, self._rec, self._arrays = key, rec, arrays
        self.budget = rec.get("budget", PINNED_BUDGET)
        self.cfg = notebook_config(rec["preset"], *rec["overrides"], budget=self.budget)
        self.history = rec["history"]
        self.metrics = rec["metrics"]
        self.train_s = rec["train_s"]
        self.out_dir = Path(self.cfg.train.out_dir)
        self.probes = unpack(rec["probes"], arrays) if "probes" in rec else None
        self.tsne = unpack(rec["tsne"], arrays) if "tsne" in rec else None
        self._method = None

    @property
    def method(self):
        if self._method is None:
            import torch

            from ..training.trainer import build_method
            from .store import unpack

            m = self._rec.get("model")
            if m is None:
                raise AttributeError(f"the pinned run {self.key} has no pinned weights: train it "
                                     f"(HDML_TRAIN=1, or train(cfg)) to get its model")
            method = build_method(self.cfg, m["num_classes"], m["in_channels"], torch.device("cpu"),
                                  steps_per_epoch=m["steps_per_epoch"])
            weights = unpack(m["modules"], self._arrays)
            for k, mod in method.modules.items():
                mod.load_state_dict({n: torch.as_tensor(v) for n, v in weights[k].items()})
            method.load_extra_state(m.get("extra") or {})
            method.eval()
            self._method = method
        return self._method

    def __repr__(self):
        return f"PinnedRun({self.key!r}, R@1 {100 * self.metrics['r1']:.1f}%)"


def load_pinned(key: str) -> PinnedRun | None:
    """The pinned run named ``key`` (a run folder's name), or None when the pinned set lacks it."""
    s = _store()
    if not s or key not in s[0]["runs"]:
        return None
    return PinnedRun(key, s[0]["runs"][key], s[1])


def _scores(metrics: dict | None) -> str:
    if not metrics:
        return "no test scores"
    return f"R@1 {100 * metrics['r1']:.1f}%" + (f", MAP@R {100 * metrics['map_r']:.1f}%" if "map_r" in metrics else "")


def own_metrics(out_dir: Path) -> dict | None:
    """The test metrics of a student's own finished run in ``out_dir`` (its metrics.json), else None."""
    p = Path(out_dir) / "metrics.json"
    try:
        return json.loads(p.read_text())["test"]
    except (OSError, ValueError, KeyError):
        return None


def beside_line(key: str, pinned: PinnedRun | None, own: dict | None, own_where: Path, trained: bool) -> str:
    """One line: the pinned run's scores and, when there is one, the student's own run's beside them."""
    parts = []
    if pinned is not None:
        parts.append(f"pinned ({pinned.budget} budget, trained in {pinned.train_s:.0f} s wall) {_scores(pinned.metrics)}")
    if own is not None:
        parts.append(f"{'trained now' if trained else 'your run'} ({own_where.parent.name} budget) {_scores(own)}")
    return f"run {key}: " + " | ".join(parts)


def run_config(run, cfg):
    """The config ``run`` was trained with: a pinned run's own (CPU budget), else ``cfg``."""
    return getattr(run, "cfg", None) or cfg


def get_run(cfg, probe: str = "", quiet: bool = False):
    """The run of ``cfg`` (a ``notebook_config``): its pinned copy, unless HDML_TRAIN=1, the budget is
    ``full`` or the pinned set lacks it, in which case it is trained (``train``; with ``probe`` "hdc" or
    "hdml", ``train_with_probes`` at notebook 05's probe steps). Prints one line with the pinned
    scores and, when a run of the same settings exists under ``runs/``, the student's own beside them."""
    out = Path(cfg.train.out_dir)
    budget = out.parent.name
    key = out.name + ("__probed" if probe else "")
    own_dir = out.parent / key
    pinned = load_pinned(key)
    train_now = train_requested() or budget not in (PINNED_BUDGET, "fast") or pinned is None
    if train_now:
        if pinned is None and not quiet and not train_requested() and budget != "full":
            print(f"run {key}: no pinned copy of this run: training it")
        if probe:
            from ..viz.mining import hdc_probe, hdml_probe, train_with_probes
            from .generate import PROBE_STEPS_OF

            run = train_with_probes(cfg, {"hdc": hdc_probe, "hdml": hdml_probe}[probe], PROBE_STEPS_OF(cfg.train.steps))
        else:
            from ..training.trainer import train

            run = train(cfg)
        if not quiet:
            print(beside_line(key, pinned, run.metrics, own_dir, trained=True))
        return run
    if not quiet:
        print(beside_line(key, pinned, own_metrics(own_dir), own_dir, trained=False))
    return pinned
