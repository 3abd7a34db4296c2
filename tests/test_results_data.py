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


def test_sweep_ticks_read_the_pull_targets():
    """A grid chosen from the pull factor is labelled by its targets, not by close decimal alphas."""
    import matplotlib
    matplotlib.use("Agg")
    from hdml_lite.viz.results import plot_sweep
    rows = [{"alpha": a, "pull_target": p, "seed": 0, "split": "test", "r1": 0.6, "nmi": 0.7, "f1": 0.3}
            for a, p in ((0.0, 1.0), (0.199, 0.5), (0.66, 0.1), (1.32, 0.01))]
    fig = plot_sweep(rows)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["p=1\nα=0", "p=0.5\nα=0.2", "p=0.1\nα=0.66", "p=0.01\nα=1.3"]
    study = results_data.find_results() / "sweep.csv"
    from hdml_lite.viz.results import read_csv
    ticks = [t.get_text() for t in plot_sweep(read_csv(study)).axes[0].get_xticklabels()]
    assert all(t.startswith("p=") for t in ticks) and len(set(ticks)) == len(ticks)
    # the replicate design: one run per replicate and target, each with its own alpha -> one tick per target
    reps = [dict(r, alpha=a, seed=k) for r in rows for k, a in enumerate((r["alpha"], 1.1 * r["alpha"]))]
    fig = plot_sweep(reps)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["p=1\nα=0", "p=0.5\nα=0.2-0.22", "p=0.1\nα=0.66-0.73", "p=0.01\nα=1.3-1.5"]
    assert "2 replicates per pull target" in fig._suptitle.get_text()


def test_engagement_markdown_shows_every_number_and_verdict():
    from hdml_lite.viz.results import engagement_markdown, read_csv
    rows = read_csv(results_data.find_results() / "scratch" / "engagement.csv")
    md = engagement_markdown(rows)
    lines = md.splitlines()
    assert lines[0].startswith("| method | seed | classifier | weight | pull | hardness |") and "engaged" in lines[0]
    assert len(lines) == 2 + len(rows)
    first = rows[0]
    assert f"{first['classifier_value']:.3g} ✗" in lines[2] and lines[2].rstrip().endswith("| no |")
    v2 = [dict(r, acc_syn=0.31, engaged_v2=0.0, engaged_v1=1.0) for r in rows]     # issue 16's new columns
    head = engagement_markdown(v2).splitlines()[0]
    assert "acc_syn" in head and "engaged_v1" in head and "engaged_v2" in head
    assert "absent" in engagement_markdown(None)
