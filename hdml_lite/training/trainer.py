"""The training loop: batches, steps, evaluation, checkpoints, history.

    result = train(get_preset("lab_npair"))        # or: python -m hdml_lite train --preset lab_npair

- Every step is seeded from (seed, step), so a run killed at any point and resumed
  from its last checkpoint ends, on CPU, with the same weights as an uninterrupted run.
- Checkpoints (``checkpoint.pt``: config, step, method state, history) are written
  atomically every ``train.ckpt_every`` steps and at the end.
- Evaluation every ``train.eval_every`` steps on the validation split (when
  ``data.val_classes > 0``) and on the test split, for learning curves only: the
  reported model is always the final one, never one chosen on the test set.
  Intermediate evaluations compute the retrieval metrics only (Recall@K, MAP@R,
  R-precision); k-means (NMI, F1) runs at the final evaluation only.
- A non-finite loss stops the run with a clear message after saving a checkpoint of
  the last good state (the error is raised before that step's update).
- ``train.threads``: CPU threads (``torch.set_num_threads``) for the run; 0 = auto = 1
  thread on CPU (runs usually go side by side on a small machine, where one thread per
  process gives the best total throughput), torch's default on CUDA. The run prints
  e.g. ``threads: 1 (train.threads=0 -> auto)`` and restores the previous setting at the end.
- ``callback(step, method, x, labels, logs)`` is called after every optimisation step
  (notebook probes, custom logging) with the batch on the device and the step's logs.
- ``train.out_dir`` is created only once the config, data and method are known to be
  good, so a bad input leaves no empty folder behind; a folder that cannot be written
  is one clear error.

Resume: a run's identity is every config key except ``NOT_IDENTITY`` below: what is
trained and how (model, loss, method, hdml/hdc settings, data content and sampling,
optimizer, schedule, steps, seed, amp). Those must match the checkpoint to resume.
Keys that only change where files go, how fast, how often it reports or evaluates
(train.progress, train.out_dir, train.device, train.threads, train.eval_every,
train.ckpt_every, train.eval_batch, train.kmeans_*, data.root, data.num_workers,
data.cache, data.skip_corrupt, name) may change between a run and its resumption; the
checkpoint then records the new values. The data itself is part of the identity too: the
checkpoint holds its fingerprint (data/fingerprint.py: the files with their sizes, or the
glyphs' generation parameters), so the same data moved elsewhere resumes, other data under
the same settings is refused with a line naming the folder that changed.

One run per out_dir: ``train.out_dir/.lock`` holds the running process's PID (training/lock.py);
a second run on the same folder is refused, a lock left by a killed run is taken over.
Ctrl-C lets the step being trained finish, writes a checkpoint of it (not when it lands inside an
evaluation) and raises ``RunInterrupted``, whose one line says the step reached and the checkpoint kept.
The checkpoint and metrics.json record where the starting weights came from (``weights``:
source and sha256; models/backbones.py).
"""
from __future__ import annotations

import inspect
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import Config, ConfigError, to_dict, validate
from ..data import config_channels, load_dataset, make_sampler
from ..data.fingerprint import check_resume_data, data_fingerprint
from ..data.pipeline import TrainBatches
from ..data.report import check_preflight, resolve_data
from ..closing import closing_report
from ..device import apply_threads, pick_device
from ..evaluation import evaluate, kmeans_args
from ..models.backbones import weights_record
from .checkpoint import (CHECKPOINT, Progress, RunInterrupted, ensure_writable_dir, interrupts_held, load_checkpoint,
                         load_error_text, remove_partial_files, save_checkpoint, state_mismatch, write_json)
from .lock import out_dir_lock
from .method import METHOD_REGISTRY, Method, NonFiniteLossError
from .schedule import lr_scale

# Config keys that are NOT part of a run's identity: they may change when a run is resumed.
NOT_IDENTITY = frozenset({
    "name", "train.progress", "train.out_dir", "train.device", "train.threads", "train.eval_every",
    "train.ckpt_every", "train.eval_batch", "train.kmeans_restarts", "train.kmeans_seed",
    "data.root", "data.num_workers", "data.cache", "data.skip_corrupt",
})


