"""The released HDML code's BatchNorm in the `*_official` presets (METHOD §1.9; issue 26).

The release builds the embedding head's and the generator's BatchNorm with
``tf.layers.batch_normalization`` and its defaults (lib/nn_Ops.py ``bn_block``): decay 0.99
(moving = 0.99 * moving + 0.01 * batch) and epsilon 1e-3. In PyTorch's convention
(running = (1 - m) * running + m * batch) that is momentum 0.01. The lab keeps PyTorch's defaults.
"""
import pytest
import torch

from hdml_lite.config import ConfigError, apply_overrides, from_dict, to_dict
from hdml_lite.hdml import HDMLMethod
from hdml_lite.models import EmbeddingHead
from hdml_lite.presets import RELEASED_BN, get_preset, list_presets
from hdml_lite.training.trainer import identity_diff

TF_DECAY, TF_EPSILON = 0.99, 1e-3          # tf.layers.batch_normalization's defaults (the release's bn_block)
OFFICIAL = [p for p in list_presets() if p.endswith("_official")]


def _bns(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_released_values_are_tfs_defaults_in_pytorchs_convention():
    assert RELEASED_BN["momentum"] == pytest.approx(1 - TF_DECAY) and RELEASED_BN["eps"] == TF_EPSILON


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_presets_use_the_released_batchnorm(name):
    cfg = get_preset(name)
    assert cfg.model.bn_momentum == pytest.approx(1 - TF_DECAY) and cfg.model.bn_eps == TF_EPSILON


def test_there_are_official_presets_and_the_others_keep_pytorchs_defaults():
    assert len(OFFICIAL) == 6
    for name in list_presets():
        if name not in OFFICIAL:
            m = get_preset(name).model
            assert (m.bn_momentum, m.bn_eps) == (0.1, 1e-5), name


def test_built_modules_carry_the_released_batchnorm():
    """Every BatchNorm of the embedding head and of the generator gets the preset's values
    (the backbone's own BatchNorm layers are the backbone's: torchvision's GoogLeNet has its own)."""
    cfg = apply_overrides(get_preset("cub_hdml_npair_official"),
                          ["model.backbone=small_cnn", "model.width=4", "model.pretrained=false",
                           "model.embedding_size=8", "hdml.gen_hidden=16", "train.amp=false"])
    torch.manual_seed(0)
    m = HDMLMethod(cfg, 10, 3, torch.device("cpu"))
    bns = _bns(m.model.head) + _bns(m.generator)
    assert len(bns) == 2
    for bn in bns:
        assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3)
    lab = HDMLMethod(apply_overrides(cfg, ["model.bn_momentum=0.1", "model.bn_eps=1e-5"]), 10, 3, torch.device("cpu"))
    assert [(b.momentum, b.eps) for b in _bns(lab.model.head) + _bns(lab.generator)] == [(0.1, 1e-5)] * 2


def test_running_mean_moves_as_tfs_moving_average():
    """One training-mode batch from zero statistics: tf gives moving_mean = (1 - 0.99) * batch mean."""
    torch.manual_seed(0)
    head = EmbeddingHead(5, 3, bn_momentum=RELEASED_BN["momentum"], bn_eps=RELEASED_BN["eps"]).train()
    y = torch.randn(16, 5) * 3 + 2
    head(y)
    assert torch.allclose(head.bn.running_mean, (1 - TF_DECAY) * y.mean(0), atol=1e-6)
    head.eval()
    z = head.bn(y)
    expected = (y - head.bn.running_mean) / torch.sqrt(head.bn.running_var + TF_EPSILON) * head.bn.weight + head.bn.bias
    assert torch.allclose(z, expected, atol=1e-5)


def test_old_checkpoint_configs_without_the_fields_load_with_pytorchs_defaults():
    saved = to_dict(get_preset("lab_hdml_npair"))
    del saved["model"]["bn_momentum"], saved["model"]["bn_eps"]
    cfg = from_dict(saved)
    assert (cfg.model.bn_momentum, cfg.model.bn_eps) == (0.1, 1e-5)
    assert identity_diff(saved, get_preset("lab_hdml_npair")) == []       # an old lab run resumes
    assert identity_diff(saved, get_preset("cub_hdml_npair_official")) != []


@pytest.mark.parametrize("override", ["model.bn_momentum=0", "model.bn_momentum=1.5", "model.bn_eps=0",
                                      "model.bn_eps=nan"])
def test_bad_values_are_refused_in_one_line(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        apply_overrides(get_preset("lab_hdml_npair"), [override])
