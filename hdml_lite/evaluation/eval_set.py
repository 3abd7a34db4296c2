"""Evaluation sets transformed once: the deterministic test transform applied to every image
once per process, kept as one tensor, reused by every later evaluation of the same images.

    data = eval_tensors(test_set)     # EvalTensors: x (N, C, S, S) float32, labels (N,) int64
    x, label = data[0]                # the same item as test_set[0], bit for bit

``compute_embeddings`` (hence ``evaluate``, the trainer, the CLI, the notebooks, the study)
looks every evaluation set up here first: a lab run evaluates its test set 4 to 6 times, and
without the cache each evaluation decoded and transformed all its images again, one at a time
in the main process.

- Key: a fingerprint of the images (the array bytes of an in-memory dataset; path, size and
  mtime of every file of a file dataset, plus its pre-resized cache folder), the labels, the
  transform's description and the bytes of the first transformed item (which catches what
  a description does not show, e.g. a grey image repeated to 3 channels). Same images, same
  transform: the same tensor, whichever object holds them; anything changed: a new entry.
- Only deterministic transforms are cached (none of their steps is a ``Random*`` one): a
  training transform stays random, evaluated through the DataLoader as before.
- Memory: a set is cached when its float tensor fits in ``MAX_BYTES`` (the lab's glyph test
  set: 35 MB); the least recently used entries go first when the total would pass it. A
  larger set (CUB's test set at 227 pixels: 3.7 GB) is streamed by ``compute_embeddings``
  with DataLoader workers and pinned memory instead, or read from ``data.cache``.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

MAX_BYTES = 1 << 30          # total size of the cached evaluation tensors in one process
_CACHE: "OrderedDict[str, EvalTensors]" = OrderedDict()


class EvalTensors(Dataset):
    """A transformed evaluation set in memory: ``x`` (N, C, S, S) float32 (CPU), ``labels`` (N,)
    int64, and the container attributes the trainer's checks read (class_names, skipped,
    num_classes, in_channels). ``ds[i]`` -> (x[i], label) like the dataset it came from."""

    def __init__(self, x: torch.Tensor, labels, like=None):
        self.x = x
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(getattr(like, "class_names", np.unique(self.labels).tolist()))
        self.skipped = list(getattr(like, "skipped", []))
        self.in_channels = getattr(like, "in_channels", x.shape[1])
        self._labels_t = torch.from_numpy(self.labels)
        self._pinned = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.x[i], int(self.labels[i])

    def batches(self, batch_size: int, pin: bool = False):
        """(x (b, C, S, S), labels (b,)) slices in order; ``pin``: from a pinned copy (made once),
        so that a non_blocking copy to the GPU overlaps the previous batch's forward pass."""
        x = self.x
        if pin:
            if self._pinned is None:
                self._pinned = self.x.pin_memory()
            x = self._pinned
        for i in range(0, len(self), batch_size):
            yield x[i:i + batch_size], self._labels_t[i:i + batch_size]


def _is_deterministic(transform) -> bool:
    steps = getattr(transform, "transforms", [transform])
    return not any(type(t).__name__.startswith("Random") for t in steps if t is not None)


def _update_with_files(h, ds) -> None:
    for p in ds.paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    cache = getattr(ds, "cache", None)
    if cache is not None:
        h.update(f"cache {cache.folder} {cache.resize} {cache.channels}".encode())


def fingerprint(ds, first: torch.Tensor) -> str | None:
    """Content key of ``ds`` (see the module docstring), or None for a dataset type it cannot read
    (then nothing is cached). ``first``: ``ds[0]``'s transformed image."""
    from ..data.base import ArrayDataset, ImageListDataset

    h = hashlib.blake2b(digest_size=20)
    h.update(type(ds).__name__.encode())
    if isinstance(ds, ArrayDataset):
        h.update(str((tuple(ds.images.shape), str(ds.images.dtype))).encode())
        h.update(ds.images.contiguous().numpy())                # buffer protocol: no copy
    elif isinstance(ds, ImageListDataset):
        h.update(str(ds.in_channels).encode())
        _update_with_files(h, ds)
    else:
        return None
    h.update(np.asarray(ds.labels, dtype=np.int64).tobytes())
    h.update(repr(ds.transform).encode())
    h.update(str((tuple(first.shape), str(first.dtype))).encode())
    h.update(first.contiguous().numpy())
    return h.hexdigest()


def materialise(ds, workers: int = 0, batch_size: int = 256) -> EvalTensors:
    """Every item of ``ds`` transformed once (in order, by its own ``__getitem__``) -> EvalTensors.
    ``workers``: DataLoader processes that transform the images."""
    if isinstance(ds, EvalTensors):
        return ds
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(torch.as_tensor(y).reshape(-1))
    if not xs:
        raise ValueError("empty dataset")
    return EvalTensors(torch.cat(xs), torch.cat(ys).numpy(), like=ds)


def eval_tensors(ds, workers: int = 0) -> EvalTensors | None:
    """The cached EvalTensors of ``ds`` (built on first use), or None when ``ds`` is not cached:
    a random transform, a dataset type without a fingerprint, or larger than ``MAX_BYTES``."""
    if isinstance(ds, EvalTensors):
        return ds
    transform = getattr(ds, "transform", None)
    if transform is None or not _is_deterministic(transform) or len(ds) == 0:
        return None
    first = ds[0][0]
    if not isinstance(first, torch.Tensor) or first.dtype != torch.float32:
        return None
    size = len(ds) * first.numel() * first.element_size()
    if size > MAX_BYTES:
        return None
    key = fingerprint(ds, first)
    if key is None:
        return None
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    data = materialise(ds, workers=workers)
    while _CACHE and sum(v.x.numel() * v.x.element_size() for v in _CACHE.values()) + size > MAX_BYTES:
        _CACHE.popitem(last=False)
    _CACHE[key] = data
    return data


def clear_cache() -> None:
    """Forget every cached evaluation set (frees their memory)."""
    _CACHE.clear()
