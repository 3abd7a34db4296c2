import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdml_lite.config import ConfigError, apply_overrides
from hdml_lite.presets import get_preset
from hdml_lite.training.checkpoint import load_checkpoint, save_checkpoint
from hdml_lite.training.method import NonFiniteLossError
from hdml_lite.training.trainer import train

from conftest import TINY, make_flaky_metric_loss

REPO = Path(__file__).resolve().parents[1]


def _cli_train(out, preset="lab_npair", env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "hdml_lite", "train", "--preset", preset, *TINY, f"train.out_dir={out}"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("preset", ["lab_npair", "lab_hdml_npair"])
def test_killed_run_resumes_to_identical_weights(tmp_path, preset):
    full = _cli_train(tmp_path / "full", preset)
    assert full.returncode == 0, full.stderr[-2000:]
    killed = _cli_train(tmp_path / "resumed", preset, {"HDML_KILL_AT_STEP": "5"})
    assert killed.returncode != 0, "the kill hook should have killed the run"
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 4
    resumed = _cli_train(tmp_path / "resumed", preset)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    for name, sd in a["method"]["modules"].items():
        for k, v in sd.items():
            assert torch.equal(v, b["method"]["modules"][name][k]), f"{name}.{k} differs after resume"
    ma = json.loads((tmp_path / "full" / "metrics.json").read_text())["test"]
    mb = json.loads((tmp_path / "resumed" / "metrics.json").read_text())["test"]
    assert ma == mb


def test_history_metrics_and_config_check(tmp_path, tiny_overrides):
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides)
    res = train(cfg)
    assert len(res.history["train"]) == 6
    steps = sorted({e["step"] for e in res.history["eval"]})
    assert steps == [3, 6]
    assert all(math.isfinite(v) for v in res.metrics.values())
    assert set(res.metrics) >= {"r1", "r2", "r4", "r8", "nmi", "f1", "map_r"}
    saved = json.loads((res.out_dir / "history.json").read_text())
    assert len(saved["train"]) == 6
    state = load_checkpoint(res.out_dir / "checkpoint.pt")
    assert state["config"]["train"]["steps"] == 6 and state["step"] == 6
    other = apply_overrides(cfg, ["optim.lr=0.5"])
    with pytest.raises(ConfigError, match="optim.lr"):
        train(other)


def test_non_finite_loss_stops_after_checkpoint(tmp_path, tiny_overrides, monkeypatch):
    import hdml_lite.losses as losses

    real = losses.metric_loss
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(losses, "metric_loss", flaky)
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides)
    with pytest.raises(NonFiniteLossError, match=r"'j_m'.*step 3.*Checkpoint of the last good state"):
        train(cfg)
    state = load_checkpoint(Path(cfg.train.out_dir) / "checkpoint.pt")
    assert state["step"] == 3
    for sd in state["method"]["modules"].values():
        assert all(torch.isfinite(v.float()).all() for v in sd.values())


def test_checkpoint_write_is_atomic(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"step": 2, "x": Boom()})
    assert load_checkpoint(path, kit=False)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_callback_sees_every_step_and_threads_line(tmp_path, tiny_overrides, capsys):
    calls = []
    before = torch.get_num_threads()

    def probe(step, method, x, labels, logs):
        calls.append((step, type(method).__name__, tuple(x.shape), labels.tolist(), dict(logs),
                      torch.get_num_threads()))

    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides)
    res = train(cfg, callback=probe)
    assert [c[0] for c in calls] == list(range(6))
    assert all(c[1] == "BaselineMethod" for c in calls)
    assert calls[0][2][0] == len(calls[0][3]) == 8          # 4 classes x 2 images
    assert [c[4]["loss"] for c in calls] == [r["loss"] for r in res.history["train"]]
    assert {c[5] for c in calls} == {1}, "auto threads on CPU should be 1 during the run"
    assert torch.get_num_threads() == before, "the previous thread setting is restored"
    assert "threads: 1 (train.threads=0 -> auto)" in capsys.readouterr().out
    train(apply_overrides(cfg, [f"train.out_dir={tmp_path / 'two'}", "train.threads=2"]),
                 callback=lambda *a: calls.append(torch.get_num_threads()))
    assert calls[-1] == 2 and "threads: 2 (train.threads=2 -> as set)" in capsys.readouterr().out


