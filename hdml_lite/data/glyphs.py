"""Glyphs: the embedded default dataset, rendered from the fonts shipped with matplotlib.

No network, no download. Every class is one character (digits, Latin with accented forms,
Greek, Cyrillic); every image is a small crop of a "line of text" centred on that character,
drawn in a random face among the 16 bundled ones that have it (DejaVu Sans / Serif / Sans
Mono and STIXGeneral, each regular, bold, italic/oblique, bold italic). Images are white
ink on black, uint8 ``(N, size, size)``; see ``docs/glyphs_grid.png``.

Pipeline (``generate_glyphs``):
1. ``_render_all``: each (character, face) pair is drawn once with PIL at twice the output
   resolution; faces are scaled to a common cap height ('H' ink height = 0.55 of the image)
   and the ink box is centred; a glyph wider or taller than 0.8 of the image is drawn
   smaller to fit (lower case stays smaller than upper case, and nothing is clipped).
2. ``_augment``, batched in torch, with the ranges in ``DISTORTION``: random neighbouring
   characters on each side (half the time, mostly cut off by the border, as in SVHN),
   stroke width (dilate regular faces / erode bold sans faces by 1 px at 2x resolution),
   one affine (rotation, shear, scale, aspect, shift) plus smooth elastic warp through
   ``grid_sample``, a stray straight stroke (a quarter of the time), Gaussian blur, 2x2
   average pooling (anti-aliasing), ink level, Gaussian noise.
All random draws come from one ``numpy.random.default_rng(seed)``, so the bytes depend
only on ``(per_class, size, seed)``, the font files and the Pillow/FreeType version.
The neighbours, the stray stroke, the elastic warp and the blur are there to make it hard
enough for zero-shot retrieval (measured on the test half, 177 unseen classes x 48): with
the affine warp and noise alone, raw-pixel nearest neighbours reached R@1 = 62% and a small
CNN 76% after only 80 steps; with them, raw pixels reach 32%, and a small CNN (4 conv
layers, normalised-softmax loss, Adam, batch 128) reaches R@1 = 70% after 300 steps and
about 77% after 900 steps (11 CPU minutes, train loss near 0: it overfits the 177 train classes).

Candidates and duplicate rule (``glyph_classes``, ``merged_groups``): the candidates are
digits, basic Latin, the Latin-1 and Latin Extended-A letters, Greek (with tonos and
dialytika) and Cyrillic U+0400-045F, in that order: 412 characters. A face "has" a
character when its cmap maps it (read with fontTools) and it draws some ink; a character
needs ``MIN_FONTS`` = 8 faces (all 412 have at least 12). Every candidate is drawn,
undistorted and centred as above at 32x32, in every face that has it; two candidates are
*duplicates* when, in some face, their drawings differ by less than ``DUP_TOL`` = 3% of
their ink: ``sum|a - b| / max(sum a, sum b) < 0.03``. Look-alikes measure 0.000 (Latin A /
Greek Alpha / Cyrillic A in Sans; Latin m, n, u / Cyrillic te, pe, i in Serif Italic;
3 / Cyrillic Ze in Mono), up to 0.017 (E-breve / E-caron in Serif Bold Italic); the closest
pair kept apart is Z-acute / Z-dot-above at 0.031 (Sans Bold). Each group of duplicates keeps
its first member in class order, so the Latin letter survives: 45 groups merged, 354
classes left. Checking every face, not only a reference face, is what catches the italic
Cyrillic letters.

Split (``class_split``): a seeded shuffle of the classes, first half train, second half
test (zero-shot retrieval, like CUB's 100/100); both halves mix scripts.

Timing (measured): generating the default set (``per_class=48, size=32``: 354 x 48 =
16,992 images) from scratch takes about 18 s of CPU time -- drawing the 6,600 (character,
face) masters ~5 s, the duplicate check ~3 s, the augmentation ~10 s -- which was 80-110 s
of wall time on 2 cores shared with about ten other busy processes; ``per_class=4`` takes
about 1 s once the masters are drawn. It is cached as an .npz in the data folder
(``$HDML_DATA``, else ``$XDG_CACHE_HOME/hdml_lite``, default ``~/.cache/hdml_lite``; 12 MB)
and loads in about half a second afterwards.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import unicodedata
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..file_mode import new_file_mode
from .base import ArrayDataset

GLYPHS_VERSION = 2          # bump when the candidates, the rule, the split or the rendering change
SPLITS = ("train", "test", "pretrain")   # pretrain: other characters, the lab's "ImageNet"
FONT_FILES = (              # in matplotlib.get_data_path()/fonts/ttf
    "DejaVuSans.ttf", "DejaVuSerif.ttf",
    "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)
MIN_FONTS = 8               # a character needs at least this many faces
DUP_TOL = 0.03              # duplicate: renderings differ by < 3% of the ink
CAP_HEIGHT = 0.55           # 'H' ink height / canvas
FIT = 0.80                  # max ink width or height / canvas before shrinking
EXCLUDED = "ĸŉſĿŀ"          # rare forms (kra, 'n, long s, l with middle dot)
PRETRAIN_TOL = 0.15         # a pretraining character must differ from every lab class by more than this
PRETRAIN_RANGES = (         # (first, last + 1) code points: scripts and symbols the lab classes do not use
    (0x0250, 0x02B0),       # IPA extensions
    (0x0531, 0x0588),       # Armenian
    (0x10A0, 0x1100),       # Georgian
    (0x2100, 0x2150),       # letterlike symbols
    (0x2190, 0x2200),       # arrows
    (0x2200, 0x2300),       # mathematical operators
    (0x2300, 0x2400),       # miscellaneous technical
    (0x25A0, 0x2600),       # geometric shapes
)
DISTORTION = dict(          # per-sample random ranges; coordinates in [-1, 1] image units
    neighbours=0.5,         # probability of a neighbouring character on each side (line crop)
    gap=(0.1, 0.3),         # ink-to-ink gap to a neighbour, uniform (0.1 = 1.6 px at 32x32)
    rotation=15.0,          # degrees, uniform +-
    shear=0.25,             # x += shear * y, uniform +-
    scale=(0.82, 1.05),     # log-uniform
    aspect=1.12,            # width / height factor, log-uniform in [1/a, a]
    shift=0.08,             # translation, uniform +- (0.08 = 1.3 px at 32x32)
    elastic=0.05,           # std of a smooth 3x3 displacement field (0.05 = 0.8 px), times U(0, 1)
    blur=(0.0, 0.0, 0.4, 0.6),        # Gaussian blur sigma in output pixels, one picked
    ink=(0.7, 1.0),         # ink intensity, uniform
    noise=0.12,             # std of additive Gaussian noise, times U(0, 1)
    stray=0.25,             # probability of a stray stroke (a straight line across the image)
    stray_width=(0.05, 0.09),  # its width, uniform (0.05 = 0.8 px)
)


def _candidates(which: str = "lab") -> list[str]:
    """Candidate characters in class order. "lab": digits, Latin, Latin-1 and Extended-A letters,
    Greek (with tonos / dialytika), Cyrillic (U+0400-045F). "pretrain": ``PRETRAIN_RANGES``."""
    if which == "pretrain":
        return [chr(c) for a, b in PRETRAIN_RANGES for c in range(a, b)
                if chr(c).isprintable() and not chr(c).isspace()]
    ranges = [
        range(0x30, 0x3A), range(0x41, 0x5B), range(0x61, 0x7B),
        [c for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)],        # no multiply/divide signs
        range(0x100, 0x180),
        [0x386, *range(0x388, 0x38B), 0x38C, *range(0x38E, 0x3A2), *range(0x3A3, 0x3CF)],
        range(0x400, 0x460),
    ]
    return [chr(c) for r in ranges for c in r if chr(c) not in EXCLUDED]


def font_dir() -> Path:
    import matplotlib
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=None)
def _coverage() -> dict[str, frozenset[int]]:
    """Code points in each font's cmap (read with fontTools, a matplotlib dependency)."""
    from fontTools.ttLib import TTFont
    out = {}
    for name in FONT_FILES:
        with TTFont(font_dir() / name, lazy=True) as tt:
            out[name] = frozenset(tt.getBestCmap())
    return out