def build_method(cfg: Config, num_classes: int, in_channels: int, device: torch.device,
                 steps_per_epoch: int | None = None) -> Method:
    """``train.method`` -> a Method from ``METHOD_REGISTRY`` (see training/method.py for the
    contract; ``@register_method(name)`` adds one).

    steps_per_epoch: training-set size // batch size (HDML's per-epoch J_avg, paper form);
    passed to methods whose constructor takes it.
    """
    name = cfg.train.method
    cls = METHOD_REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"train.method={name!r}; expected one of {', '.join(sorted(METHOD_REGISTRY))}")
    kwargs = {}
    if steps_per_epoch is not None and "steps_per_epoch" in inspect.signature(cls).parameters:
        kwargs["steps_per_epoch"] = steps_per_epoch
    return cls(cfg, num_classes, in_channels, device, **kwargs)


def identity_diff(saved: dict, cfg: Config) -> list[str]:
    """Identity keys (all but ``NOT_IDENTITY``) whose value in ``cfg`` differs from the saved
    config dict, as ``"key=saved -> now"``. A key missing from an older checkpoint counts as
    its default."""
    now, default = to_dict(cfg), to_dict(Config())
    out = []
    for sec, sub in now.items():
        items = sub.items() if isinstance(sub, dict) else [(None, sub)]
        for k, v in items:
            key = f"{sec}.{k}" if k is not None else sec
            if key in NOT_IDENTITY:
                continue
            if k is None:
                old = saved.get(sec, default[sec])
            else:
                old = saved.get(sec, {}).get(k, default[sec].get(k))
            if old != v:
                out.append(f"{key}={old!r} -> {v!r}")
    return out


def ks_for(cfg: Config) -> tuple[int, ...]:
    return (1, 10, 100, 1000) if cfg.data.dataset == "sop" else (1, 2, 4, 8)


@dataclass
class RunResult:
    method: Method
    history: dict          # {"train": [{step, loss, ...}], "eval": [{step, split, r1, ...}]}
    metrics: dict          # final test metrics
    out_dir: Path
    train_s: float


class BufferSnapshot:
    """The BatchNorm running statistics of a method's modules (running_mean, running_var,
    num_batches_tracked), saved before each step: a failed step's forward pass has already
    moved them when its loss turns out non-finite. ``save()`` copies them into tensors
    allocated once, on their own device, in one multi-tensor copy (no allocation, no host
    synchronisation: on a GPU it is queued like any kernel); ``restore()`` copies them back."""

    def __init__(self, method: Method):
        self.live = [b for m in method.modules.values() for mod in m.modules()
                     if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)
                     for b in mod.buffers(recurse=False)]
        self.saved = [torch.empty_like(b) for b in self.live]

    def save(self) -> None:
        if self.live:
            with torch.no_grad():
                torch._foreach_copy_(self.saved, self.live)

    def restore(self) -> None:
        if self.live:
            with torch.no_grad():
                torch._foreach_copy_(self.live, self.saved)


def seed_step(seed: int, step: int) -> None:
    """Seed torch's global RNG for this step (dropout; crops and flips have their own (seed, step)
    generator in data/pipeline.py): resumable and reproducible."""
    torch.manual_seed((seed * 1_000_003 + step) % (2**63 - 1))


def _eval_datasets(cfg: Config, in_ch: int) -> dict:
    out = {}
    if cfg.data.val_classes > 0:
        out["val"] = load_dataset(cfg.data, "val", in_channels=in_ch, train_transform=False)
    out["test"] = load_dataset(cfg.data, "test", in_channels=in_ch)
    return out


