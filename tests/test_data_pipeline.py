"""The training data pipeline: DataLoader batches seeded by (seed, step), the uint8 resize,
the pre-resized cache, data.channels, and the pre-flight checks, on tiny image sets built
in the real CUB layout."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from hdml_lite.config import ConfigError, apply_overrides
from hdml_lite.data import CorruptImageError, input_channels, load_dataset, make_sampler, split_report
from hdml_lite.data.cache import IMAGES, MANIFEST, cache_folder
from hdml_lite.data.pipeline import TrainBatches, augment, fetch_batch, load_resized
from hdml_lite.data.transforms import IMAGENET_MEAN, IMAGENET_STD, augment_batch, build_transforms, resize_image
from hdml_lite.presets import get_preset

REPO = Path(__file__).resolve().parents[1]


def _photo(rng, w: int, h: int) -> Image.Image:
    """A smooth random colour image (JPEG-friendly, so resampling differences stay small)."""
    small = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    noise = rng.integers(-12, 13, size=(h, w, 3))
    return Image.fromarray(np.clip(np.asarray(big).astype(int) + noise, 0, 255).astype(np.uint8))


def make_cub(parent: Path, per_class=(3, 3, 3, 3), size=(40, 30), seed: int = 0) -> Path:
    """CUB_200_2011 layout: classes.txt, images.txt, image_class_labels.txt, images/<class>/<file>.jpg.
    ``per_class``: images of each class (classes 1..C//2 train, the rest test)."""
    rng = np.random.default_rng(seed)
    base = parent / "CUB_200_2011"
    classes, images, labels = [], [], []
    iid = 0
    for c, n in enumerate(per_class, 1):
        cname = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {cname}")
        (base / "images" / cname).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            iid += 1
            rel = f"{cname}/Bird_{c}_{j}.jpg"
            _photo(rng, *size).save(base / "images" / rel, quality=90)
            images.append(f"{iid} {rel}")
            labels.append(f"{iid} {c}")
    for name, lines in (("classes.txt", classes), ("images.txt", images), ("image_class_labels.txt", labels)):
        (base / name).write_text("\n".join(lines) + "\n")
    return base


def _cfg(root, *more):
    return apply_overrides(get_preset("lab_npair"), [
        "data.dataset=cub", f"data.root={root}", "data.resize=24", "data.image_size=20", "data.transforms=paper",
        "data.batch_classes=2", "data.max_classes=0", "data.max_per_class=0", *more])


# ----------------------------------------------------------------------------- transforms

def test_paper_transform_resizes_on_uint8_first(tmp_path):
    img = _photo(np.random.default_rng(1), 50, 37)
    x = build_transforms("paper", False, 24, 20, 3)(img)
    # oracle: PIL's uint8 resize, centre crop, then float and ImageNet normalisation
    a = np.asarray(img.resize((24, 24), Image.BILINEAR, reducing_gap=None)).astype(np.float32)[2:22, 2:22] / 255
    want = (a - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    assert x.shape == (3, 20, 20)
    assert np.allclose(x.permute(1, 2, 0).numpy(), want, atol=1e-5)
    r = resize_image(img, 24)
    assert r.dtype == torch.uint8 and r.shape == (3, 24, 24)
    # a pre-resized uint8 image (the cache) is not resized again: same result
    assert torch.allclose(build_transforms("paper", False, 24, 20, 3)(r), x, atol=1e-6)


def test_augment_batch_matches_per_image_crop_flip_normalise():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8, generator=g)
    top, left = torch.tensor([0, 1, 2, 3, 2]), torch.tensor([3, 0, 1, 2, 0])
    flips = torch.tensor([True, False, True, False, False])
    out = augment_batch(x, top, left, flips, 9, IMAGENET_MEAN, IMAGENET_STD, 3)
    for b in range(5):     # oracle: torchvision's functional ops on one image
        crop = F.crop(x[b], int(top[b]), int(left[b]), 9, 9)
        crop = F.horizontal_flip(crop) if flips[b] else crop
        want = F.normalize(crop.float() / 255, list(IMAGENET_MEAN), list(IMAGENET_STD))
        assert torch.allclose(out[b], want, atol=1e-5)
    gathered = augment_batch(x, top, left, flips, 9, IMAGENET_MEAN, IMAGENET_STD, 3, gather=True)
    assert torch.allclose(gathered, out, atol=1e-6)       # the accelerator form, same values
    grey = augment_batch(x[:, :1], top, left, flips, 9, IMAGENET_MEAN, IMAGENET_STD, 3)
    assert grey.shape == (5, 3, 9, 9)      # a grey image repeated into an ImageNet backbone
    assert torch.allclose(grey[0, 1], (out[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0] - IMAGENET_MEAN[1])
                          / IMAGENET_STD[1], atol=1e-5)


# ----------------------------------------------------------------------------- batches per (seed, step)

def _batches(ds, cfg, start, steps, workers):
    data = apply_overrides(cfg, [f"data.num_workers={workers}"]).data
    sampler = make_sampler("npair", ds.labels, 2, seed=3)
    tb = TrainBatches(ds, sampler, data, 3, seed=3, device="cpu", start=start, steps=steps)
    out = [tb.get(s) for s in range(start, steps)]
    tb.close()
    return out


def test_batches_depend_only_on_seed_and_step(tmp_path):
    make_cub(tmp_path)
    cfg = _cfg(tmp_path)
    ds = load_dataset(cfg.data, "train", in_channels=3)
    rng_before = torch.random.get_rng_state()
    in_process = _batches(ds, cfg, 0, 4, workers=0)
    assert torch.equal(torch.random.get_rng_state(), rng_before), "the data must not draw on torch's global RNG"
    workers = _batches(ds, cfg, 0, 4, workers=2)
    resumed = _batches(ds, cfg, 2, 4, workers=2)
    for (xa, ya), (xb, yb) in zip(in_process, workers):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(in_process[2:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert in_process[0][0].shape == (4, 3, 20, 20)
    # the same indices at two steps get different crops/flips
    idx = [0, 1, 2, 3]
    a, _ = fetch_batch(ds, idx, cfg.data, 3, seed=3, step=0)
    b, _ = fetch_batch(ds, idx, cfg.data, 3, seed=3, step=1)
    assert not torch.equal(a, b)


def test_file_path_and_cache_path_give_the_same_batch(tmp_path):
    base = make_cub(tmp_path, size=(50, 37))
    plain = _cfg(tmp_path)
    cached = _cfg(tmp_path, "data.cache=auto")
    ds_file = load_dataset(plain.data, "train", in_channels=3)
    ds_cache = load_dataset(cached.data, "train", in_channels=3)
    assert ds_file.cache is None and ds_cache.cache is not None and ds_file.paths == ds_cache.paths
    folder = cache_folder("auto", tmp_path, "cub", 24, 3)
    arr = np.load(folder / IMAGES, allow_pickle=False)          # plain uint8: nothing runs on load
    manifest = json.loads((folder / MANIFEST).read_text())
    assert arr.dtype == np.uint8 and arr.shape == (12, 3, 24, 24)
    assert [f[0] for f in manifest["files"]][:2] == ["CUB_200_2011/images/001.Bird_1/Bird_1_0.jpg",
                                                    "CUB_200_2011/images/001.Bird_1/Bird_1_1.jpg"]
    assert manifest["files"][0][1] == os.path.getsize(base / "images/001.Bird_1/Bird_1_0.jpg")
    idx = make_sampler("npair", ds_file.labels, 2, seed=0).batch(5)
    xa, ya = fetch_batch(ds_file, idx, plain.data, 3, seed=0, step=5)
    xb, yb = fetch_batch(ds_cache, idx, cached.data, 3, seed=0, step=5)
    assert torch.equal(ya, yb)
    # same decode and uint8 resize, so equal up to float rounding (resampling tolerance: 1/255 / std)
    assert (xa - xb).abs().max() < 1e-4
    # the eval transform reads the cache too, to the same values
    test_file = load_dataset(plain.data, "test", in_channels=3)
    test_cache = load_dataset(cached.data, "test", in_channels=3)
    assert torch.allclose(test_file[1][0], test_cache[1][0], atol=1e-4)


def test_cache_is_rebuilt_when_a_file_changes(tmp_path, capsys):
    base = make_cub(tmp_path)
    cfg = _cfg(tmp_path, "data.cache=auto")
    load_dataset(cfg.data, "train", in_channels=3)
    assert "building the image cache" in capsys.readouterr().out
    ds = load_dataset(cfg.data, "train", in_channels=3)
    assert "building" not in capsys.readouterr().out          # opened, not rebuilt
    before = load_resized(ds, [0], 24)
    target = base / "images/001.Bird_1/Bird_1_0.jpg"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(target)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    ds = load_dataset(cfg.data, "train", in_channels=3)
    out = capsys.readouterr().out
    assert "rebuilding" in out and "Bird_1_0.jpg changed" in out
    after = load_resized(ds, [0], 24)
    assert not torch.equal(before, after) and after[0, 0].float().mean() > 240 and after[0, 2].float().mean() < 15


# ----------------------------------------------------------------------------- data.channels

def test_channels_one_reads_grey_and_the_model_follows(tmp_path):
    make_cub(tmp_path)
    cfg = _cfg(tmp_path, "data.channels=1")
    assert input_channels("cub", "small_cnn", 1) == 1 and input_channels("cub", "small_cnn", 0) == 3
    assert input_channels("cub", "resnet18", 1) == 3 and input_channels("omniglot", "small_cnn") == 1
    ds = load_dataset(cfg.data, "test", in_channels=1)
    x, _ = ds[0]
    grey = np.asarray(Image.open(ds.paths[0]).convert("L").resize((24, 24), Image.BILINEAR, reducing_gap=None))
    assert x.shape == (1, 20, 20)
    assert np.allclose(x[0].numpy(), (grey[2:22, 2:22] / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], atol=1e-5)
    rgb_net = load_dataset(cfg.data, "test", in_channels=3)   # grey images into an ImageNet backbone
    assert rgb_net[0][0].shape == (3, 20, 20)
    with pytest.raises(ConfigError, match="data.channels=2"):
        apply_overrides(cfg, ["data.channels=2"])


def test_training_with_grey_channels_builds_a_one_channel_model(tmp_path, tiny_overrides):
    from hdml_lite.training.trainer import train

    make_cub(tmp_path / "data")
    cfg = apply_overrides(_cfg(tmp_path / "data"), [*tiny_overrides, "data.channels=1", "data.max_classes=0",
                                                     "data.max_per_class=0", "train.steps=2",
                                                     "data.batch_classes=2", "model.pretrained=false"])
    seen = []
    res = train(cfg, callback=lambda step, method, x, y, logs: seen.append(tuple(x.shape)))
    assert seen == [(4, 1, 20, 20)] * 2
    convs = [v for sd in res.method.state_dict()["modules"].values() for v in sd.values() if v.dim() == 4]
    assert convs and convs[0].shape[1] == 1          # the first convolution takes one channel


# ----------------------------------------------------------------------------- pre-flight checks

def _corrupt(path: Path) -> str:
    path.write_bytes(b"this is not a JPEG file")
    return str(path)


@pytest.mark.parametrize("split_dir", ["001.Bird_1", "004.Bird_4"])   # a train class, a test class
def test_corrupt_image_anywhere_is_one_clear_error_before_training(tmp_path, split_dir):
    base = make_cub(tmp_path)
    bad = _corrupt(base / "images" / split_dir / f"Bird_{split_dir[2]}_1.jpg")
    cfg = _cfg(tmp_path)
    with pytest.raises(CorruptImageError, match=f"cannot read image '{bad}'.*data.skip_corrupt=true"):
        load_dataset(cfg.data, "train", in_channels=3)     # the header check covers both splits


def test_corrupt_image_cli_exit_2_one_line(tmp_path):
    base = make_cub(tmp_path)
    bad = _corrupt(base / "images/004.Bird_4/Bird_4_0.jpg")
    cmd = [sys.executable, "-m", "hdml_lite", "train", "--preset", "lab_npair", "data.dataset=cub",
           f"data.root={tmp_path}", "data.resize=24", "data.image_size=20", "data.batch_classes=2",
           "data.max_classes=0", "data.max_per_class=0", "train.progress=false", "train.device=cpu",
           f"train.out_dir={tmp_path / 'run'}"]
    res = subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and bad in errors[0] and "data.skip_corrupt=true" in errors[0]


def test_skip_corrupt_reports_train_and_test(tmp_path):
    base = make_cub(tmp_path)
    bad_train = _corrupt(base / "images/002.Bird_2/Bird_2_2.jpg")
    bad_test = _corrupt(base / "images/003.Bird_3/Bird_3_0.jpg")
    cfg = _cfg(tmp_path, "data.skip_corrupt=true")
    train = load_dataset(cfg.data, "train", in_channels=3)
    test = load_dataset(cfg.data, "test", in_channels=3)
    assert train.skipped == [bad_train] and test.skipped == [bad_test]
    assert len(train) == 5 and len(test) == 5 and bad_train not in train.paths
    lines = split_report({"train": train, "test": test})
    assert any(ln.startswith("warning: train split: skipped 1") and bad_train in ln for ln in lines)
    assert any(ln.startswith("warning: test split: skipped 1") and bad_test in ln for ln in lines)


def test_single_image_classes_are_named_by_folder_in_both_splits(tmp_path):
    make_cub(tmp_path, per_class=(3, 1, 3, 3, 1, 3))
    cfg = _cfg(tmp_path)
    train = load_dataset(cfg.data, "train", in_channels=3)
    test = load_dataset(cfg.data, "test", in_channels=3)
    lines = split_report({"train": train, "test": test})
    assert len(lines) == 2
    assert lines[0].startswith("warning: train split: 1 class(es) with a single image") and "002.Bird_2" in lines[0]
    assert lines[1].startswith("warning: test split: 1 class(es) with a single image") and "005.Bird_5" in lines[1]
    assert not any("label" in ln for ln in lines)
    with pytest.warns(UserWarning, match="excluded from positive sampling: 002.Bird_2"):
        make_sampler("npair", train.labels, 2, class_names=train.class_names)


def _truncate(path: Path) -> str:
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 40])   # cut after the start of scan: header reads, pixels not
    return str(path)


def test_truncated_image_found_while_training_is_one_clear_error(tmp_path):
    base = make_cub(tmp_path)
    bad = _truncate(base / "images/001.Bird_1/Bird_1_0.jpg")
    cfg = _cfg(tmp_path, "data.num_workers=1")
    ds = load_dataset(cfg.data, "train", in_channels=3)       # passes the header check
    sampler = make_sampler("npair", ds.labels, 2, seed=0)
    step = next(s for s in range(50) if 0 in sampler.batch(s))
    tb = TrainBatches(ds, sampler, cfg.data, 3, seed=0, device="cpu", start=step, steps=step + 1)
    with pytest.raises(CorruptImageError) as info:            # raised in the main process, not a worker dump
        tb.get(step)
    msg = str(info.value)
    assert "\n" not in msg and bad in msg and "data.skip_corrupt=true" in msg


def test_truncated_image_skipped_when_building_the_cache(tmp_path):
    base = make_cub(tmp_path)
    bad = _truncate(base / "images/003.Bird_3/Bird_3_1.jpg")
    with pytest.raises(CorruptImageError, match="Bird_3_1.jpg"):
        load_dataset(_cfg(tmp_path, "data.cache=auto").data, "train", in_channels=3)
    cfg = _cfg(tmp_path, "data.cache=auto", "data.skip_corrupt=true")
    test = load_dataset(cfg.data, "test", in_channels=3)
    assert test.skipped == [bad] and bad not in test.paths and len(test) == 5
    again = load_dataset(cfg.data, "test", in_channels=3)   # reopened from the manifest, same answer
    assert again.skipped == [bad]


def test_training_is_the_same_with_dataloader_workers(tmp_path, tiny_overrides):
    from hdml_lite.training.trainer import train

    base = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.steps=3", "train.eval_every=0", "model.pretrained=false"])
    runs = []
    for workers in (0, 2):
        cfg = apply_overrides(base, [f"data.num_workers={workers}", f"train.out_dir={tmp_path / str(workers)}"])
        runs.append(train(cfg, resume=False).method.state_dict()["modules"])
    for name, sd in runs[0].items():
        for k, v in sd.items():
            assert torch.equal(v, runs[1][name][k]), f"{name}.{k} differs with 2 workers"


def test_folder_dataset_read_as_grey(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("class_a", "class_b", "class_c", "class_d"):     # e.g. scans: RGB files, grey content wanted
        (tmp_path / "scans" / c).mkdir(parents=True)
        for j in range(3):
            _photo(rng, 30, 30).save(tmp_path / "scans" / c / f"{j}.png")
    cfg = apply_overrides(get_preset("lab_npair"), [
        "data.dataset=folder", f"data.root={tmp_path / 'scans'}", "data.channels=1", "data.transforms=small",
        "data.resize=28", "data.image_size=24", "data.max_classes=0", "data.max_per_class=0"])
    ds = load_dataset(cfg.data, "train", in_channels=input_channels("folder", "small_cnn", 1))
    assert ds.in_channels == 1 and ds[0][0].shape == (1, 24, 24)
    x, y = fetch_batch(ds, [0, 3], cfg.data, 1, seed=0, step=0)
    assert x.shape == (2, 1, 24, 24) and y.tolist() == [0, 1]
    want = np.array(Image.open(ds.paths[0]).convert("L").resize((28, 28), Image.BILINEAR, reducing_gap=None))
    assert torch.allclose(load_resized(ds, [0], 28)[0, 0], torch.from_numpy(want))


def test_trainer_reports_single_image_classes_of_both_splits_once(tmp_path, tiny_overrides, capsys, recwarn):
    from hdml_lite.training.trainer import train

    make_cub(tmp_path / "data", per_class=(3, 1, 3, 3, 1, 3))
    cfg = apply_overrides(_cfg(tmp_path / "data"), [*tiny_overrides, "data.max_classes=0", "data.max_per_class=0",
                                                     "train.steps=1", "data.batch_classes=2",
                                                     "model.pretrained=false"])
    train(cfg)
    out = capsys.readouterr().out
    assert "warning: train split: 1 class(es) with a single image" in out and "002.Bird_2" in out
    assert "warning: test split: 1 class(es) with a single image" in out and "005.Bird_5" in out
    assert not [w for w in recwarn if "positive sampling" in str(w.message)]   # no second, file:line warning


def test_unwritable_cache_folder_is_one_clear_error(tmp_path):
    make_cub(tmp_path)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should go")
    from hdml_lite.data.cache import CacheError

    with pytest.raises(CacheError, match=r"data.cache: cannot write the image cache in .*not_a_folder.*data.cache="):
        load_dataset(_cfg(tmp_path, f"data.cache={blocker}").data, "train", in_channels=3)


def test_a_cache_of_an_older_version_is_rebuilt():
    """Caches built before 16-bit images were scaled by their true range (version 1) hold clipped
    images: the version in the manifest makes them stale."""
    from hdml_lite.data.cache import VERSION, _why_stale

    want = {"version": VERSION, "resize": 8, "channels": 1, "files": []}
    old = {"version": 1, "resize": 8, "channels": 1, "files": []}
    assert VERSION >= 2 and _why_stale(old, want, Path(".")) == f"version 1 != {VERSION}"
