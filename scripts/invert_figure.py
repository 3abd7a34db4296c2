"""How much inverting matters: the glyphs exported as black ink on white PNGs (the opposite of the
pretrained small CNN's white-on-black start), trained with the lab preset with and without
``data.invert`` (README "Your own images").

    OMP_NUM_THREADS=1 python scripts/invert_figure.py --seeds 0 1 --steps 400

Writes the folder (the glyph train classes as a000.. and the test classes as b000.., so the
folder's first-half rule gives the glyphs' own split), trains ``lab_npair`` on it with
data.invert=auto (which inverts, since the ink is dark on light) and data.invert=false, and
prints test R@1 / NMI per seed and the mean difference. Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from hdml_lite.config import apply_overrides
from hdml_lite.data.glyphs import load_glyphs
from hdml_lite.presets import get_preset
from hdml_lite.training.trainer import train


def export(folder: Path, per_class: int) -> int:
    """Glyph train and test classes as black-on-white PNGs under ``folder``; returns the image count."""
    n = 0
    for prefix, split in (("a", "train"), ("b", "test")):
        ds = load_glyphs(split)
        labels = ds.labels
        for c in range(ds.num_classes):
            d = folder / f"{prefix}{c:03d}"
            d.mkdir(parents=True, exist_ok=True)
            for j, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
                Image.fromarray(255 - ds.images[i, 0].numpy()).save(d / f"{j:02d}.png")
                n += 1
    return n


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--per-class", type=int, default=24, help="images per class exported (glyphs have 48)")
    p.add_argument("--preset", default="lab_npair")
    p.add_argument("--work", default="", help="folder for the images and runs (default: a temporary one)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="hdml_invert_"))
    folder = work / "black_on_white"
    if not folder.is_dir():
        print(f"exported {export(folder, args.per_class)} images to {folder}")
    rows = {}
    t0 = time.perf_counter()
    for seed in args.seeds:
        for invert in ("auto", "false"):
            cfg = apply_overrides(get_preset(args.preset), [
                "data.dataset=folder", f"data.root={folder}", f"data.invert={invert}", f"train.seed={seed}",
                f"train.steps={args.steps}", "train.progress=false", "data.cache=auto",
                f"train.out_dir={work / 'runs' / f'{invert}_s{seed}'}"])
            res = train(cfg, resume=False)
            rows[(invert, seed)] = res.metrics
            print(f"seed {seed} data.invert={invert:<5} test R@1 {100 * res.metrics['r1']:.1f} "
                  f"NMI {100 * res.metrics['nmi']:.1f}")
    diff = [100 * (rows[("auto", s)]["r1"] - rows[("false", s)]["r1"]) for s in args.seeds]
    mean = {k: float(np.mean([100 * rows[(k, s)]["r1"] for s in args.seeds])) for k in ("auto", "false")}
    print(f"test R@1, mean over seeds {args.seeds}: inverted (auto) {mean['auto']:.1f}, not inverted "
          f"{mean['false']:.1f}; inverted minus not: {np.mean(diff):+.1f} points (per seed "
          f"{', '.join(f'{d:+.1f}' for d in diff)}); {time.perf_counter() - t0:.0f} s")
    out = {"preset": args.preset, "steps": args.steps, "seeds": args.seeds, "per_class": args.per_class,
           "r1_inverted": mean["auto"], "r1_not_inverted": mean["false"], "diff_per_seed": diff}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
