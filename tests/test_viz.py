"""hdml_lite.viz: slider update functions, t-SNE helpers, probes, result files, plots.

Oracles: the closed-form augmentation (docs/METHOD.md §1.1) computed by hand, cluster
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
        "train.progress=false", "train.device=cpu", "hdml.block=2", "hdml.gen_hidden=16",
        "model.pretrained=false"]                     # width 4: not the shipped weights


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
    cfg = apply_overrides(get_preset("lab_hdml_npair"), TINY + ["model.embedding_size=8", "hdml.alpha=90"])
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
    cfg = _tiny("lab_hdc", tmp_path, "data.batch_classes=4", "hdc.head_dim=8", "hdc.fractions=[1,0.5,0.2]")
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
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "7", "90"]
    assert np.allclose(ax.lines[0].get_xdata(), [0, 1, 2, 3])            # evenly spaced, increasing alpha
    assert [r["method"] for r in results.select(study["lab_table"], ["lab_hdml_npair"])] == ["lab_hdml_npair"]
    assert len(results.select(study["lab_table"], ["no_such_run"])) == 3  # no match: everything
    fig = results.plot_result_bars(summary)
    assert fig.axes[0].get_ylabel() == "score (%)"
    assert results.load_study(tmp_path / "nothing") == dict.fromkeys(results.STUDY_FILES)


# ------------------------------------------------------------------ notebook helpers and plots
def test_notebook_config_budgets_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("HDML_RESULTS", str(tmp_path / "res"))
    assert notebook.runs_dir() == tmp_path / "runs" and notebook.results_dir() == tmp_path / "res"
    cfg = notebook.notebook_config("lab_hdml_npair", "hdml.alpha=2", budget="cpu")
    assert cfg.train.out_dir.startswith(str(tmp_path / "runs" / "notebooks" / "cpu"))
    preset = get_preset("lab_hdml_npair")           # the CPU budget keeps the preset's steps and batch
    assert cfg.hdml.alpha == 2.0 and cfg.train.steps == preset.train.steps == 400
    assert cfg.data.batch_classes == preset.data.batch_classes and cfg.data.max_per_class == 24
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


# ------------------------------------------------------------------ one palette, mechanism panels
def test_palette_one_colour_per_method_and_role():
    from hdml_lite.viz import palette

    methods = list(palette.METHOD_COLORS.values())
    roles = [c for k, c in palette.ROLE_COLORS.items()]
    assert len(set(methods)) == len(methods) >= 11                      # every method its own colour
    assert not set(methods) & set(roles)                                # a role never looks like a method
    assert not set(methods) & {c for c, _ in palette.SERIES} and not set(methods) & set(palette.FALLBACK)
    names = {"lab_hdml_npair": "hdml_npair", "scratch_npair": "npair", "HDML (N-pair)": "hdml_npair",
             "N-pair": "npair", "HDML (Triplet)": "hdml_triplet", "lab_triplet": "triplet",
             "Semi-hard triplet": "semihard", "lab_semihard": "semihard", "HDC": "hdc", "lab_hdc": "hdc",
             "HDML without J_soft": "hdml_npair_nosoftmax", "lab_hdml_npair_norecon": "hdml_npair_norecon",
             "HDML (N-pair) w/o reconstruction": "hdml_npair_norecon", "Lifted structure": "lifted",
             "lab_contrastive": "contrastive", "Angular": "angular", "cub_hdml_npair_official": "hdml_npair"}
    for name, key in names.items():
        assert palette.method_key(name) == key, name
        assert palette.color_for(name) == palette.METHOD_COLORS[key]
    # every display name the study uses maps back to its own key
    from hdml_lite.study.paper import DISPLAY
    for key, display in DISPLAY.items():
        assert palette.method_key(display) == key and palette.method_key(f"lab_{key}") == key
    assert palette.color_for("seed 1", index=0) in palette.FALLBACK
    with pytest.raises(KeyError, match="seed 1"):
        palette.color_for("seed 1")


def test_learning_curves_use_the_method_colours():
    from hdml_lite.viz.palette import METHOD_COLORS
    from hdml_lite.viz.plots import plot_learning_curves

    h = {"train": [], "eval": [{"step": s, "split": "test", "r1": 0.1 * s} for s in (1, 2)]}
    fig = plot_learning_curves({"HDML (N-pair)": h, "N-pair": h, "HDML (N-pair) again": h}, metrics=("r1",))
    lines = fig.axes[0].lines
    assert [ln.get_color() for ln in lines] == [METHOD_COLORS["hdml_npair"], METHOD_COLORS["npair"],
                                                METHOD_COLORS["hdml_npair"]]
    assert lines[0].get_linestyle() != lines[2].get_linestyle()          # same method twice: another style


def _fake_history(steps=60, acc_end=0.9, pull=0.3, hard_gen=1.6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(steps):
        t = s / (steps - 1)
        rows.append({"step": s, "loss": 2.0 - t, "acc_real": acc_end * t, "acc_syn": 0.5 * acc_end * t,
                     "weight_syn": 0.01 + 0.9 * t, "pull_factor": 1.0 if s < 10 else pull,
                     "hard_real": 3.0 - t + 0.05 * rng.normal(), "hard_aug": 1.0 + (1 - t),
                     "hard_gen": hard_gen + 0.05 * rng.normal()})
    rows[5]["hard_gen"] = float("nan")                                   # a NaN step is skipped, not drawn
    return {"train": rows, "eval": []}


def test_plot_mechanism_draws_every_diagnostic_per_method(tmp_path):
    from hdml_lite.viz.mechanism import light_window, plot_mechanism, series
    from hdml_lite.viz.palette import METHOD_COLORS

    hists = {"HDML (N-pair)": _fake_history(), "HDML without J_soft": _fake_history(acc_end=0.2, pull=1e-4, seed=1),
             "N-pair": {"train": [{"step": s, "loss": 1.0} for s in range(60)], "eval": []}}
    fig = plot_mechanism(hists)
    a_cls, a_w, a_pull, a_hard = fig.axes
    assert len(a_cls.lines) == 4 and len(a_w.lines) == 2 and len(a_pull.lines) == 2
    assert len(a_hard.lines) == 2 * 3 + 1                                 # 3 hardness series x 2 runs + the d+ line
    assert a_pull.get_yscale() == "log"
    colours = {ln.get_color() for ln in a_w.lines}
    assert colours == {METHOD_COLORS["hdml_npair"], METHOD_COLORS["hdml_npair_nosoftmax"]}
    # light smoothing: a window of 3 over 60 steps; the line is the moving average of the series
    steps, vals = series(hists["HDML (N-pair)"], "weight_syn")
    w = light_window(len(vals))
    assert w == 3
    assert np.allclose(a_w.lines[0].get_ydata(), np.convolve(vals, np.ones(w) / w, mode="valid"))
    assert len(series(hists["HDML (N-pair)"], "hard_gen")[1]) == 59
    assert min(a_pull.lines[1].get_ydata()) == pytest.approx(1e-4)
    plot_mechanism(hists, path=tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 1000
    fig = plot_mechanism({"N-pair": hists["N-pair"]})                    # no diagnostics: says so
    assert "not logged" in fig.axes[0].texts[0].get_text()


def test_plot_loss_window_adapts_and_legend_names():
    from hdml_lite.viz.plots import plot_loss, smoothing_window

    assert smoothing_window(6) == 1 and smoothing_window(100) == 10 and smoothing_window(1000) == 20
    h = {"train": [{"step": s, "loss": float(s)} for s in range(6)]}
    fig = plot_loss(h, keys=("loss",), labels={"loss": "J_metric"})
    line = fig.axes[0].lines[0]
    assert len(line.get_ydata()) == 6                                    # fast mode: every step drawn
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "J_metric"


def test_sweep_title_says_how_many_seeds():
    one = [{"alpha": a, "seed": 0, "split": "test", "r1": 0.4, "nmi": 0.5, "f1": 0.1} for a in (0.0, 1.0, 90.0)]
    assert results.sweep_caption(one) == "one seed per alpha"
    fig = results.plot_sweep(one)
    assert "one seed per alpha" in fig._suptitle.get_text() and "min-max" not in fig._suptitle.get_text()
    assert len(fig.axes[0].collections) == 0                             # no band for one seed
    three = [dict(r, seed=s, r1=0.4 + 0.01 * s, pull_factor=0.5) for r in one for s in range(3)]
    assert results.sweep_caption(three) == "3 seeds per alpha: mean, band min-max"
    fig = results.plot_sweep(three)
    assert len(fig.axes[0].collections) == 1
    assert fig.axes[0].get_xticklabels()[1].get_text() == "1\n(0.50)"      # the pull factor under the alpha
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), 41.0)


def test_toy_alpha_zero_keeps_negative_and_synthetic_visible():
    from hdml_lite.viz.palette import ROLE_COLORS

    g = widgets.update_augmentation(0.0, 2.0, draw=True)
    ax = g["fig"].axes[0]
    offsets = {tuple(np.round(c.get_offsets()[0], 6)): c for c in ax.collections if len(c.get_offsets()) == 1}
    key = tuple(np.round(g["negative"], 6))
    assert key in offsets                                                 # z^ = z- at alpha = 0
    marks = [c for c in ax.collections if len(c.get_offsets()) == 1
             and np.allclose(c.get_offsets()[0], g["negative"])]
    z = {c.get_label(): (c.get_zorder(), c.get_sizes()[0]) for c in marks}
    neg, syn = z["negative $z^-$"], next(v for k, v in z.items() if k.startswith("synthetic"))
    assert syn[0] > neg[0] and syn[1] < neg[1]                            # the smaller cross on the larger square
    gen = [c for c in ax.collections if c.get_label().startswith("generated")][0]
    assert gen.get_zorder() < neg[0] and len(gen.get_facecolor()) == 0 or gen.get_facecolor()[0][3] == 0
    assert any("= z^-" in t.get_text() or r"\hat{z}^- = z^-" in t.get_text() for t in ax.texts)
    assert ROLE_COLORS["negative"] != ROLE_COLORS["synthetic"]


def test_tsne_colours_only_a_few_classes(small_map):
    from hdml_lite.viz.palette import CLASS_COLORS, ROLE_COLORS

    labels = np.repeat(np.arange(40), 3)
    cols = tsne.class_colours(labels)
    coloured = {c for c in cols if c != ROLE_COLORS["other"]}
    assert len(coloured) == len(CLASS_COLORS) == len(tsne.highlight_classes(labels))
    per_class = {}
    for lab, c in zip(labels, cols):
        per_class.setdefault(c, set()).add(int(lab))
    assert all(len(v) == 1 for c, v in per_class.items() if c != ROLE_COLORS["other"])   # no shared colour
    _, x, small_labels, emb = small_map
    names = [f"c{i}" for i in range(int(small_labels.max()) + 1)]
    fig = tsne.plot_tsne_map(np.asarray(emb), small_labels, class_names=names, n_thumbs=0)
    assert {t.get_text() for t in fig.axes[0].texts} <= set(names) and fig.axes[0].texts


def test_sweep_reads_the_study_format_and_verdicts():
    rows = [{"alpha": a, "pull_target": 1.0 if a == 0 else 0.5, "seed": s, "split": "test", "r1": 0.4 + 0.01 * s, "nmi": 0.5, "f1": 0.1,
             "pull_factor_median": 0.25, "method": m} for a in (0.0, 2.0) for s in range(3)
            for m in ("lab_hdml_npair", "lab_hdml_triplet")]
    assert results.sweep_caption(rows) == "3 seeds per alpha: mean, band min-max"
    fig = results.plot_sweep(rows)
    from hdml_lite.viz.palette import METHOD_COLORS
    assert [ln.get_color() for ln in fig.axes[0].lines] == [METHOD_COLORS["hdml_npair"], METHOD_COLORS["hdml_triplet"]]
    assert fig.axes[0].get_xticklabels()[1].get_text() == "p=0.5\nα=2"      # a grid from pull targets
    no_target = [{k: v for k, v in r.items() if k != "pull_target"} for r in rows]
    assert results.plot_sweep(no_target).axes[0].get_xticklabels()[1].get_text() == "2\n(0.25)"
    v = [{"claim": "HDML(N-pair) > N-pair", "metric": "r1", "n_seeds": 3.0, "mean_diff": -0.012, "ci_low": -0.03,
          "ci_high": 0.006, "verdict": "undecided"}]
    md = results.verdicts_markdown(v)
    assert "| HDML(N-pair) > N-pair | Recall@1 | 3 | -1.2 | [-3.0, +0.6] | **undecided** |" in md
    assert "has not been run" in results.verdicts_markdown(None)
    assert results.verdict_of(v, "HDML(N-pair) > N-pair") == "undecided" and results.verdict_of(None, "x") is None
    held = [dict(v[0], verdict="equivalent", verdict_holm="undecided")]         # prose uses the adjusted verdict
    assert results.verdict_of(held, "HDML(N-pair) > N-pair") == "undecided"
    mech = [{"method": "lab_hdml_npair", "seed": 0, "step": s, "acc_real": 0.1 * s} for s in (1, 0)]
    h = results.mechanism_to_histories(mech)
    assert list(h) == ["HDML (N-pair)"] and [r["step"] for r in h["HDML (N-pair)"]["train"]] == [0, 1]


def test_describe_budget_reads_the_real_steps(monkeypatch):
    full = get_preset("lab_hdml_npair").train.steps
    assert f"{full} steps" in notebook.describe_budget("full")
    assert f"{get_preset('lab_npair').train.steps} steps" in notebook.describe_budget("full", "lab_npair")
    assert "400 steps" in notebook.describe_budget("cpu") and "6 steps" in notebook.describe_budget("fast")
    cpu = notebook.notebook_config("lab_hdml_npair", budget="cpu")
    assert cpu.train.steps // cpu.train.eval_every >= 5                  # learning curves with 5+ points
    monkeypatch.delenv("HDML_FAST", raising=False)
    monkeypatch.setenv("HDML_BUDGET", "full")
    assert notebook.pick_budget(torch.device("cpu")) == "full"           # forced on a CPU
    monkeypatch.setenv("HDML_BUDGET", "huge")
    with pytest.raises(ValueError, match="HDML_BUDGET"):
        notebook.pick_budget(torch.device("cpu"))
