"""Your own images, right the first time: the pre-flight report, auto grey / invert, 16-bit PNGs,
messages that name the real cause (issue 20, issue 18's data items)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdml_lite.cli import main
from hdml_lite.config import apply_overrides
from hdml_lite.data import load_dataset, val_class_count
from hdml_lite.data.base import ImageListDataset, Split
from hdml_lite.data.real import DatasetFormatError, read_folder
from hdml_lite.data.report import (PRETRAINED_POLARITY, DataReportError, check_preflight, ink_polarity, lab_reminder,
                                   look_at, resolve_data)
from hdml_lite.presets import get_preset

REPO = Path(__file__).resolve().parents[1]


def _drawing(rng, c: int, size: int, dark_on_light: bool, rgb: bool) -> Image.Image:
    """A stroke drawing of class ``c``: a bar whose angle depends on the class, with noise."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    t = np.pi * c / 7 + rng.normal(0, 0.1)
    ink = (np.abs(np.cos(t) * yy - np.sin(t) * xx) < 0.08) & (np.hypot(xx, yy) < 0.35)
    a = np.where(ink, 230.0, 15.0) + rng.normal(0, 5, (size, size))
    if dark_on_light:
        a = 255 - a
    a = np.clip(a, 0, 255).astype(np.uint8)
    if rgb:
        tint = np.array([70, 0, 35]) + rng.integers(0, 10, 3)
        return Image.fromarray(np.clip(a[..., None].astype(int) + tint - 40, 0, 255).astype(np.uint8))
    return Image.fromarray(a)


def make_folder(root: Path, n_classes: int = 10, per_class: int = 4, size: int = 28, dark_on_light: bool = True,
                rgb: bool = False, ext: str = "png") -> Path:
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            _drawing(rng, c, size, dark_on_light, rgb).save(d / f"{j}.{ext}")
    return root


def _cfg(root, *more, preset="lab_npair"):
    return apply_overrides(get_preset(preset), ["data.dataset=folder", f"data.root={root}", *more])


# ----------------------------------------------------------------------------- grey, polarity, invert

def test_grey_dark_on_light_folder_reads_grey_inverted_and_says_so(tmp_path, capsys):
    root = make_folder(tmp_path / "chars", n_classes=8)
    cfg, look = resolve_data(_cfg(root, "data.batch_classes=4"))
    assert (look.colour, look.polarity) == ("grey", "dark-on-light")
    assert cfg.data.channels == 1 and cfg.data.invert == "true"       # recorded in the run's config
    train_ds = load_dataset(cfg.data, "train", in_channels=1)
    test_ds = load_dataset(cfg.data, "test", in_channels=1)
    lines = check_preflight(cfg, look, train_ds, {"test": test_ds})
    text = "\n".join(lines)
    assert "classes: 8 classes: 4 train / 4 test (the first half of the class folders by name" in text
    assert "images per class: train min 4 / median 4, test min 4 / median 4" in text
    assert "image sizes: min 28x28, median 28x28 -> resized to 36x36" in text
    assert "colour: grey (all 32 images are grey files) -> read as grey (data.channels=1, auto" in text
    assert "ink: dark-on-light" in text and "inverted (data.invert=auto" in text
    assert capsys.readouterr().out.strip().splitlines() == lines


def test_inverting_is_255_minus_pixel_on_file_and_cache_paths(tmp_path):
    root = make_folder(tmp_path / "chars", n_classes=4, per_class=2)
    plain = _cfg(root, "data.channels=1", "data.invert=false")
    inv = _cfg(root, "data.channels=1", "data.invert=true")
    a = load_dataset(plain.data, "train", in_channels=1).resized(0, 36)
    b = load_dataset(inv.data, "train", in_channels=1).resized(0, 36)
    assert torch.equal(b, 255 - a)
    cached = apply_overrides(inv, [f"data.cache={tmp_path / 'cache'}"])
    ds = load_dataset(cached.data, "train", in_channels=1, train_transform=False)
    from hdml_lite.data.pipeline import load_resized

    assert torch.equal(load_resized(ds, [0], 36)[0], b)       # the cache path inverts too
    assert torch.equal(ds[0][0], load_dataset(inv.data, "train", in_channels=1, train_transform=False)[0][0])
    import pickle

    again = pickle.loads(pickle.dumps(ds.cache))              # what a DataLoader worker receives
    assert torch.equal(again.image(ds.paths[0]), b) and again.resize == 36


