"""Regenerate the pinned runs: ``python -m hdml_lite.study notebooks [--runs DIR] [--out DIR]``.

Trains every run of ``plan.notebook_runs()`` at the CPU budget under ``<runs>/notebooks/cpu/``
(finished runs are reloaded, not retrained; a probed run whose probes are saved is skipped), then
writes the pinned copy (``store.write_pinned``) into ``out`` (default: the package's
``hdml_lite/pinned/data``). About 15-20 CPU-minutes on one thread.
"""
from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

from .plan import PINNED_BUDGET, RunSpec, notebook_runs

PROBES_FILE = "probes.pkl"


class PinnedError(ValueError):
    """A run to pin is missing or unfinished: one line naming its folder."""
PROBE_STEPS_OF = lambda steps: sorted({0, steps // 4, steps // 2, 3 * steps // 4, steps - 1})   # notebook 05's


def config_of(spec: RunSpec, budget: str = PINNED_BUDGET):
    from ..viz.notebook import notebook_config

    return notebook_config(spec.preset, *spec.overrides, budget=budget)


def train_spec(spec: RunSpec, budget: str = PINNED_BUDGET):
    """Train (or reload) one run; for a probed run, save its probes beside it. Returns its out_dir."""
    from ..training.trainer import train

    cfg = config_of(spec, budget)
    if not spec.probe:
        train(cfg, report=False)
        return Path(cfg.train.out_dir)
    from ..viz.mining import hdc_probe, hdml_probe, train_with_probes

    out = Path(f"{str(cfg.train.out_dir).rstrip('/')}__probed")
    if (out / PROBES_FILE).is_file() and (out / "metrics.json").is_file():
        return out
    probe = {"hdc": hdc_probe, "hdml": hdml_probe}[spec.probe]
    run = train_with_probes(cfg, probe, PROBE_STEPS_OF(cfg.train.steps))
    with open(out / PROBES_FILE, "wb") as f:
        pickle.dump(run.probes, f)
    return out


def train_all(runs: str | Path, specs=None, budget: str = PINNED_BUDGET) -> dict:
    """Train every spec with ``HDML_RUNS=runs``; returns {key: out_dir}."""
    os.environ["HDML_RUNS"] = str(Path(runs).resolve())
    out = {}
    for spec in specs or notebook_runs():
        t0 = time.process_time()
        out[spec.key] = train_spec(spec, budget)
        print(f"{spec.key}: {time.process_time() - t0:.0f} CPU-s", flush=True)
    return out


def _method_from_checkpoint(cfg, out_dir: Path):
    """The trained method of a finished run (its checkpoint), on the CPU, in eval mode. Returns (method, meta)."""
    import torch

    from ..data import config_channels, load_dataset
    from ..training.checkpoint import load_checkpoint
    from ..training.trainer import CHECKPOINT, build_method

    state = load_checkpoint(out_dir / CHECKPOINT, map_location="cpu", purpose="eval")
    in_ch = config_channels(cfg)
    train_ds = load_dataset(cfg.data, "train", in_channels=in_ch)
    batch = cfg.data.batch_classes * cfg.data.images_per_class
    meta = {"num_classes": int(train_ds.num_classes), "in_channels": int(in_ch),
            "steps_per_epoch": max(1, len(train_ds) // batch)}
    method = build_method(cfg, meta["num_classes"], in_ch, torch.device("cpu"), steps_per_epoch=meta["steps_per_epoch"])
    method.load_state_dict(state["method"])
    method.eval()
    return method, meta, state


def export(runs: str | Path, out: str | Path, specs=None, budget: str = PINNED_BUDGET, tsne_kw=None) -> dict:
    """The pinned copy of the finished runs under ``runs`` -> ``out`` (runs.json.gz + arrays.npz).
    Returns {file: bytes}."""
    import json

    import numpy as np

    from ..data import load_dataset
    from ..evaluation import compute_embeddings
    from ..viz.tsne import fit_tsne
    from .store import pack, write_pinned

    os.environ["HDML_RUNS"] = str(Path(runs).resolve())
    index, arrays = {"meta": {"budget": budget, "command": "python -m hdml_lite.study notebooks",
                              "sweep": None}, "runs": {}}, {}
    from .plan import sweep_grid

    index["meta"]["sweep"] = {f"{t:g}": a for t, a in sweep_grid().items()}
    for spec in specs or notebook_runs():
        cfg = config_of(spec, budget)
        folder = Path(f"{str(cfg.train.out_dir).rstrip('/')}__probed") if spec.probe else Path(cfg.train.out_dir)
        if not (folder / "metrics.json").is_file() or (spec.probe and not (folder / PROBES_FILE).is_file()):
            raise PinnedError(f"{folder}: no finished run to pin (metrics.json{' or ' + PROBES_FILE if spec.probe else ''} "
                              "missing); run `python -m hdml_lite.study notebooks` without --export to train it")
        m = json.loads((folder / "metrics.json").read_text())
        hist = json.loads((folder / "history.json").read_text())
        rec = {"budget": budget, "preset": spec.preset, "overrides": list(spec.overrides), "probe": spec.probe,
               "metrics": m["test"], "train_s": m["train_s"], "steps": m["steps"], "history": hist}
        if spec.probe:
            with open(folder / PROBES_FILE, "rb") as f:
                rec["probes"] = pack(pickle.load(f), f"probes/{spec.key}", arrays)
        if spec.keep_model or spec.tsne:
            method, meta, state = _method_from_checkpoint(cfg, folder)
            if spec.keep_model:
                rec["model"] = {**meta, "extra": state["method"].get("extra", {}),
                                "modules": pack({k: {n: t.numpy() for n, t in mod.state_dict().items()}
                                                 for k, mod in method.modules.items()},
                                                f"model/{spec.key}", arrays)}
            if spec.tsne:
                test = load_dataset(cfg.data, "test", in_channels=meta["in_channels"])
                z, labels = compute_embeddings(method.embed, test)
                xy = np.asarray(fit_tsne(z, n_jobs=1, **(tsne_kw or {})))
                rec["tsne"] = pack({"coords": xy, "labels": np.asarray(labels)}, f"tsne/{spec.key}", arrays)
        index["runs"][spec.key] = rec
        print(f"pinned {spec.key}", flush=True)
    sizes = write_pinned(index, arrays, out)
    print(f"wrote {out}: " + ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sizes.items()))
    return sizes


def default_out() -> Path:
    return Path(__file__).resolve().parent / "data"


def main(runs: str = "runs/pinned", out: str = "", train_runs: bool = True) -> int:
    """Train (or reload) every pinned run under ``runs``, then write the pinned copy into ``out``."""
    if train_runs:
        train_all(runs)
    export(runs, out or default_out())
    return 0
