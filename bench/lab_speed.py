"""A lab run against the cost of its arithmetic: how much of a run is not training?

    OMP_NUM_THREADS=1 python bench/lab_speed.py                   # lab_hdml_npair and lab_npair (minutes)
    OMP_NUM_THREADS=1 python bench/lab_speed.py --presets lab_npair --steps 40   # a quick look
    OMP_NUM_THREADS=1 python bench/lab_speed.py --profile 25      # + the run's cProfile (top 25)

In one process, for each preset (CPU, ``train.threads`` applied as training does):

- ``run_cpu_s``: CPU seconds (``time.process_time``) of a full run through the trainer
  (``train``), with the preset's evaluations and checkpoints, starting with an empty
  evaluation-set cache (as a fresh ``python -m hdml_lite train`` process does);
- ``eval_cpu_s`` / ``eval_frac``: the CPU seconds inside the trainer's evaluations, and their
  share of ``run_cpu_s``; of them ``eval_metrics_cpu_s`` in the metrics (Recall@K, MAP@R,
  R-precision, k-means NMI/F1) and ``eval_embed_cpu_s`` in transforming and embedding the images;
- ``bare_cpu_s``: the same number of ``train_step`` calls on one fixed in-memory batch (the
  run's first batch), plus one forward pass over the test set (already transformed), with no
  loading, no metrics and no logging: the arithmetic the run cannot avoid;
- ``overhead = run_cpu_s / bare_cpu_s``;
- ``eval_flop_frac`` / ``overhead_flop_floor``: the same two ratios from FLOPs alone (each
  evaluation is one forward pass over the test set): what no speed-up of the plumbing can beat;
- ``gflops_bare``: the model's forward + backward FLOPs (``torch.utils.flop_counter``: matmuls
  and convolutions) per CPU second in the bare loop, beside ``gflops_matmul``, a float32
  1024 x 1024 matmul's rate on the same thread (the roofline), and their ratio.

The last line printed is one JSON object: per preset those figures, and the thread setting and
the load average at the start and the end (the machine may be shared: the ratios come from one
process, the CPU seconds are less disturbed by other jobs than wall seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import bench_env, load_avg  # noqa: E402  (also puts the repository on sys.path)

import torch  # noqa: E402

PRESETS = ("lab_hdml_npair", "lab_npair")


def matmul_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """float32 (n x n) @ (n x n) FLOP/s on this thread, in GFLOP/s (best of repeated timings)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, t_end = float("inf"), time.process_time() + seconds
    while time.process_time() < t_end:
        t = time.process_time()
        a @ b
        best = min(best, time.process_time() - t)
    return 2 * n ** 3 / max(best, 1e-9) / 1e9


def timed_run(cfg) -> dict:
    """run_cpu_s and eval_cpu_s of ``train(cfg)`` from scratch, with an empty evaluation-set cache."""
    import importlib

    from hdml_lite.evaluation import eval_set
    from hdml_lite.training import trainer

    evaluate_module = importlib.import_module("hdml_lite.evaluation.evaluate")   # the package exports evaluate()

    eval_set.clear_cache()
    spent = {"eval": 0.0, "metrics": 0.0, "n": 0}

    def timer(original, key):
        def timed(*a, **k):
            t = time.process_time()
            try:
                return original(*a, **k)
            finally:
                spent[key] += time.process_time() - t
                spent["n"] += key == "eval"
        return timed

    originals = trainer.evaluate, evaluate_module.evaluate_embeddings
    trainer.evaluate = timer(originals[0], "eval")
    evaluate_module.evaluate_embeddings = timer(originals[1], "metrics")   # Recall@K ... NMI, F1
    t = time.process_time()
    try:
        result = trainer.train(cfg, resume=False)
    finally:
        trainer.evaluate, evaluate_module.evaluate_embeddings = originals
    run = time.process_time() - t
    return {"run_cpu_s": run, "eval_cpu_s": spent["eval"], "eval_metrics_cpu_s": spent["metrics"],
            "eval_embed_cpu_s": spent["eval"] - spent["metrics"], "evaluations": spent["n"],
            "train_wall_s": result.train_s, "metrics": result.metrics}