def test_light_on_dark_and_from_scratch_are_not_inverted(tmp_path):
    root = make_folder(tmp_path / "chars", n_classes=4, dark_on_light=False)
    cfg, look = resolve_data(_cfg(root))
    assert look.polarity == PRETRAINED_POLARITY and cfg.data.invert == "auto"
    dark = make_folder(tmp_path / "dark", n_classes=4)
    cfg, look = resolve_data(_cfg(dark, "model.pretrained=false"))
    assert look.polarity == "dark-on-light" and cfg.data.invert == "auto"     # from scratch: either polarity


def test_the_glyphs_are_light_on_dark_and_left_alone():
    from hdml_lite.data.glyphs import load_glyphs

    ds = load_glyphs("train")
    assert ink_polarity([ds.images[i, 0].numpy() for i in range(0, len(ds), 97)])[2] == PRETRAINED_POLARITY
    cfg = get_preset("lab_hdml_npair")
    same, look = resolve_data(cfg)
    assert same is cfg and look is None                       # glyph runs: config and data untouched


def test_rgb_files_with_equal_channels_count_as_grey(tmp_path):
    root = tmp_path / "scans"
    for c in range(4):
        (root / f"c{c}").mkdir(parents=True)
        for j in range(2):
            Image.fromarray(np.full((20, 20), 40 * c + j, np.uint8)).convert("RGB").save(root / f"c{c}" / f"{j}.jpg")
    assert look_at([str(p) for p in sorted(root.rglob("*.jpg"))]).colour == "grey"


# ----------------------------------------------------------------------------- 16-bit images

