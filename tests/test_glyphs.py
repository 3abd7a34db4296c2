"""The embedded glyph dataset: classes, duplicate rule, split, determinism, cache."""
import inspect
import unicodedata

import numpy as np
import pytest
import torch

from hdml_lite.data import glyphs
from hdml_lite.data.base import ArrayDataset
from hdml_lite.data.glyphs import (GLYPHS_VERSION, class_split, generate_glyphs, glyph_classes,
                                   load_glyphs)

PER_CLASS = 4


@pytest.fixture(scope="module")
def small():
    return generate_glyphs(per_class=PER_CLASS, size=32, seed=0)


def script(ch):
    return unicodedata.name(ch).split()[0]       # LATIN, GREEK, CYRILLIC, DIGIT


def test_enough_classes_from_three_scripts():
    names = glyph_classes()
    assert len(names) >= 200
    assert len(set(names)) == len(names)
    assert {script(c) for c in names} == {"DIGIT", "LATIN", "GREEK", "CYRILLIC"}
    assert {"é", "ő", "λ", "Ж"} <= set(names)


def test_defaults_give_at_least_40_per_class(small):
    for fn in (generate_glyphs, load_glyphs):
        assert inspect.signature(fn).parameters["per_class"].default >= 40
    images, labels, names = small
    assert images.shape == (PER_CLASS * len(names), 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.array_equal(np.bincount(labels, minlength=len(names)), np.full(len(names), PER_CLASS))
    assert names == glyph_classes()


def test_generation_is_deterministic(small):
    images, labels, names = generate_glyphs(per_class=PER_CLASS, seed=0)
    assert images.tobytes() == small[0].tobytes() and np.array_equal(labels, small[1])
    other = generate_glyphs(per_class=PER_CLASS, seed=1)[0]
    assert other.tobytes() != small[0].tobytes()


def naive_distance(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.abs(a - b).sum() / max(a.sum(), b.sum())


def test_no_two_classes_draw_the_same_picture():
    """Oracle for the duplicate rule: in every face, every pair of kept classes differs by at
    least DUP_TOL of its ink (naive loop over pairs of the public canonical drawings)."""
    names = glyph_classes()
    cov = glyphs._coverage()
    for face in glyphs.FONT_FILES:
        chars = [c for c in names if ord(c) in cov[face]]
        canon = glyphs.canonical(chars, face)
        flat = canon.reshape(len(chars), -1)
        ink = flat.sum(1)
        assert (ink > 0).all(), face
        for i in range(len(chars)):
            d = np.abs(flat[i + 1:] - flat[i]).sum(1) / np.maximum(ink[i + 1:], ink[i])
            j = int(np.argmin(d)) + i + 1 if len(d) else None
            assert j is None or d.min() >= glyphs.DUP_TOL, (face, chars[i], chars[j])
    # spot checks of the rule itself: look-alikes merged, close but distinct letters kept
    assert naive_distance(*glyphs.canonical("AА")) < glyphs.DUP_TOL
    groups = glyphs.merged_groups()
    assert "AΑА" in groups and any(g.startswith("m") and "т" in g for g in groups)
    assert {"А", "Α", "о", "т"}.isdisjoint(names)
    assert {"Ź", "Ż", "o", "O", "0", "ö", "ő"} <= set(names)


def test_class_split_disjoint_halves_with_mixed_scripts():
    names = glyph_classes()
    train, test = class_split(names)
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(names)
    assert abs(len(train) - len(test)) <= 1
    for half in (train, test):
        assert {script(c) for c in half} >= {"LATIN", "GREEK", "CYRILLIC"}
    assert class_split(names) == (train, test)
    assert class_split(names, seed=1) != (train, test)
    assert train != names[:len(train)]              # shuffled, not the first half of the list


def test_images_not_blank_and_vary_within_a_class(small):
    images, labels, names = small
    assert (images.reshape(len(images), -1).max(1) > 128).all()          # ink in every image
    x = images.astype(np.float32) / 255
    for c in range(0, len(names), 7):
        same = x[labels == c]
        diffs = [np.abs(same[i] - same[j]).mean() for i in range(len(same)) for j in range(i)]
        assert min(diffs) > 0.02, names[c]                                # distortions differ


def test_the_character_is_not_clipped(monkeypatch):
    """Without the neighbours and stray strokes, almost no ink reaches the image border."""
    monkeypatch.setitem(glyphs.DISTORTION, "neighbours", 0.0)
    monkeypatch.setitem(glyphs.DISTORTION, "stray", 0.0)
    images = generate_glyphs(per_class=PER_CLASS)[0]
    frame = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert (frame > 128).any(1).mean() < 0.01


def test_affine_grid_matches_torch():
    theta = torch.randn(5, 2, 3)
    expect = torch.nn.functional.affine_grid(theta, [5, 1, 12, 12], align_corners=False)
    assert torch.allclose(glyphs._affine_grid(theta, 12), expect, atol=1e-5)


def test_size_is_configurable():
    images, labels, names = generate_glyphs(per_class=1, size=24)
    assert images.shape == (len(names), 24, 24)
    assert names == glyph_classes()


def test_load_writes_cache_then_reuses_it(small, tmp_path, monkeypatch):
    train = load_glyphs("train", root=tmp_path, per_class=PER_CLASS)
    path = tmp_path / f"glyphs_v{GLYPHS_VERSION}_{PER_CLASS}x32.npz"
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]           # no temporary left over
    assert isinstance(train, ArrayDataset)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although the cache was valid")
    monkeypatch.setattr(glyphs, "generate_glyphs", fail)
    test = load_glyphs("test", root=str(tmp_path), per_class=PER_CLASS)
    expect_train, expect_test = class_split(glyph_classes())
    for ds, expect in ((train, expect_train), (test, expect_test)):
        assert ds.class_names == expect
        assert np.array_equal(np.unique(ds.labels), np.arange(len(expect)))
        assert len(ds) == PER_CLASS * len(expect)
        x, y = ds[0]
        assert x.shape == (1, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    # the images follow their labels: train class k is the k-th train name of the full set
    images, labels, names = small
    k = 5
    full = images[labels == names.index(train.class_names[k])]
    assert np.array_equal(train.images[train.labels == k, 0].numpy(), full)


def test_cache_regenerated_when_hash_differs(tmp_path, monkeypatch):
    calls = []

    def fake(per_class, size, seed=0, progress=False, which="lab"):
        calls.append(per_class)
        names = glyph_classes()
        return (np.zeros((len(names), size, size), np.uint8), np.arange(len(names), dtype=np.int64),
                names)
    monkeypatch.setattr(glyphs, "generate_glyphs", fake)
    load_glyphs("train", root=tmp_path, per_class=1)
    load_glyphs("train", root=tmp_path, per_class=1)
    assert calls == [1]
    monkeypatch.setattr(glyphs, "GLYPHS_VERSION", GLYPHS_VERSION)        # same file name...
    monkeypatch.setattr(glyphs, "params_hash", lambda *a, **k: "something-else")   # ...new hash
    load_glyphs("test", root=tmp_path, per_class=1)
    assert calls == [1, 1]
    glyphs.cache_path(tmp_path, 1).write_bytes(b"not a zip file")            # corrupt: regenerate
    load_glyphs("test", root=tmp_path, per_class=1)
    assert calls == [1, 1, 1]


def test_bad_split_names_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="train.*test"):
        load_glyphs("val", root=tmp_path, per_class=1)
    assert not any(tmp_path.iterdir())                                    # fails before generating


def test_default_root_honours_hdml_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_DATA", str(tmp_path))
    assert glyphs.default_root() == tmp_path
    monkeypatch.delenv("HDML_DATA")
    assert glyphs.default_root().name in ("data", "hdml_lite")


def test_near_twins_never_straddle_the_split():
    """A test class must not have a near-twin among the train classes: "Ώ" (tonos often cropped)
    and "Ω", "ў" and "Ў" (same shape after random scaling) land on the same side, and so does
    every letter family (base letter without diacritics, case-folded)."""
    train, test = class_split(glyph_classes())
    for a, b in (("Ώ", "Ω"), ("ў", "Ў"), ("é", "E"), ("ς", "Σ")):
        if a in train + test and b in train + test:
            assert (a in train) == (b in train), (a, b)
    assert {glyphs.family(c) for c in train}.isdisjoint({glyphs.family(c) for c in test})
    assert glyphs.family("Ώ") == glyphs.family("ω") and glyphs.family("Ў") == glyphs.family("у")


def test_pretraining_classes_are_disjoint_from_the_lab():
    """The lab's "ImageNet": other scripts and symbols, none a lab class, none drawn within
    PRETRAIN_TOL of a lab class in a shared face (naive check on a sample of pairs)."""
    pre, lab = glyph_classes("pretrain"), glyph_classes()
    assert len(pre) >= 500 and set(pre).isdisjoint(lab)
    assert {glyphs.family(c) for c in pre}.isdisjoint({glyphs.family(c) for c in lab})
    face = glyphs.FONT_FILES[0]
    cov = glyphs._coverage()[face]
    pre_s = [c for c in pre if ord(c) in cov][::25]
    lab_s = [c for c in lab if ord(c) in cov][::9]
    a, b = glyphs.canonical(pre_s, face), glyphs.canonical(lab_s, face)
    for i in range(len(pre_s)):
        for j in range(len(lab_s)):
            assert naive_distance(a[i], b[j]) >= glyphs.PRETRAIN_TOL, (pre_s[i], lab_s[j])
