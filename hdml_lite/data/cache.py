"""A one-time pre-resized copy of a dataset: every image as uint8 (C, R, R) in one .npy file.

    data.cache=auto          # <dataset root>/hdml_cache/<dataset>_r<resize>_c<channels>/
    data.cache=/fast/disk    # /fast/disk/<dataset>_r<resize>_c<channels>/

The folder holds ``images.npy`` (N, C, R, R) uint8, opened memory-mapped with
``np.load(allow_pickle=False)`` (nothing loaded runs code), and ``manifest.json``: the
resize, the channels and the source files (path relative to the dataset root, size,
mtime), one per row. When the cache is opened, the manifest is checked against the
current file list; if anything differs (a file added, removed, replaced) the cache is
rebuilt, with a line saying why. Decoding and resizing are those of the file path
(``transforms.resize_image``), so both give the same images.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .base import CorruptImageError, to_mode
from .transforms import resize_image

VERSION = 3          # 2: 16-bit images scaled by their true range (a cache built before holds clipped images);
                     # 3: transparent images composited onto a background (before: often all black)
IMAGES, MANIFEST = "images.npy", "manifest.json"


class CacheError(RuntimeError):
    """The cache folder cannot be written (the message says which, and what to set instead)."""


def cache_folder(setting: str, dataset_root, name: str, resize: int, channels: int) -> Path:
    """``data.cache`` ("auto" or a folder) -> this dataset's cache folder."""
    base = Path(dataset_root) / "hdml_cache" if setting == "auto" else Path(setting).expanduser()
    return base / f"{name}_r{resize}_c{channels}"


def file_list(paths: list[str], base) -> list[list]:
    """[[path relative to ``base``, size in bytes, mtime in ns], ...] for the manifest."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([os.path.relpath(p, base).replace(os.sep, "/"), st.st_size, st.st_mtime_ns])
    return out


class ImageCache:
    """Rows of ``images.npy`` by source path; the memory map is opened lazily in each process."""

    def __init__(self, folder, paths: list[str], resize: int, channels: int, unreadable=()):
        self.folder, self.resize, self.channels = Path(folder), resize, channels
        self.row = {p: i for i, p in enumerate(paths)}
        self.unreadable = list(unreadable)   # absolute paths that failed to decode (rows left at 0)
        self._array = None

    def __getstate__(self):                  # DataLoader workers (spawn): send the path, not the data
        return {**self.__dict__, "_array": None}

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.folder / IMAGES, mmap_mode="r", allow_pickle=False)
        return self._array

    def image(self, path: str) -> torch.Tensor:
        """uint8 (C, R, R) of one source file."""
        return torch.from_numpy(np.array(self.array[self.row[path]]))

    def batch(self, paths: list[str]) -> torch.Tensor:
        """uint8 (B, C, R, R), rows read in file order (sequential reads), returned in ``paths`` order."""
        rows = np.array([self.row[p] for p in paths], dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows),) + self.array.shape[1:], dtype=np.uint8)
        out[order] = self.array[rows[order]]
        return torch.from_numpy(out)


class _Decode(Dataset):
    def __init__(self, paths, resize, channels):
        self.paths, self.resize, self.mode = paths, resize, ("RGB" if channels == 3 else "L")

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            with Image.open(self.paths[i]) as im:
                return i, resize_image(to_mode(im, self.mode), self.resize), ""
        except Exception as exc:
            return i, torch.zeros(0, dtype=torch.uint8), f"{type(exc).__name__}: {exc}"


def _read_manifest(folder: Path) -> dict | None:
    try:
        with open(folder / MANIFEST, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _why_stale(manifest: dict | None, want: dict, folder: Path) -> str:
    if manifest is None:
        return "" if not folder.exists() else f"no readable {MANIFEST} in {folder}"
    for key in ("version", "resize", "channels"):
        if manifest.get(key) != want[key]:
            return f"{key} {manifest.get(key)} != {want[key]}"
    have = {f[0]: f for f in manifest.get("files", [])}
    now = {f[0]: f for f in want["files"]}
    for rel, f in now.items():
        if rel not in have:
            return f"new file {rel}"
        if have[rel] != f:
            return f"{rel} changed (size or mtime)"
    for rel in have:
        if rel not in now:
            return f"{rel} is gone"
    if [f[0] for f in manifest["files"]] != [f[0] for f in want["files"]]:
        return "file order changed"
    if not (folder / IMAGES).is_file():
        return f"{IMAGES} missing"
    return "ok"


def open_cache(folder, paths: list[str], base, resize: int, channels: int, skip_corrupt: bool = False,
               workers: int = 0) -> ImageCache:
    """Open the cache of ``paths`` in ``folder``, building (or rebuilding) it when its manifest does
    not list exactly these files at this resize and channel count.

    An image that cannot be decoded raises ``CorruptImageError`` naming it, or with
    ``skip_corrupt`` is listed in ``ImageCache.unreadable`` (for the caller to skip).
    """
    folder = Path(folder)
    want = {"version": VERSION, "resize": resize, "channels": channels, "files": file_list(paths, base)}
    manifest = _read_manifest(folder)
    why = _why_stale(manifest, want, folder)
    if why == "ok":
        unreadable = [os.path.join(base, rel) for rel in manifest.get("unreadable", [])]
        if unreadable and not skip_corrupt:
            raise CorruptImageError(f"cannot read image {unreadable[0]!r} (recorded in {folder / MANIFEST}); "
                                    f"remove the file or set data.skip_corrupt=true to skip unreadable images")
        return ImageCache(folder, paths, resize, channels, unreadable)
    print(f"building the image cache {folder} ({len(paths)} images at {resize}x{resize}"
          + (f"; rebuilding: {why}" if why else "") + ")")
    tmp = folder / f"images.{os.getpid()}.tmp.npy"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)        # a half-built cache never looks valid
        need, free = len(paths) * channels * resize * resize, shutil.disk_usage(folder).free
        if need > free:                      # a memory-mapped write into a full disk would crash
            raise CacheError(f"data.cache: the image cache needs {need / 2**30:.2f} GiB but {folder} has "
                             f"{free / 2**30:.2f} GiB free; set data.cache=/a/folder/with/space, or data.cache= "
                             f"to read the image files directly")
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(paths), channels, resize, resize))
    except OSError as exc:
        raise CacheError(f"data.cache: cannot write the image cache in {folder} ({type(exc).__name__}: {exc}); "
                         f"expected a writable folder: set data.cache=/a/writable/folder, or data.cache= "
                         f"to read the image files directly") from None
    bad = []
    loader = DataLoader(_Decode(paths, resize, channels), batch_size=None, num_workers=workers)
    for i, x, err in tqdm(loader, total=len(paths), desc="image cache", disable=None):
        if err:
            if not skip_corrupt:
                del arr
                tmp.unlink(missing_ok=True)
                raise CorruptImageError(f"cannot read image {paths[i]!r} ({err}); remove the file or set "
                                        f"data.skip_corrupt=true to skip unreadable images")
            bad.append(i)
            continue
        arr[i] = x.numpy()
    arr.flush()
    del arr
    os.replace(tmp, folder / IMAGES)
    want["unreadable"] = [want["files"][i][0] for i in bad]
    part = folder / f"{MANIFEST}.{os.getpid()}.tmp"
    part.write_text(json.dumps(want))
    os.replace(part, folder / MANIFEST)
    return ImageCache(folder, paths, resize, channels, [paths[i] for i in bad])
