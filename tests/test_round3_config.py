"""Issue 23 (round three), the config faults: 4 (``~`` and ``$VARS`` in every path key), 5 (``compare``
checks the data before the plan and before claiming ``--out``; a comparison that finished no run may be
restarted), 7 (evaluation settings checked with the rest), 9 (a checkpoint's config validated like the
command line's), and the message for a mistyped key (the closest keys, then where to list them all)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdml_lite.cli import main
from hdml_lite.config import Config, ConfigError, PATH_KEYS, apply_overrides, from_dict, to_dict, valid_keys, validate
from hdml_lite.study.compare import claim_out
from hdml_lite.study.lab import FAST

from conftest import TINY

COMPARE_TINY = [o for o in FAST if not o.startswith("data.max_classes")]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


def _get(cfg: Config, key: str):
    sec, k = key.split(".")
    return getattr(getattr(cfg, sec), k)


# ---------------------------------------------------------------- fault 4: every path key, the same way
@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("HDML_T3_DIR", str(tmp_path / "elsewhere"))
    return h


def test_path_keys_are_every_path_setting():
    assert set(PATH_KEYS) == {"data.root", "data.split_file", "data.cache", "model.weights_path", "train.out_dir"}


@pytest.mark.parametrize("key", ["data.root", "data.split_file", "data.cache", "model.weights_path", "train.out_dir"])
def test_tilde_and_variables_expand_in_every_path_key(key, home, tmp_path):
    cfg = apply_overrides(Config(), [f"{key}=~/x/y"])                       # bash leaves ~ after = unexpanded
    assert _get(cfg, key) == str(home / "x" / "y")
    cfg = apply_overrides(Config(), [f"{key}=$HDML_T3_DIR/z"])
    assert _get(cfg, key) == str(tmp_path / "elsewhere" / "z")
    cfg = apply_overrides(Config(), {key: "${HDML_T3_DIR}/w"})
    assert _get(cfg, key) == str(tmp_path / "elsewhere" / "w")
    d = to_dict(Config())                                                   # a config from JSON: the same rule
    sec, k = key.split(".")
    d[sec][k] = "~/j"
    assert _get(from_dict(d), key) == str(home / "j")
    cfg = Config()                                                          # built in Python: validate expands
    setattr(getattr(cfg, sec), k, "~/p")
    assert _get(validate(cfg), key) == str(home / "p")
    setattr(getattr(cfg, sec), k, Path("~/q"))                            # a pathlib.Path too, stored as str
    assert _get(validate(cfg), key) == str(home / "q")


def test_unset_variable_in_a_path_is_one_line_naming_the_key(home):
    with pytest.raises(ConfigError, match=r"train.out_dir='\$HDML_T3_UNSET/x': the environment variable "
                                          r"\$HDML_T3_UNSET is not set"):
        apply_overrides(Config(), ["train.out_dir=$HDML_T3_UNSET/x"])
    assert apply_overrides(Config(), ["data.cache=auto"]).data.cache == "auto"   # words are not paths
    assert apply_overrides(Config(), ["data.root="]).data.root == ""


def test_train_out_dir_with_tilde_makes_no_folder_named_tilde(home, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["train", "--preset", "lab_npair", *TINY, "train.out_dir=~/runs/x"]) == 0
    assert not (work / "~").exists(), "a folder literally named ~ was created"
    assert (home / "runs" / "x" / "metrics.json").is_file()


# ---------------------------------------------------------------- fault 7: evaluation settings up front
@pytest.mark.parametrize("override, expected", [
    ("train.kmeans_seed=-1", "train.kmeans_seed=-1; expected an integer in [0, 2**32)"),
    ("train.kmeans_seed=4294967296", "train.kmeans_seed=4294967296; expected an integer in [0, 2**32)"),
    ("train.seed=4294967296", "train.seed=4294967296; expected an integer in [0, 2**32)"),
    ("hdc.eval_head=0", "hdc.eval_head=0; expected -1"),
    ("hdc.eval_head=4", "hdc.eval_head=4; expected -1"),
])
def test_evaluation_settings_are_checked_with_the_config(override, expected, tmp_path, capsys):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Config(), [override])
    assert expected in str(e.value)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, override, f"train.out_dir={out}"]) == 2
    assert expected in _one_error_line(capsys)
    assert not out.exists(), "refused before training: no folder, no steps lost"


def test_kmeans_seed_range_ends_where_sklearn_accepts():
    with pytest.raises(ConfigError, match="train.kmeans_seed=-1"):
        apply_overrides(Config(), ["train.kmeans_seed=-1"])
    assert apply_overrides(Config(), ["train.kmeans_seed=4294967295"]).train.kmeans_seed == 2**32 - 1
    assert apply_overrides(Config(), ["train.kmeans_seed=0"]).train.kmeans_seed == 0


# ---------------------------------------------------------------- fault 9: a checkpoint's config, strictly
@pytest.mark.parametrize("section, key, value, needle", [
    ("train", "eval_batch", "abc", "train.eval_batch: cannot read 'abc' as int"),
    ("train", "eval_batch", 2.5, "train.eval_batch: expected int, got 2.5"),
    ("data", "dataset", 5, "data.dataset: expected str, got 5"),
    ("train", "kmeans_seed", -1, "train.kmeans_seed=-1; expected an integer in [0, 2**32)"),
    ("hdc", "fractions", "abc", "hdc.fractions"),
])
def test_from_dict_checks_types_and_ranges(section, key, value, needle):
    d = to_dict(Config())
    d[section][key] = value
    with pytest.raises(ConfigError) as e:
        from_dict(d)
    assert needle in str(e.value)


def test_from_dict_unknown_section_and_bad_section():
    with pytest.raises(ConfigError, match="unknown config section 'trian'; did you mean train"):
        from_dict({"trian": {}})
    with pytest.raises(ConfigError, match="config section train=5: expected a dict"):
        from_dict({"train": 5})


def test_validate_checks_types_of_a_config_built_in_python():
    cfg = Config()
    cfg.train.eval_batch = "abc"
    with pytest.raises(ConfigError, match=r"train.eval_batch='abc' \(str\); expected int"):
        validate(cfg)
    cfg = Config()
    cfg.hdml.alpha = 7              # an int where a float is expected is fine
    cfg.train.steps = np.int64(5)   # numpy integers too
    validate(cfg)


def test_eval_of_a_checkpoint_with_a_wrong_typed_value_is_one_line_exit_2(tmp_path, tiny_overrides, capsys):
    assert main(["train", "--preset", "lab_npair", *tiny_overrides]) == 0
    ckpt = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    state["config"]["train"]["eval_batch"] = "abc"          # a hand edit
    edited = tmp_path / "edited.pt"
    torch.save(state, edited)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(edited)]) == 2
    err = _one_error_line(capsys)
    assert str(edited) in err and "train.eval_batch" in err and "'abc'" in err


# ---------------------------------------------------------------- messages: a mistyped key
@pytest.mark.parametrize("typed, suggested", [
    ("data.batch_class", "data.batch_classes"),
    ("train.batch_classes", "data.batch_classes"),        # the right field in the wrong section
    ("hdml.alhpa", "hdml.alpha"),
])
def test_mistyped_key_suggests_the_closest_and_where_to_list_them(typed, suggested, tmp_path, capsys):
    assert main(["train", "--preset", "lab_npair", *TINY, f"{typed}=3", f"train.out_dir={tmp_path / 'r'}"]) == 2
    err = _one_error_line(capsys)
    assert f"did you mean {suggested}" in err and "python -m hdml_lite config --keys" in err
    assert "hdml.softmax_factor" not in err and len(err) < 300, "not every valid key"


def test_config_keys_lists_every_key(capsys):
    assert main(["config", "--keys"]) == 0
    assert capsys.readouterr().out.split() == valid_keys(Config())


# ---------------------------------------------------------------- fault 5: compare checks the data first
def make_rgb_folder(root: Path, n_classes: int = 20, per_class: int = 4, size: int = 12) -> Path:
    """``n_classes`` classes of colour images (the three channels differ)."""
    rng = np.random.default_rng(1)
    for c in range(n_classes):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (size, size, 3))
        for i in range(per_class):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img, "RGB").save(d / f"{i}.png")
    return root


PRETRAINED = [o for o in COMPARE_TINY if o not in ("model.pretrained=false", "model.width=4")]  # the grey CNN


def test_compare_plan_fails_on_rgb_data_for_the_grey_pretrained_cnn(tmp_path, capsys):
    data = make_rgb_folder(tmp_path / "imgs")
    out = tmp_path / "cmp"
    assert main(["compare", "lab_hdml_npair", "lab_npair", "--data", f"folder:{data}", "--plan", "--out", str(out)]
                + PRETRAINED) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and "data.channels=1" in err, err
    assert "lab_hdml_npair, lab_npair" in err
    assert "comparison plan" not in captured.out, "the plan was printed although every run would fail"
    assert not out.exists()


def test_compare_refused_by_the_data_claims_no_out_and_a_failed_one_may_restart(tmp_path, capsys):
    data = make_rgb_folder(tmp_path / "imgs")
    out = tmp_path / "cmp"
    argv = ["compare", "lab_hdml_npair", "lab_npair", "--data", f"folder:{data}", "--out", str(out), "--jobs", "0",
            "--seeds", "2", "--max-seeds", "2"]
    assert main(argv + PRETRAINED) == 2
    assert "data.channels=1" in _one_error_line(capsys)
    assert not (out / "compare.json").exists(), "a comparison refused by the data claimed --out"
    # an earlier comparison (other settings) that claimed --out and then finished no run, one run half done
    claim_out(out, {"presets": ["lab_hdml_npair", "lab_npair"], "data": f"folder:{data}", "overrides": ["x=1"]})
    half = out / "runs" / "select_lr" / "lab_npair__lr0.001__seed0"
    half.mkdir(parents=True)
    (half / "checkpoint.pt").write_bytes(b"from the other settings")
    fixed = ["data.channels=1", "model.pretrained=false", "model.width=4"]
    assert main(argv + COMPARE_TINY + fixed) == 0
    captured = capsys.readouterr()
    assert "had finished no run: replaced by this one" in captured.out
    assert json.loads((out / "compare.json").read_text())["identity"]["overrides"] == COMPARE_TINY + fixed
    assert (out / "verdicts.csv").is_file()


def test_compare_out_of_a_comparison_that_finished_no_run_is_taken_over(tmp_path, capsys):
    out = tmp_path / "cmp"
    claim_out(out, {"presets": ["a", "b"], "overrides": []})
    half = out / "runs" / "select_lr" / "a__lr0.001__seed0"
    half.mkdir(parents=True)
    (half / "checkpoint.pt").write_bytes(b"a run of the other settings, not finished")
    claim_out(out, {"presets": ["a", "b"], "overrides": ["data.channels=1"]})
    assert "had finished no run: replaced by this one" in capsys.readouterr().out
    assert json.loads((out / "compare.json").read_text())["identity"]["overrides"] == ["data.channels=1"]
    assert not half.exists(), "its unfinished run would be refused later as a run of other settings"


def test_compare_out_with_a_finished_run_is_still_refused(tmp_path):
    out = tmp_path / "cmp"
    claim_out(out, {"presets": ["a", "b"]})
    done = out / "runs" / "select_lr" / "a__lr0.001__seed0"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"holds another comparison .*1 of its runs finished"):
        claim_out(out, {"presets": ["a", "c"]})
    assert (done / "metrics.json").is_file()
    claim_out(out, {"presets": ["a", "b"]})                  # the same comparison: resumes
