"""The pre-flight report: what ``train`` is about to use, and every problem at once.

    cfg, look = resolve_data(cfg)                   # image files: data.channels / data.invert from the images
    train_ds = load_dataset(cfg.data, "train", ...)  # (and the eval splits)
    check_preflight(cfg, look, train_ds, eval_sets)  # prints the report; raises DataReportError with every problem

For a dataset of image files (not the embedded glyphs) the report states:

- classes: train / validation / test, and the rule that split them;
- images per class (min / median) per split;
- image sizes (min / median, from the headers of every file) and the resize that will be used;
- colour (grey / RGB / mixed, from the headers, and for RGB files a decoded sample: an RGB
  file whose three channels are equal is grey) with the ``data.channels`` that will be used;
- ink polarity: the median brightness of the image border against the centre, over a sample,
  compared with the pretrained small CNN's start (the glyphs: light ink on a dark background),
  with the ``data.invert`` that will be used (images with transparency are composited onto a
  background first: data/base.py ``flatten_alpha``);
- a warning naming the classes whose images are one flat colour (every pixel equal).

Auto settings (``resolve_data``): ``data.channels=0`` reads a dataset whose images are all grey
as grey (1), else the dataset's default; ``data.invert=auto`` inverts only for the pretrained
small CNN on dark ink on a light background. Only a choice that differs from the plain reading
(grey where the default is RGB, inverted) is written into the config, which the checkpoint
records. The glyphs are never changed.

Problems (``preflight``), each with the fix that keeps the user's intent: a batch the training
classes cannot fill (with how many classes the split and the validation split left), a batch with
no negatives, RGB input to the grey pretrained small CNN (``data.channels=1``; ``model.pretrained=
false`` only for an intended from-scratch run).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import read_channels, read_splits, config_channels
from .base import to_mode
from .preflight import flat_report, header_info, split_report
from .samplers import WHAT, batch_problem

GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
SAMPLE = 64                     # images decoded for the colour and ink checks
POLARITY_MARGIN = 16.0          # border and centre must differ by this much (of 255) to call the polarity
PRETRAINED_POLARITY = "light-on-dark"   # the lab's pretrained small CNN (models/lab_weights.py): white glyphs on black
GREY_TOLERANCE = 3              # an RGB file is grey when its channels differ by at most this (JPEG rounding)


class DataReportError(ValueError):
    """The pre-flight report found problems; the message lists every one with its fix."""


@dataclass
class ImageLook:
    """What the images of a dataset look like (``look_at``), and the settings the user gave."""
    n_images: int
    min_size: tuple[int, int]           # (width, height) of the smallest image (by area)
    median_size: tuple[int, int]        # median width, median height
    colour: str                         # grey | RGB | mixed
    colour_text: str
    polarity: str                       # light-on-dark | dark-on-light | unclear
    border: float                       # median border brightness, 0..255
    centre: float                       # median centre brightness, 0..255
    sampled: int                        # images decoded
    channels_setting: int = 0           # data.channels as the user gave it
    invert_setting: str = "auto"        # data.invert as the user gave it
    n_train_classes: int = 0            # before any validation split
    n_test_classes: int = 0


def _spread(items: list, n: int) -> list:
    """Up to ``n`` items evenly spaced over ``items`` (deterministic; spans the classes)."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def ink_polarity(images: list[np.ndarray], margin: float = POLARITY_MARGIN) -> tuple[float, float, str]:
    """Grey images [(H, W) uint8] -> (median border brightness, median centre brightness, verdict).

    Border: the outer eighth of each side; centre: the middle half. Verdict: "light-on-dark" when
    the centre is brighter by more than ``margin``, "dark-on-light" when darker, else "unclear"."""
    borders, centres = [], []
    for a in images:
        a = np.asarray(a, dtype=np.float64)
        h, w = a.shape
        bh, bw = max(1, h // 8), max(1, w // 8)
        ring = np.ones_like(a, dtype=bool)
        ring[bh:h - bh, bw:w - bw] = False
        borders.append(a[ring].mean())
        centres.append(a[h // 4:h - h // 4 or h, w // 4:w - w // 4 or w].mean())
    if not borders:
        return float("nan"), float("nan"), "unclear"
    border, centre = float(np.median(borders)), float(np.median(centres))
    verdict = ("light-on-dark" if centre - border > margin else
               "dark-on-light" if border - centre > margin else "unclear")
    return border, centre, verdict


def _decode(path: str, mode: str) -> Image.Image | None:
    """The image in ``mode`` ("L" / "RGB"), or None when it cannot be decoded (load_dataset reports it)."""
    try:
        with Image.open(path) as im:
            return to_mode(im, mode)
    except Exception:
        return None


def _is_grey_rgb(im: Image.Image) -> bool:
    a = np.asarray(im, dtype=np.int16)
    return int(np.abs(a - a[..., :1]).max()) <= GREY_TOLERANCE


def look_at(paths: list[str], sample: int = SAMPLE) -> ImageLook:
    """Sizes and colour modes of every file (headers), colour and ink polarity of a decoded sample."""
    info = [(p, i) for p, i in zip(paths, header_info(paths)) if i is not None]
    if not info:
        return ImageLook(0, (0, 0), (0, 0), "unknown", "no readable image", "unclear", float("nan"),
                         float("nan"), 0)
    sizes = np.array([(w, h) for _, (w, h, _) in info])
    smallest = tuple(int(v) for v in sizes[np.argmin(sizes[:, 0] * sizes[:, 1])])
    median = tuple(int(v) for v in np.median(sizes, axis=0).round())
    grey_mode = [p for p, (_, _, m) in info if m in GREY_MODES]
    colour_mode = [p for p, (_, _, m) in info if m not in GREY_MODES]
    checked, equal = [], 0
    for p in _spread(colour_mode, sample):
        im = _decode(p, "RGB")
        if im is not None:
            checked.append(p)
            equal += _is_grey_rgb(im)
    n = len(info)
    if not colour_mode:
        colour, text = "grey", f"grey (all {n} images are grey files)"
    elif checked and equal == len(checked):
        colour, text = "grey", (f"grey ({len(grey_mode)} grey files; the {len(colour_mode)} colour files have equal "
                                f"channels: {len(checked)} checked)")
    elif not grey_mode and equal == 0:
        colour, text = "RGB", f"RGB (all {n} images are colour files; {len(checked)} checked)"
    else:
        colour, text = "mixed", (f"mixed ({len(grey_mode)} grey files, {len(colour_mode)} colour files, of which "
                                 f"{len(checked) - equal} of {len(checked)} checked have colour)")
    greys = [np.asarray(im.resize((32, 32), Image.BILINEAR))
             for im in (_decode(p, "L") for p in _spread([p for p, _ in info], sample)) if im is not None]
    border, centre, polarity = ink_polarity(greys)
    return ImageLook(n, smallest, median, colour, text, polarity, border, centre, len(greys))


def _auto_invert(cfg, look: ImageLook) -> bool:
    return (cfg.model.backbone == "small_cnn" and cfg.model.pretrained and look.polarity != PRETRAINED_POLARITY
            and look.polarity != "unclear")


def resolve_data(cfg):
    """(cfg with data.channels / data.invert resolved from the images, ImageLook); the glyphs:
    (cfg unchanged, None). Pure in the sense of returning a new config; reads image files."""
    if cfg.data.dataset == "glyphs":
        return cfg, None
    _, train, test = read_splits(cfg.data)
    look = look_at(train.paths + test.paths)
    look.channels_setting, look.invert_setting = cfg.data.channels, cfg.data.invert
    look.n_train_classes, look.n_test_classes = len(train.class_names), len(test.class_names)
    cfg = copy.deepcopy(cfg)
    if cfg.data.channels == 0 and look.colour == "grey" and read_channels(cfg.data.dataset) != 1:
        cfg.data.channels = 1
    if cfg.data.invert == "auto" and _auto_invert(cfg, look):
        cfg.data.invert = "true"
    return cfg, look


def _counts(ds) -> str:
    c = np.bincount(np.asarray(ds.labels, dtype=np.int64), minlength=len(ds.class_names))
    c = c[c > 0]
    return f"min {int(c.min())} / median {int(np.median(c))}" if len(c) else "none"


def _rule(cfg) -> str:
    if cfg.data.dataset == "glyphs":
        return "the glyphs' own class split"
    if cfg.data.dataset == "folder":
        return (f"as listed in data.split_file={cfg.data.split_file}" if cfg.data.split_file else
                "the first half of the class folders by name train, the rest test")
    return "the dataset's standard zero-shot split, docs/METHOD.md §3"


def _classes(cfg, n_train: int, n_val: int, n_test: int) -> str:
    t = n_train + n_val
    text = f"{t + n_test} classes: {t} train / {n_test} test ({_rule(cfg)})"
    if n_val:
        text += (f"; data.val_classes={cfg.data.val_classes:g} took {n_val} of the {t} training classes for "
                 f"validation, leaving {n_train} to train on")
    return text


def _unreadable(name: str, ds) -> str:
    """A split left with no image: every file unreadable and skipped (data.skip_corrupt=true), or ""."""
    if len(ds) or not getattr(ds, "skipped", None):
        return ""
    skipped = list(ds.skipped)
    shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    return (f"none of the {len(skipped)} images of the {name} split could be read (data.skip_corrupt=true skipped "
            f"every one: {shown}): are they image files? set data.skip_corrupt=false to see why the first "
            f"cannot be read")


def _batch(cfg, train_ds, n_val: int, n_test: int) -> str:
    d = cfg.data
    min_images = 2
    problem = batch_problem(d.sampler, train_ds.labels, d.batch_classes, min_images)
    if not problem:
        return problem
    if _unreadable("train", train_ds):   # said on its own (preflight): no batch advice fits
        return ""
    if 0 < d.max_per_class < min_images and d.batch_classes >= 1:
        return (f"data.max_per_class={d.max_per_class}: metric learning needs at least {min_images} images per "
                f"class (an anchor and its positive), but data.max_per_class keeps {d.max_per_class} of each "
                f"class; set data.max_per_class=0 (all images) or {min_images} or more")
    if d.sampler == "triplet" or d.batch_classes < 2:
        return problem
    counts = np.bincount(np.asarray(train_ds.labels, dtype=np.int64))
    eligible = int((counts >= min_images).sum())
    n_train = train_ds.num_classes
    few = f", {n_train - eligible} of them with fewer than {min_images} images" if eligible < n_train else ""
    if eligible < 2:                     # lowering data.batch_classes cannot help
        return (f"the {WHAT.get(d.sampler, d.sampler)} needs at least 2 training classes with >= {min_images} "
                f"images (an anchor and its positive, negatives from another class), but there are {eligible}: "
                f"{_classes(cfg, n_train, n_val, n_test)}{few}; metric learning needs at least {min_images} "
                f"images per class: add images to the class folders"
                + (", or put more classes in training (data.split_file)" if d.dataset == "folder" else ""))
    fixes = [f"lower data.batch_classes to {eligible} or less"]
    if n_val:
        fixes.append(f"lower data.val_classes (0 trains on all {n_train + n_val})")
    if d.dataset == "folder":
        fixes.append("put more classes in training (data.split_file) or add class folders")
    return (f"data.batch_classes={d.batch_classes}: the {WHAT.get(d.sampler, d.sampler)} needs {d.batch_classes} "
            f"training classes with >= {min_images} images, but there are {eligible}: "
            f"{_classes(cfg, n_train, n_val, n_test)}{few}; {', or '.join(fixes)}")


def _size_lines(cfg, look: ImageLook) -> list[str]:
    d = cfg.data
    (mw, mh), (w, h) = look.min_size, look.median_size
    lines = [f"  image sizes: min {mw}x{mh}, median {w}x{h} -> resized to {d.resize}x{d.resize} (data.resize; "
             f"the aspect ratio is not kept), then cropped to {d.image_size}x{d.image_size} (data.image_size)"]
    side = min(w, h)
    if side and d.resize > 2 * side:
        lines.append(f"  note: images are upscaled {d.resize / side:.1f}x: no detail is added and each step costs "
                     f"more; a data.resize near the images' size is cheaper")
    elif side > 2 * d.resize:
        lines.append(f"  note: images are shrunk {side / d.resize:.1f}x: fine detail is lost; a larger data.resize "
                     f"and data.image_size keep more of it (a step costs about the square of the size ratio)")
    return lines


def _ink_line(cfg, look: ImageLook) -> str:
    d, m = cfg.data, cfg.model
    what = (f"  ink: {look.polarity} (median border {look.border:.0f}, centre {look.centre:.0f} of 255, "
            f"{look.sampled} images)")
    inverted = d.invert == "true"
    if look.invert_setting != "auto":
        return f"{what}; {'inverted' if inverted else 'not inverted'} (data.invert={look.invert_setting}, as set)"
    if m.backbone != "small_cnn":
        return f"{what}; not inverted (data.invert=auto): the ImageNet start takes images as they are"
    if not m.pretrained:
        return f"{what}; not inverted (data.invert=auto): a from-scratch run (model.pretrained=false) learns either"
    if look.polarity == "unclear":
        return (f"{what}; not inverted (data.invert=auto): border and centre differ by less than "
                f"{POLARITY_MARGIN:.0f}; set data.invert=true if the ink is darker than the background")
    if inverted:
        return (f"{what}; opposite to the pretrained small CNN's {PRETRAINED_POLARITY} glyphs: inverted "
                f"(data.invert=auto; data.invert=false keeps them as they are)")
    return f"{what}; as the pretrained small CNN's {PRETRAINED_POLARITY} glyphs: not inverted (data.invert=auto)"


def _channel_problem(cfg, look: ImageLook | None) -> str:
    m = cfg.model
    in_ch = config_channels(cfg)
    if m.backbone != "small_cnn" or not m.pretrained or in_ch == 1:
        return ""
    seen = f"; the images are {look.colour}" if look is not None else ""
    return (f"model.pretrained=true: the lab's pretrained small CNN takes grey (1-channel) images, but they are read "
            f"as RGB (data.channels={cfg.data.channels}{seen}); set data.channels=1 to read them as grey and keep "
            f"the pretrained start, or model.pretrained=false only for an intended from-scratch run")


def lab_reminder(cfg) -> str:
    """One line for a lab preset on data other than the glyphs ("" otherwise)."""
    if cfg.data.dataset == "glyphs" or not cfg.name.startswith("lab_"):
        return ""
    from ..presets import PRESETS

    if cfg.name in PRESETS and PRESETS[cfg.name]().optim.lr != cfg.optim.lr:
        return ""                       # an lr given on purpose (e.g. by compare's selection)
    return (f"note: {cfg.name}'s optim.lr={cfg.optim.lr:g} was chosen on the glyph validation classes, not on "
            f"your data; `python -m hdml_lite compare` selects it on your data")


def preflight(cfg, look: ImageLook | None, train_ds, eval_sets: dict) -> tuple[list[str], list[str]]:
    """(report lines, problems). ``look`` is ``resolve_data``'s (None for the glyphs: only the
    split warnings and the problems)."""
    n_val = eval_sets["val"].num_classes if "val" in eval_sets else 0
    n_test = eval_sets["test"].num_classes if "test" in eval_sets else 0
    lines = []
    if look is not None:
        d = cfg.data
        where = f"{d.root or 'the data folder'} (data.dataset={d.dataset})"
        chan = config_channels(cfg)
        how = "as set" if look.channels_setting else (
            "auto: the images are all grey" if d.channels == 1 else "auto: the dataset's default")
        per = ", ".join(f"{name} {_counts(ds)}" for name, ds in (("train", train_ds), *eval_sets.items()))
        lines += [f"pre-flight: {look.n_images} images in {where}",
                  f"  classes: {_classes(cfg, train_ds.num_classes, n_val, n_test)}",
                  f"  images per class: {per}",
                  *_size_lines(cfg, look),
                  f"  colour: {look.colour_text} -> read as {'grey' if read_channels(d.dataset, d.channels) == 1 else 'RGB'}"
                  f" (data.channels={d.channels}, {how}); the model takes {chan} channel(s)",
                  _ink_line(cfg, look)]
    lines += split_report({"train": train_ds, **eval_sets})
    if look is not None:                 # image files: classes whose images are one flat colour
        lines += flat_report({"train": train_ds, **eval_sets})
    reminder = lab_reminder(cfg)
    if reminder:
        lines.append(reminder)
    unread = [_unreadable(name, ds) for name, ds in (("train", train_ds), *eval_sets.items())]
    problems = [p for p in (*unread, _batch(cfg, train_ds, n_val, n_test), _channel_problem(cfg, look)) if p]
    return lines, problems


def check_preflight(cfg, look: ImageLook | None, train_ds, eval_sets: dict) -> list[str]:
    """Print the report; raise ``DataReportError`` listing every problem (one line). Returns the lines."""
    lines, problems = preflight(cfg, look, train_ds, eval_sets)
    for line in lines:
        print(line)
    if problems:
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)) if len(problems) > 1 else problems[0]
        raise DataReportError(f"{len(problems)} problem(s) with this data and config: {listed}"
                              if len(problems) > 1 else listed)
    return lines
