"""The training loop: batches, steps, evaluation, checkpoints, history.

    result = train(get_preset("lab_npair"))        # or: python -m hdml_lite train --preset lab_npair

- Every step is seeded from (seed, step), so a run killed at any point and resumed
  from its last checkpoint ends, on CPU, with the same weights as an uninterrupted run.
- Checkpoints (``checkpoint.pt``: config, step, method state, history) are written
  atomically every ``train.ckpt_every`` steps and at the end.
- Evaluation every ``train.eval_every`` steps on the validation split (when
  ``data.val_classes > 0``) and on the test split, for learning curves only: the
  reported model is always the final one, never one chosen on the test set.
- A non-finite loss stops the run with a clear message after saving a checkpoint of
  the last good state.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import Config, ConfigError, to_dict
from ..data import input_channels, load_dataset, make_sampler
from ..device import pick_device
from ..evaluation import evaluate, kmeans_args
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint, write_json
from .method import BaselineMethod, Method, NonFiniteLossError
from .schedule import lr_scale

METHODS = ("baseline", "hdml", "hdc")


def build_method(cfg: Config, num_classes: int, in_channels: int, device: torch.device,
                 steps_per_epoch: int | None = None) -> Method:
    """baseline | hdml | hdc -> a Method (see training/method.py for the contract).

    steps_per_epoch: training-set size // batch size (HDML's per-epoch J_avg, paper form).
    """
    name = cfg.train.method
    if name == "baseline":
        return BaselineMethod(cfg, num_classes, in_channels, device)
    if name == "hdml":
        from ..hdml.method import HDMLMethod

        return HDMLMethod(cfg, num_classes, in_channels, device, steps_per_epoch=steps_per_epoch)
    if name == "hdc":
        from ..hdc.method import HDCMethod

        return HDCMethod(cfg, num_classes, in_channels, device)
    raise ConfigError(f"train.method={name!r}; expected one of {', '.join(METHODS)}")


def ks_for(cfg: Config) -> tuple[int, ...]:
    return (1, 10, 100, 1000) if cfg.data.dataset == "sop" else (1, 2, 4, 8)


@dataclass
class RunResult:
    method: Method
    history: dict          # {"train": [{step, loss, ...}], "eval": [{step, split, r1, ...}]}
    metrics: dict          # final test metrics
    out_dir: Path
    train_s: float


def seed_step(seed: int, step: int) -> None:
    """Seed torch's global RNG for this step (random crops, dropout): resumable and reproducible."""
    torch.manual_seed((seed * 1_000_003 + step) % (2**63 - 1))


def _fetch(ds, indices: list[int]):
    items = [ds[i] for i in indices]
    x = torch.stack([it[0] for it in items])
    y = torch.tensor([it[1] for it in items], dtype=torch.long)
    return x, y


def _eval_datasets(cfg: Config, in_ch: int) -> dict:
    out = {}
    if cfg.data.val_classes > 0:
        out["val"] = load_dataset(cfg.data, "val", in_channels=in_ch, train_transform=False)
    out["test"] = load_dataset(cfg.data, "test", in_channels=in_ch)
    return out


def train(cfg: Config, resume: bool = True, eval_sets: dict | None = None) -> RunResult:
    """Train ``cfg`` and evaluate the final model on the test classes. Returns a RunResult."""
    device = pick_device(cfg.train.device)
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    in_ch = input_channels(cfg.data.dataset, cfg.model.backbone)
    train_ds = load_dataset(cfg.data, "train", in_channels=in_ch)
    if train_ds.skipped:
        print(f"skipped {len(train_ds.skipped)} unreadable image(s), e.g. {train_ds.skipped[0]}")
    eval_sets = eval_sets if eval_sets is not None else _eval_datasets(cfg, in_ch)
    sampler = make_sampler(cfg.data.sampler, train_ds.labels, cfg.data.batch_classes,
                           cfg.data.images_per_class, seed=cfg.train.seed)

    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    batch_size = len(sampler.batch(0))
    method = build_method(cfg, train_ds.num_classes, in_ch, device,
                          steps_per_epoch=max(1, len(train_ds) // batch_size))
    history = {"train": [], "eval": []}
    start, elapsed = 0, 0.0
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state["config"] != to_dict(cfg):
            diff = [f"{s}.{k}" for s, sub in to_dict(cfg).items() if isinstance(sub, dict)
                    for k, v in sub.items() if state["config"].get(s, {}).get(k) != v]
            raise ConfigError(f"{ckpt_path} was written with a different config (differs in: {', '.join(diff)}); "
                              f"use another train.out_dir or delete the checkpoint to start over")
        method.load_state_dict(state["method"])
        history, start, elapsed = state["history"], state["step"], state.get("train_s", 0.0)
        print(f"resumed from {ckpt_path} at step {start}")

    def checkpoint(step: int) -> None:
        save_checkpoint(ckpt_path, {"config": to_dict(cfg), "step": step, "method": method.state_dict(),
                                    "history": history, "train_s": elapsed, "version": 1})
        write_json(out / "history.json", history)

    def run_eval(step: int) -> None:
        for split, ds in eval_sets.items():
            m = evaluate(method.embed, ds, ks=ks_for(cfg), batch_size=cfg.train.eval_batch, device=device,
                         **kmeans_args(cfg))
            history["eval"].append({"step": step, "split": split, **m})

    kill_at = int(os.environ.get("HDML_KILL_AT_STEP", "-1"))  # test hook: simulate a crash
    steps = cfg.train.steps
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=cfg.name, disable=not cfg.train.progress)
    t0 = time.perf_counter()
    for step in bar:
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        method.set_lr_scale(lr_scale(step, cfg.optim.milestones, cfg.optim.gamma))
        seed_step(cfg.train.seed, step)
        x, y = _fetch(train_ds, sampler.batch(step))
        x, y = x.to(device, non_blocking=True), y.to(device)
        try:
            logs = method.train_step(x, y, step)
        except NonFiniteLossError as exc:
            elapsed += time.perf_counter() - t0
            checkpoint(step)
            raise NonFiniteLossError(f"{exc} Checkpoint of the last good state saved to {ckpt_path}.") from exc
        history["train"].append({"step": step, **logs})
        bar.set_postfix(loss=f"{logs['loss']:.4g}")
        done = step + 1
        if cfg.train.eval_every and done % cfg.train.eval_every == 0 and done < steps:
            run_eval(done)
        if cfg.train.ckpt_every and done % cfg.train.ckpt_every == 0:
            elapsed_now = elapsed + time.perf_counter() - t0
            elapsed, t0 = elapsed_now, time.perf_counter()
            checkpoint(done)
    elapsed += time.perf_counter() - t0
    if not history["eval"] or history["eval"][-1]["step"] != steps:
        run_eval(steps)
    checkpoint(steps)
    def final(split: str):
        rows = [e for e in history["eval"] if e["step"] == steps and e["split"] == split]
        return {k: v for k, v in rows[-1].items() if k not in ("step", "split")} if rows else None

    metrics = final("test")
    write_json(out / "metrics.json", {"name": cfg.name, "method": cfg.train.method, "seed": cfg.train.seed,
                                      "steps": steps, "train_s": elapsed, "test": metrics, "val": final("val")})
    return RunResult(method, history, metrics, out, elapsed)
