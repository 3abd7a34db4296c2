import pytest
import torch

from hdml_lite.config import ModelConfig
from hdml_lite.models import build_backbone, build_metric_model


def test_metric_model_returns_y_and_z():
    m = build_metric_model(ModelConfig(backbone="small_cnn", width=4, embedding_size=8), in_channels=1)
    y, z = m(torch.randn(3, 1, 32, 32))
    assert y.shape == (3, 32) and z.shape == (3, 8)
    assert {id(p) for p in m.new_layers()} == {id(p) for p in m.head.parameters()}


def test_googlenet_feature_is_1024_and_offline_warns():
    with pytest.warns(UserWarning, match="random initialisation"):
        bb = build_backbone("googlenet", pretrained=True)
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
