"""The pinned runs the notebooks load (hdml_lite/pinned): small, complete for the notebooks' plan,
faithful to the runs they copy, and the switch that trains instead (HDML_TRAIN=1)."""
import os

import numpy as np
import pytest

from hdml_lite import pinned
from hdml_lite.pinned import PinnedRun, TrainSwitchError, get_run, load_pinned, pinned_dir, train_requested
from hdml_lite.pinned.generate import PinnedError, export, train_all
from hdml_lite.pinned.plan import notebook_runs
from hdml_lite.pinned.store import pack, unpack
from hdml_lite.viz.notebook import notebook_config

SHIPPED = (pinned_dir() / "runs.json.gz").is_file() and not os.environ.get("HDML_PINNED")
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="no pinned set in hdml_lite/pinned/data")


# ------------------------------------------------------------------ the shipped set
@needs_shipped
def test_the_pinned_set_is_small():
    total = sum(p.stat().st_size for p in pinned_dir().iterdir() if p.is_file())
    assert total < 2.5e6, f"the pinned runs take {total / 1e6:.2f} MB"


@needs_shipped
def test_every_run_of_the_notebooks_is_pinned():
    """The plan (the notebooks' runs, the sweep built from results/study.json and the presets) is what
    is pinned: a preset or a study that changes without `python -m hdml_lite.study notebooks` fails here."""
    keys = set(pinned.pinned_keys())
    missing = [s.key for s in notebook_runs() if s.key not in keys]
    assert not missing, f"not pinned (run `python -m hdml_lite.study notebooks`): {missing}"


@needs_shipped
@pytest.mark.parametrize("spec", notebook_runs(), ids=lambda s: s.key)
def test_each_pinned_run_is_a_finished_cpu_budget_run(spec):
    run = load_pinned(spec.key)
    cfg = notebook_config(spec.preset, *spec.overrides, budget="cpu")
    assert isinstance(run, PinnedRun) and run.budget == "cpu"
    assert run.cfg.train.steps == cfg.train.steps and run.cfg.hdml.alpha == cfg.hdml.alpha
    assert [r["step"] for r in run.history["train"]] == list(range(cfg.train.steps))
    assert {"r1", "map_r"} <= set(run.metrics) and 0 < run.metrics["r1"] <= 1 and run.train_s > 0
    if spec.probe:
        assert [p["step"] for p in run.probes] == sorted({0, 100, 200, 300, 399})
    if spec.tsne:
        assert run.tsne["coords"].shape == (len(run.tsne["labels"]), 2)


@needs_shipped
def test_the_pinned_model_gives_its_pinned_scores():
    """The HDML model's weights (float16 in the file) embed the test classes to the R@1 its run reported."""
    from hdml_lite.data import load_dataset
    from hdml_lite.evaluation import compute_embeddings
    from hdml_lite.evaluation.retrieval import recall_at_k

    run = load_pinned("lab_hdml_npair")
    test = load_dataset(run.cfg.data, "test")
    z, labels = compute_embeddings(run.method.embed, test)
    r1 = recall_at_k(z, labels, ks=(1,))[1]
    assert abs(r1 - run.metrics["r1"]) < 0.01, (r1, run.metrics["r1"])
    assert run.method.tracker.j_avg < 1e5            # the tracker's state came with it (not the initial 1e6)


@needs_shipped
def test_a_run_without_pinned_weights_says_how_to_get_them():
    with pytest.raises(AttributeError, match="HDML_TRAIN=1"):
        load_pinned("lab_contrastive_hdcbatch").method


# ------------------------------------------------------------------ the switch
def test_train_switch_values(monkeypatch):
    monkeypatch.delenv("HDML_TRAIN", raising=False)
    assert train_requested() is False
    monkeypatch.setenv("HDML_TRAIN", "1")
    assert train_requested() is True
    monkeypatch.setenv("HDML_TRAIN", "yes")
    with pytest.raises(TrainSwitchError, match=r"HDML_TRAIN='yes': expected 1"):
        train_requested()
    assert TrainSwitchError("x")._render_traceback_() == ["TrainSwitchError: x"]


# ------------------------------------------------------------------ generate, export, load (fast budget)
@pytest.fixture(scope="module")
def fast_pinned(tmp_path_factory):
    """A pinned set of four fast-budget runs (one with weights, one with a map, two probed)."""
    root = tmp_path_factory.mktemp("pinned")
    keys = ("lab_hdml_npair", "lab_hdml_npair__hdml.alpha=0", "lab_hdml_npair__probed",
            "lab_hdc__hdc.fractions=_1_0.5_0.2___probed")
    specs = [s for s in notebook_runs() if s.key in keys]
    assert len(specs) == 4
    old = os.environ.get("HDML_RUNS")
    try:
        train_all(root / "runs", specs, budget="fast")
        sizes = export(root / "runs", root / "pinned", specs, budget="fast",
                       tsne_kw=dict(n_iter=50, early_exaggeration_iter=25))
    finally:
        if old is None:
            os.environ.pop("HDML_RUNS", None)
        else:
            os.environ["HDML_RUNS"] = old
    return root, sizes


