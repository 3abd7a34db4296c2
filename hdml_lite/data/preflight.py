"""Pre-flight checks, run when a dataset is loaded, before training starts.

- ``unreadable(paths)``: every image file's header is opened and verified (PIL
  ``Image.open`` + ``verify``: cheap, no full decode). Files that passed are remembered
  (path, size, mtime), so loading the train, val and test splits checks each file once.
- ``header_info(paths)``: (width, height, PIL mode) of each file, read in that same pass.
- ``drop_unreadable(split, bad)``: with ``data.skip_corrupt`` those files leave the split
  and are listed in ``split.skipped``; without it the first one is a ``CorruptImageError``
  (one line naming the file; the CLI exits with code 2).
- ``split_report(splits)``: plain lines for the user, per split: images skipped, and
  classes with a single image, named by their class folder (the sampler cannot draw a
  positive pair from them; in a test split they are left out as retrieval queries).
- ``flat_report(splits)``: a warning per split naming the classes whose images (a sample of
  each class, decoded as the training reads them) are one flat colour: every pixel equal.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .base import CorruptImageError, Split

_VERIFIED: dict = {}          # (path, size, mtime_ns) whose header opened fine -> (width, height, mode)


def _key(path: str) -> tuple:
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns


def unreadable(paths: list[str]) -> list[tuple[str, str]]:
    """[(path, reason), ...] for the files whose image header cannot be read."""
    bad = []
    for p in paths:
        try:
            key = _key(p)
            if key in _VERIFIED:
                continue
            with Image.open(p) as im:
                info = (im.width, im.height, im.mode)
                im.verify()
            _VERIFIED[key] = info
        except Exception as exc:
            bad.append((p, f"{type(exc).__name__}: {exc}".strip()))
    return bad


def header_info(paths: list[str]) -> list[tuple[int, int, str] | None]:
    """(width, height, PIL mode) per file from its header (None: unreadable), checking headers
    not seen yet (``unreadable``)."""
    unreadable(paths)
    out = []
    for p in paths:
        try:
            out.append(_VERIFIED.get(_key(p)))
        except OSError:
            out.append(None)
    return out


def corrupt_error(bad: list[tuple[str, str]]) -> CorruptImageError:
    path, reason = bad[0]
    more = f" ({len(bad) - 1} more unreadable image(s))" if len(bad) > 1 else ""
    return CorruptImageError(f"cannot read image {path!r} ({reason}){more}; remove the file or set "
                             f"data.skip_corrupt=true to skip unreadable images")


def drop_unreadable(split: Split, bad) -> Split:
    """``split`` without the files in ``bad`` (paths), which are added to ``split.skipped``."""
    bad = set(bad)
    keep = [i for i, p in enumerate(split.paths) if p not in bad]
    if len(keep) == len(split.paths):
        return split
    return Split([split.paths[i] for i in keep], [split.labels[i] for i in keep], list(split.class_names),
                 list(split.skipped) + [p for p in split.paths if p in bad])


def check_splits(splits: list[Split], skip_corrupt: bool) -> list[Split]:
    """Header-check every image of every split; drop the unreadable ones (``skip_corrupt``) or raise."""
    bad = unreadable([p for s in splits for p in s.paths])
    if bad and not skip_corrupt:
        raise corrupt_error(bad)
    return [drop_unreadable(s, [p for p, _ in bad]) for s in splits]


def single_image_classes(ds) -> list[str]:
    """Names (class folders) of the classes of ``ds`` with exactly one image."""
    counts = np.bincount(np.asarray(ds.labels, dtype=np.int64), minlength=len(ds.class_names))
    return [str(ds.class_names[c]) for c in np.flatnonzero(counts == 1)]


FLAT_PER_CLASS = 2       # images decoded per class for the flat-image check
FLAT_BUDGET = 200        # at most this many images decoded per split (classes spread over the split)


def _pixels(ds, i: int) -> np.ndarray | None:
    """Image ``i`` of ``ds`` as the training reads it (decoded, alpha composited; from the pre-resized
    cache when there is one), or None if unreadable."""
    try:
        if getattr(ds, "cache", None) is not None:
            return ds.cache.image(ds.paths[i]).numpy()
        if hasattr(ds, "load_image"):
            return np.asarray(ds.load_image(i))
        return ds.images[i].numpy()
    except Exception:
        return None


def flat_classes(ds, per_class: int = FLAT_PER_CLASS, budget: int = FLAT_BUDGET) -> tuple[list[str], int, str]:
    """(names of the classes whose sampled images are all one flat colour (every pixel equal),
    classes checked, an example "file: value"). The first and last image of each class are
    decoded, for up to ``budget // per_class`` classes spread over the split."""
    labels = np.asarray(ds.labels, dtype=np.int64)
    present = np.unique(labels)
    if not len(present):
        return [], 0, ""
    n = max(1, budget // per_class)
    if len(present) > n:
        present = present[np.linspace(0, len(present) - 1, n).round().astype(int)]
    flat, example = [], ""
    for c in present:
        idx = np.flatnonzero(labels == c)
        picks = sorted({int(idx[0]), int(idx[-1])})[:per_class]
        values = []
        for i in picks:
            a = _pixels(ds, i)
            if a is None or a.size == 0 or a.min() != a.max():
                values = []
                break
            values.append((i, int(a.flat[0])))
        if values:
            flat.append(str(ds.class_names[c]))
            if not example:
                i, v = values[0]
                where = os.path.basename(ds.paths[i]) if hasattr(ds, "paths") else f"image {i}"
                example = f"{where}: every pixel {v}"
    return flat, len(present), example


def flat_report(splits: dict) -> list[str]:
    """{split name: dataset} -> one warning line per split with classes of flat (constant) images."""
    lines = []
    for name, ds in splits.items():
        flat, checked, example = flat_classes(ds)
        if flat:
            lines.append(f"warning: {name} split: the images of {len(flat)} of {checked} class(es) checked are one "
                         f"flat colour (e.g. {example}), nothing to learn from: {_names(flat)}; are they blank, or "
                         f"drawn on a transparent background that reads as one colour?")
    return lines


def _names(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def split_report(splits: dict) -> list[str]:
    """{split name: dataset} -> warning lines (empty when all is well)."""
    lines, reported = [], []
    for name, ds in splits.items():
        skipped = list(getattr(ds, "skipped", []))
        if skipped and skipped not in reported:        # val is carved from train: same skipped files
            reported.append(skipped)
            lines.append(f"warning: {name} split: skipped {len(skipped)} unreadable image(s) "
                         f"(data.skip_corrupt=true): {_names(skipped, 3)}")
        single = single_image_classes(ds)
        if single:
            what = ("excluded from positive sampling" if name == "train"
                    else "no other image of their class: left out as retrieval queries")
            lines.append(f"warning: {name} split: {len(single)} class(es) with a single image ({what}): "
                         f"{_names(single)}")
    return lines
