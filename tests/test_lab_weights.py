"""The lab's pretrained start (METHOD §5): shipped file, checksum, loading, the recipe script."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdml_lite.models import SmallCNN, build_backbone, build_metric_model
from hdml_lite.models import lab_weights
from hdml_lite.models.lab_weights import LAB_WEIGHTS, PretrainedWeightsError, lab_weights_path, load_lab_weights
from hdml_lite.data.transforms import augment_batch, build_transforms, crop_params, transform_spec
from hdml_lite.models.pretrain import to_lab_input
from hdml_lite.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_weights_are_small_and_match_their_checksum():
    path = lab_weights_path(16)
    assert path.is_file() and path.stat().st_size < 1_000_000
    assert lab_weights.sha256(path) == LAB_WEIGHTS[16][1]
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["sha256"] == LAB_WEIGHTS[16][1] and info["classes"] >= 500


def test_pretrained_small_cnn_loads_the_file():
    net = build_backbone("small_cnn", in_channels=1, pretrained=True, width=16)
    state = torch.load(lab_weights_path(16), map_location="cpu", weights_only=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k].float() if v.is_floating_point() else state[k]), k
    fresh = build_backbone("small_cnn", in_channels=1, pretrained=False, width=16)
    assert not torch.equal(fresh.stage1[0].weight, net.stage1[0].weight)


def test_lab_presets_start_pretrained_and_scratch_presets_do_not():
    assert get_preset("lab_npair").model.pretrained and get_preset("lab_hdml_npair").model.pretrained
    assert not get_preset("scratch_npair").model.pretrained
    m = build_metric_model(get_preset("lab_npair").model, 1)
    assert m.feature_dim == 128


def test_bad_requests_get_one_clear_error(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="model.width"):
        build_backbone("small_cnn", in_channels=1, pretrained=True, width=8)
    with pytest.raises(PretrainedWeightsError, match="1-channel"):
        build_backbone("small_cnn", in_channels=3, pretrained=True, width=16)
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        load_lab_weights(SmallCNN(1, 16), 16, path=tmp_path / "nope.pt")
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(PretrainedWeightsError, match="could not be loaded"):
        load_lab_weights(SmallCNN(1, 16), 16, path=bad)


def test_checksum_mismatch_is_reported(monkeypatch):
    monkeypatch.setitem(LAB_WEIGHTS, 16, (LAB_WEIGHTS[16][0], "0" * 64))
    with pytest.raises(PretrainedWeightsError, match="sha256"):
        load_lab_weights(SmallCNN(1, 16), 16)


def test_weights_file_cannot_run_code(tmp_path):
    """A pickle that would create a marker file is refused (weights_only=True)."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(PretrainedWeightsError):
        load_lab_weights(SmallCNN(1, 16), 16, path=path)
    assert not marker.exists()


def test_pretraining_inputs_are_the_lab_small_transform():
    """The pretraining crops come from the lab's own batched transform: a centre crop of the
    resized glyph, normalised to (x - 0.5) / 0.5, matches torchvision's ``small`` test transform."""
    img = (torch.rand(1, 32, 32) * 255).to(torch.uint8)
    x = to_lab_input(img.numpy())                                                   # (1, 1, 36, 36) in [0, 1]
    top, left, flips = crop_params(None, 1, 36, 32, train=False, flip=False)
    mean, std, _ = transform_spec("small")
    ours = augment_batch(x, top, left, flips, 32, mean, std, out_channels=1)[0]
    ref = build_transforms("small", train=False, resize=36, image_size=32, in_channels=1)(img.float() / 255)
    assert ours.shape == ref.shape and torch.allclose(ours, ref, atol=1e-4)


@pytest.mark.slow
def test_pretraining_script_smoke(tmp_path):
    """The committed recipe runs (a few steps) and writes a loadable file and its record
    (slow: renders the 700 pretraining classes in a fresh process, ~1 CPU minute)."""
    out = tmp_path / "w.pt"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "pretrain_lab.py"), "--steps", "2",
                        "--per-class", "2", "--out", str(out)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "HDML_DATA": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["steps"] == 2 and info["sha256"] == lab_weights.sha256(out)
    load_lab_weights(SmallCNN(1, 16), 16, path=out)
