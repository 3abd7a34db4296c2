"""How many training images per second can the data pipeline deliver?

    OMP_NUM_THREADS=1 python bench/data_pipeline.py            # ~1 minute on 2 cores (train.threads auto: 1)
    python bench/data_pipeline.py --images 800 --batches 20    # more images, longer runs

Builds synthetic CUB-sized JPEGs (500x375, smooth colour noise, ~quality 90) in the
real CUB layout (classes.txt, images.txt, image_class_labels.txt,
images/<class>/<file>.jpg) in a temporary folder, then times training batches of
``--batch`` images (m-per-class sampler, 8 images per class), paper transform
(resize 256, random 227 crop, flip, ImageNet normalisation), on the CPU:

- current: in-process, one image at a time, the transform as it was before the
  pipeline (PIL -> float -> resize in float -> crop -> flip -> normalise), as
  ``trainer._fetch`` did;
- file_uint8: in-process, the new path (uint8 resize per image, then one batched
  crop/flip/normalise);
- workers: the same through the DataLoader with ``--workers`` worker processes
  (prefetching while the main process consumes the batches);
- cache: from the pre-resized uint8 cache (built once, timed separately), crop,
  flip and normalise as batched tensor ops, in-process.

Each figure is images / wall-clock second over ``--batches`` batches after one
warm-up batch (worker start-up excluded). The machine may be shared: wall times
include other jobs' load, so the in-process paths also report images per CPU-second
of the process (``*_cpu``: the rate one dedicated core would give), and the JSON
has the 1-minute load average. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchenv import bench_env, load_avg  # noqa: E402

from hdml_lite.config import Config, apply_overrides  # noqa: E402
from hdml_lite.data import load_dataset, make_sampler  # noqa: E402
from hdml_lite.data.pipeline import TrainBatches  # noqa: E402
from hdml_lite.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

PER_CLASS = 8


def make_cub_jpegs(root: Path, n_images: int, size=(500, 375), seed: int = 0) -> Path:
    """``n_images`` JPEGs in the CUB_200_2011 layout, PER_CLASS per class (half the classes train)."""
    rng = np.random.default_rng(seed)
    base = root / "CUB_200_2011"
    n_classes = max(2, n_images // PER_CLASS)
    classes, images, labels = [], [], []
    w, h = size
    for c in range(1, n_classes + 1):
        cname = f"{c:03d}.Synthetic_{c}"
        classes.append(f"{c} {cname}")
        (base / "images" / cname).mkdir(parents=True, exist_ok=True)
        for j in range(PER_CLASS):
            coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
            img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC)).astype(np.int16)
            img = np.clip(img + rng.integers(-20, 21, size=img.shape), 0, 255).astype(np.uint8)
            rel = f"{cname}/Synthetic_{c}_{j:04d}.jpg"
            Image.fromarray(img).save(base / "images" / rel, quality=90)
            iid = len(images) + 1
            images.append(f"{iid} {rel}")
            labels.append(f"{iid} {c}")
    for name, lines in (("classes.txt", classes), ("images.txt", images), ("image_class_labels.txt", labels)):
        (base / name).write_text("\n".join(lines) + "\n")
    return base


def old_transform(resize: int, size: int):
    """The paper transform before the pipeline: float conversion first, then resize."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Resize((resize, resize), antialias=True),
                       v2.RandomCrop(size), v2.RandomHorizontalFlip(), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


CPU = {}   # path -> images per CPU-second of the main process (in-process paths: one dedicated core)


def rate(fn, n_batches: int, batch: int, name: str = "") -> float:
    fn(-1)                                   # warm-up (and worker start-up)
    t, c = time.perf_counter(), time.process_time()
    for b in range(n_batches):
        fn(b)
    if name:
        CPU[name] = n_batches * batch / (time.process_time() - c)
    return n_batches * batch / (time.perf_counter() - t)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=320, help="synthetic JPEGs (half of them train)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batches", type=int, default=8, help="timed batches per path (the current path: a third)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--resize", type=int, default=256)
    p.add_argument("--crop", type=int, default=227)
    p.add_argument("--threads", type=int, default=0, help="train.threads (0: auto, one thread on a CPU)")
    args = p.parse_args(argv)
    env = bench_env(args.threads, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_cub_jpegs(root, args.images)
        print(f"{args.images} JPEGs 500x375 in the CUB layout: {time.perf_counter() - t:.1f} s")
        over = ["data.dataset=cub", f"data.root={root}", f"data.resize={args.resize}", f"data.image_size={args.crop}",
                "data.transforms=paper", "data.sampler=m_per_class", f"data.images_per_class={PER_CLASS}",
                f"data.batch_classes={args.batch // PER_CLASS}", "data.max_classes=0", "data.max_per_class=0"]
        cfg = apply_overrides(Config(), over)
        ds = load_dataset(cfg.data, "train", in_channels=3)
        sampler = make_sampler("m_per_class", ds.labels, args.batch // PER_CLASS, PER_CLASS, seed=0)
        out = {}

        tf = old_transform(args.resize, args.crop)

        def current(b):
            xs = []
            for i in sampler.batch(b + 1):
                with Image.open(ds.paths[i]) as im:
                    xs.append(tf(im.convert("RGB")))
            return torch.stack(xs)

        n_cur = max(1, args.batches // 3)
        out["img_s_current"] = rate(current, n_cur, args.batch, "img_s_current_cpu")
        print(f"current   (in-process, per image, float resize): {out['img_s_current']:7.0f} images/s")

        def through(workers, data_cfg, dataset, n, name=""):
            d = apply_overrides(Config(), over + [f"data.num_workers={workers}"]).data if data_cfg is None else data_cfg
            tb = TrainBatches(dataset, sampler, d, 3, seed=0, device="cpu", start=0, steps=n + 1)
            r = rate(lambda b: tb.get(b + 1), n, args.batch, name)
            tb.close()
            return r

        out["img_s_file_uint8"] = through(0, None, ds, n_cur, "img_s_file_uint8_cpu")
        print(f"file      (in-process, uint8 resize, batched crop): {out['img_s_file_uint8']:7.0f} images/s")
        out["img_s_workers"] = through(args.workers, None, ds, args.batches)
        print(f"workers   ({args.workers} DataLoader workers): {out['img_s_workers']:7.0f} images/s")

        cached = apply_overrides(cfg, ["data.cache=auto", f"data.num_workers={args.workers}"])
        t = time.perf_counter()
        ds_c = load_dataset(cached.data, "train", in_channels=3)
        out["cache_build_s"] = time.perf_counter() - t
        print(f"cache built ({args.images} images, {args.workers} workers): {out['cache_build_s']:.1f} s")
        out["img_s_cache"] = through(0, apply_overrides(cached, ["data.num_workers=0"]).data, ds_c, args.batches,
                                     "img_s_cache_cpu")
        print(f"cache     (in-process, batched crop/flip/normalise): {out['img_s_cache']:7.0f} images/s")
        out["img_s_cache_workers"] = through(args.workers, cached.data, ds_c, args.batches)
        print(f"cache     ({args.workers} workers reading the cache): {out['img_s_cache_workers']:7.0f} images/s")
    out = {k: round(v, 1) for k, v in {**out, **CPU}.items()}
    out.update(env, batch=args.batch, crop=args.crop, images=args.images, load_avg_end=load_avg())
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
