import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdml_lite.cli import main

from conftest import TINY, make_flaky_metric_loss

REPO = Path(__file__).resolve().parents[1]


def test_presets_listed(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.split()
    assert "lab_hdml_npair" in out and "cub_hdml_triplet" in out


def test_bad_key_and_preset_are_clear_errors(capsys):
    assert main(["train", "--preset", "lab_npair", "hdml.alhpa=3"]) == 2
    assert "unknown config key 'hdml.alhpa'" in capsys.readouterr().err
    assert main(["train", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_demo_fast_prints_table_and_plot(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "hdml_lite", "demo", "--fast", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "lab_npair" in r.stdout and "lab_hdml_npair" in r.stdout and "NMI" in r.stdout
    assert (out / "demo_curves.png").stat().st_size > 10_000
    assert (out / "demo_mechanism.png").stat().st_size > 10_000
    for line in ("a. classifier learns", "b. labels kept", "c. synthetics count", "d. hardness adapts",
                 "e. harder, and preserved", "engaged (v2, all five)", "v1 (an earlier, looser set of conditions"):
        assert line in r.stdout


def test_demo_runs_side_by_side_gives_the_same_numbers(tmp_path, capsys):
    """The demo's two runs in two processes (one thread each) give the numbers they give in-process."""
    from hdml_lite.demo import run_demo

    apart = run_demo(fast=True, out_dir=str(tmp_path / "apart"), jobs=2)
    assert "side by side" in capsys.readouterr().out
    together = run_demo(fast=True, out_dir=str(tmp_path / "together"), jobs=1)
    for name in together:
        assert apart[name]["metrics"]["r1"] == pytest.approx(together[name]["metrics"]["r1"], abs=1e-6)
        assert "acc_real" in apart[name]["history"]["train"][-1] or "hdml" not in name


def test_eval_checkpoint(tmp_path, tiny_overrides, capsys):
    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset
    from hdml_lite.training.trainer import train

    res = train(apply_overrides(get_preset("lab_npair"), tiny_overrides))
    assert main(["eval", "--checkpoint", str(res.out_dir / "checkpoint.pt"), "--json"]) == 0
    out = capsys.readouterr().out
    assert "R1" in out and '"nmi"' in out


# ---- bad inputs: one line naming the value and what was expected, exit code 2, no traceback ----


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


@pytest.mark.parametrize("override, message", [
    ("train.steps=-5", "train.steps=-5; expected an integer > 0"),
    ("train.steps=0", "train.steps=0; expected an integer > 0"),
    ("model.embedding_size=0", "model.embedding_size=0; expected an integer > 0"),
    ("hdc.fractions=[[1]]", "hdc.fractions=[[1]]; expected a flat list of numbers in (0, 1]"),
    ("optim.lr=nan", "optim.lr=nan; expected a finite number"),
    ("train.steps=abc", "cannot read 'abc' as int (a whole number); `python -m hdml_lite config` lists every key"),
    ("train.method=nope", "train.method='nope'; expected one of baseline, hdc, hdml"),
])
def test_bad_values_exit_2_and_leave_no_folder(tmp_path, capsys, override, message):
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, override, f"train.out_dir={out}"]) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists(), "a rejected run must not leave an (empty) out_dir behind"


class _Evil:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp_path):
    import pickle

    marker = tmp_path / "PWNED"
    files = []
    for protocol in (2, pickle.DEFAULT_PROTOCOL):
        files.append(tmp_path / f"plain_pickle_{protocol}.pt")
        files[-1].write_bytes(pickle.dumps({"config": _Evil(marker), "step": 0, "method": {}}, protocol=protocol))
    files.append(tmp_path / "torch_save.pt")
    torch.save({"config": _Evil(marker), "step": 0, "method": {}}, files[-1])
    return marker, files


def test_malicious_checkpoint_never_runs_eval(tmp_path):
    marker, files = _evil_files(tmp_path)
    for f in files:
        r = subprocess.run([sys.executable, "-m", "hdml_lite", "eval", "--checkpoint", str(f)], cwd=REPO,
                           capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode == 2, r.stderr[-2000:]
        assert not marker.exists(), "loading the checkpoint ran code from it"
        err = r.stderr.strip()
        assert err.count("\n") == 0 and err.startswith("error: checkpoint "), err
        if f.name in ("plain_pickle_2.pt", "torch_save.pt"):   # formats torch.load reads: the global is named
            assert "holds Python objects other than tensors and plain data (it asks for posix.system)" in err, err
        else:                                                   # protocol 4+ pickles are not torch files
            assert "is unreadable: not a torch checkpoint" in err, err
        assert "delete it" not in err


def test_malicious_checkpoint_never_runs_on_resume(tmp_path, capsys):
    marker, files = _evil_files(tmp_path)
    for f in files:
        out = tmp_path / f"run_{f.stem}"
        out.mkdir()
        (out / "checkpoint.pt").write_bytes(f.read_bytes())
        assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={out}"]) == 2
        err = _one_error_line(capsys)
        assert not marker.exists(), "resuming ran code from the checkpoint"
        assert ("refusing to load it" in err or "unreadable" in err) and "delete it (or use another train.out_dir)" in err
        assert (out / "checkpoint.pt").read_bytes() == f.read_bytes(), "nothing is overwritten"


def test_eval_rejects_files_that_are_not_kit_checkpoints(tmp_path, capsys):
    from hdml_lite.config import Config, to_dict

    cases = {}
    torch.save({"a": torch.zeros(2)}, tmp_path / "tensors.pt")
    cases["tensors.pt"] = "is a torch file but not an hdml_lite checkpoint: it holds a dict with keys ['a']"
    torch.save({"step": 3, "history": {}}, tmp_path / "partial.pt")
    cases["partial.pt"] = "expected the keys config, step, method"
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    cases["junk.pt"] = "is unreadable: not a torch checkpoint, or truncated"
    cases["missing.pt"] = "does not exist; expected a checkpoint.pt file"
    (tmp_path / "adir").mkdir()
    cases["adir"] = "is a directory; expected a checkpoint file"
    for name, message in cases.items():
        assert main(["eval", "--checkpoint", str(tmp_path / name)]) == 2, name
        err = _one_error_line(capsys)
        assert message in err, err
        assert "delete it" not in err, "eval must not tell the user to delete their file"
        assert "weights_only" not in err, "never advise loading an unknown file with weights_only=False"
    # a kit checkpoint of a run trained without validation classes has no val split
    torch.save({"config": to_dict(Config()), "step": 0, "method": {}}, tmp_path / "noval.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "noval.pt"), "--split", "val"]) == 2
    assert "trained without validation classes (data.val_classes=0)" in _one_error_line(capsys)


def test_unreadable_resume_checkpoint_says_delete_it(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\x00" * 100)
    assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={out}"]) == 2
    err = _one_error_line(capsys)
    assert "is unreadable" in err and "delete it (or use another train.out_dir) to start the run again" in err


def _unwritable(tmp_path):
    """A destination that cannot be written: a chmod 0o555 folder (not as root, where chmod
    does not block writes), else a path below a regular file (NotADirectoryError)."""
    if os.geteuid() != 0:
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "sub"
    f = tmp_path / "a_file"
    f.write_text("x")
    return f / "sub"


def test_unwritable_destinations_are_one_line(tmp_path, capsys):
    dest = _unwritable(tmp_path)
    assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={dest}"]) == 2
    err = _one_error_line(capsys)
    assert f"train.out_dir={str(dest)!r} is not a writable folder" in err
    assert main(["demo", "--fast", "--out", str(dest)]) == 2
    assert f"demo --out={str(dest)!r} is not a writable folder" in _one_error_line(capsys)
    assert main(["download", "cub", "--root", str(dest)]) == 2
    assert f"download --root={str(dest)!r} is not a writable folder" in _one_error_line(capsys)


def test_config_command_lists_every_key(capsys):
    from hdml_lite.config import Config, valid_keys

    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for key in valid_keys(Config()):
        assert f"\n{key} " in out, key
    assert "train.threads" in out and "0: auto" in out
    assert main(["config", "--preset", "lab_hdml_npair"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("train.method "))
    assert '"hdml"' in line and '(default: "baseline")' in line
    assert main(["config", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in _one_error_line(capsys)


def test_eval_checkpoint_that_does_not_fit_the_model(tmp_path, capsys):
    from hdml_lite.config import apply_overrides, to_dict
    from hdml_lite.presets import get_preset

    cfg = apply_overrides(get_preset("lab_npair"), TINY)
    torch.save({"config": to_dict(cfg), "step": 1, "method": {"modules": {"model": {"w": torch.zeros(1)}},
                                                             "optimizers": {}}}, tmp_path / "odd.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "odd.pt")]) == 2
    assert "does not fit the baseline model built from its config" in _one_error_line(capsys)


def test_non_finite_loss_is_one_line_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    make_flaky_metric_loss(monkeypatch, at_call=3, factor=float("inf"))
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, "train.eval_every=0", f"train.out_dir={out}"]) == 2
    err = _one_error_line(capsys)
    assert "non-finite loss term 'j_m'" in err and "at step 2" in err and "no update was applied" in err
    assert f"Checkpoint of the last good state saved to {out / 'checkpoint.pt'}" in err
    assert (out / "checkpoint.pt").is_file()