@lru_cache(maxsize=None)
def _font(name: str, px: float):
    from PIL import ImageFont
    return ImageFont.truetype(str(font_dir() / name), px)


@lru_cache(maxsize=None)
def _em_px(name: str, canvas: int) -> float:
    """Font size (px) at which 'H' is CAP_HEIGHT * canvas tall in this font."""
    h = _ink(_draw(_font(name, 100.0), "H", 400)).shape[0]
    return 100.0 * CAP_HEIGHT * canvas / h


def _draw(font, ch: str, scratch: int) -> np.ndarray:
    from PIL import Image, ImageDraw
    im = Image.new("L", (scratch, scratch))
    ImageDraw.Draw(im).text((scratch // 2, scratch // 2), ch, fill=255, font=font, anchor="mm")
    return np.asarray(im)


def _ink(a: np.ndarray) -> np.ndarray:
    """Crop to the ink bounding box."""
    rows, cols = np.nonzero(a.any(1))[0], np.nonzero(a.any(0))[0]
    if len(rows) == 0:
        return a[:0, :0]
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _master(ch: str, name: str, canvas: int) -> np.ndarray:
    """One character in one font: uint8 (canvas, canvas), ink box centred, shrunk to fit FIT."""
    px = _em_px(name, canvas)
    glyph = _ink(_draw(_font(name, px), ch, 2 * canvas))
    extent = max(glyph.shape) if glyph.size else 0
    if extent > FIT * canvas:
        glyph = _ink(_draw(_font(name, px * FIT * canvas / extent), ch, 2 * canvas))
    out = np.zeros((canvas, canvas), np.uint8)
    h, w = glyph.shape
    top, left = (canvas - h) // 2, (canvas - w) // 2
    out[top:top + h, left:left + w] = glyph
    return out


def _downsample(a: np.ndarray) -> np.ndarray:
    """uint8 (..., 2S, 2S) -> float32 (..., S, S) in [0, 1], 2x2 average."""
    x = torch.from_numpy(np.ascontiguousarray(a)).float().div(255.0)
    y = F.avg_pool2d(x.reshape(-1, 1, *x.shape[-2:]), 2)
    return y.reshape(*a.shape[:-2], *y.shape[-2:]).numpy()


def canonical(chars, font: str = FONT_FILES[0], size: int = 32) -> np.ndarray:
    """Undistorted drawings, as compared by the duplicate rule: float (len(chars), size, size)."""
    return _downsample(np.stack([_master(c, font, 2 * size) for c in chars]))


def _dup_distance(a: np.ndarray) -> np.ndarray:
    """Pairwise ``sum|a_i - a_j| / max(sum a_i, sum a_j)`` for a (K, S, S) stack -> (K, K)."""
    x = torch.from_numpy(a.reshape(len(a), -1))
    ink = x.sum(1)
    return (torch.cdist(x, x, p=1) / torch.maximum(ink[:, None], ink[None, :])).numpy()


@lru_cache(maxsize=4)
def _render_all(size: int, which: str = "lab") -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every candidate in every face: (chars (K,), has (K, F) bool, masters uint8 (K, F, 2S, 2S)),
    zeros where a face lacks the character (not in its cmap, or drawn blank)."""
    cov = _coverage()
    chars = _candidates(which)
    has = np.array([[ord(c) in cov[f] for f in FONT_FILES] for c in chars])
    masters = np.zeros((len(chars), len(FONT_FILES), 2 * size, 2 * size), np.uint8)
    for k, c in enumerate(chars):
        for j, f in enumerate(FONT_FILES):
            if has[k, j]:
                masters[k, j] = _master(c, f, 2 * size)
    has &= masters.reshape(*has.shape, -1).max(-1) > 0
    return chars, has, masters


@lru_cache(maxsize=None)
def _classes(which: str = "lab") -> tuple[tuple[int, ...], tuple[str, ...]]:
    """(indices of the kept candidates, groups merged) after the coverage and duplicate rules,
    judged at 32x32 whatever the output size. "pretrain" also drops every candidate closer than
    ``PRETRAIN_TOL`` to a lab class in some face, so pretraining never sees a lab class."""
    chars, has, masters = _render_all(32, which)
    close = np.zeros((len(chars), len(chars)), bool)
    for j in range(len(FONT_FILES)):            # same face, any face
        idx = np.nonzero(has[:, j])[0]
        close[np.ix_(idx, idx)] |= _dup_distance(_downsample(masters[idx, j])) < DUP_TOL
    keep, groups = [], []
    taken = has.sum(1) < MIN_FONTS              # missing from too many faces: dropped
    if which == "pretrain":
        taken |= _near_lab(has, masters)
    for i in range(len(chars)):                 # greedy: the first of each group survives
        if taken[i]:
            continue
        group = np.nonzero(close[i] & ~taken)[0]
        taken[group] = True
        keep.append(i)
        if len(group) > 1:
            groups.append("".join(chars[j] for j in group))
    return tuple(keep), tuple(groups)


def _near_lab(has: np.ndarray, masters: np.ndarray) -> np.ndarray:
    """(K,) bool: pretraining candidates within PRETRAIN_TOL of some lab class, in a face both have."""
    lab_idx = np.array(_classes("lab")[0])
    _, lab_has, lab_masters = _render_all(32, "lab")
    lab_has, lab_masters = lab_has[lab_idx], lab_masters[lab_idx]
    near = np.zeros(len(has), bool)
    for j in range(len(FONT_FILES)):
        mine, theirs = np.nonzero(has[:, j])[0], np.nonzero(lab_has[:, j])[0]
        if len(mine) and len(theirs):
            a = torch.from_numpy(_downsample(masters[mine, j]).reshape(len(mine), -1))
            b = torch.from_numpy(_downsample(lab_masters[theirs, j]).reshape(len(theirs), -1))
            ink = torch.maximum(a.sum(1)[:, None], b.sum(1)[None, :])
            near[mine] |= ((torch.cdist(a, b, p=1) / ink) < PRETRAIN_TOL).any(1).numpy()
    return near


def glyph_classes(which: str = "lab") -> list[str]:
    """The final characters, in class order (deduplicated, all present in the fonts)."""
    chars = _candidates(which)
    return [chars[i] for i in _classes(which)[0]]


def merged_groups(which: str = "lab") -> list[str]:
    """Groups of candidates judged identical; the first character of each is kept."""
    return list(_classes(which)[1])


def _affine_grid(theta: torch.Tensor, n: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, 1, n, n), align_corners=False)`` written out (faster on CPU).
    theta (B, 2, 3) -> grid (B, n, n, 2)."""
    t = (torch.arange(n, dtype=theta.dtype) * 2 + 1) / n - 1                     # pixel centres
    xs, ys = t.view(1, 1, n), t.view(1, n, 1)
    th = theta[:, :, :, None, None]                                              # (B, 2, 3, 1, 1)
    return (th[:, :, 0] * xs + th[:, :, 1] * ys + th[:, :, 2]).permute(0, 2, 3, 1)


def _smooth_field(coarse: torch.Tensor, n: int) -> torch.Tensor:
    """Bicubic upsampling (align_corners) of (B, 2, k, k) control values to a (B, n, n, 2) field,
    as two small matmuls."""
    k = coarse.shape[-1]
    up = F.interpolate(torch.eye(k).view(k, 1, 1, k), size=(1, n), mode="bicubic",
                       align_corners=True).view(k, n).T                          # (n, k)
    return (up @ coarse @ up.T).permute(0, 2, 3, 1)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (zero padding) of (B, 1, n, n) with std ``sigma`` pixels, as G x G^T."""
    n = x.shape[-1]
    i = torch.arange(n, dtype=x.dtype)
    g = torch.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
    g = g / g.sum(1, keepdim=True).max()        # interior rows sum to 1
    return g @ x @ g.T


def _translate(x: torch.Tensor, dx: np.ndarray) -> torch.Tensor:
    """Shift each image of (B, 1, H, W) right by dx (B,), in [-1, 1] units."""
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -torch.from_numpy(dx).float()
    return F.grid_sample(x, _affine_grid(theta, x.shape[-1]), align_corners=False)


def _line(n: int, p0: np.ndarray, p1: np.ndarray, width: np.ndarray) -> torch.Tensor:
    """Anti-aliased segments p0 -> p1 (B, 2) of widths (B,), in [-1, 1] units -> (B, 1, n, n)."""
    t = (torch.arange(n, dtype=torch.float32) * 2 + 1) / n - 1
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    q = torch.stack([xs, ys], -1)[None]                                          # (1, n, n, 2)
    a, b = torch.from_numpy(p0).float()[:, None, None], torch.from_numpy(p1).float()[:, None, None]
    ab = b - a
    u = (((q - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0, 1)  # (B, n, n)
    dist = (q - a - u[..., None] * ab).norm(dim=-1)
    w = torch.from_numpy(width).float()[:, None, None]
    return (1 - (dist - w / 2) * n / 2).clamp(0, 1)[:, None]                     # 1 px ramp


def _augment(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor, p: dict) -> torch.Tensor:
    """Distort one chunk. x, left, right: masters float (B, 1, 2S, 2S) in [0, 1] (the character
    and its neighbours in the line); p: the chunk's slice of ``_draw_params``.
    Returns float (B, S, S): line crop, stroke width, affine + elastic warp, stray stroke, blur,
    2x2 average pooling, ink level (noise is added by the caller)."""
    for k, (side, nb) in enumerate(((-1, left), (1, right))):   # neighbours, placed by ink widths
        idx = np.nonzero(p["gap"][:, k] > 0)[0]
        if len(idx):
            dx = side * (p["half_width"][idx, 0] + p["half_width"][idx, 1 + k] + p["gap"][idx, k])
            ti = torch.from_numpy(idx)
            x[ti] = torch.maximum(x[ti], _translate(nb[ti], dx))
    for step in (1, -1):                        # dilate / erode by 1 px at 2x resolution
        idx = torch.from_numpy(np.nonzero(p["stroke"] == step)[0])
        if len(idx):
            x[idx] = step * F.max_pool2d(step * x[idx], 3, 1, 1)
    n = x.shape[-1]
    grid = _affine_grid(torch.from_numpy(p["theta"]).float(), n)                  # (B, 2S, 2S, 2)
    grid = grid + _smooth_field(torch.from_numpy(p["elastic"]).float(), n)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    idx = np.nonzero(p["stray_width"] > 0)[0]
    if len(idx):
        ti = torch.from_numpy(idx)
        stray = _line(n, p["stray"][idx, 0], p["stray"][idx, 1], p["stray_width"][idx])
        x[ti] = torch.maximum(x[ti], stray)
    for level in np.unique(p["blur"]):          # sigma in output pixels = 2x-resolution sigma / 2
        if level > 0:
            idx = torch.from_numpy(np.nonzero(p["blur"] == level)[0])
            x[idx] = _gaussian_blur(x[idx], 2 * float(level))
    x = F.avg_pool2d(x, 2)[:, 0]                # (B, S, S)
    return x * torch.from_numpy(p["ink"]).float()[:, None, None]


def _draw_params(rng: np.random.Generator, n: int, weight: np.ndarray,
                 half_width: np.ndarray) -> dict:
    """Random distortion of each sample (ranges in DISTORTION). weight (n,): 0 regular face,
    1 bold sans (no hairlines, may be eroded), 2 other bold (kept as is);
    half_width (n, 3): ink half-widths of the character and its left / right neighbours.
    Returns arrays with a leading n: neighbour gaps (0 = no neighbour), stroke step, affine
    theta (output -> input coordinates, as for ``affine_grid``), elastic field, stray stroke,
    blur, ink, noise."""
    d = DISTORTION
    gap = rng.uniform(*d["gap"], (n, 2)) * (rng.random((n, 2)) < d["neighbours"])
    rot = np.deg2rad(rng.uniform(-d["rotation"], d["rotation"], n))
    shear = rng.uniform(-d["shear"], d["shear"], n)
    scale = np.exp(rng.uniform(*np.log(d["scale"]), n))
    aspect = np.exp(rng.uniform(-np.log(d["aspect"]), np.log(d["aspect"]), n))
    shift = rng.uniform(-d["shift"], d["shift"], (n, 2))
    thick = rng.random(n) < 0.5                 # regular: dilate by 1 px; bold sans: erode by 1 px
    stroke = np.where(weight == 0, 1, -(weight == 1).astype(int)) * thick
    elastic = rng.uniform(0, d["elastic"], (n, 1, 1, 1)) * rng.standard_normal((n, 2, 3, 3))
    stray = rng.uniform(-1, 1, (n, 2, 2))       # end points of a stray stroke
    stray_width = rng.uniform(*d["stray_width"], n) * (rng.random(n) < d["stray"])
    blur = rng.choice(d["blur"], n)
    ink = rng.uniform(*d["ink"], n)
    noise = rng.uniform(0.0, d["noise"], n)
    c, s = np.cos(rot), np.sin(rot)
    rotm = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)             # (n, 2, 2)
    shearm = np.zeros((n, 2, 2)); shearm[:, 0, 0] = shearm[:, 1, 1] = 1; shearm[:, 0, 1] = shear
    scalem = np.zeros((n, 2, 2)); scalem[:, 0, 0] = scale * aspect; scalem[:, 1, 1] = scale / aspect
    inv = np.linalg.inv(rotm @ shearm @ scalem)  # the forward map is input -> output
    theta = np.concatenate([inv, -(inv @ shift[:, :, None])], 2)                    # (n, 2, 3)
    return {"gap": gap, "half_width": half_width, "theta": theta, "stroke": stroke,
            "elastic": elastic, "stray": stray, "stray_width": stray_width, "blur": blur,
            "ink": ink, "noise": noise}


def generate_glyphs(per_class: int = 48, size: int = 32, seed: int = 0, progress: bool = False,
                    which: str = "lab") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Render the dataset ("lab" classes, or the disjoint "pretrain" classes). Returns (images uint8
    (N, size, size), labels int64 (N,), class_names), N = per_class * len(class_names), class-major.
    Deterministic for a seed."""
    keep = np.array(_classes(which)[0])
    chars, has, masters = _render_all(size, which)
    classes, has, masters = [chars[i] for i in keep], has[keep], masters[keep]  # (C, F, 2S, 2S)
    cols = masters.max(2) > 0                   # (C, F, 2S) columns with ink
    half_width = (cols.shape[-1] - cols.argmax(-1) - cols[..., ::-1].argmax(-1)) / cols.shape[-1]
    rng = np.random.default_rng(seed)
    n = per_class * len(classes)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), per_class)
    avail = [np.nonzero(h)[0] for h in has]     # faces that have each class
    nfaces = np.array([len(a) for a in avail])
    slot = (rng.random(n) * nfaces[labels]).astype(np.int64)
    face = np.array([avail[c][k] for c, k in zip(labels, slot)], dtype=np.int64)
    nb = rng.integers(0, len(classes), (n, 2))  # neighbours: random classes, in the same face if
    nb_face = np.where(has[nb, face[:, None]], face[:, None], has[nb].argmax(-1))  # they have it
    widths = half_width[np.c_[labels, nb], np.c_[face, nb_face]]                   # (n, 3)
    weight = np.array([("Bol" in f) * (1 if f.startswith("DejaVuSans") else 2) for f in FONT_FILES])
    params = _draw_params(rng, n, weight[face], widths)
    noise = rng.standard_normal((n, size, size), dtype=np.float32)
    images = np.empty((n, size, size), np.uint8)
    as_float = lambda a: torch.from_numpy(a).float().div_(255.0)[:, None]       # noqa: E731
    chunk = 1024
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        x = _augment(as_float(masters[labels[sl], face[sl]]),
                     as_float(masters[nb[sl, 0], nb_face[sl, 0]]),
                     as_float(masters[nb[sl, 1], nb_face[sl, 1]]),
                     {k: v[sl] for k, v in params.items()})
        x = x + torch.from_numpy(noise[sl] * params["noise"][sl, None, None].astype(np.float32))
        images[sl] = (x.clamp_(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        if progress:
            print(f"glyphs: {min(start + chunk, n)}/{n} images", flush=True)
    return images, labels, list(classes)


def family(ch: str) -> str:
    """A character's letter family: its base letter without diacritics, case-folded.
    "Ώ" -> "ω", "Ў" -> "у", "é" -> "e". Near-twins (a tonos or a breve cropped away, the same
    shape in upper and lower case after random scaling) share a family."""
    return unicodedata.normalize("NFD", ch)[0].casefold()


def class_split(class_names, seed: int = 0) -> tuple[list[str], list[str]]:
    """Disjoint (train_names, test_names), split by letter FAMILY (``family``) so that no test
    class has a near-twin among the train classes: families in a seeded shuffle go to train
    while they fit in half of the classes, the rest to test. Each half keeps class order."""
    names = list(class_names)
    fams = sorted({family(n) for n in names})
    order = np.random.default_rng(seed).permutation(len(fams))
    size = {f: 0 for f in fams}
    for n in names:
        size[family(n)] += 1
    train_fams, count, half = set(), 0, (len(names) + 1) // 2
    for i in order:
        if count + size[fams[i]] <= half:
            train_fams.add(fams[i])
            count += size[fams[i]]
    return ([n for n in names if family(n) in train_fams],
            [n for n in names if family(n) not in train_fams])


def default_root() -> Path:
    """The kit's data folder (``hdml_lite.data.paths.data_root``): $HDML_DATA, else
    $XDG_CACHE_HOME/hdml_lite, else ~/.cache/hdml_lite."""
    from .paths import data_root
    return data_root()


def params_hash(per_class: int, size: int, seed: int = 0) -> str:
    """What the cached bytes depend on: version, parameters, rule constants, font files, Pillow."""
    import PIL
    fonts = [(f, (font_dir() / f).stat().st_size) for f in FONT_FILES]
    rules = [MIN_FONTS, DUP_TOL, CAP_HEIGHT, FIT, EXCLUDED, DISTORTION, PRETRAIN_TOL, PRETRAIN_RANGES]
    blob = json.dumps([GLYPHS_VERSION, per_class, size, seed, fonts, PIL.__version__, rules])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(root, per_class: int = 48, size: int = 32, which: str = "lab") -> Path:
    tag = "" if which == "lab" else f"{which}_"
    return Path(root) / f"glyphs_v{GLYPHS_VERSION}_{tag}{per_class}x{size}.npz"


def _load_or_generate(root, per_class: int, size: int, which: str = "lab"
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    path = cache_path(root, per_class, size, which)
    want = params_hash(per_class, size) + ("" if which == "lab" else f"-{which}")
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["hash"]) == want:
                    return z["images"], z["labels"], [str(s) for s in z["class_names"]]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass                                # unreadable: regenerate
    images, labels, names = generate_glyphs(per_class, size, which=which)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=labels, class_names=np.array(names),
                                hash=np.array(want))
        os.chmod(tmp, new_file_mode())          # mkstemp makes it private; the umask decides (file_mode.py)
        os.replace(tmp, path)                   # atomic: readers never see a partial file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return images, labels, names


def load_glyphs(split: str, root: str | None = None, per_class: int = 48, size: int = 32,
                transform=None) -> ArrayDataset:
    """The "train" or "test" half of the classes as an ArrayDataset (labels 0..C-1 within the
    split), generated on first use and cached as
    ``<root>/glyphs_v<version>_<per_class>x<size>.npz``."""
    if split not in SPLITS:
        raise ValueError(f"unknown glyphs split {split!r}; expected one of {SPLITS}")
    root = Path(root) if root else default_root()
    if split == "pretrain":
        images, labels, names = _load_or_generate(root, per_class, size, "pretrain")
        return ArrayDataset(images, labels, names, transform=transform)
    images, labels, names = _load_or_generate(root, per_class, size)
    wanted = class_split(names)[SPLITS.index(split)]
    old = np.array([names.index(n) for n in wanted])
    remap = np.full(len(names), -1, np.int64)
    remap[old] = np.arange(len(old))
    keep = remap[labels] >= 0
    return ArrayDataset(images[keep], remap[labels[keep]], wanted, transform=transform)
