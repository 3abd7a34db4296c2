"""Issue 23, round three of the new-user trial: weights files that do not fit, RGBA images on a
transparent background, resume on other data of the same sizes, a split file in another encoding,
and advice that fits the case. Each test reproduces the trial's case and fails without the fix."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdml_lite.cli import main
from hdml_lite.config import apply_overrides
from hdml_lite.presets import get_preset

from conftest import TINY


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("error: "), err
    return err


# ----------------------------------------------------------------------------- 2. weights that do not fit

def _resnet18_state() -> dict:
    import torchvision.models as tvm

    torch.manual_seed(0)
    return tvm.resnet18(weights=None).state_dict()


def test_empty_weights_file_fails_with_one_line_naming_the_keys(tmp_path, capsys):
    """The trial's case: torch.save({}, 'e.pth'), then train with model.weights_path=e.pth."""
    empty = tmp_path / "e.pth"
    torch.save({}, empty)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, "model.backbone=resnet18", "model.pretrained=true",
                 f"model.weights_path={empty}", f"train.out_dir={out}"]) == 2
    err = _one_error_line(capsys)
    for needle in (str(empty), "does not fit torchvision's resnet18", "missing keys (conv1.weight, bn1.weight",
                   "0 unexpected keys", "model.pretrained=false"):
        assert needle in err, (needle, err)
    assert not (out / "metrics.json").exists()


def test_wrong_weights_file_names_missing_and_unexpected_keys(tmp_path):
    from hdml_lite.models import build_backbone
    from hdml_lite.models.lab_weights import PretrainedWeightsError

    state = _resnet18_state()
    state = {("head." + k if k.startswith("layer4.") else k): v for k, v in state.items()}   # a different model
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(PretrainedWeightsError) as err:
        build_backbone("resnet18", pretrained=True, weights_path=str(path))
    msg = str(err.value)
    n4 = sum(1 for k in state if k.startswith("head.layer4."))
    n4_strict = sum(1 for k in state if k.startswith("head.layer4.") and not k.endswith("num_batches_tracked"))
    assert "\n" not in msg and str(path) in msg
    assert f"{n4_strict} missing keys (layer4.0.conv1.weight, " in msg, msg
    assert f"{n4} unexpected keys (head.layer4.0.conv1.weight, " in msg, msg


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module.", "DataParallel", "no fc"])
def test_wrapped_weights_files_load_every_tensor(tmp_path, wrap):
    from hdml_lite.models import build_backbone
    from hdml_lite.models.backbones import weights_record

    state = _resnet18_state()
    if wrap in ("state_dict", "model"):
        saved = {wrap: state, "epoch": 90}
    elif wrap == "module.":
        saved = {"module." + k: v for k, v in state.items()}
    elif wrap == "DataParallel":
        import torchvision.models as tvm

        net = tvm.resnet18(weights=None)
        net.load_state_dict(state)
        saved = {"state_dict": torch.nn.DataParallel(net).state_dict()}
    else:   # a headless trunk: the ImageNet classifier, which the kit drops anyway, is absent
        saved = {k: v for k, v in state.items() if not k.startswith("fc.")}
    path = tmp_path / "w.pth"
    torch.save(saved, path)
    bb = build_backbone("resnet18", pretrained=True, weights_path=str(path))
    want = len(state) - (2 if wrap == "no fc" else 0)
    assert weights_record(bb)["tensors_loaded"] == want
    got = bb.net.state_dict()
    for k in ("conv1.weight", "layer4.1.bn2.running_var", "layer3.0.downsample.0.weight"):
        assert torch.equal(got[k], state[k]), k


def test_lab_weights_record_the_tensors_loaded(tmp_path, tiny_overrides):
    from hdml_lite.models.lab_weights import lab_weights_path
    from hdml_lite.training.trainer import train

    state = torch.load(lab_weights_path(16), map_location="cpu", weights_only=True)
    path = tmp_path / "lab.pth"
    torch.save({"model": {"module." + k: v for k, v in state.items()}}, path)
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + [
        "model.width=16", "model.pretrained=true", f"model.weights_path={path}", "train.steps=1",
        "train.eval_every=0"])
    res = train(cfg)
    rec = json.loads((res.out_dir / "metrics.json").read_text())["weights"]
    assert rec["pretrained"] is True and rec["tensors_loaded"] == len(state)


# ----------------------------------------------------------------------------- 3. RGBA ink on transparency

