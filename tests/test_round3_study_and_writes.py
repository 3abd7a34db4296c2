"""Issue 23 (round three): the study's test mode never writes into the committed results; files
follow the umask; Ctrl-C keeps the step it reached; messages a new user stumbled on."""
import hashlib
import shutil
from pathlib import Path

import pytest

from hdml_lite import results_data
from hdml_lite.study.__main__ import main as study_main
from hdml_lite.study.plan import Choices

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- fault 1: a fast study and results/

@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout as the trial had it: the committed results/ (a copy) in the working directory,
    which is also the kit's own results/, and the packaged copy (a copy). Returns (results, package)."""
    repo = tmp_path / "checkout"
    res = repo / "results"
    shutil.copytree(REPO / "results", res, ignore=shutil.ignore_patterns("compare_*", "scratch_v1", "*.png"))
    pkg = tmp_path / "results_data"
    shutil.copytree(results_data.PACKAGED_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(results_data, "PACKAGED_DIR", pkg)
    monkeypatch.setattr(results_data, "repo_results", lambda: res)
    monkeypatch.chdir(repo)
    return res, pkg


def _hashes(*folders) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _no_training(monkeypatch):
    """The study's rounds train nothing (the export of a fast study is what wrote into results/)."""
    from hdml_lite.study import lab

    monkeypatch.setattr(lab, "run_rounds", lambda s, jobs, log, bar: {"rounds": [], "stage_s": {}})


def test_fast_lab_study_exports_elsewhere(checkout, monkeypatch, capsys):
    """`python -m hdml_lite.study lab --fast` exported into results/ (and the packaged copy); here
    the rounds train nothing, and results/ holds no study.json (so nothing else refuses the export)."""
    res, pkg = checkout
    (res / "study.json").unlink()
    before = _hashes(res, pkg)
    _no_training(monkeypatch)
    assert study_main(["lab", "--fast"]) == 0
    assert _hashes(res, pkg) == before
    assert "writing to runs/trial/lab," in capsys.readouterr().out
    assert Path("runs/trial/lab/lab_table.csv").is_file() and Path("runs/trial/lab/study.json").is_file()


@pytest.mark.slow
def test_fast_lab_study_leaves_the_committed_results_alone(checkout, monkeypatch, capsys):
    """The trial's case: `python -m hdml_lite.study lab --fast` in a checkout (a 41-run toy study)
    rewrote every results/ file and the packaged copy. Now it writes to runs/trial/lab and says so
    (slow: the whole fast study, ~1 min)."""
    res, pkg = checkout
    before = _hashes(res, pkg)
    assert study_main(["lab", "--fast"]) == 0
    assert _hashes(res, pkg) == before
    out = capsys.readouterr().out
    where = [ln for ln in out.splitlines() if ln.startswith("a fast or partial study")]
    assert len(where) == 1 and "writing to runs/trial/lab," in where[0], out[-2000:]
    assert Path("runs/trial/lab/lab_table.csv").is_file() and Path("runs/trial/lab/study.json").is_file()


def test_partial_lab_study_writes_elsewhere(checkout, monkeypatch, capsys):
    res, pkg = checkout
    before = _hashes(res, pkg)
    _no_training(monkeypatch)
    # --force: a partial export may replace a complete study, but never the committed one
    assert study_main(["lab", "--steps", "3", "--stages", "select_lr", "--lrs", "1e-3", "--jobs", "0", "--force"]) == 0
    assert _hashes(res, pkg) == before
    assert "(--steps --lrs --stages): writing to runs/trial/lab," in capsys.readouterr().out
    assert Path("runs/trial/lab/study.json").is_file()


@pytest.mark.parametrize("argv", [["lab", "--fast", "--out", "results"],
                                  ["lab", "--fast", "--regime", "scratch", "--out", "results/scratch"],
                                  ["lab", "--steps", "3", "--out", "results"],
                                  ["hypotheses", "--fast", "--out", "results"],
                                  ["hdc", "--fast", "--out", "results"]],
                         ids=["lab", "scratch", "steps", "hypotheses", "hdc"])
def test_fast_study_into_results_is_refused_in_one_line(checkout, capsys, argv):
    res, pkg = checkout
    before = _hashes(res, pkg)
    assert study_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: --out {argv[-1]}: a fast or partial "), err
    assert "never writes into the committed results folder" in err, err
    assert _hashes(res, pkg) == before and not Path("runs").exists()


def test_fast_hypotheses_leave_the_committed_results_alone(checkout, monkeypatch, capsys):
    """`study hypotheses --fast` overwrote results/hypotheses.csv and hypotheses.json."""
    from hdml_lite.study import compare

    res, pkg = checkout
    before = _hashes(res, pkg)
    seen = []

    def fake_compare(presets, data, overrides, out, **kw):
        seen.append(out)
        return {"verdicts": [], "choices": Choices(), "table": []}

    monkeypatch.setattr(compare, "run_compare", fake_compare)
    assert study_main(["hypotheses", "--fast"]) == 0
    assert _hashes(res, pkg) == before
    assert Path("runs/trial/hypotheses/hypotheses.csv").is_file()
    assert seen and all(Path(f).parent == Path("runs/trial/hypotheses/runs") for f in seen), seen
    assert "writing to runs/trial/hypotheses," in capsys.readouterr().out


def test_fast_hdc_study_leaves_the_committed_results_alone(checkout, capsys):
    """`study hdc --fast` added results/hdc_table.csv."""
    res, pkg = checkout
    before = _hashes(res, pkg)
    assert study_main(["hdc", "--fast"]) == 0
    assert _hashes(res, pkg) == before
    assert Path("runs/trial/hdc/hdc_table.csv").is_file()
    assert "writing to runs/trial/hdc," in capsys.readouterr().out


def test_study_changes_names_what_makes_a_study_partial(tmp_path):
    from hdml_lite.study.lab import make_settings
    from hdml_lite.study.trial import study_changes

    runs = tmp_path / "runs"
    full = make_settings("lab", runs)
    assert study_changes(full, full) == []
    assert study_changes(make_settings("scratch", tmp_path / "elsewhere"), make_settings("scratch", runs)) == []
    assert study_changes(make_settings("lab", runs, lrs=full.lrs), full) == []          # the default grid, given
    assert study_changes(make_settings("lab", runs, fast=True), full) == ["--fast"]
    assert study_changes(make_settings("lab", runs, 50), full) == ["--steps"]
    assert study_changes(make_settings("lab", runs, stages=("final",), select_seeds=7), full) == ["--select-seeds",
                                                                                                 "--stages"]


def test_export_refuses_a_fast_study_into_the_committed_results(checkout, tmp_path):
    """The library path too (``export`` of fast settings into results/): refused before writing."""
    from hdml_lite.config import ConfigError
    from hdml_lite.study.export import export
    from hdml_lite.study.lab import make_settings

    res, pkg = checkout
    before = _hashes(res, pkg)
    with pytest.raises(ConfigError, match="never writes into the committed results folder"):
        export(res, make_settings("lab", tmp_path / "runs", fast=True))
    assert _hashes(res, pkg) == before


# ----------------------------------------------------------------------------- fault 11: file modes follow the umask

@pytest.fixture
def umask():
    """Set the process's umask for a test (``umask(0o002)``), restored afterwards."""
    import os

    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, mode):
    """Files were written with mode 0600 (mkstemp's), whatever the umask: a shared results folder
    was unreadable by the group."""
    import torch

    from hdml_lite.file_mode import new_file_mode
    from hdml_lite.training.checkpoint import save_checkpoint, write_json

    umask(mask)
    assert new_file_mode() == mode
    write_json(tmp_path / "metrics.json", {"r1": 0.5})
    save_checkpoint(tmp_path / "checkpoint.pt", {"w": torch.zeros(2)})
    for name in ("metrics.json", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_run_and_the_glyph_cache_follow_the_umask(tmp_path, umask, monkeypatch):
    """The trial's case: a run's files under umask 022 are 0644 (they were 0600); the glyph cache
    under umask 002 is group-writable like any new file (it was fixed at 0644)."""
    import numpy as np

    from hdml_lite.cli import main
    from hdml_lite.data import glyphs

    umask(0o022)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *_TINY, "train.steps=2", f"train.out_dir={out}"]) == 0
    for name in ("checkpoint.pt", "history.json", "metrics.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
    umask(0o002)
    monkeypatch.setattr(glyphs, "generate_glyphs", lambda per_class, size, which="lab": (
        np.zeros((2, 1, size, size), np.uint8), np.zeros(2, np.int64), ["a"]))
    glyphs._load_or_generate(tmp_path / "cache", 2, 8)
    (path,) = (tmp_path / "cache").rglob("*.npz")
    assert path.stat().st_mode & 0o777 == 0o664


# ----------------------------------------------------------------------------- fault 11: Ctrl-C keeps the step reached

_TINY = ["train.eval_every=0", "train.ckpt_every=100", "data.max_classes=10", "data.max_per_class=6",
         "data.batch_classes=4", "model.width=4", "model.pretrained=false", "model.embedding_size=8",
         "train.progress=false", "train.device=cpu"]


def _interrupt_in_step(monkeypatch, at_step: int):
    """Ctrl-C (SIGINT to this process) in the middle of ``train_step`` of step ``at_step``."""
    import os
    import signal

    from hdml_lite.training.method import BaselineMethod

    real = BaselineMethod.train_step

    def train_step(self, x, labels, step):
        if step == at_step:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, x, labels, step)

    monkeypatch.setattr(BaselineMethod, "train_step", train_step)


