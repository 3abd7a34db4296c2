"""hdml_lite.viz: slider update functions, t-SNE helpers, probes, result files, plots.

Oracles: the closed-form augmentation (HDML_SPEC 1.1) computed by hand, cluster
membership of placed points, the trainer's own weights (probed training must equal
``train``), and hand-computed means over seeds.
"""
import time

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hdml_lite.config import apply_overrides  # noqa: E402
from hdml_lite.hdml import augment_triplet  # noqa: E402
from hdml_lite.presets import get_preset  # noqa: E402
from hdml_lite.training.trainer import build_method, train  # noqa: E402
from hdml_lite.viz import mining, notebook, results, toy, tsne, widgets  # noqa: E402
from hdml_lite.viz.synthetic import SyntheticExplorer, default_alphas  # noqa: E402


# Tiny training settings on the embedded glyphs (as tests/conftest.py's TINY; seconds on a CPU).
TINY = ["train.steps=6", "train.eval_every=3", "train.ckpt_every=2", "data.max_classes=10",
        "data.max_per_class=6", "data.batch_classes=4", "model.width=4", "model.embedding_size=8",
        "train.progress=false", "train.device=cpu", "hdml.block=2", "hdml.gen_hidden=16"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _axes_text(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " ".join(parts)


# ------------------------------------------------------------------ toy augmentation slider
def test_update_augmentation_matches_the_closed_form():
    t = toy.toy_manifolds()
    a, p, n = t.tuple_points()
    alpha, j_avg = 3.0, 2.0
    g = widgets.update_augmentation(alpha, j_avg, t)
    d_pos, d_neg = np.linalg.norm(p - a), np.linalg.norm(n - a)
    target = d_pos + (d_neg - d_pos) * np.exp(-alpha / j_avg)
    assert np.allclose(g["synthetic"], a + target / d_neg * (n - a))
    assert g["d_syn"] == pytest.approx(target)
    assert g["factor"] == pytest.approx(np.exp(-alpha / j_avg))
    # on the segment anchor -> negative
    u, v = g["synthetic"] - a, n - a
    assert abs(u[0] * v[1] - u[1] * v[0]) < 1e-9 and np.dot(u, v) > 0


def test_synthetic_negative_moves_closer_as_alpha_grows_and_j_avg_shrinks():
    t = toy.toy_manifolds()
    d = [widgets.update_augmentation(al, 2.0, t)["d_syn"] for al in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 30.0)]
    assert all(x > y for x, y in zip(d, d[1:])), d
    g0 = widgets.update_augmentation(0.0, 2.0, t)
    assert np.array_equal(g0["synthetic"], g0["negative"])            # alpha = 0: no augmentation
    assert d[-1] == pytest.approx(g0["d_pos"], rel=1e-6)              # never closer than the positive
    dj = [widgets.update_augmentation(3.0, j, t)["d_syn"] for j in (100.0, 10.0, 2.0, 0.5)]
    assert all(x > y for x, y in zip(dj, dj[1:])), dj


def test_augmentation_slider_update_is_fast_and_draws():
    t = toy.toy_manifolds()
    t0 = time.perf_counter()
    for al in np.linspace(0, 20, 20):
        widgets.update_augmentation(al, 2.0, t)
    assert (time.perf_counter() - t0) / 20 < 1.0
    t0 = time.perf_counter()
    g = widgets.update_augmentation(5.0, 2.0, t, draw=True)
    g["fig"].canvas.draw()
    assert time.perf_counter() - t0 < 5.0                              # loose: shared CI machines
    text = _axes_text(g["fig"])
    assert "alpha" in text and "embedding dimension 1" in text
    assert g["fig"].axes[0].get_legend() is not None


def test_augmentation_widget_builds():
    pytest.importorskip("ipywidgets")
    w = widgets.augmentation_widget(toy.toy_manifolds())
    assert {c.description for c in w.children[:2]} == {"alpha", "J_avg"}


def test_curves_of_the_two_weights():
    ax = toy.plot_pull_factor(alphas=(1.0, 90.0))
    ys = ax.lines[0].get_ydata()
    assert ys[0] < 0.01 and ys[-1] > 0.99 and np.all(np.diff(ys) >= 0)   # exp(-alpha/J) rises with J
    ax = toy.plot_synthetic_weight(betas=(1e4,))
    ys = ax.lines[0].get_ydata()
    assert ys[0] > 0.99 and ys[-1] < 0.01 and np.all(np.diff(ys) <= 0)   # 1 - exp(-beta/J) falls with J


# ------------------------------------------------------------------ t-SNE helpers
def _clusters(seed=0, k=4, n=30, d=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    x = (centres[:, None] + 0.3 * rng.normal(size=(k, n, d))).reshape(-1, d)
    return centres, x, np.repeat(np.arange(k), n)


@pytest.fixture(scope="module")
def small_map():
    centres, x, labels = _clusters()
    emb = tsne.fit_tsne(x, n_iter=200, early_exaggeration_iter=100, n_jobs=1)
    return centres, x, labels, emb


def test_fit_tsne_is_barnes_hut_and_separates_clusters(small_map):
    _, x, labels, emb = small_map
    xy = np.asarray(emb)
    assert xy.shape == (len(x), 2) and np.isfinite(xy).all()
    assert emb.gradient_descent_params["negative_gradient_method"] == "bh"
    cent = np.stack([xy[labels == k].mean(0) for k in range(4)])
    nearest = np.argmin(((xy[:, None] - cent[None]) ** 2).sum(-1), 1)
    assert (nearest == labels).mean() > 0.95


def test_place_puts_new_points_into_their_cluster(small_map):
    centres, _, labels, emb = small_map
    xy = np.asarray(emb)
    new = centres + 0.1 * np.random.default_rng(1).normal(size=centres.shape)
    placed = tsne.place(emb, new)
    assert placed.shape == (4, 2) and np.isfinite(placed).all()
    cent = np.stack([xy[labels == k].mean(0) for k in range(4)])
    assert np.array_equal(np.argmin(((placed[:, None] - cent[None]) ** 2).sum(-1), 1), np.arange(4))
    one_by_one = np.concatenate([tsne.place(emb, new[i:i + 1]) for i in range(4)])
    assert np.allclose(placed, one_by_one)                              # new points do not interact
    assert np.array_equal(np.asarray(emb), xy)                          # the map does not move


def test_tsne_input_checks_and_tiny_sets():
    with pytest.raises(ValueError, match="NaN"):
        tsne.fit_tsne(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="at least 4"):
        tsne.fit_tsne(np.ones((3, 3)))
    emb = tsne.fit_tsne(np.random.default_rng(0).normal(size=(12, 3)), n_iter=50, early_exaggeration_iter=20,
                        n_jobs=1)                                        # perplexity capped at (N-1)/3
    assert np.isfinite(np.asarray(emb)).all()


def test_thumbnail_scatter(small_map):
    _, x, labels, emb = small_map
    images = np.random.default_rng(0).integers(0, 255, size=(len(x), 1, 8, 8), dtype=np.uint8)
    fig = tsne.plot_tsne_map(np.asarray(emb), labels, images=images, n_thumbs=10)
    assert len(fig.axes[0].artists) == 10
    assert "t-SNE" in _axes_text(fig)
    idx = tsne.spread_indices(np.asarray(emb), 10)
    assert len(set(idx.tolist())) == 10


def test_update_tsne_alpha_picks_the_nearest_trained_alpha(small_map):
    _, _, labels, emb = small_map
    xy = np.asarray(emb)
    maps = {0.5: {"coords": xy, "labels": labels}, 90.0: {"coords": -xy, "labels": labels, "metrics": {"r1": 0.5}}}
    out = widgets.update_tsne_alpha(80.0, maps)
    assert out["alpha"] == 90.0 and np.array_equal(out["points"], -xy)
    assert widgets.update_tsne_alpha(0.0, maps)["alpha"] == 0.5
    t0 = time.perf_counter()
    out = widgets.update_tsne_alpha(90.0, maps, draw=True)
    out["fig"].canvas.draw()
    assert time.perf_counter() - t0 < 5.0
    assert "alpha = 90" in _axes_text(out["fig"])


# ------------------------------------------------------------------ synthetic negatives in a map
@pytest.fixture(scope="module")
def explorer(small_map):
    _, x, labels, emb = small_map
    cfg = apply_overrides(get_preset("lab_hdml_npair"), TINY + ["model.embedding_size=8"])
    method = build_method(cfg, 10, 1, torch.device("cpu"))
    method.tracker._j_avg = 2.0                       # as if a block had closed with J_avg = 2
    z = torch.as_tensor(x[:, :8], dtype=torch.float32)
    return SyntheticExplorer(method, emb, z, labels, anchor=0, n_negatives=3, n_iter=50)


def test_explorer_synthetic_negatives_follow_the_augmentation(explorer):
    ex = explorer
    assert ex.alphas == default_alphas(2.0, extra=(90.0,)) and ex.alphas[0] == 0.0
    ex.precompute()
    assert set(ex.alphas) <= set(ex.cache)
    d = [ex.at(a)["d_syn"] for a in ex.alphas]
    v0 = ex.at(0.0)
    assert np.allclose(v0["d_syn"], v0["d_neg"], atol=1e-5)             # alpha = 0: the real negatives
    for x, y in zip(d, d[1:]):
        assert np.all(y <= x + 1e-5)                                     # closer as alpha grows
    far = v0["d_neg"] > v0["d_pos"]
    assert np.all(d[-1][far] >= v0["d_pos"] - 1e-4)                      # never closer than the positive
    # oracle: row 0 of augment_npair is augment_triplet with the anchor and its positive
    a, p = ex.z[ex.anchor][None], ex.z[ex.positive][None]
    n = ex.z[ex.negatives]
    syn = ex.synthesize(4.0)["z_hat"]
    assert torch.allclose(syn, augment_triplet(a.expand_as(n), p.expand_as(n), n, 4.0, 2.0), atol=1e-6)
    for key in ("synthetic_xy", "generated_xy", "negatives_xy"):
        assert v0[key].shape == (3, 2) and np.isfinite(v0[key]).all()


def test_synthetic_slider_update_under_a_second(explorer):
    explorer.precompute()
    a = explorer.alphas[3]
    t0 = time.perf_counter()
    view = widgets.update_synthetic(a, explorer)
    assert time.perf_counter() - t0 < 1.0
    assert view["alpha"] == a
    t0 = time.perf_counter()
    view = widgets.update_synthetic(a, explorer, draw=True)
    view["fig"].canvas.draw()
    assert time.perf_counter() - t0 < 5.0                                 # with drawing: loose bound
    assert "distance to the anchor / d+" in _axes_text(view["fig"])
    uncached = widgets.update_synthetic(1.2345, explorer)                 # off the grid: placed now
    assert np.isfinite(uncached["synthetic_xy"]).all()


# ------------------------------------------------------------------ probes: what each method learns from
def _tiny(preset, tmp_path, *extra):
    return apply_overrides(get_preset(preset), TINY + [f"train.out_dir={tmp_path / preset}", *extra])


def _weights(method):
    return {f"{k}.{n}": t.detach().clone() for k, m in method.modules.items() for n, t in m.state_dict().items()}


def test_probed_training_equals_the_trainer(tmp_path):
    cfg = _tiny("lab_hdml_npair", tmp_path)
    ref = train(cfg, resume=False)
    run = mining.train_with_probes(cfg, mining.hdml_probe, probe_steps=[0, 2, 5], evaluate_at_end=False)
    assert [r["step"] for r in run.probes] == [0, 2, 5]
    w_ref, w = _weights(ref.method), _weights(run.method)
    assert w_ref.keys() == w.keys()
    for k in w_ref:
        assert torch.equal(w_ref[k], w[k]), k


def test_hdml_probe_distances(tmp_path):
    run = mining.train_with_probes(_tiny("lab_hdml_npair", tmp_path), mining.hdml_probe, probe_steps=[0, 5],
                                   evaluate_at_end=False)
    first, last = run.probes
    assert first["factor"] == pytest.approx(1.0, abs=1e-4)              # J_avg = 1e6 at step 0: no pulling
    assert np.allclose(first["d_syn"], first["d_neg"], rtol=1e-3)      # factor exp(-90/1e6) ~ 0.9999
    far = last["d_neg"] > last["d_pos"]
    assert np.all(last["d_syn"][far] >= last["d_pos"][far] - 1e-4)
    assert np.all(last["d_syn"][far] <= last["d_neg"][far] + 1e-4)
    assert np.allclose(last["d_syn"][~far], last["d_neg"][~far], atol=1e-5)
    N = 4                                                                # TINY: batch_classes=4
    assert last["d_neg"].shape == (N * (N - 1),)
    fig = mining.plot_hdml_synthesis(last)
    assert "distance to the anchor / d+" in _axes_text(fig)


def test_hdc_probe_keeps_the_hardest_pairs(tmp_path):
    cfg = _tiny("lab_hdc", tmp_path, "data.batch_classes=4", "hdc.head_dim=8")
    run = mining.train_with_probes(cfg, mining.hdc_probe, probe_steps=[0, 3], evaluate_at_end=True)
    assert run.metrics is not None and 0 <= run.metrics["r1"] <= 1
    rec = run.probes[-1]
    h1, _, h3 = rec["heads"]
    q = len(h1["neg_d2"])
    assert h1["neg_kept"].all()                                          # head 1 keeps 100%
    assert h3["neg_kept"].sum() == int(np.ceil(0.2 * q - 1e-9))          # head 3 keeps 20%
    kept, dropped = h3["neg_loss"][h3["neg_kept"]], h3["neg_loss"][~h3["neg_kept"]]
    assert kept.min() >= dropped.max() - 1e-6                            # the largest losses
    fig = mining.plot_hdc_selection(rec)
    assert "head 3: negatives" in _axes_text(fig) and "head 3: positives" in _axes_text(fig)
    hdml = mining.train_with_probes(_tiny("lab_hdml_npair", tmp_path), mining.hdml_probe, [0, 3],
                                    evaluate_at_end=False)
    h = mining.hardness_over_steps(run.probes, hdml.probes)
    assert h["hdc_steps"].tolist() == [0, 3] and np.isfinite(h["hdml_d_syn"]).all()
    assert np.all((h["hdc_active_neg_h1"] >= 0) & (h["hdc_active_neg_h1"] <= 1))
    assert np.all(h["hdc_kept_pos_h3"] >= h["hdc_all_pos_h3"] - 1e-6)   # head 3 keeps the farthest positives
    assert "training step" in _axes_text(mining.plot_hardness_over_steps(run.probes, hdml.probes))


def test_frozen_batchnorm_leaves_running_stats():
    bn = torch.nn.BatchNorm1d(3)
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    bn.train()
    with mining.frozen_batchnorm([bn]):
        bn(torch.randn(8, 3) * 5 + 2)
    assert bn.momentum == 0.1
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k


# ------------------------------------------------------------------ result files and tables
def _write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")


def test_study_files_summaries_and_plots(tmp_path):
    _write(tmp_path / "lab_table.csv", "method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s".split(","),
           [["lab_npair", 0, 0.5, 0.1, 0.40, 0.5, 0.6, 0.7, 0.05, 100],
            ["lab_npair", 1, 0.6, 0.2, 0.50, 0.6, 0.7, 0.8, 0.06, 110],
            ["lab_hdml_npair", 0, 0.55, 0.15, 0.45, 0.55, 0.65, 0.75, 0.055, 150]])
    _write(tmp_path / "curves.csv", "method,seed,step,split,nmi,f1,r1".split(","),
           [[m, s, st, "test", 0.1 * st, 0.01 * st, 0.05 * st] for m in ("lab_npair", "lab_hdml_npair")
            for s in (0, 1) for st in (1, 2, 3)])
    _write(tmp_path / "sweep.csv", "alpha,seed,split,r1,nmi,f1".split(","),
           [[a, s, "test", 0.3 + 0.01 * a, 0.5, 0.1] for a in (0, 1, 7, 90) for s in (0, 1)])
    study = results.load_study(tmp_path)
    assert all(study[k] for k in ("lab_table", "curves", "sweep"))
    assert study["lab_table"][0]["seed"] == 0 and isinstance(study["lab_table"][0]["r1"], float)
    summary = results.summarise(study["lab_table"])
    mean, std, n = summary["lab_npair"]["r1"]
    assert (mean, std, n) == (pytest.approx(0.45), pytest.approx(0.05), 2)
    md = results.comparison_markdown(summary, paper_dataset="cars")
    assert "45.0 ± 5.0" in md and "HDML (N-pair)" in md and "other data" in md and "79.1" in md
    assert "| paper, Cars196 (other data!) | HDC | - | - | 83.8 |" in md       # HDC: R@1 only
    assert results.label("lab_hdml_npair_norecon") == "HDML (N-pair) w/o reconstruction"
    assert results.label("lab_hdc") == "HDC" and results.label("My run") == "My run"
    hist = results.curves_to_histories(study["curves"])
    assert set(hist) == {"N-pair", "HDML (N-pair)"} and len(hist["N-pair"]) == 2
    from hdml_lite.viz.plots import plot_learning_curves
    fig = plot_learning_curves(hist)
    assert len(fig.axes[0].lines) == 2
    fig = results.plot_sweep(study["sweep"], reference={"r1": 0.3})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "7", "90"]
    assert np.allclose(ax.lines[0].get_xdata(), [0.25, 1, 7, 90])        # alpha = 0 drawn at 1/4 of the smallest
    assert [r["method"] for r in results.select(study["lab_table"], ["lab_hdml_npair"])] == ["lab_hdml_npair"]
    assert len(results.select(study["lab_table"], ["no_such_run"])) == 3  # no match: everything
    fig = results.plot_result_bars(summary)
    assert fig.axes[0].get_ylabel() == "score (%)"
    assert results.load_study(tmp_path / "nothing") == {"lab_table": None, "curves": None, "sweep": None}


# ------------------------------------------------------------------ notebook helpers and plots
def test_notebook_config_budgets_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("HDML_RESULTS", str(tmp_path / "res"))
    assert notebook.runs_dir() == tmp_path / "runs" and notebook.results_dir() == tmp_path / "res"
    cfg = notebook.notebook_config("lab_hdml_npair", "hdml.alpha=2", budget="cpu")
    assert cfg.train.out_dir.startswith(str(tmp_path / "runs" / "notebooks" / "cpu"))
    assert cfg.hdml.alpha == 2.0 and cfg.train.steps == 100 and cfg.data.batch_classes == 16
    assert notebook.notebook_config("lab_hdc", budget="cpu").data.batch_classes == 10
    full = notebook.notebook_config("lab_npair", budget="full")
    assert full.train.steps == get_preset("lab_npair").train.steps
    monkeypatch.setenv("HDML_FAST", "1")
    assert notebook.is_fast() and notebook.pick_budget(torch.device("cuda")) == "fast"
    monkeypatch.setenv("HDML_FAST", "0")
    assert notebook.pick_budget(torch.device("cpu")) == "cpu"
    assert notebook.pick_budget(torch.device("cuda")) == "full"
    with pytest.raises(ValueError, match="budget"):
        notebook.notebook_config("lab_npair", budget="huge")


def test_data_and_state_plots(tmp_path):
    from hdml_lite.data import load_dataset
    from hdml_lite.viz.plots import plot_class_grid, plot_hdml_state, plot_npair_batch

    cfg = _tiny("lab_hdml_npair", tmp_path)
    ds = load_dataset(cfg.data, "test")
    fig = plot_class_grid(ds, n_classes=4, per_class=3)
    assert len(fig.axes) == 12 and fig.axes[0].get_ylabel() in ds.class_names
    x = torch.rand(8, 1, 8, 8)
    fig = plot_npair_batch(x, np.array([0, 0, 1, 1, 2, 2, 3, 3]), n_pairs=4, class_names=list("abcd"))
    assert fig.axes[0].get_title() == "class 0: a"
    res = train(cfg, resume=False)
    fig = plot_hdml_state(res.history, alpha=cfg.hdml.alpha, beta=cfg.hdml.beta)
    lines = fig.axes[1].lines
    assert lines[0].get_ydata()[0] == pytest.approx(1.0, abs=1e-3)      # no pulling before the first block
    assert "J_avg" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
