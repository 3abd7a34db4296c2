"""Intermediate evaluations compute the retrieval metrics only; k-means (NMI, F1) runs at the final one,
and everything that reads learning curves copes with NMI/F1 present at the final step only."""
import csv

from hdml_lite.config import apply_overrides
from hdml_lite.presets import get_preset
from hdml_lite.study.lab import FAST

TINY = [o for o in FAST if not o.startswith(("train.steps", "train.eval_every"))]


def test_kmeans_only_at_the_final_evaluation(tmp_path, monkeypatch):
    import importlib

    from hdml_lite.training import trainer

    evaluate_module = importlib.import_module("hdml_lite.evaluation.evaluate")   # the package exports evaluate()

    calls = []
    original = evaluate_module.cluster_metrics

    def counted(*a, **k):
        calls.append(1)
        return original(*a, **k)

    monkeypatch.setattr(evaluate_module, "cluster_metrics", counted)
    over = TINY + ["train.steps=6", "train.eval_every=2", "data.val_classes=0.3", "train.progress=false",
                   f"train.out_dir={tmp_path / 'run'}"]
    cfg = apply_overrides(get_preset("lab_npair"), over)
    res = trainer.train(cfg, resume=False)
    ev = res.history["eval"]
    inter = [e for e in ev if e["step"] < 6]
    final = [e for e in ev if e["step"] == 6]
    assert {e["step"] for e in inter} == {2, 4} and {e["split"] for e in final} == {"val", "test"}
    assert all("r1" in e and "map_r" in e for e in ev)                 # retrieval at every evaluation
    assert not any("nmi" in e or "f1" in e for e in inter)             # no k-means mid-run
    assert all(0 <= e["nmi"] <= 1 and 0 <= e["f1"] <= 1 for e in final)
    assert len(calls) == len(final) == 2                                # one k-means per split, at the end
    assert res.metrics["nmi"] == final[-1]["nmi"]                       # metrics.json keeps NMI and F1


def _curves_csv(path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", "step", "split", "nmi", "f1", "r1"])
        for m in ("lab_npair", "lab_hdml_npair"):
            for seed in (0, 1):
                for step in (100, 200, 300, 400):
                    last = step == 400
                    w.writerow([m, seed, step, "test", 0.6 if last else "", 0.3 if last else "", 0.001 * step])


def test_learning_curves_with_nmi_at_the_final_step_only(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from hdml_lite.study.figures import plot_curves
    from hdml_lite.study.files import read_rows
    from hdml_lite.viz import results
    from hdml_lite.viz.plots import plot_learning_curves

    _curves_csv(tmp_path / "curves.csv")
    hist = results.curves_to_histories(results.read_csv(tmp_path / "curves.csv"))     # the notebooks' path
    assert all("nmi" not in e for hs in hist.values() for h in hs for e in h["eval"] if e["step"] < 400)
    fig = plot_learning_curves(hist, metrics=("r1", "nmi"))
    r1_ax, nmi_ax = fig.axes[:2]
    assert len(r1_ax.lines[0].get_xdata()) == 4 and "final evaluation only" not in r1_ax.get_title()
    assert len(nmi_ax.lines[0].get_xdata()) == 1 and "final evaluation only" in nmi_ax.get_title()
    plot_curves(read_rows(tmp_path / "curves.csv"), tmp_path / "curves.png", "lab")     # the study's figure
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_study_curve_rows_leave_nmi_empty_mid_run(tmp_path):
    """export.curve_rows reads the runs' histories: intermediate rows carry R@1 and empty NMI/F1."""
    import json

    from hdml_lite.study.export import curve_rows
    from hdml_lite.study.files import CURVE_COLUMNS, read_rows, write_csv
    from hdml_lite.study.plan import Run, Settings, Spec

    s = Settings(specs=(Spec("lab_npair", "lab_npair", curves=True),), runs=tmp_path, base=[], steps=4)
    run = Run("final", "lab_npair", "lab_npair", 0, 1e-3)
    d = tmp_path / "final" / run.folder()
    d.mkdir(parents=True)
    hist = {"train": [], "eval": [{"step": 2, "split": "test", "r1": 0.5, "map_r": 0.2},
                                  {"step": 4, "split": "test", "r1": 0.6, "map_r": 0.3, "nmi": 0.7, "f1": 0.4}]}
    (d / "history.json").write_text(json.dumps(hist))
    (d / "metrics.json").write_text(json.dumps({"test": hist["eval"][-1], "val": None, "train_s": 1.0}))
    write_csv(tmp_path / "curves.csv", curve_rows([run], s), CURVE_COLUMNS)
    rows = read_rows(tmp_path / "curves.csv")
    assert [("nmi" in r, r["r1"]) for r in rows] == [(False, 0.5), (True, 0.6)]
