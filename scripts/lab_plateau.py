"""How long the converged lab trains: the baseline's validation learning curve from the pretrained
start (docs/METHOD.md §5).

    OMP_NUM_THREADS=1 python scripts/lab_plateau.py                   # N-pair, lr 1e-3, 1200 steps
    OMP_NUM_THREADS=1 python scripts/lab_plateau.py --lr 3e-4 --steps 1600

Trains ``lab_npair`` on 80% of the TRAIN classes (``data.val_classes=0.2``), evaluates Recall@1
on the held-out 20% (validation classes; the test classes are never looked at) every
``--every`` steps, and reports, for each candidate budget S, the R@1 gained over its last quarter
(S * 3/4 -> S). The lab's budget is the smallest S that gains less than 1 point. Writes
``results/plateau.csv`` (step, val_r1, val_nmi) and prints the verdict and the time per step.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdml_lite.config import apply_overrides  # noqa: E402
from hdml_lite.data import config_channels, load_dataset  # noqa: E402
from hdml_lite.presets import get_preset  # noqa: E402
from hdml_lite.training.trainer import train  # noqa: E402


def plateau_steps(curve: list[tuple[int, float]], gain: float = 0.01) -> int | None:
    """The smallest evaluated step S (S >= 4 evaluations in) whose last quarter gained < ``gain``:
    R@1(S) - R@1(3S/4) < gain, reading R@1 at the evaluated step nearest to 3S/4."""
    steps = [s for s, _ in curve]
    r1 = dict(curve)
    for s in steps[3:]:
        q = min(steps, key=lambda t: abs(t - 0.75 * s))
        if r1[s] - r1[q] < gain:
            return s
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="lab_npair")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "results" / "plateau.csv"))
    p.add_argument("overrides", nargs="*")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = apply_overrides(get_preset(a.preset), [
        f"optim.lr={a.lr:g}", f"train.steps={a.steps}", f"train.eval_every={a.every}", "train.ckpt_every=0",
        "data.val_classes=0.2", f"train.seed={a.seed}", "train.progress=false",
        f"train.out_dir=runs/plateau/{a.preset}_lr{a.lr:g}_s{a.seed}", *a.overrides])
    val = load_dataset(cfg.data, "val", in_channels=config_channels(cfg),
                       train_transform=False)
    t0 = time.perf_counter()
    res = train(cfg, resume=False, eval_sets={"val": val})
    wall = time.perf_counter() - t0
    curve = [(e["step"], e["r1"]) for e in res.history["eval"] if e["split"] == "val"]
    rows = [{"preset": a.preset, "lr": a.lr, "seed": a.seed, "step": e["step"], "val_r1": round(e["r1"], 4),
             "val_nmi": round(e["nmi"], 4)} for e in res.history["eval"] if e["split"] == "val"]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    with open(out, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)
    s = plateau_steps(curve)
    print(json.dumps({"preset": a.preset, "lr": a.lr, "seed": a.seed, "curve": curve, "plateau_step": s,
                      "train_s": round(res.train_s, 1), "wall_s": round(wall, 1),
                      "s_per_step": round(res.train_s / a.steps, 4), "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
