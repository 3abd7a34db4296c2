"""Synthetic data in CUB-200-2011's real file layout: for smoke runs without the real archive.

    make_synthetic_cub(root, n_classes, per_class, size)  -> root/CUB_200_2011/   (images.txt, ...)
    make_tiny_cub_archive(folder)                          -> folder/CUB_200_2011.tgz
    tiny_cub_source(folder)                                -> DatasetInfo          (download_dataset(info=...))

The layout is the one ``hdml_lite.data.real.read_cub`` reads: ``images.txt`` ("<id> <relpath>"),
``image_class_labels.txt`` ("<id> <class>"), ``classes.txt`` and ``images/<class>/<file>.jpg``,
1-based; classes 1..n/2 train, the rest test. Each class is a smooth random colour pattern,
jittered and noised per image, so that a model can learn something in a few steps.
bench/gpu_check.py writes a full-size one (200 classes of 500 x 375 JPEGs) to time the GPU path;
notebook 06's smoke mode downloads a tiny archive through the same code as the real one.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from .download import DatasetInfo, RemoteFile, md5sum


def _class_image(rng: np.random.Generator, base: np.ndarray, size: tuple[int, int]):
    """One JPEG-able PIL image (width, height): a class's smooth pattern (6, 8, 3), jittered, plus noise."""
    from PIL import Image

    w, h = size
    low = np.clip(base + 0.25 * rng.standard_normal(base.shape), 0, 1)  # (6, 8, 3) in [0, 1]
    img = Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-20, 21, (h, w, 3), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _write_class(args) -> list[str]:
    folder, cls, n, size, seed = args
    rng = np.random.default_rng([seed, cls])
    base = rng.random((6, 8, 3))
    name = f"{cls:03d}.Synthetic_{cls:03d}"
    (folder / "images" / name).mkdir(parents=True, exist_ok=True)
    rels = []
    for i in range(n):
        rel = f"{name}/Synthetic_{cls:03d}_{i:04d}.jpg"
        _class_image(rng, base, size).save(folder / "images" / rel, quality=90)
        rels.append(rel)
    return rels


def make_synthetic_cub(root, n_classes: int = 200, per_class: int = 24, size=(500, 375),
                       seed: int = 0, workers: int = 1) -> Path:
    """Write a synthetic CUB-200-2011 under ``root/CUB_200_2011`` (the real file layout); returns it.
    size: (width, height) of every JPEG; workers > 1 writes the classes in a process pool."""
    folder = Path(root) / "CUB_200_2011"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder, c, per_class, tuple(size), seed) for c in range(1, n_classes + 1)]
    if workers > 1:
        from multiprocessing import Pool
        with Pool(workers) as pool:
            per_cls = pool.map(_write_class, jobs)
    else:
        per_cls = [_write_class(j) for j in jobs]
    images, labels, iid = [], [], 1
    for cls, rels in enumerate(per_cls, start=1):
        for rel in rels:
            images.append(f"{iid} {rel}")
            labels.append(f"{iid} {cls}")
            iid += 1
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "classes.txt").write_text("".join(f"{c} {c:03d}.Synthetic_{c:03d}\n" for c in range(1, n_classes + 1)))
    (folder / "train_test_split.txt").write_text("".join(f"{i} {i % 2}\n" for i in range(1, iid)))  # unused
    return folder


def make_tiny_cub_archive(folder, n_classes: int = 8, per_class: int = 6, size=(64, 48), seed: int = 0) -> Path:
    """``folder/CUB_200_2011.tgz``: a tiny synthetic CUB (top folder ``CUB_200_2011/``, as the real
    archive). Written once; an existing archive is kept (its md5 is what ``tiny_cub_source`` reports)."""
    folder = Path(folder)
    archive = folder / "CUB_200_2011.tgz"
    if archive.is_file():
        return archive
    src = make_synthetic_cub(folder / "src", n_classes, per_class, size, seed=seed)
    part = archive.with_name(archive.name + ".part")
    with tarfile.open(part, "w:gz") as tf:
        tf.add(src, arcname="CUB_200_2011")
    part.replace(archive)
    return archive


def tiny_cub_source(folder, **kw) -> DatasetInfo:
    """A registry entry like CUB's whose one file is a tiny local archive (a ``file://`` URL and its
    md5): ``download_dataset("cub", root, info=tiny_cub_source(folder))`` then runs the real
    download, md5 check and safe extraction on it. ``kw``: ``make_tiny_cub_archive``'s sizes."""
    archive = make_tiny_cub_archive(folder, **kw)
    return DatasetInfo("cub", "CUB-200-2011 (tiny synthetic stand-in)",
                       (RemoteFile("CUB_200_2011.tgz", md5sum(archive), archive.resolve().as_uri(),
                                   size=archive.stat().st_size),))
