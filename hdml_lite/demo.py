"""The main job: N-pair against HDML(N-pair) on the embedded glyph dataset.

    python -m hdml_lite demo            # a few minutes on 2 CPU cores, offline
    python -m hdml_lite demo --fast     # seconds: tiny data, few steps (the tests run this)

Trains both with the lab presets (the converged lab regime: the small CNN pretrained on other
glyphs, fine-tuned; docs/METHOD.md §5) and the same budget, evaluates the FINAL models on the
held-out test classes, prints R@1/2/4/8, NMI, F1 and MAP@R, then whether HDML's mechanism was
engaged in its run (the engagement conditions v2 of ``hdml/diagnostics.py``, with their numbers, and v1's verdict). Writes
learning curves to ``<out>/demo_curves.png`` and the mechanism diagnostics to
``<out>/demo_mechanism.png``.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

from .metrics_table import format_table
from .config import apply_overrides
from .presets import get_preset

DEMO_RUNS = ("lab_npair", "lab_hdml_npair")
FAST = ["train.steps=6", "train.eval_every=3", "train.ckpt_every=3", "data.max_classes=12",
        "data.max_per_class=8", "data.batch_classes=4", "train.progress=false",
        "hdml.block=2", "hdml.gen_hidden=32"]


def demo_configs(fast: bool = False, out_dir: str = "runs/demo", seed: int = 0, overrides=None):
    """The configs the demo trains (one per method), with ``overrides`` applied to each."""
    cfgs = []
    for name in DEMO_RUNS:
        ov = (FAST if fast else []) + [f"train.seed={seed}", f"train.out_dir={Path(out_dir) / name}"]
        cfgs.append(apply_overrides(get_preset(name), ov + list(overrides or [])))
    return cfgs


def _train_in_process(cfg_dict: dict) -> None:
    """Train one demo run in a worker process, one CPU thread (train.threads auto)."""
    from .config import from_dict
    from .training.trainer import train

    train(from_dict(cfg_dict))


def _read_run(out: Path) -> dict:
    """What a finished run left in its folder: metrics.json and history.json."""
    metrics = json.loads((out / "metrics.json").read_text())
    return {"metrics": metrics["test"], "train_s": metrics["train_s"],
            "history": json.loads((out / "history.json").read_text())}


def run_demo(fast: bool = False, out_dir: str = "runs/demo", seed: int = 0, overrides=None,
             jobs: int | None = None) -> dict:
    """Train the demo runs, print the table and the engagement conditions, draw the figures.

    jobs: parallel processes (one CPU thread each); default 2 on a CPU with 2+ cores, else 1
    (in-process; fast mode is always in-process). Returns {name: {metrics, train_s, history}}.
    """
    from .config import to_dict
    from .device import pick_device
    from .hdml.diagnostics import engagement, engagement_lines
    from .training.trainer import train
    from .viz.mechanism import plot_mechanism
    from .viz.plots import plot_learning_curves

    t0 = time.perf_counter()
    cfgs = demo_configs(fast, out_dir, seed, overrides)
    if jobs is None:
        cpu = pick_device(cfgs[0].train.device).type == "cpu"
        jobs = 2 if (cpu and not fast and (os.cpu_count() or 1) >= 2) else 1
    for cfg in cfgs:
        print(f"== {cfg.name}: {cfg.train.steps} steps, {cfg.loss.name} loss, method {cfg.train.method}")
    if jobs > 1:
        print(f"training {len(cfgs)} runs side by side, {jobs} processes of one thread each")
        with mp.get_context("spawn").Pool(min(jobs, len(cfgs))) as pool:
            pool.map(_train_in_process, [to_dict(c) for c in cfgs])
    else:
        for cfg in cfgs:
            train(cfg)
    results = {cfg.name: _read_run(Path(cfg.train.out_dir)) for cfg in cfgs}
    table = format_table({n: r["metrics"] for n, r in results.items()},
                         extra={n: r["train_s"] for n, r in results.items()})
    curves = Path(out_dir) / "demo_curves.png"
    plot_learning_curves({n: r["history"] for n, r in results.items()}, path=curves,
                         title="N-pair vs HDML(N-pair) on the embedded glyphs (test classes)")
    print()
    print("Test classes (zero-shot), final models, %:")
    print(table)
    lines = []
    for cfg in cfgs:
        if cfg.train.method == "hdml":
            rows = results[cfg.name]["history"]["train"]
            lines += [f"\nHDML's mechanism in {cfg.name} (alpha={cfg.hdml.alpha:g}, docs/METHOD.md §5):"]
            lines += ["  " + ln for ln in engagement_lines(engagement(rows, cfg.hdml.alpha))]
    print("\n".join(lines))
    mech = Path(out_dir) / "demo_mechanism.png"
    plot_mechanism({c.name: results[c.name]["history"] for c in cfgs if c.train.method == "hdml"}, path=mech)
    print(f"\nlearning curves: {curves}\nmechanism: {mech}\ntotal time: {time.perf_counter() - t0:.0f} s")
    (Path(out_dir) / "demo_table.txt").write_text(table + "\n" + "\n".join(lines) + "\n")
    return results
