"""The result tables the notebooks read ship inside the package (hdml_lite/results_data/), equal
to results/, and are found when the kit is installed without its checkout."""
import filecmp
from pathlib import Path

import pytest

from hdml_lite import results_data
from hdml_lite.viz import notebook

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rel", results_data.PACKAGED)
def test_packaged_copy_equals_results(rel):
    src, copy = REPO / "results" / rel, results_data.PACKAGED_DIR / rel
    if src.is_file():
        assert copy.is_file() and filecmp.cmp(src, copy, shallow=False), \
            f"hdml_lite/results_data/{rel} differs from results/{rel}: run sync_packaged_results('results')"
    else:
        assert not copy.is_file(), f"hdml_lite/results_data/{rel} has no results/{rel} any more"


def test_packaged_tables_are_small_and_cover_what_notebooks_read():
    size = sum(p.stat().st_size for p in results_data.PACKAGED_DIR.rglob("*.csv"))
    assert size < 3_000_000
    from hdml_lite.viz.results import STUDY_FILES
    assert {f"{n}.csv" for n in STUDY_FILES} <= set(results_data.PACKAGED)
    assert "engagement.csv" in results_data.PACKAGED and "scratch/engagement.csv" in results_data.PACKAGED


def test_find_results_prefers_env_then_checkout_then_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_RESULTS", str(tmp_path))
    assert notebook.results_dir() == tmp_path
    monkeypatch.delenv("HDML_RESULTS")
    assert results_data.find_results() == REPO / "results"
    monkeypatch.setattr(results_data, "repo_results", lambda: None)     # an installed kit: no checkout
    assert notebook.results_dir() == results_data.PACKAGED_DIR
    from hdml_lite.viz.results import load_study
    assert load_study(notebook.results_dir())["lab_table"]                # the tables are there


def test_sync_packaged_results_copies_and_prunes(tmp_path):
    res, dest = tmp_path / "results", tmp_path / "pkg"
    (res / "scratch").mkdir(parents=True)
    (res / "lab_table.csv").write_text("method,seed\nx,0\n")
    (res / "scratch" / "engagement.csv").write_text("method\nx\n")
    (dest).mkdir()
    (dest / "sweep.csv").write_text("stale\n")                             # gone from results/: removed
    assert results_data.sync_packaged_results(res, dest) == ["lab_table.csv", "scratch/engagement.csv"]
    assert (dest / "lab_table.csv").read_text() == "method,seed\nx,0\n" and not (dest / "sweep.csv").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        results_data.sync_packaged_results(tmp_path / "nowhere", dest)