def bare(cfg) -> dict:
    """bare_cpu_s and the FLOPs of ``cfg.train.steps`` train_step calls on the run's first batch plus
    one forward pass over the (pre-transformed) test set."""
    from torch.utils.flop_counter import FlopCounterMode

    from hdml_lite.data import config_channels, load_dataset, make_sampler
    from hdml_lite.data.pipeline import fetch_batch
    from hdml_lite.evaluation import materialise
    from hdml_lite.training.trainer import build_method, seed_step

    in_ch = config_channels(cfg)
    train_ds = load_dataset(cfg.data, "train", in_channels=in_ch)
    test = materialise(load_dataset(cfg.data, "test", in_channels=in_ch))
    sampler = make_sampler(cfg.data.sampler, train_ds.labels, cfg.data.batch_classes, cfg.data.images_per_class,
                           seed=cfg.train.seed, warn=False)
    torch.manual_seed(cfg.train.seed)
    idx = sampler.batch(0)
    method = build_method(cfg, train_ds.num_classes, in_ch, torch.device("cpu"),
                          steps_per_epoch=max(1, len(train_ds) // len(idx)))
    x, y = fetch_batch(train_ds, idx, cfg.data, in_ch, cfg.train.seed, 0)
    bs = cfg.train.eval_batch

    def forward_test():
        with torch.inference_mode():
            for i in range(0, len(test), bs):
                method.embed(test.x[i:i + bs])

    seed_step(cfg.train.seed, 0)
    with FlopCounterMode(display=False) as fc:          # one untimed step: its FLOPs (and warm-up)
        method.train_step(x, y, 0)
    step_flops = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc:
        forward_test()
    test_flops = fc.get_total_flops()
    steps = cfg.train.steps
    t = time.process_time()
    for step in range(1, steps + 1):
        seed_step(cfg.train.seed, step)
        method.train_step(x, y, step)
    steps_s = time.process_time() - t
    t = time.process_time()
    forward_test()
    forward_s = time.process_time() - t
    total = steps_s + forward_s
    return {"bare_cpu_s": total, "bare_steps_cpu_s": steps_s, "bare_forward_cpu_s": forward_s,
            "step_gflop": step_flops / 1e9, "test_forward_gflop": test_flops / 1e9,
            "gflops_bare": (steps * step_flops + test_flops) / total / 1e9}


def profile_run(cfg, top: int) -> None:
    import cProfile
    import pstats

    from hdml_lite.evaluation import eval_set
    from hdml_lite.training.trainer import train

    eval_set.clear_cache()
    prof = cProfile.Profile()
    prof.enable()
    train(cfg, resume=False)
    prof.disable()
    print(f"--- cProfile of {cfg.name} (cumulative, top {top}; profiling slows the run)")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    ap.add_argument("--steps", type=int, default=0, help="train.steps (0: the preset's)")
    ap.add_argument("--threads", type=int, default=0, help="train.threads (0: auto, one thread on a CPU)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more config overrides")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="also print a cProfile of each run")
    args = ap.parse_args(argv)
    if args.steps < 0:
        print(f"--steps={args.steps}: expected 0 (the preset's) or a positive number of steps", file=sys.stderr)
        sys.exit(2)

    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset

    env = bench_env(args.threads, "cpu")
    result = {**env, "gflops_matmul": round(matmul_gflops(), 2), "runs": {}}
    print(f"float32 matmul 1024^3 on this thread: {result['gflops_matmul']} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="hdml_lab_speed_") as tmp:
        for name in [p for p in args.presets.split(",") if p]:
            over = ["train.progress=false", "train.device=cpu", f"train.threads={args.threads}",
                    f"train.out_dir={Path(tmp) / name}", *args.set]
            if args.steps:
                over.append(f"train.steps={args.steps}")
            cfg = apply_overrides(get_preset(name), over)
            r = timed_run(cfg)
            r.update(bare(cfg))
            r["overhead"] = r["run_cpu_s"] / r["bare_cpu_s"]
            r["eval_frac"] = r["eval_cpu_s"] / r["run_cpu_s"]
            r["roofline_frac"] = r["gflops_bare"] / result["gflops_matmul"]
            # the floor set by arithmetic alone: each evaluation is one more forward pass over the test set
            train_gf, fwd_gf = cfg.train.steps * r["step_gflop"], r["test_forward_gflop"]
            r["eval_flop_frac"] = r["evaluations"] * fwd_gf / (train_gf + r["evaluations"] * fwd_gf)
            r["overhead_flop_floor"] = (train_gf + r["evaluations"] * fwd_gf) / (train_gf + fwd_gf)
            r.update(steps=cfg.train.steps, eval_every=cfg.train.eval_every, eval_batch=cfg.train.eval_batch)
            result["runs"][name] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
            print(f"{name}: run {r['run_cpu_s']:.1f} CPU-s ({r['evaluations']} evaluations {r['eval_cpu_s']:.1f} s: "
                  f"embedding {r['eval_embed_cpu_s']:.1f}, metrics {r['eval_metrics_cpu_s']:.1f}; "
                  f"eval_frac {r['eval_frac']:.3f}); bare {r['bare_cpu_s']:.1f} s (steps {r['bare_steps_cpu_s']:.1f}"
                  f" + test forward {r['bare_forward_cpu_s']:.1f}); overhead {r['overhead']:.3f}; "
                  f"{r['gflops_bare']:.2f} GFLOP/s = {100 * r['roofline_frac']:.0f}% of the matmul's; FLOPs alone: "
                  f"eval_frac >= {r['eval_flop_frac']:.3f}, overhead >= {r['overhead_flop_floor']:.3f}; "
                  f"load {load_avg()[0]}", flush=True)
            if args.profile:
                profile_run(cfg, args.profile)
    result["load_avg_end"] = load_avg()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
