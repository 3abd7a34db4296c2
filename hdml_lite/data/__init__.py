"""Data: the embedded glyph dataset, real datasets, samplers, transforms.

    train = load_dataset(cfg.data, "train", in_channels=1)   # zero-shot: train classes
    test = load_dataset(cfg.data, "test", in_channels=1)     # disjoint test classes

Splits: "train", "val" (a class-disjoint part of the TRAIN classes, used for model
and hyper-parameter selection when ``data.val_classes > 0``), "test".

Loading a real dataset checks the header of every image of both splits first
(preflight.py: ``data.skip_corrupt`` skips the unreadable ones, else one error naming
the file), reads images as RGB or grey (``data.channels``; 16-bit images by their true
range), inverted when ``data.invert=true``, and with ``data.cache`` opens (or builds) the
pre-resized uint8 copy (cache.py). ``data.channels=0`` and ``data.invert=auto`` read here as the
dataset's default and "not inverted"; ``train`` first resolves them from the images
(report.py: ``resolve_data``) and records the values it used. Training batches come from
pipeline.py (DataLoader workers, batched crop/flip/normalise on the training device).
"""
from __future__ import annotations

import numpy as np

from .paths import check_data_root, data_root  # root if given, else $HDML_DATA, else $XDG_CACHE_HOME/hdml_lite
from .base import ArrayDataset, CorruptImageError, ImageListDataset, InvertedCache, Split, relabel, subset
from .samplers import (BatchRequestError, MPerClassSampler, NPairSampler, TripletSampler, batch_problem,
                       make_sampler)
from .cache import ImageCache, cache_folder, open_cache
from .preflight import check_splits, drop_unreadable, split_report
from .transforms import build_transforms

DATASET_NAMES = ("glyphs", "cub", "cars196", "sop", "omniglot", "folder")
GREY_DATASETS = ("glyphs", "omniglot")


def read_channels(dataset: str, channels: int = 0) -> int:
    """Channels images are read with: ``channels`` (data.channels: 1 grey, 3 RGB), or with 0 the
    dataset's default (1 for glyphs and omniglot, 3 otherwise)."""
    if channels not in (0, 1, 3):
        raise ValueError(f"data.channels={channels!r}; expected 0 (dataset default), 1 (grey) or 3 (RGB)")
    return channels or (1 if dataset in GREY_DATASETS else 3)


def input_channels(dataset: str, backbone: str, channels: int = 0) -> int:
    """Channels the model takes: the small CNN takes the images' channels (``read_channels``: pass
    data.channels); ImageNet backbones always take 3 (grey images are repeated to 3)."""
    return read_channels(dataset, channels) if backbone == "small_cnn" else 3


def config_channels(cfg) -> int:
    """``input_channels`` of a whole Config (data.dataset, model.backbone, data.channels): what every
    caller that holds a config should use, so that none forgets data.channels."""
    return input_channels(cfg.data.dataset, cfg.model.backbone, cfg.data.channels)


def val_class_count(fraction: float, n_train_classes: int) -> int:
    """How many of ``n_train_classes`` training classes ``data.val_classes=fraction`` holds out."""
    return int(round(fraction * n_train_classes))


def _split_val(ds, fraction: float, seed: int = 0):
    """Carve a class-disjoint validation split off the training classes: (train, val)."""
    classes = np.unique(ds.labels)
    n_val = val_class_count(fraction, len(classes))
    if not 0 < n_val < len(classes):
        raise ValueError(f"data.val_classes={fraction} leaves {n_val} of {len(classes)} train classes for validation; "
                         f"expected a fraction in (0, 1) that keeps at least one class on each side")
    rng = np.random.default_rng(seed + 12345)
    val_classes = set(rng.permutation(classes)[:n_val].tolist())
    is_val = np.isin(ds.labels, list(val_classes))
    return subset(ds, np.flatnonzero(~is_val)), subset(ds, np.flatnonzero(is_val))


def _limit(ds, max_classes: int, max_per_class: int):
    """Fast mode: keep the first ``max_classes`` classes and ``max_per_class`` images of each."""
    if not max_classes and not max_per_class:
        return ds
    keep = []
    for c in np.unique(ds.labels)[: max_classes or None]:
        keep += np.flatnonzero(ds.labels == c)[: max_per_class or None].tolist()
    return subset(ds, keep)


def read_splits(data_cfg):
    """The file lists of a real dataset: (dataset root, train Split, test Split); no image is opened."""
    from .real import read_dataset

    root = check_data_root(data_cfg.root)   # not a regular file (names HDML_DATA or data.root)
    if not data_cfg.root:
        root = root / data_cfg.dataset
    train, test = read_dataset(data_cfg.dataset, str(root), split_file=data_cfg.split_file)
    return root, train, test


def load_dataset(data_cfg, split: str, in_channels: int | None = None, train_transform: bool | None = None):
    """Load one split of ``data_cfg.dataset`` with its transform.

    split: "train" | "val" | "test". ``train_transform`` defaults to True for "train".
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r}; expected train, val or test")
    name = data_cfg.dataset
    if name not in DATASET_NAMES:
        raise ValueError(f"data.dataset={name!r}; expected one of {', '.join(DATASET_NAMES)}")
    read_ch = read_channels(name, getattr(data_cfg, "channels", 0))
    if in_channels is None:
        in_channels = read_ch
    is_train = (split == "train") if train_transform is None else train_transform
    tf = build_transforms(data_cfg.transforms, is_train, data_cfg.resize, data_cfg.image_size, in_channels)
    base_split = "test" if split == "test" else "train"
    if name == "glyphs":
        from .glyphs import cache_path, load_glyphs

        # before any work: a data folder that is a file, or read-only while the glyphs must be drawn
        check_data_root(data_cfg.root, write=not cache_path(data_root(data_cfg.root)).is_file(),
                        why="cache the embedded glyphs (drawn once, about 20 s)")
        ds = load_glyphs(base_split, root=str(data_root(data_cfg.root)), transform=tf)
    else:
        root, train, test = read_splits(data_cfg)
        train, test = check_splits([train, test], data_cfg.skip_corrupt)   # every image's header, once
        cache = None
        if getattr(data_cfg, "cache", ""):
            folder = cache_folder(data_cfg.cache, root, name, data_cfg.resize, read_ch)
            cache = open_cache(folder, train.paths + test.paths, root, data_cfg.resize, read_ch,
                               skip_corrupt=data_cfg.skip_corrupt, workers=data_cfg.num_workers)
            train, test = (drop_unreadable(s, cache.unreadable) for s in (train, test))
        invert = getattr(data_cfg, "invert", "auto") == "true"
        ds = ImageListDataset(test if base_split == "test" else train, transform=tf, in_channels=read_ch,
                              invert=invert)
        ds.cache = InvertedCache(cache) if (cache is not None and invert) else cache
    if split != "test" and data_cfg.val_classes > 0:
        train_part, val_part = _split_val(ds, data_cfg.val_classes)
        ds = val_part if split == "val" else train_part
        ds.transform = tf
    return _limit(ds, data_cfg.max_classes, data_cfg.max_per_class)


__all__ = ["ArrayDataset", "ImageListDataset", "Split", "CorruptImageError", "relabel", "subset",
           "BatchRequestError", "batch_problem", "NPairSampler", "TripletSampler", "MPerClassSampler", "make_sampler",
           "build_transforms", "load_dataset", "data_root", "input_channels", "config_channels", "read_channels", "DATASET_NAMES",
           "ImageCache", "open_cache", "split_report", "read_splits", "val_class_count"]