def test_export_and_load_round_trip(fast_pinned, monkeypatch):
    root, sizes = fast_pinned
    assert set(sizes) == {"runs.json.gz", "arrays.npz"}
    monkeypatch.setenv("HDML_PINNED", str(root / "pinned"))
    import json

    run = load_pinned("lab_hdml_npair")
    trained = json.loads((root / "runs" / "notebooks" / "fast" / "lab_hdml_npair" / "metrics.json").read_text())
    assert run.metrics["r1"] == pytest.approx(trained["test"]["r1"], rel=1e-4)
    assert run.method.cfg.hdml.alpha == run.cfg.hdml.alpha
    hdc = load_pinned("lab_hdc__hdc.fractions=_1_0.5_0.2___probed")
    head = hdc.probes[-1]["heads"][2]
    assert head["neg_kept"].dtype == bool and head["neg_d2"].dtype == np.float32
    assert load_pinned("lab_hdml_npair__hdml.alpha=0").tsne["coords"].shape[1] == 2
    assert load_pinned("lab_npair") is None                     # not in this set


def test_get_run_loads_the_pinned_copy_and_shows_your_own_beside_it(fast_pinned, monkeypatch, tmp_path, capsys):
    root, _ = fast_pinned
    monkeypatch.setenv("HDML_PINNED", str(root / "pinned"))
    monkeypatch.setenv("HDML_RUNS", str(tmp_path))
    monkeypatch.delenv("HDML_TRAIN", raising=False)
    cfg = notebook_config("lab_hdml_npair", budget="fast")
    run = get_run(cfg)
    assert isinstance(run, PinnedRun)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("run lab_hdml_npair: pinned (fast budget, trained in ") and " s wall) R@1 " in line
    assert "your run" not in line
    monkeypatch.setenv("HDML_TRAIN", "1")                      # train instead: printed beside the pinned one
    own = get_run(cfg)
    assert not isinstance(own, PinnedRun) and (tmp_path / "notebooks" / "fast" / "lab_hdml_npair" / "metrics.json").is_file()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("run lab_hdml_npair: pinned (") and "| trained now (fast budget) R@1 " in line
    monkeypatch.delenv("HDML_TRAIN")                           # loaded again, your run beside it
    get_run(cfg)
    assert "| your run (fast budget) R@1 " in capsys.readouterr().out


def test_get_run_trains_a_run_the_pinned_set_lacks(fast_pinned, monkeypatch, tmp_path, capsys):
    root, _ = fast_pinned
    monkeypatch.setenv("HDML_PINNED", str(root / "pinned"))
    monkeypatch.setenv("HDML_RUNS", str(tmp_path))
    monkeypatch.delenv("HDML_TRAIN", raising=False)
    run = get_run(notebook_config("lab_npair", budget="fast"))
    assert not isinstance(run, PinnedRun)
    assert "run lab_npair: no pinned copy of this run: training it" in capsys.readouterr().out


def test_export_names_a_missing_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_RUNS", str(tmp_path))
    with pytest.raises(PinnedError, match=r"lab_npair: no finished run to pin"):
        export(tmp_path, tmp_path / "out", notebook_runs()[:1], budget="fast")


def test_the_command_exits_2_on_a_missing_run(tmp_path, capsys, monkeypatch):
    from hdml_lite.study.__main__ import main

    monkeypatch.setenv("HDML_RUNS", str(tmp_path))
    assert main(["notebooks", "--export", "--runs", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no finished run to pin" in err[0]
    assert not (tmp_path / "out").exists()


def test_pack_unpack_round_trip():
    arrays = {}
    obj = {"a": np.arange(5, dtype=np.int64), "b": [np.ones((2, 3)), {"c": np.array([True, False])}], "s": 1.5,
           "n": np.float32(2.0)}
    packed = pack(obj, "x", arrays)
    assert arrays["x/a"].dtype == np.uint16 and arrays["x/b/0"].dtype == np.float16 and packed["n"] == 2.0
    back = unpack(packed, arrays)
    assert back["a"].tolist() == [0, 1, 2, 3, 4] and back["b"][0].dtype == np.float32
    assert back["b"][1]["c"].dtype == bool and back["s"] == 1.5
