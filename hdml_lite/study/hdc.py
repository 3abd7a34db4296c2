"""HDC study (issue 4's measurement): both routing modes, each head alone, 3 seeds.

    python -m hdml_lite.study hdc            # uses the lab study's settings (200 steps, lr 1e-3)
    python -m hdml_lite.study hdc --fast     # tiny settings, 1 seed (the tests) -> runs/trial/hdc

- "top" routing (released code) and "nested" routing (paper): ``lab_hdc`` trained here with
  ``steps`` steps and lr ``lr`` (its own run folders, not the main study's), each final model
  evaluated with ``hdc.eval_head`` = 1, 2, 3 (each head alone) and -1 (weighted concatenation).
The contrastive baseline without selection is ``lab_contrastive`` in ``lab_table.csv``.
Writes ``<out>/hdc_table.csv`` (routing,head,seed,r1,nmi,f1,map_r) and prints mean ± std.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HEADS = {-1: "concat", 1: "head1", 2: "head2", 3: "head3"}


def _evaluate(run_dir: Path, eval_head: int) -> dict:
    from ..config import apply_overrides, from_dict
    from ..data import config_channels, load_dataset
    from ..device import pick_device
    from ..evaluation import evaluate
    from ..training.checkpoint import load_checkpoint
    from ..training.trainer import build_method

    state = load_checkpoint(run_dir / "checkpoint.pt")
    cfg = apply_overrides(from_dict(state["config"]), [f"hdc.eval_head={eval_head}"])
    in_ch = config_channels(cfg)
    method = build_method(cfg, load_dataset(cfg.data, "train", in_channels=in_ch).num_classes, in_ch,
                          pick_device("cpu"))
    method.load_state_dict(state["method"])
    return evaluate(method.embed, load_dataset(cfg.data, "test", in_channels=in_ch), device=pick_device("cpu"))


def run_hdc_study(out: str | Path = "results", runs_root: str | Path = "runs/study", steps: int = 200,
                  seeds: int = 3, lr: float = 1e-3, fast: bool = False) -> list[dict]:
    from .engine import run_one
    from .lab import FAST
    from .trial import refuse_committed

    if fast:
        refuse_committed(out, ["--fast"], "HDC study", "hdc")    # tiny settings never write into results/

    root = Path(runs_root) / ("fast" if fast else f"steps{steps}")
    base = (FAST if fast else [f"train.steps={steps}", f"train.ckpt_every={max(1, steps // 4)}",
                               "train.eval_every=0"]) + [f"optim.lr={lr}", "train.progress=false"]
    rows = []
    for routing in ("top", "nested"):
        for seed in range(seeds):
            name = f"lab_hdc__lr{lr:g}__seed{seed}" if routing == "top" else f"lab_hdc_nested__lr{lr:g}__seed{seed}"
            run_dir = root / "final" / name
            run_one("lab_hdc", base + [f"train.seed={seed}", f"hdc.routing={routing}", f"train.out_dir={run_dir}"])
            for head, label in HEADS.items():
                m = _evaluate(run_dir, head)
                rows.append({"routing": routing, "head": label, "seed": seed,
                             **{k: m[k] for k in ("r1", "nmi", "f1", "map_r")}})
                print(f"{routing:<7}{label:<8}seed {seed}: R@1 {100 * m['r1']:.1f}  NMI {100 * m['nmi']:.1f}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "hdc_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["routing", "head", "seed", "r1", "nmi", "f1", "map_r"])
        w.writeheader()
        w.writerows(rows)
    print("\nrouting head     R@1 (mean ± std)   NMI (mean ± std)")
    for routing in ("top", "nested"):
        for label in HEADS.values():
            sel = [r for r in rows if r["routing"] == routing and r["head"] == label]
            r1 = 100 * np.array([r["r1"] for r in sel])
            nmi = 100 * np.array([r["nmi"] for r in sel])
            print(f"{routing:<8}{label:<8} {r1.mean():5.1f} ± {r1.std(ddof=1) if len(r1) > 1 else 0:.1f}"
                  f"       {nmi.mean():5.1f} ± {nmi.std(ddof=1) if len(nmi) > 1 else 0:.1f}")
    return rows
