"""The main job: N-pair against HDML(N-pair) on the embedded glyph dataset.

    python -m hdml_lite demo            # a few minutes on 2 CPU cores, offline
    python -m hdml_lite demo --fast     # seconds: tiny data, few steps (the tests run this)

Trains both with the lab presets (the converged lab regime: the small CNN pretrained on other
glyphs, fine-tuned; docs/METHOD.md §5) and the same budget, evaluates the FINAL models on the
held-out test classes, prints R@1/2/4/8, NMI, F1 and MAP@R, then whether HDML's mechanism was
engaged in its run (the four conditions of ``hdml/diagnostics.py``, with their numbers). Writes
learning curves to ``<out>/demo_curves.png`` and the mechanism diagnostics to
``<out>/demo_mechanism.png``.
"""
from __future__ import annotations

import time
from pathlib import Path

from .cli import format_table
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


def run_demo(fast: bool = False, out_dir: str = "runs/demo", seed: int = 0, overrides=None) -> dict:
    from .hdml.diagnostics import engagement, engagement_lines
    from .training.trainer import train
    from .viz.mechanism import plot_mechanism
    from .viz.plots import plot_learning_curves

    t0 = time.perf_counter()
    results = {}
    for cfg in demo_configs(fast, out_dir, seed, overrides):
        print(f"== {cfg.name}: {cfg.train.steps} steps, {cfg.loss.name} loss, method {cfg.train.method}")
        results[cfg.name] = train(cfg)
    table = format_table({n: r.metrics for n, r in results.items()},
                         extra={n: r.train_s for n, r in results.items()})
    curves = Path(out_dir) / "demo_curves.png"
    plot_learning_curves({n: r.history for n, r in results.items()}, path=curves,
                         title="N-pair vs HDML(N-pair) on the embedded glyphs (test classes)")
    print()
    print("Test classes (zero-shot), final models, %:")
    print(table)
    lines = []
    for name, r in results.items():
        if r.method.name == "hdml":
            cfg = r.method.cfg
            lines += [f"\nHDML's mechanism in {name} (alpha={cfg.hdml.alpha:g}, docs/METHOD.md §5):"]
            lines += ["  " + ln for ln in engagement_lines(engagement(r.history["train"], cfg.hdml.alpha))]
    print("\n".join(lines))
    mech = Path(out_dir) / "demo_mechanism.png"
    plot_mechanism({n: r.history for n, r in results.items() if r.method.name == "hdml"}, path=mech)
    print(f"\nlearning curves: {curves}\nmechanism: {mech}\ntotal time: {time.perf_counter() - t0:.0f} s")
    (Path(out_dir) / "demo_table.txt").write_text(table + "\n" + "\n".join(lines) + "\n")
    return results