def _transparent_glyphs(root: Path, n_classes: int = 4, per_class: int = 3, size: int = 24,
                        ink=(20, 20, 20)) -> Path:
    """RGBA PNGs: a class-dependent bar of ``ink`` colour, alpha 255 on the bar and 0 elsewhere;
    the transparent pixels hold (0, 0, 0), as drawing programs usually save them."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    for c in range(n_classes):
        d = root / f"class_{c}"
        d.mkdir(parents=True)
        for j in range(per_class):
            t = np.pi * c / n_classes + 0.1 * j
            bar = (np.abs(np.cos(t) * yy - np.sin(t) * xx) < 0.1) & (np.hypot(xx, yy) < 0.4)
            a = np.zeros((size, size, 4), np.uint8)
            a[bar, :3] = ink
            a[..., 3] = np.where(bar, 255, 0)
            Image.fromarray(a, "RGBA").save(d / f"{j}.png")
    return root


def _folder_cfg(root, *more):
    return apply_overrides(get_preset("lab_npair"), ["data.dataset=folder", f"data.root={root}",
                                                     "data.batch_classes=2", *more])


@pytest.mark.parametrize("channels", [1, 3])
def test_rgba_ink_on_transparent_reads_dark_on_light(tmp_path, channels):
    from hdml_lite.data import load_dataset

    root = _transparent_glyphs(tmp_path / "rgba")
    cfg = _folder_cfg(root, f"data.channels={channels}", "data.invert=false")
    ds = load_dataset(cfg.data, "train", in_channels=channels)
    for i in range(len(ds)):
        a = np.asarray(ds.load_image(i), dtype=np.int64)
        assert a.min() != a.max(), "the image reads as one flat colour"
        assert a.max() == 255 and a.min() <= 25, (a.min(), a.max())      # white paper, the ink as drawn
        assert np.median(a) == 255                                       # mostly background: light
    # the pre-resized uint8 cache decodes the same way
    cached = load_dataset(apply_overrides(cfg, [f"data.cache={tmp_path / 'cache'}"]).data, "train",
                          in_channels=channels)
    assert cached.cache is not None
    assert torch.equal(cached.resized(0, cfg.data.resize), ds.resized(0, cfg.data.resize))


def test_rgba_light_ink_on_transparent_stays_visible():
    from hdml_lite.data.base import to_mode

    a = np.full((8, 8, 4), 255, np.uint8)
    a[..., 3] = 0                               # transparent pixels that hold white
    a[2:6, 2:6] = (250, 250, 250, 255)          # white ink, the rest transparent
    g = np.asarray(to_mode(Image.fromarray(a, "RGBA"), "L"))
    assert g[3, 3] == 250 and g[0, 0] == 0, "light ink goes onto a dark background, not onto white"
    la = np.asarray(to_mode(Image.fromarray(a, "RGBA").convert("LA"), "L"))
    assert la[3, 3] == 250 and la[0, 0] == 0


def test_preflight_report_sees_the_ink_and_warns_of_flat_classes(tmp_path, capsys):
    from hdml_lite.data import load_dataset
    from hdml_lite.data.report import check_preflight, resolve_data

    root = _transparent_glyphs(tmp_path / "rgba")
    cfg, look = resolve_data(_folder_cfg(root, "model.pretrained=false"))
    assert look.polarity == "dark-on-light" and look.border > 200, look
    in_ch = 1 if cfg.data.channels == 1 else 3
    lines = check_preflight(cfg, look, load_dataset(cfg.data, "train", in_channels=in_ch),
                            {"test": load_dataset(cfg.data, "test", in_channels=in_ch)})
    assert not any("flat colour" in line for line in lines), lines
    # a class of blank images (and one normal class): the warning names the blank class
    flat = tmp_path / "flat"
    _transparent_glyphs(flat, n_classes=4)
    for j in range(3):
        Image.new("L", (24, 24), 0).save(flat / "class_1" / f"{j}.png")
        Image.new("RGB", (24, 24), (9, 9, 9)).save(flat / "class_3" / f"{j}.png")
    cfg, look = resolve_data(_folder_cfg(flat, "model.pretrained=false"))
    in_ch = 1 if cfg.data.channels == 1 else 3
    lines = check_preflight(cfg, look, load_dataset(cfg.data, "train", in_channels=in_ch),
                            {"test": load_dataset(cfg.data, "test", in_channels=in_ch)})
    warn = [line for line in lines if "flat colour" in line]
    assert len(warn) == 2, lines
    assert warn[0].startswith("warning: train split: the images of 1 of 2 class(es) checked are one flat colour")
    assert "class_1" in warn[0] and "class_0" not in warn[0] and "every pixel 0" in warn[0]
    assert warn[1].startswith("warning: test split:") and "class_3" in warn[1] and "every pixel 9" in warn[1]


# ----------------------------------------------------------------------------- 6. resume on other pixels

def _bmp_folder(root: Path, classes: int = 8, per_class: int = 3, seed: int = 0, mtime: int = 1_700_000_000) -> Path:
    """BMPs of 40 x 40 RGB: every file's size is fixed by its dimensions, whatever the pixels."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            f = root / f"c{c}" / f"{i}.bmp"
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(f)
            os.utime(f, (mtime, mtime))
    return root