def test_ctrl_c_writes_a_checkpoint_of_the_step_reached_and_resumes_identically(tmp_path, monkeypatch, capsys):
    """With the presets' checkpoint every 100 steps, Ctrl-C lost every step since the last one.
    Now the step being trained finishes, is saved, and the rerun ends with the weights of an
    uninterrupted run."""
    import signal

    import torch

    from hdml_lite.cli import main
    from hdml_lite.training.checkpoint import load_checkpoint

    run = ["train", "--preset", "lab_npair", *_TINY, "train.steps=8"]
    assert main(run + [f"train.out_dir={tmp_path / 'whole'}"]) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_step(m, 4)
        capsys.readouterr()
        assert main(run + [f"train.out_dir={out}"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted at step 5; the checkpoint at step 5 is kept; run the same command to resume", err
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 5 and [r["step"] for r in state["history"]["train"]] == [0, 1, 2, 3, 4]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert main(run + [f"train.out_dir={out}"]) == 0
    assert "at step 5" in capsys.readouterr().out
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["method"]["modules"]
    b = load_checkpoint(out / "checkpoint.pt")["method"]["modules"]
    for name in a:
        for k, v in a[name].items():
            assert torch.equal(v, b[name][k]), f"{name}.{k}"


def test_ctrl_c_during_an_evaluation_keeps_the_last_periodic_checkpoint(tmp_path, monkeypatch, capsys):
    """An evaluation cut short is not a clean state (its rows belong to the step): nothing new is
    written, the message names the checkpoint on disk."""
    import os
    import signal

    from hdml_lite.cli import main
    from hdml_lite.training import trainer
    from hdml_lite.training.checkpoint import load_checkpoint

    real = trainer.evaluate

    def evaluate(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(trainer, "evaluate", evaluate)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *_TINY, "train.steps=8", "train.eval_every=4",
                 "train.ckpt_every=2", f"train.out_dir={out}"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted at step 4; the checkpoint at step 2 is kept; run the same command to resume", err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2


# ----------------------------------------------------------------------------- fault 11: the refused out_dir is named

def test_out_dir_of_a_run_with_other_settings_is_named(tmp_path, monkeypatch, capsys):
    from hdml_lite.cli import main

    monkeypatch.chdir(tmp_path)
    run = ["train", "--preset", "lab_npair", *_TINY, "train.steps=2", "train.out_dir=run"]
    assert main(run) == 0
    capsys.readouterr()
    assert main(run + ["train.seed=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"error: train.out_dir='run' ({tmp_path / 'run'}) holds a run with other settings "
                          f"(train.seed=0 -> 3)"), err


# ----------------------------------------------------------------------------- messages a new user stumbled on

def test_engagement_block_says_v1_is_another_set_of_conditions():
    """"(v1, the first four loose conditions: no)" under a-d, all "yes", read as a contradiction."""
    from hdml_lite.hdml.diagnostics import engagement, engagement_lines

    rows = [{"step": i, "acc_real": 0.9, "acc_syn": 0.8, "weight_syn": 0.5, "pull_factor": 0.5, "hard_gen": 1.2,
             "hard_real": 1.5, "hard_aug": 1.2} for i in range(40)]
    last = engagement_lines(engagement(rows, 0.1))[-1]
    assert last.startswith("engaged (v2, all five)") and "first four" not in last, last
    assert last.endswith("v1 (an earlier, looser set of conditions, docs/METHOD.md §5.3): yes"), last


def test_budget_never_compares_the_final_step_with_itself():
    """`train.eval_every=0` (train.steps=3): the budget line said "step 3: ... -> step 3: ..."."""
    from hdml_lite.training.budget import budget_check, budget_line

    assert budget_check([{"step": 3, "split": "test", "r1": 0.5}], steps=3) is None
    line = budget_line(None)
    assert "only the final one" in line and "train.eval_every=0" in line, line
    check = budget_check([{"step": s, "split": "test", "r1": r} for s, r in ((1, 0.4), (2, 0.45), (3, 0.5))], 3)
    assert (check["from_step"], check["to_step"]) == (2, 3)
