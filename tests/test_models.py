import pytest
import torch

from hdml_lite.config import ModelConfig
from hdml_lite.models import build_backbone, build_metric_model


def test_metric_model_returns_y_and_z():
    m = build_metric_model(ModelConfig(backbone="small_cnn", width=4, embedding_size=8), in_channels=1)
    y, z = m(torch.randn(3, 1, 32, 32))
    assert y.shape == (3, 32) and z.shape == (3, 8)
    assert {id(p) for p in m.new_layers()} == {id(p) for p in m.head.parameters()}


def test_googlenet_feature_is_1024():
    bb = build_backbone("googlenet", pretrained=False)   # offline ImageNet weights: tests/test_faults.py
    assert bb.feature_dim == 1024 and len(bb.stages()) == 3
    bb.eval()
    with torch.no_grad():
        assert bb(torch.randn(1, 3, 96, 96)).shape == (1, 1024)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_backbone("resnet18", pretrained=True, weights_path=str(tmp_path / "nope.pth"))


def test_bad_backbone_and_channels():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match="3-channel"):
        build_backbone("resnet18", in_channels=1, pretrained=False)


# ---------------------------------------------------------------- GoogLeNet as torchvision builds it
def _googlenet_weights_file(tmp_path, seed=0):
    """A random-init torchvision GoogLeNet state dict WITH aux1/aux2 keys (like the ImageNet file)."""
    import torchvision.models as tvm

    torch.manual_seed(seed)
    net = tvm.googlenet(weights=None, aux_logits=True, init_weights=False)
    for m in net.modules():  # calibrated BN statistics: the eval-mode feature depends on the input
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, 96, 96))
    path = tmp_path / "googlenet.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_googlenet_feature_matches_torchvision_pretrained_path(tmp_path):
    import torchvision.models as tvm

    path, state = _googlenet_weights_file(tmp_path)
    bb = build_backbone("googlenet", pretrained=True, weights_path=str(path)).eval()
    assert bb.pretrained_loaded and bb.net.transform_input
    # torchvision's googlenet(weights=...) path: transform_input=True, aux heads built, loaded, dropped
    ref = tvm.googlenet(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    ref.load_state_dict(state)
    ref.aux_logits, ref.aux1, ref.aux2 = False, None, None
    ref.fc = torch.nn.Identity()
    ref.eval()
    x = torch.randn(2, 3, 112, 112)  # ImageNet-normalised input
    with torch.no_grad():
        got, want = bb(x), ref(x)
        assert torch.allclose(got, want, atol=1e-5)
        assert not torch.allclose(got[0], got[1], atol=1e-3)  # the feature depends on the input
        ref.transform_input = False  # the old (wrong) scale gives a different feature
        assert not torch.allclose(got, ref(x), atol=1e-3)
    assert set(bb.aux_state) == {k for k in state if k.startswith("aux")}


def test_googlenet_without_weights_does_not_rescale_input():
    bb = build_backbone("googlenet", pretrained=False)
    assert not bb.pretrained_loaded and not bb.net.transform_input and bb.aux_state == {}


def test_googlenet_feature_has_no_dropout():
    torch.manual_seed(0)
    bb = build_backbone("googlenet", pretrained=False)
    assert isinstance(bb.net.dropout, torch.nn.Identity)
    assert not any(isinstance(m, torch.nn.Dropout) for m in bb.net.modules())
    bb.train()  # BN uses batch statistics: deterministic for the same input; only dropout could differ
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        y1, y2 = bb(x), bb(x)
    assert y1.shape == (4, 1024) and torch.equal(y1, y2)
    assert (y1 == 0).float().mean() < 0.5  # no zeroed (dropped) entries beyond ReLU zeros


def test_official_presets_use_one_adam_lr_for_backbone_and_embedding():
    from hdml_lite.presets import get_preset, list_presets
    from hdml_lite.training.method import metric_param_groups

    names = [n for n in list_presets() if n.endswith("_official")]
    assert len(names) == 6
    for name in names:
        cfg = get_preset(name)
        assert cfg.optim.optimizer == "adam" and cfg.optim.head_lr_mult == 1.0, name
    assert get_preset("cub_hdml_npair").optim.head_lr_mult == 10.0  # the paper's statement stays in paper presets
    cfg = get_preset("cub_hdml_npair_official")
    model = build_metric_model(ModelConfig(backbone="small_cnn", width=4, embedding_size=8), in_channels=1)
    assert {g["lr"] for g in metric_param_groups(model, cfg.optim)} == {6e-5}