def test_resume_ignores_non_identity_keys(tmp_path, tiny_overrides, capsys):
    from hdml_lite.training.trainer import NOT_IDENTITY, identity_diff

    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.steps=4"])
    train(cfg)
    changed = apply_overrides(cfg, ["train.steps=6", "train.eval_every=2", "train.ckpt_every=3",
                                    "train.eval_batch=32", "train.threads=2", "data.num_workers=0",
                                    "train.progress=false", "name=renamed"])
    with pytest.raises(ConfigError, match=r"train.steps=4 -> 6"):
        train(changed)                         # steps are part of the identity
    changed = apply_overrides(changed, ["train.steps=4"])
    capsys.readouterr()
    train(changed)
    assert "resumed from" in capsys.readouterr().out
    state = load_checkpoint(Path(cfg.train.out_dir) / "checkpoint.pt")
    assert state["config"]["train"]["eval_batch"] == 32 and state["config"]["name"] == "renamed"
    # unit: keys missing from an older checkpoint count as their default
    saved = state["config"]
    del saved["train"]["amp"]
    assert identity_diff(saved, changed) == []
    saved["model"]["embedding_size"] = 99
    assert identity_diff(saved, changed) == ["model.embedding_size=99 -> 8"]
    assert {"train.progress", "train.out_dir", "data.skip_corrupt", "train.device"} <= NOT_IDENTITY
    assert "optim.lr" not in NOT_IDENTITY and "train.steps" not in NOT_IDENTITY


def test_partial_tmp_files_are_removed(tmp_path, tiny_overrides):
    from hdml_lite.training.checkpoint import save_checkpoint

    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.steps=2", "train.eval_every=0"])
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True)
    stale = [out / "checkpoint.pt.abc123.tmp", out / "history.json.x.tmp"]
    for p in stale:
        p.write_bytes(b"partial")
    keep = out / "notes.txt"
    keep.write_text("mine")
    train(cfg)
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
    (out / "checkpoint.pt.zz.tmp").write_bytes(b"partial")
    save_checkpoint(out / "checkpoint.pt", {"step": 1})
    assert sorted(p.name for p in out.glob("*.tmp")) == []


def test_checkpoints_load_with_weights_only(tmp_path, tiny_overrides):
    import numpy as np

    from hdml_lite.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "c.pt", {"a": np.float64(1.5), "b": np.arange(3), "c": (1, np.int64(2)),
                                         "d": {"e": [np.float32(0.25)]}, "t": torch.ones(2)})
    s = torch.load(tmp_path / "c.pt", weights_only=True)
    assert s["a"] == 1.5 and type(s["a"]) is float and s["b"] == [0, 1, 2] and s["c"] == [1, 2]
    assert s["d"]["e"] == [0.25] and torch.equal(s["t"], torch.ones(2))
    for preset in ("lab_hdml_npair", "lab_hdc"):
        cfg = apply_overrides(get_preset(preset), tiny_overrides + [
            "train.steps=2", "train.eval_every=0", f"train.out_dir={tmp_path / preset}"])
        train(cfg)
        state = torch.load(tmp_path / preset / "checkpoint.pt", weights_only=True)   # the kit's own content
        assert state["step"] == 2 and state["config"]["train"]["method"] == cfg.train.method
        assert all(isinstance(r["loss"], float) for r in state["history"]["train"])


def test_registry_builds_methods_and_lists_valid_ones(tiny_overrides):
    import hdml_lite.training as training_pkg
    from hdml_lite.training.method import METHOD_REGISTRY, BaselineMethod, register_method
    from hdml_lite.training.trainer import build_method

    assert {"baseline", "hdml", "hdc"} <= set(METHOD_REGISTRY)
    assert METHOD_REGISTRY["baseline"] is BaselineMethod

    @register_method("test_double")
    class Double(BaselineMethod):
        pass

    try:
        cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.method=test_double"])
        assert type(build_method(cfg, 10, 1, torch.device("cpu"))) is Double
        with pytest.raises(ConfigError, match=r"train.method='nope'; expected one of baseline, hdc, hdml"):
            build_method(apply_overrides(cfg, ["train.method=nope"]), 10, 1, torch.device("cpu"))
        with pytest.raises(ValueError, match="already registered"):
            register_method("test_double")(type("Other", (BaselineMethod,), {}))
    finally:
        del METHOD_REGISTRY["test_double"]
    # the training package builds methods from the registry only: no import of hdml/ or hdc/
    for src in Path(training_pkg.__file__).parent.glob("*.py"):
        text = src.read_text()
        assert "from ..hdml" not in text and "from ..hdc" not in text, src


def test_non_finite_checkpoint_is_the_last_good_state(tmp_path, tiny_overrides, monkeypatch):
    """The NaN at step 3 is raised before the update: the saved weights equal a clean 3-step run."""
    clean = train(apply_overrides(get_preset("lab_npair"), tiny_overrides + [
        "train.steps=3", f"train.out_dir={tmp_path / 'clean'}"]))
    make_flaky_metric_loss(monkeypatch, at_call=4, factor=float("nan"))
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.eval_every=0"])
    with pytest.raises(NonFiniteLossError):
        train(cfg)
    state = load_checkpoint(Path(cfg.train.out_dir) / "checkpoint.pt")
    good = clean.method.state_dict()["modules"]["model"]
    for k, v in state["method"]["modules"]["model"].items():
        assert torch.isfinite(v.float()).all() and torch.equal(v, good[k]), k