def train(cfg: Config, resume: bool = True, eval_sets: dict | None = None, callback=None,
          report: bool = True) -> RunResult:
    """Train ``cfg`` and evaluate the final model on the test classes. Returns a RunResult.

    callback: optional ``callback(step, method, x, labels, logs)`` called after every step.
    report: print the closing lines (HDML's mechanism, the budget check); they go into
    metrics.json either way (the demo prints them once, in its summary).
    """
    validate(cfg)
    device = pick_device(cfg.train.device)
    out = Path(cfg.train.out_dir)
    existed = out.exists()
    threads_before = torch.get_num_threads()
    print(apply_threads(cfg.train.threads, device))
    progress = Progress(out / CHECKPOINT)
    try:
        with out_dir_lock(out, "train.out_dir"):   # a second run on this folder is refused
            return _train(cfg, resume, eval_sets, callback, device, out, progress, report)
    except BaseException as exc:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failed start leaves no empty folder behind
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
            raise RunInterrupted(progress.message(), progress.step, progress.saved) from None
        raise
    finally:
        torch.set_num_threads(threads_before)


def _train(cfg: Config, resume: bool, eval_sets: dict | None, callback, device: torch.device,
           out: Path, progress: Progress | None = None, report: bool = True) -> RunResult:
    progress = progress if progress is not None else Progress()
    cfg, look = resolve_data(cfg)      # image files: auto data.channels / data.invert (data/report.py)
    in_ch = config_channels(cfg)
    train_ds = load_dataset(cfg.data, "train", in_channels=in_ch)   # pre-flight: every image's header
    eval_sets = eval_sets if eval_sets is not None else _eval_datasets(cfg, in_ch)
    check_preflight(cfg, look, train_ds, eval_sets)  # prints the report; every problem in one error
    fingerprint = data_fingerprint(cfg.data, {"train": train_ds, **eval_sets})
    sampler = make_sampler(cfg.data.sampler, train_ds.labels, cfg.data.batch_classes,
                           cfg.data.images_per_class, seed=cfg.train.seed, warn=False)

    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    batch_size = len(sampler.batch(0))
    method = build_method(cfg, train_ds.num_classes, in_ch, device,
                          steps_per_epoch=max(1, len(train_ds) // batch_size))
    history = {"train": [], "eval": []}
    start, elapsed = 0, 0.0
    ckpt_path = out / CHECKPOINT
    if resume and (ckpt_path.exists() or ckpt_path.is_symlink()):
        state = load_checkpoint(ckpt_path, map_location=device, purpose="resume")
        diff = identity_diff(state["config"], cfg)
        if diff:
            where = repr(str(out)) + ("" if out.is_absolute() else f" ({out.resolve()})")
            raise ConfigError(f"train.out_dir={where} holds a run with other settings ({'; '.join(diff)}) in "
                              f"its {CHECKPOINT}; to resume it keep those values, else use another train.out_dir "
                              f"or --no-resume to start over (overwrites it)")
        note = check_resume_data(state.get("data"), fingerprint, ckpt_path)   # refuses other data
        why = state_mismatch(method.modules, state["method"])                # names the tensor and shapes
        try:
            if why:
                raise ValueError(why)
            method.load_state_dict(state["method"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(f"{ckpt_path} does not fit the model of this config ({why or load_error_text(exc)}); "
                              f"use another train.out_dir or --no-resume to start over") from None
        history, start, elapsed = state["history"], state["step"], state.get("train_s", 0.0)
        progress.saved = start
        if note:
            print(note)
        print(f"resumed from {ckpt_path} at step {start}")
    ensure_writable_dir(out, "train.out_dir")
    for name in (CHECKPOINT, "history.json", "metrics.json"):
        remove_partial_files(out / name)   # leftovers of a write interrupted by a kill

    weights = weights_record(method.modules)   # where the starting weights came from (source, sha256)

    def checkpoint(step: int) -> None:
        with interrupts_held():            # Ctrl-C waits: the message names the checkpoint on disk
            save_checkpoint(ckpt_path, {"config": to_dict(cfg), "step": step, "method": method.state_dict(),
                                        "history": history, "train_s": elapsed, "version": 1,
                                        "data": fingerprint, "weights": weights})
            progress.saved = step
            write_json(out / "history.json", history)

    def run_eval(step: int) -> None:
        # retrieval metrics at every evaluation; k-means (NMI, F1) only at the final one (its cost
        # would dominate the learning curves' evaluations, and nothing chooses on it mid-run)
        cluster = step == cfg.train.steps
        for split, ds in eval_sets.items():
            m = evaluate(method.embed, ds, ks=ks_for(cfg), batch_size=cfg.train.eval_batch, device=device,
                         num_workers=cfg.data.num_workers, cluster=cluster, **kmeans_args(cfg))
            history["eval"].append({"step": step, "split": split, **m})

    kill_at = int(os.environ.get("HDML_KILL_AT_STEP", "-1"))  # test hook: simulate a crash
    steps = cfg.train.steps
    batches = TrainBatches(train_ds, sampler, cfg.data, in_ch, cfg.train.seed, device, start, steps)
    bn = BufferSnapshot(method)               # BatchNorm running stats move in the forward pass
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=cfg.name, disable=not cfg.train.progress)
    t0 = time.perf_counter()
    progress.step = start
    clean = start       # steps whose state (weights, history, evaluations) is whole: what Ctrl-C saves
    try:
        for step in bar:
            progress.step = step
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            method.set_lr_scale(lr_scale(step, cfg.optim.milestones, cfg.optim.gamma))
            seed_step(cfg.train.seed, step)
            x, y = batches.get(step)              # on device; crops/flips seeded by (seed, step)
            with interrupts_held():               # Ctrl-C waits for the end of the step: half a step is not saved
                clean = None
                bn.save()
                try:
                    logs = method.train_step(x, y, step)
                except NonFiniteLossError as exc:
                    elapsed += time.perf_counter() - t0
                    bn.restore()                   # so the checkpoint is exactly the state after step - 1
                    checkpoint(step)
                    raise NonFiniteLossError(f"{exc} Checkpoint of the last good state saved to {ckpt_path}.") \
                        from exc
                except Exception:
                    bn.restore()                   # a step that failed leaves the model as it was
                    raise
                history["train"].append({"step": step, **logs})
                done = step + 1
                progress.step = done              # steps completed, as a checkpoint counts them
                due = bool(cfg.train.eval_every and done % cfg.train.eval_every == 0 and done < steps)
                clean = None if due else done     # an evaluation due at `done` belongs to its state
            if callback is not None:
                callback(step, method, x, y, logs)
            bar.set_postfix(loss=f"{logs['loss']:.4g}")
            if due:
                run_eval(done)
                clean = done
            if cfg.train.ckpt_every and done % cfg.train.ckpt_every == 0:
                elapsed_now = elapsed + time.perf_counter() - t0
                elapsed, t0 = elapsed_now, time.perf_counter()
                checkpoint(done)
    except KeyboardInterrupt:
        if clean is not None and clean > start and clean != progress.saved:
            elapsed += time.perf_counter() - t0
            try:                                  # Ctrl-C at a clean step: keep it (a rerun resumes from it)
                checkpoint(clean)
            except Exception:
                pass                              # the last periodic checkpoint is intact (atomic writes)
        raise
    finally:
        batches.close()                           # the DataLoader workers stop here, not at garbage collection
        bar.close()
    elapsed += time.perf_counter() - t0
    progress.step = steps
    if not history["eval"] or history["eval"][-1]["step"] != steps:
        run_eval(steps)
    checkpoint(steps)
    def final(split: str):
        rows = [e for e in history["eval"] if e["step"] == steps and e["split"] == split]
        return {k: v for k, v in rows[-1].items() if k not in ("step", "split")} if rows else None

    metrics = final("test")
    extra = closing_report(cfg, history, echo=report)   # HDML's mechanism; off the glyphs, the budget check
    write_json(out / "metrics.json", {"name": cfg.name, "method": cfg.train.method, "seed": cfg.train.seed,
                                      "steps": steps, "train_s": elapsed, "test": metrics, "val": final("val"),
                                      "weights": weights, **extra})
    return RunResult(method, history, metrics, out, elapsed)
