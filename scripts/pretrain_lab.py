"""Regenerate the lab's pretrained small CNN (the lab's "ImageNet"; docs/METHOD.md §5).

    OMP_NUM_THREADS=1 python scripts/pretrain_lab.py            # ~10-15 CPU minutes, one thread
    python scripts/pretrain_lab.py --steps 5 --out /tmp/w.pt    # a smoke run

Writes hdml_lite/weights/small_cnn_w16_glyphs.pt (float16, ~0.6 MB) and a JSON beside it with the
recipe and the training figures, prints the file's sha256, and, with --record, writes that sha256
into hdml_lite/models/lab_weights.py (LAB_WEIGHTS) so that the loader checks it. On the same torch
version and one thread the bytes are reproducible.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdml_lite.models.lab_weights import LAB_WEIGHTS, WEIGHTS_DIR, sha256  # noqa: E402
from hdml_lite.models.pretrain import pretrain_small_cnn  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--per-class", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="", help="weights file (default: the shipped one)")
    p.add_argument("--record", action="store_true", help="write the sha256 into models/lab_weights.py")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(a.out) if a.out else WEIGHTS_DIR / LAB_WEIGHTS[a.width][0]
    state, info = pretrain_small_cnn(width=a.width, steps=a.steps, per_class=a.per_class, seed=a.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    digest = sha256(out)
    info.update(sha256=digest, torch=torch.__version__, per_class=a.per_class, seed=a.seed)
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))
    if a.record:
        src = ROOT / "hdml_lite" / "models" / "lab_weights.py"
        text = re.sub(rf'({a.width}: \("[^"]+", ")[^"]*("\))', rf"\g<1>{digest}\g<2>", src.read_text())
        src.write_text(text)
        print(f"recorded sha256 {digest} in {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
