"""Two image folders for trying "Your own images" (issue 20's closing check):

- ``grey_chars/``: 40 character classes x 20 images, grey PNGs, 28x28, black ink on white
  (the glyph test classes, shrunk and inverted: like scanned or drawn characters);
- ``rgb_photos/``: 12 classes x 24 images, colour JPEGs, 160x120 (a class-specific blob of
  colour on a textured background, like small product photos).

    python scripts/example_folders.py /tmp/examples
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from hdml_lite.data.glyphs import load_glyphs


def grey_chars(folder: Path, classes: int = 40, per_class: int = 20) -> None:
    ds = load_glyphs("test")
    for c in range(classes):
        d = folder / f"char_{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(np.flatnonzero(ds.labels == c)[:per_class]):
            im = Image.fromarray(255 - ds.images[i, 0].numpy()).resize((28, 28), Image.BILINEAR)
            im.save(d / f"{j:02d}.png")


def rgb_photos(folder: Path, classes: int = 12, per_class: int = 24, size=(160, 120), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for c in range(classes):
        d = folder / f"item_{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        colour = rng.integers(40, 255, 3)
        for j in range(per_class):
            bg = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
            a = np.asarray(bg).astype(float) * 0.5
            cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
            r = (0.15 + 0.05 * (c % 4)) * w
            blob = ((xx - cx) ** 2 / (1 + c % 3) + (yy - cy) ** 2) < r ** 2
            a[blob] = colour + rng.normal(0, 12, 3)
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(d / f"{j:02d}.jpg", quality=90)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "examples")
    grey_chars(out / "grey_chars")
    rgb_photos(out / "rgb_photos")
    print(f"wrote {out / 'grey_chars'} and {out / 'rgb_photos'}")