def test_resume_on_bmps_with_same_names_and_sizes_but_other_pixels_is_refused(tmp_path, capsys):
    from hdml_lite.training.checkpoint import load_checkpoint

    a = _bmp_folder(tmp_path / "a")
    b = _bmp_folder(tmp_path / "b", seed=1)
    sizes = lambda r: sorted((p.relative_to(r).as_posix(), p.stat().st_size) for p in r.rglob("*.bmp"))  # noqa: E731
    assert sizes(a) == sizes(b)
    run = lambda root: ["train", "--preset", "lab_npair", *TINY, "data.dataset=folder", f"data.root={root}",  # noqa
                        "train.steps=2", "train.eval_every=0", f"train.out_dir={tmp_path / 'run'}"]
    assert main(run(a)) == 0
    capsys.readouterr()
    assert main(run(b)) == 2
    err = _one_error_line(capsys)
    assert "was trained on other data: 24 of the 24 sampled files have the same name and size but other " \
           "content (sha256): " in err, err
    assert str(b / "c0" / "0.bmp") in err and "and 21 more" in err and f"trained on the data in {a}" in err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2, "nothing is overwritten"


def _fingerprint(root: Path):
    from hdml_lite.data import load_dataset
    from hdml_lite.data.fingerprint import data_fingerprint

    cfg = apply_overrides(get_preset("lab_npair"), ["data.dataset=folder", f"data.root={root}", "data.channels=3"])
    return data_fingerprint(cfg.data, {s: load_dataset(cfg.data, s, in_channels=3) for s in ("train", "test")})


def test_a_modified_file_outside_the_sample_is_named_by_its_time(tmp_path):
    from hdml_lite.data.fingerprint import CONTENT_SAMPLE, DataChangedError, check_resume_data

    a = _bmp_folder(tmp_path / "a", classes=10, per_class=6)
    saved = _fingerprint(a)
    assert len(saved["content"]["sample"]) == CONTENT_SAMPLE and len(saved["content"]["mtimes"]) == 60
    assert check_resume_data(saved, _fingerprint(a), "ckpt.pt") is None
    rel = next(r for r in sorted(saved["content"]["mtimes"]) if r not in saved["content"]["sample"])
    f = a / rel
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(f)      # same size, other pixels, a new time
    with pytest.raises(DataChangedError) as err:
        check_resume_data(saved, _fingerprint(a), "ckpt.pt")
    msg = str(err.value)
    assert f"1 of the 60 files were modified since the checkpoint was written (same name and size, another " \
           f"modification time): {f}" in msg, msg


def test_a_copy_without_times_and_an_old_checkpoint_still_resume_with_a_note(tmp_path):
    import shutil

    from hdml_lite.data.fingerprint import check_resume_data

    a = _bmp_folder(tmp_path / "a")
    saved = _fingerprint(a)
    copy = tmp_path / "copy"
    shutil.copytree(a, copy, copy_function=shutil.copyfile)       # cp -r: the times are not kept
    for f in copy.rglob("*.bmp"):
        os.utime(f, (1_800_000_000, 1_800_000_000))
    note = check_resume_data(saved, _fingerprint(copy), "ckpt.pt")
    assert note.startswith("note: every data file has another modification time") and "24 sampled" in note
    old = {k: v for k, v in saved.items() if k != "content"}       # written before the content check
    note = check_resume_data(old, _fingerprint(a), "ckpt.pt")
    assert "before runs recorded their data's content" in note and "names, sizes and labels only" in note


# ----------------------------------------------------------------------------- 8. a split file in UTF-16

