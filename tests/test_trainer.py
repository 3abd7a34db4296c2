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

from conftest import TINY

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
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
