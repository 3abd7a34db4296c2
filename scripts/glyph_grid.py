"""Render a grid of glyph samples for the README: one row per class, a few samples each.

    python scripts/glyph_grid.py [--out docs/glyphs_grid.png] [--classes 16] [--samples 12]

Rows are classes spread over the whole list (digits, Latin, accented Latin, Greek, Cyrillic);
the first column is the undistorted drawing in DejaVu Sans (as compared by the duplicate
rule), then random samples.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from hdml_lite.data.glyphs import canonical, generate_glyphs  # noqa: E402


def grid_image(classes: int = 16, samples: int = 12, size: int = 32, seed: int = 0, zoom: int = 2):
    """uint8 (H, W) grid: row r = class, column 0 = reference rendering, then samples."""
    images, labels, names = generate_glyphs(per_class=samples, size=size, seed=seed)
    rows = np.linspace(0, len(names) - 1, classes).round().astype(int)
    ref = (canonical([names[r] for r in rows], size=size) * 255).astype(np.uint8)
    pad = 2
    cell = size + pad
    out = np.full((classes * cell + pad, (samples + 1) * cell + 2 * pad), 96, np.uint8)
    for i, r in enumerate(rows):
        y = pad + i * cell
        out[y:y + size, pad:pad + size] = ref[i]
        for j, img in enumerate(images[labels == r]):
            x = 3 * pad + (j + 1) * cell
            out[y:y + size, x:x + size] = img
    return np.kron(out, np.ones((zoom, zoom), np.uint8)), [names[r] for r in rows]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "docs" / "glyphs_grid.png"))
    p.add_argument("--classes", type=int, default=16)
    p.add_argument("--samples", type=int, default=12)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--zoom", type=int, default=2)
    args = p.parse_args(argv)
    from PIL import Image
    img, names = grid_image(args.classes, args.samples, args.size, zoom=args.zoom)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(args.out, optimize=True)
    print(f"wrote {args.out}: classes {' '.join(names)}")


if __name__ == "__main__":
    main()