@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_reads_as_its_8_bit_twin(tmp_path, channels):
    a = (np.arange(48 * 48).reshape(48, 48) % 256).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "eight.png")
    Image.fromarray(a.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode.startswith("I;16")
    ds = ImageListDataset(Split([str(tmp_path / "eight.png"), str(tmp_path / "sixteen.png")], [0, 0], ["x"]),
                          in_channels=channels)
    eight, sixteen = np.asarray(ds.load_image(0)), np.asarray(ds.load_image(1))
    assert abs(sixteen.mean() - 127.5) < 0.01                 # PIL's own convert gives 254.0
    assert np.array_equal(eight, sixteen)


# ----------------------------------------------------------------------------- messages

def test_every_problem_at_once_with_the_fix_that_keeps_the_intent(tmp_path, capsys):
    root = make_folder(tmp_path / "clothes", n_classes=10, per_class=3, size=40, rgb=True, dark_on_light=False)
    code = main(["train", "--preset", "lab_npair", "data.dataset=folder", f"data.root={root}",
                 f"train.out_dir={tmp_path / 'run'}", "train.progress=false"])
    out, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "2 problem(s)" in err
    assert "data.batch_classes=32: the N-pair sampler needs 32 training classes" in err
    assert "there are 5: 10 classes: 5 train / 5 test" in err and "lower data.batch_classes to 5 or less" in err
    assert "set data.channels=1 to read them as grey and keep the pretrained start" in err
    assert "model.pretrained=false only for an intended from-scratch run" in err
    assert "colour: RGB" in out and "pre-flight:" in out            # the report came first
    assert not (tmp_path / "run").exists()


def test_readme_example_on_18_classes_says_what_the_validation_split_took(tmp_path, capsys):
    root = make_folder(tmp_path / "eighteen", n_classes=18, per_class=2)
    code = main(["train", "--preset", "lab_hdml_npair", "data.dataset=folder", f"data.root={root}",
                 "data.batch_classes=8", "data.val_classes=0.2", f"train.out_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "data.val_classes=0.2 took 2 of the 9 training classes for validation, leaving 7" in err
    assert "lower data.batch_classes to 7 or less, or lower data.val_classes" in err


def test_readme_states_how_many_classes_its_example_needs():
    readme = (REPO / "README.md").read_text()
    m = re.search(r"needs at least (\d+)\s+class\s+folders", readme)
    assert m, "README 'Your own images' must say how many classes its example needs"
    need = next(c for c in range(2, 200) if c // 2 - val_class_count(0.2, c // 2) >= 8)
    assert int(m.group(1)) == need == 20


def test_root_one_level_too_high_is_named(tmp_path):
    make_folder(tmp_path / "parent" / "my_images", n_classes=4, per_class=1)
    with pytest.raises(DatasetFormatError, match="my_images/ holds sub-folders with images .*is data.root one "
                                                 "level too high"):
        read_folder(tmp_path / "parent")
    make_folder(tmp_path / "two" / "set_a", n_classes=2, per_class=1)
    make_folder(tmp_path / "two" / "set_b", n_classes=2, per_class=1)
    with pytest.raises(DatasetFormatError, match="set_a has no images .*it holds sub-folders with images "
                                                 r"\(class_00/, ...\): is data.root one level too high\?"):
        read_folder(tmp_path / "two")


def test_cache_folder_inside_the_image_folder_is_not_a_class(tmp_path):
    root = make_folder(tmp_path / "chars", n_classes=4, per_class=2)
    (root / "hdml_cache" / "folder_r36_c1").mkdir(parents=True)    # what data.cache=auto writes
    train, test = read_folder(root)
    assert train.class_names + test.class_names == [f"class_{c:02d}" for c in range(4)]


def test_batch_of_one_class_is_refused_before_training(tmp_path, tiny_overrides, capsys):
    code = main(["train", "--preset", "lab_npair", *tiny_overrides, "data.batch_classes=1"])
    err = capsys.readouterr().err
    assert code == 2 and "data.batch_classes=1: a batch of 1 class (N-pair sampler) has no negatives" in err
    assert not (tmp_path / "run").exists()


def test_lab_preset_on_other_data_gets_the_lr_reminder(tmp_path):
    assert lab_reminder(get_preset("lab_npair")) == ""            # the glyphs: nothing to say
    cfg = _cfg(tmp_path)
    line = lab_reminder(cfg)
    assert line.startswith(f"note: lab_npair's optim.lr={get_preset('lab_npair').optim.lr:g} was chosen on the "
                           f"glyph validation classes")
    assert "python -m hdml_lite compare" in line
    cfg.optim.lr = 0.123                      # an lr given on purpose (compare's selection): no reminder
    assert lab_reminder(cfg) == ""
    assert lab_reminder(get_preset("cub_npair")) == ""


# ----------------------------------------------------------------------------- a first run, end to end

def test_first_run_on_a_grey_folder_prints_report_mechanism_and_budget(tmp_path, capsys):
    root = make_folder(tmp_path / "chars", n_classes=8, per_class=3)
    code = main(["train", "--preset", "lab_hdml_npair", "data.dataset=folder", f"data.root={root}",
                 "data.batch_classes=4", "train.steps=4", "train.eval_every=2", "train.ckpt_every=0",
                 "train.progress=false", "hdml.gen_hidden=16", "hdml.block=2", f"train.out_dir={tmp_path / 'run'}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "pre-flight: 24 images" in out and "inverted (data.invert=auto" in out
    assert "note: lab_hdml_npair's optim.lr" in out
    assert "HDML's mechanism in lab_hdml_npair" in out and "engaged (v2, all five)" in out
    assert "budget: test-curve R@1" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["mechanism"]["lines"][-1].startswith("engaged (v2, all five)")
    assert metrics["budget"]["split"] == "test" and metrics["budget"]["from_step"] == 2
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["config"]["data"]
    assert (saved["channels"], saved["invert"]) == (1, "true")
