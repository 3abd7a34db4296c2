"""Dataset containers shared by every data source.

Both containers expose ``labels`` (N,) int64 with values 0..C-1 within the split,
``class_names`` (C,), ``num_classes``, ``in_channels``, and
``__getitem__(i) -> (image (C, H, W) float tensor, label int)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .transforms import resize_image


@dataclass
class Split:
    """What a dataset reader returns for one split: image files, integer labels, class names."""
    paths: list[str]
    labels: list[int]          # 0..C-1, index into class_names
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)  # files skipped as unreadable (if asked to)


class CorruptImageError(RuntimeError):
    """An image file could not be read."""


def relabel(labels) -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary labels to 0..C-1 in sorted order. Returns (new_labels (N,), original values (C,))."""
    values, inverse = np.unique(np.asarray(labels), return_inverse=True)
    return inverse.astype(np.int64), values


WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")   # PIL's 16/32-bit integer grey modes


LIGHT_INK = 127.5   # ink (the opaque pixels) brighter than this goes onto black, else onto white


def flatten_alpha(im: Image.Image) -> Image.Image:
    """An image with transparency (RGBA, LA, a palette with a transparent colour) composited onto
    a plain background, as an "RGB" image; any other image unchanged.

    PIL's ``convert("L")`` / ``convert("RGB")`` drops the alpha channel and keeps the colour that
    transparent pixels happen to hold, usually black: dark ink on a transparent background then
    reads as an all-black image. The background is white, or black when the ink itself is light
    (its alpha-weighted mean brightness above ``LIGHT_INK``), so the ink always stays visible:
    out = alpha * colour + (1 - alpha) * background.
    """
    if not (im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in im.info):
        return im
    a = np.asarray(im.convert("RGBA"), dtype=np.float64)
    alpha, colour = a[..., 3:] / 255.0, a[..., :3]
    if float(alpha.min()) >= 1.0:          # an alpha channel that hides nothing
        return Image.fromarray(colour.astype(np.uint8), "RGB")
    weight = float(alpha.sum())
    ink = float((colour.mean(axis=2, keepdims=True) * alpha).sum() / weight) if weight else 0.0
    background = 0.0 if ink > LIGHT_INK else 255.0
    out = alpha * colour + (1.0 - alpha) * background
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """``im.convert(mode)`` ("L" or "RGB"), with 16-bit grey images scaled by their true range
    (0..65535 -> 0..255; PIL's own conversion clips them, so they read as almost white) and
    transparent images composited onto a background first (``flatten_alpha``). Every decoder
    (the dataset, the uint8 cache, the pre-flight report) goes through here."""
    if im.mode in WIDE_MODES:
        a = np.asarray(im, dtype=np.float64) * (255.0 / 65535.0)
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    return flatten_alpha(im).convert(mode)


def invert_image(im: Image.Image) -> Image.Image:
    """255 - pixel (grey or RGB): dark ink on light becomes light ink on dark."""
    return Image.fromarray(255 - np.asarray(im, dtype=np.uint8), im.mode)


class InvertedCache:
    """A pre-resized ``ImageCache`` (data/cache.py) whose images come out inverted (255 - pixel);
    every other attribute is the cache's own."""

    def __init__(self, cache):
        self._cache = cache

    def __getattr__(self, name):
        if name.startswith("__") or name == "_cache":      # unpickling (DataLoader workers) asks before _cache is set
            raise AttributeError(name)
        return getattr(self._cache, name)

    def image(self, path: str) -> torch.Tensor:
        return 255 - self._cache.image(path)

    def batch(self, paths: list[str]) -> torch.Tensor:
        return 255 - self._cache.batch(paths)


class ImageListDataset(Dataset):
    """Images read from files with PIL, as RGB (``in_channels`` 3) or grey (1), inverted
    (255 - pixel) when ``invert``. ``transform`` maps a PIL image (or a uint8 tensor from the
    pre-resized ``cache``, see data/cache.py) to a tensor."""

    def __init__(self, split: Split, transform=None, in_channels: int = 3, skip_corrupt: bool = False,
                 invert: bool = False):
        self.paths = list(split.paths)
        labels = np.asarray(split.labels, dtype=np.int64)
        self.class_names = list(split.class_names)
        self.transform = transform
        self.in_channels = in_channels
        self.invert = invert
        self.skipped = list(split.skipped)
        self.cache = None                   # an ImageCache holding these files pre-resized, or None
        if skip_corrupt:
            keep = []
            for i, p in enumerate(self.paths):
                try:
                    with Image.open(p) as im:
                        im.verify()
                    keep.append(i)
                except Exception:
                    self.skipped.append(p)
            self.paths = [self.paths[i] for i in keep]
            labels = labels[keep]
        self.labels = labels

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.paths)

    def load_image(self, i: int) -> Image.Image:
        path = self.paths[i]
        try:
            with Image.open(path) as im:
                im = to_mode(im, "RGB" if self.in_channels == 3 else "L")
                return invert_image(im) if getattr(self, "invert", False) else im
        except Exception as exc:
            raise CorruptImageError(
                f"cannot read image {path!r} ({type(exc).__name__}: {exc}); remove the file or set "
                f"data.skip_corrupt=true to skip unreadable images") from exc

    def resized(self, i: int, resize: int) -> torch.Tensor:
        """Image ``i`` as uint8 (C, resize, resize): from the cache if it holds that size, else
        decoded and resized on uint8."""
        if self.cache is not None and self.cache.resize == resize:
            return self.cache.image(self.paths[i])
        return resize_image(self.load_image(i), resize)

    def __getitem__(self, i: int):
        if self.cache is not None and self.transform is not None:
            return self.transform(self.cache.image(self.paths[i])), int(self.labels[i])
        img = self.load_image(i)
        x = self.transform(img) if self.transform is not None else torch.from_numpy(np.array(img)).float()
        return x, int(self.labels[i])


class ArrayDataset(Dataset):
    """In-memory images: ``images`` uint8 (N, H, W) or (N, C, H, W). ``transform`` maps a float
    tensor (C, H, W) in [0, 1] to the network input."""

    def __init__(self, images: np.ndarray, labels, class_names: list[str], transform=None):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.transform = transform
        self.in_channels = images.shape[1]
        self.skipped: list[str] = []

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def resized(self, i: int, resize: int) -> torch.Tensor:
        """Image ``i`` as float (C, resize, resize) in [0, 1] (resized in float, as the transform does)."""
        return resize_image(self.images[i].float() / 255.0, resize)

    def __getitem__(self, i: int):
        x = self.images[i].float() / 255.0
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])


def subset(ds, indices) -> Dataset:
    """A view of ``ds`` restricted to ``indices``, relabelled to 0..C'-1 (keeps the container API)."""
    indices = np.asarray(indices, dtype=np.int64)
    new_labels, values = relabel(ds.labels[indices])
    if isinstance(ds, ArrayDataset):
        out = ArrayDataset.__new__(ArrayDataset)
        out.images = ds.images[torch.from_numpy(indices)]
        out.transform = ds.transform
        out.in_channels = ds.in_channels
        out.skipped = list(ds.skipped)
    else:
        out = ImageListDataset.__new__(ImageListDataset)
        out.paths = [ds.paths[i] for i in indices]
        out.transform = ds.transform
        out.in_channels = ds.in_channels
        out.skipped = list(ds.skipped)
        out.cache = getattr(ds, "cache", None)
        out.invert = getattr(ds, "invert", False)
    out.labels = new_labels
    out.class_names = [ds.class_names[v] for v in values]
    return out
