import pytest

from hdml_lite.config import Config, ConfigError, apply_overrides, from_dict, to_dict, valid_keys
from hdml_lite.presets import get_preset, list_presets


def test_override_types_and_copy():
    cfg = Config()
    new = apply_overrides(cfg, ["hdml.alpha=30", "train.steps=7", "hdml.softmax=false",
                                "optim.milestones=[10,20]", "model.backbone=googlenet"])
    assert new.hdml.alpha == 30.0 and isinstance(new.hdml.alpha, float)
    assert new.train.steps == 7 and new.hdml.softmax is False
    assert new.optim.milestones == [10, 20] and new.model.backbone == "googlenet"
    assert cfg.hdml.alpha == 90.0, "apply_overrides must not mutate its input"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'hdml\.alhpa'.*hdml\.alpha"):
        apply_overrides(Config(), ["hdml.alhpa=3"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(Config(), ["hdml.alpha"])


def test_wrong_type_rejected():
    with pytest.raises(ConfigError, match="train.steps.*'ten'.*int"):
        apply_overrides(Config(), ["train.steps=ten"])
    with pytest.raises(ConfigError, match="hdml.softmax"):
        apply_overrides(Config(), ["hdml.softmax=maybe"])
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(Config(), {"train.steps": "x" and 1.5})


def test_round_trip_through_dict():
    cfg = apply_overrides(get_preset("lab_hdml_npair"), ["hdml.alpha=12"])
    assert from_dict(to_dict(cfg)) == cfg
    assert "hdml.lambda_" in valid_keys(cfg)


def test_unknown_preset_lists_valid():
    with pytest.raises(ConfigError, match="lab_npair"):
        get_preset("lab_npiar")


def test_presets_follow_the_spec():
    assert {"lab_npair", "lab_hdml_npair", "lab_hdml_triplet", "lab_hdc", "cub_hdml_npair",
            "cars196_hdml_npair_official", "sop_hdc"} <= set(list_presets())
    p = get_preset("cub_hdml_npair")
    assert (p.model.backbone, p.model.embedding_size, p.data.image_size, p.data.resize) == ("googlenet", 512, 227, 256)
    assert p.hdml.alpha == 90 and p.data.batch_classes * 2 == 128 and p.optim.head_lr_mult == 10
    t = get_preset("cub_hdml_triplet")
    assert t.hdml.alpha == 7 and t.data.batch_classes * 3 == 120
    o = get_preset("cars196_hdml_npair_official")
    assert (o.optim.lr, o.optim.wd_loss, o.model.embedding_size, o.loss.l2_reg, o.hdml.beta) == (7e-5, 5e-3, 128, 3e-3, 1e4)
    assert o.optim.milestones == [5632, 6848] and o.train.steps == 8000 and o.hdml.form == "official"
    c = get_preset("cub_hdml_npair_official")
    assert (c.optim.lr, c.model.embedding_size, c.loss.l2_reg, c.hdml.beta) == (6e-5, 256, 1.5e-2, 5e3)
    h = get_preset("cars196_hdc")
    assert h.optim.optimizer == "sgd" and h.hdc.head_weights == [1.0, 2.0, 3.0]
    assert h.data.batch_classes * h.data.images_per_class == 100 and h.data.image_size == 224


@pytest.mark.parametrize("override, message", [
    ("train.steps=-5", "train.steps=-5; expected an integer > 0"),
    ("train.steps=0", "train.steps=0; expected an integer > 0"),
    ("model.embedding_size=0", "model.embedding_size=0; expected an integer > 0"),
    ("hdc.fractions=[[1]]", r"hdc.fractions=\[\[1\]\]; expected a flat list of numbers in \(0, 1\]"),
    ("hdc.fractions=[1,2]", r"hdc.fractions=\[1, 2\]; expected a flat list of numbers in \(0, 1\]"),
    ("hdc.fractions=[]", r"hdc.fractions=\[\]; expected a flat list of numbers in \(0, 1\]"),
    ("optim.lr=nan", "optim.lr=nan; expected a finite number"),
    ("optim.lr=inf", "optim.lr=inf; expected a finite number"),
    ("optim.lr=-1e-3", r"optim.lr=-0.001; expected a learning rate in \(0, 100\]"),
    ("optim.lr=1e30", r"optim.lr=1e\+30; expected a learning rate in \(0, 100\]"),
    ("hdml.alpha=nan", "hdml.alpha=nan; expected a finite number"),
    ("hdc.head_weights=1,nan,1", "hdc.head_weights=.*expected a finite number"),
    ("data.val_classes=1.5", r"data.val_classes=1.5; expected a fraction in \[0, 1\)"),
    ("train.eval_every=-1", "train.eval_every=-1; expected an integer >= 0"),
    ("train.threads=-2", "train.threads=-2; expected an integer >= 0"),
    ("optim.milestones=[1.5]", "optim.milestones=.*expected a flat list of step numbers"),
])
def test_out_of_range_values_rejected_with_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        apply_overrides(Config(), [override])
    assert "\n" not in str(info.value)


def test_programmatic_config_is_validated_too():
    from hdml_lite.config import validate

    cfg = Config()
    cfg.train.steps = 0
    with pytest.raises(ConfigError, match="train.steps=0"):
        validate(cfg)
    cfg.train.steps = 5
    cfg.optim.lr = float("nan")
    with pytest.raises(ConfigError, match="optim.lr=nan"):
        apply_overrides(cfg, None)   # no overrides: still validated


def test_wrong_type_says_where_the_keys_are():
    with pytest.raises(ConfigError, match=r"train.steps: cannot read 'abc' as int.*python -m hdml_lite config"):
        apply_overrides(Config(), ["train.steps=abc"])


def test_every_preset_is_valid():
    from hdml_lite.config import validate

    for name in list_presets():
        validate(get_preset(name))


def test_every_key_has_a_comment_and_describe_lists_it():
    from hdml_lite.config import describe, key_comments

    comments = key_comments()
    missing = [k for k in valid_keys(Config()) if not comments.get(k)]
    assert missing == [], f"config keys without a trailing comment in config.py: {missing}"
    assert comments["train.threads"].startswith("CPU threads")
    lines = describe()
    assert len(lines) == len(valid_keys(Config()))
    steps = next(line for line in lines if line.startswith("train.steps "))
    assert "= 600" in steps and "# optimisation steps" in steps
    hd = describe(get_preset("lab_hdml_npair"))
    method = next(line for line in hd if line.startswith("train.method "))
    assert '"hdml"' in method and '(default: "baseline")' in method


def test_image_size_below_the_backbone_minimum_names_key_and_minimum():
    from hdml_lite.config import MIN_IMAGE_SIZE

    with pytest.raises(ConfigError, match=r"data.image_size=4: model.backbone=small_cnn accepts images of at least "
                                          r"16x16 pixels; expected data.image_size >= 16"):
        apply_overrides(get_preset("lab_npair"), ["data.image_size=4", "data.resize=4"])
    assert MIN_IMAGE_SIZE["small_cnn"] == 16
    apply_overrides(get_preset("lab_npair"), ["data.image_size=16", "data.resize=16"])


@pytest.mark.parametrize("backbone", ["small_cnn", "googlenet"])
def test_min_image_size_table_is_what_the_backbone_accepts(backbone):
    """The table was measured by scripts/min_input_size.py: the minimum runs, one pixel less does not."""
    import torch
    from hdml_lite.config import MIN_IMAGE_SIZE
    from hdml_lite.models import build_backbone

    ch = 1 if backbone == "small_cnn" else 3
    net = build_backbone(backbone, in_channels=ch, pretrained=False, width=16).train()
    s = MIN_IMAGE_SIZE[backbone]
    with torch.no_grad():
        net(torch.randn(4, ch, s, s))
        with pytest.raises((RuntimeError, ValueError)):
            net(torch.randn(4, ch, s - 1, s - 1))


def test_invert_choices_and_kmeans_auto():
    cfg = apply_overrides(get_preset("lab_npair"), ["data.invert=true", "train.kmeans_restarts=0"])
    assert cfg.data.invert == "true" and cfg.train.kmeans_restarts == 0
    assert Config().train.kmeans_restarts == 0 and Config().data.invert == "auto"
    with pytest.raises(ConfigError, match="data.invert='yes'; expected one of auto, true, false"):
        apply_overrides(cfg, ["data.invert=yes"])
    with pytest.raises(ConfigError, match="train.kmeans_restarts=-1"):
        apply_overrides(cfg, ["train.kmeans_restarts=-1"])
    assert get_preset("cub_npair").train.kmeans_restarts == 10        # the paper presets keep theirs
    assert get_preset("sop_npair").train.kmeans_restarts == 1


def test_batch_classes_is_documented_per_sampler():
    from hdml_lite.config import key_comments

    text = key_comments()["data.batch_classes"]
    assert "npair: classes per batch" in text and "triplet:" in text and "triplets per batch" in text
    assert "m_per_class: classes per batch" in text