def test_split_file_in_another_encoding_is_named(tmp_path, capsys):
    from hdml_lite.data.real import DatasetFormatError, read_folder

    root = _bmp_folder(tmp_path / "imgs", classes=4, per_class=2)
    text = "".join(f"c{c} {'train' if c < 2 else 'test'}\r\n" for c in range(4))
    split = tmp_path / "split.txt"
    split.write_bytes(text.encode("utf-16"))                 # Notepad's "Unicode": starts with 0xff 0xfe
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, "data.dataset=folder", f"data.root={root}",
                 f"data.split_file={split}", f"train.out_dir={out}"]) == 2
    err = _one_error_line(capsys)
    assert f"split file (data.split_file) {split} is not UTF-8 text: byte 0xff at line 1" in err, err
    assert "UTF-16 byte-order mark" in err and "save it as UTF-8" in err and "codec" not in err
    # Latin-1 on line 3: the line is named; UTF-8 with a byte-order mark and CRLF lines reads fine
    (root / "c\u00e9").mkdir()
    for i in range(2):
        (root / "c0" / f"{i}.bmp").rename(root / "c\u00e9" / f"{i}.bmp")
    latin = "c1 train\nc2 test\nc\u00e9 train\nc3 test\n"
    split.write_bytes(latin.encode("latin-1"))
    with pytest.raises(DatasetFormatError, match=r"byte 0xe9 at line 3 cannot be decoded; save it as UTF-8"):
        read_folder(root, str(split))
    split.write_bytes(b"\xef\xbb\xbf" + latin.replace("\n", "\r\n").encode("utf-8"))
    train, test = read_folder(root, str(split))
    assert train.class_names == ["c1", "c\u00e9"] and test.class_names == ["c2", "c3"]


# ----------------------------------------------------------------------------- 10. advice that fits the case

_QUICK = ["train.steps=2", "train.eval_every=0", "model.width=4", "model.pretrained=false", "train.progress=false",
          "train.device=cpu"]


def test_every_image_unreadable_says_so_and_names_files(tmp_path, capsys):
    root = tmp_path / "junk"
    for c in "abcd":
        (root / c).mkdir(parents=True)
        for i in range(3):
            (root / c / f"{i}.png").write_text("not an image")
    assert main(["train", "--preset", "lab_npair", *_QUICK, "data.dataset=folder", f"data.root={root}",
                 "data.skip_corrupt=true", f"train.out_dir={tmp_path / 'run'}"]) == 2
    err = _one_error_line(capsys)
    assert "none of the 6 images of the train split could be read (data.skip_corrupt=true skipped every one: " \
           f"{root / 'a' / '0.png'}, " in err, err
    assert "data.skip_corrupt=false to see why" in err
    assert "batch_classes" not in err and "or less" not in err


@pytest.mark.parametrize("sampler", ["npair", "triplet"])
def test_max_per_class_1_names_the_key(tmp_path, capsys, sampler):
    assert main(["train", "--preset", "lab_npair", *_QUICK, "data.max_per_class=1", "data.max_classes=8",
                 "data.batch_classes=4", f"data.sampler={sampler}", f"train.out_dir={tmp_path / 'run'}"]) == 2
    err = _one_error_line(capsys)
    assert "data.max_per_class=1: metric learning needs at least 2 images per class" in err, err
    assert "set data.max_per_class=0 (all images) or 2 or more" in err and "or less" not in err


def test_single_image_classes_advice_without_max_per_class(tmp_path):
    from hdml_lite.data.samplers import batch_problem

    msg = batch_problem("npair", [0, 1, 2, 3], 2)
    assert "needs at least 2 training classes with >= 2 images" in msg and "0 of the 4 training classes" in msg
    assert "lower data.batch_classes" not in msg
    assert "lower data.batch_classes" in batch_problem("npair", [0, 0, 1, 1, 2, 2], 4)


def test_macos_zip_leftovers_are_ignored(tmp_path):
    from hdml_lite.data.real import read_folder

    root = _bmp_folder(tmp_path / "data", classes=4, per_class=2)
    for c in range(4):                         # what macOS puts in the zips it makes
        (root / "__MACOSX" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            (root / "__MACOSX" / f"c{c}" / f"._{i}.bmp").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
            (root / f"c{c}" / f"._{i}.bmp").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (root / f"c{c}" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "__MACOSX" / "._c0").write_bytes(b"\x00\x05\x16\x07")
    train, test = read_folder(root)
    assert train.class_names == ["c0", "c1"] and test.class_names == ["c2", "c3"]
    assert len(train.paths) == 4 and not any("._" in p or "__MACOSX" in p for p in train.paths + test.paths)
