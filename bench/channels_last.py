"""Does channels_last (NHWC) memory make the lab's small CNN faster on this CPU, and does it change
the numbers?

    OMP_NUM_THREADS=1 python bench/channels_last.py           # lab_hdml_npair's model, about a minute

One process, ``train.threads`` applied (one thread on a CPU by default), random weights, random
inputs of the lab's shape. For both memory formats it measures the CPU seconds
(``time.process_time``, best of ``--repeats``) of
- an evaluation forward pass over 8,496 images (the glyph test set's size) in batches of
  ``--eval-batch``, under ``torch.inference_mode``;
- a ``train_step`` of the preset's method on one batch of 64 (median over ``--steps`` steps);
and compares the embeddings of the two formats (``max_abs_diff``, ``equal``): a different
convolution algorithm sums in another order, so the last bits differ.

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import bench_env, load_avg  # noqa: E402  (also puts the repository on sys.path)

import torch  # noqa: E402


def eval_forward(model, x: torch.Tensor, batch: int) -> tuple[float, torch.Tensor]:
    t = time.process_time()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model(x[i:i + batch])[1])
    return time.process_time() - t, torch.cat(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="lab_hdml_npair")
    ap.add_argument("--images", type=int, default=8496)
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="train.threads (0: auto, one thread on a CPU)")
    args = ap.parse_args(argv)

    from hdml_lite.presets import get_preset
    from hdml_lite.training.trainer import build_method

    env = bench_env(args.threads, "cpu")
    cfg = get_preset(args.preset)
    cfg.model.pretrained = False
    size, ch = cfg.data.image_size, 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, ch, size, size, generator=g)
    torch.manual_seed(0)
    method = build_method(cfg, 500, ch, torch.device("cpu"))
    nchw = method.model.eval()
    nhwc = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    eval_s = {"nchw": [], "channels_last": []}
    for _ in range(args.repeats):
        dt, z = eval_forward(nchw, x, args.eval_batch)
        eval_s["nchw"].append(dt)
        dt, z_cl = eval_forward(nhwc, x_cl, args.eval_batch)
        eval_s["channels_last"].append(dt)

    batch = torch.randn(64, ch, size, size, generator=g)
    labels = torch.arange(32).repeat_interleave(2)
    step_ms = {}
    for fmt in ("nchw", "channels_last"):
        torch.manual_seed(0)
        m = build_method(cfg, 500, ch, torch.device("cpu"))
        xb = batch
        if fmt == "channels_last":
            for mod in m.modules.values():
                mod.to(memory_format=torch.channels_last)
            xb = batch.contiguous(memory_format=torch.channels_last)
        m.train_step(xb, labels, 0)
        times = []
        for s in range(1, args.steps + 1):
            t = time.process_time()
            m.train_step(xb, labels, s)
            times.append(time.process_time() - t)
        step_ms[fmt] = 1000 * statistics.median(times)

    out = {"preset": args.preset, "images": args.images, "eval_batch": args.eval_batch,
           "eval_cpu_s": {k: round(min(v), 3) for k, v in eval_s.items()},
           "train_step_cpu_ms": {k: round(v, 1) for k, v in step_ms.items()},
           "max_abs_diff": float((z - z_cl).abs().max()), "equal": bool(torch.equal(z, z_cl)), **env,
           "load_avg_end": load_avg()}
    out["eval_ratio"] = round(out["eval_cpu_s"]["channels_last"] / out["eval_cpu_s"]["nchw"], 3)
    out["step_ratio"] = round(step_ms["channels_last"] / step_ms["nchw"], 3)
    print(f"eval forward ({args.images} images): NCHW {out['eval_cpu_s']['nchw']} s, channels_last "
          f"{out['eval_cpu_s']['channels_last']} s (x{out['eval_ratio']}); train step: NCHW "
          f"{out['train_step_cpu_ms']['nchw']} ms, channels_last {out['train_step_cpu_ms']['channels_last']} ms "
          f"(x{out['step_ratio']}); embeddings equal: {out['equal']} (max |diff| {out['max_abs_diff']:.2e})")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
