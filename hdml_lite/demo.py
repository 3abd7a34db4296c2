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
import multiprocessing.connection
import os
import pickle
import signal
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


def _first_sigint_only(signum, frame):
    """A worker's SIGINT handler: the first one (Ctrl-C reaches the whole process group, and the
    parent forwards it too) interrupts the run; later ones are ignored while it stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _train_in_process(cfg_dict: dict, conn) -> None:
    """Train one demo run in a worker process, one CPU thread (train.threads auto); send back
    ("done",), ("interrupted", step, saved) or ("error", exception)."""
    signal.signal(signal.SIGINT, _first_sigint_only)
    from .config import from_dict
    from .training.checkpoint import RunInterrupted
    from .training.trainer import train

    result = ("done",)
    try:
        train(from_dict(cfg_dict), report=False)      # the demo's summary prints the mechanism
    except RunInterrupted as exc:
        result = ("interrupted", exc.step, exc.saved)
    except KeyboardInterrupt:
        result = ("interrupted", None, None)
    except Exception as exc:                 # re-raised by the parent: the usual one-line error
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        result = ("error", exc)
    try:
        conn.send(result)
    finally:
        conn.close()


def interrupted_line(stopped: dict, not_started=()) -> str:
    """One line for an interrupted demo: ``stopped`` maps run names to (step, saved checkpoint step)."""
    parts = []
    for name, (step, saved) in stopped.items():
        if step is None:
            parts.append(f"{name} before training started")
        else:
            kept = f"checkpoint at step {saved} kept" if saved is not None else "no checkpoint yet"
            parts.append(f"{name} at step {step}, {kept}")
    parts += [f"{name} not started" for name in not_started]
    return "interrupted: " + "; ".join(parts) + "; run the same command to resume"


def _receive(proc, recv, timeout: float | None = None):
    """A worker's outcome (see _train_in_process), after it exits."""
    outcome = None
    try:
        if recv.poll(timeout):
            outcome = recv.recv()
    except (EOFError, OSError):
        pass
    recv.close()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
    if outcome is None:
        outcome = ("error", RuntimeError(f"the demo run {proc.name} ended without a result (exit code "
                                         f"{proc.exitcode})"))
    return outcome


def _train_side_by_side(cfgs, jobs: int) -> None:
    """Train ``cfgs`` in ``jobs`` worker processes (spawned, one pipe each: no shared queues or
    semaphores to leak). Ctrl-C (or SIGINT to this process alone) stops every worker at its
    current step; their steps and checkpoints go into one ``RunInterrupted`` line."""
    from .config import to_dict
    from .training.checkpoint import RunInterrupted

    ctx = mp.get_context("spawn")
    pending, outcomes, running = list(cfgs), {}, {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                cfg = pending.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_train_in_process, args=(to_dict(cfg), send), name=cfg.name)
                proc.start()
                send.close()
                running[cfg.name] = (proc, recv)
            ready = mp.connection.wait([r for _, r in running.values()])
            for name, (proc, recv) in list(running.items()):
                if recv in ready:
                    del running[name]
                    outcomes[name] = _receive(proc, recv)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # stopping: a second Ctrl-C does not cut it short
        try:
            for proc, _ in running.values():
                if proc.is_alive():
                    os.kill(proc.pid, signal.SIGINT)   # in case only this process got the signal
            for name, (proc, recv) in running.items():
                outcomes[name] = _receive(proc, recv, timeout=120)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    for outcome in outcomes.values():
        if outcome[0] == "error":
            raise outcome[1]
    stopped = {c.name: outcomes[c.name][1:] for c in cfgs
               if c.name in outcomes and outcomes[c.name][0] == "interrupted"}
    if stopped or pending:
        raise RunInterrupted(interrupted_line(stopped, [c.name for c in pending]))


def _read_run(out: Path) -> dict:
    """What a finished run left in its folder: metrics.json and history.json."""
    metrics = json.loads((out / "metrics.json").read_text())
    return {"metrics": metrics["test"], "train_s": metrics["train_s"], "mechanism": metrics.get("mechanism"),
            "history": json.loads((out / "history.json").read_text())}


def run_demo(fast: bool = False, out_dir: str = "runs/demo", seed: int = 0, overrides=None,
             jobs: int | None = None) -> dict:
    """Train the demo runs, print the table and the engagement conditions, draw the figures.

    jobs: parallel processes (one CPU thread each); default 2 on a CPU with 2+ cores, else 1
    (in-process; fast mode is always in-process). Returns {name: {metrics, train_s, history}}.
    """
    from .device import pick_device
    from .closing import mechanism_heading
    from .training.checkpoint import RunInterrupted
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
        _train_side_by_side(cfgs, min(jobs, len(cfgs)))
    else:
        for i, cfg in enumerate(cfgs):
            try:
                train(cfg, report=False)
            except RunInterrupted as exc:   # say which run stopped, and which never started
                raise RunInterrupted(interrupted_line({cfg.name: (exc.step, exc.saved)},
                                                      [c.name for c in cfgs[i + 1:]])) from None
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
        if cfg.train.method == "hdml":   # what train computed (metrics.json), printed once, here
            mech = results[cfg.name]["mechanism"] or {}
            lines += ["\n" + mechanism_heading(cfg)] + ["  " + ln for ln in mech.get("lines", [])]
    print("\n".join(lines))
    mech = Path(out_dir) / "demo_mechanism.png"
    plot_mechanism({c.name: results[c.name]["history"] for c in cfgs if c.train.method == "hdml"}, path=mech)
    print(f"\nlearning curves: {curves}\nmechanism: {mech}\ntotal time: {time.perf_counter() - t0:.0f} s")
    (Path(out_dir) / "demo_table.txt").write_text(table + "\n" + "\n".join(lines) + "\n")
    return results
