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


def test_fast_lab_study_leaves_the_committed_results_alone(checkout, monkeypatch, capsys):
    """The trial's case: `python -m hdml_lite.study lab --fast` in a checkout (a 41-run toy study)
    rewrote every results/ file and the packaged copy. Now it writes to runs/trial/lab and says so."""
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
    assert study_changes(make_settings("lab", runs)) == []
    assert study_changes(make_settings("scratch", runs)) == []
    assert study_changes(make_settings("lab", runs, lrs=make_settings("lab", runs).lrs)) == []   # the default grid
    assert study_changes(make_settings("lab", runs, fast=True)) == ["--fast"]
    assert study_changes(make_settings("lab", runs, 50)) == ["--steps"]
    assert study_changes(make_settings("lab", runs, stages=("final",), select_seeds=1)) == ["--select-seeds",
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
