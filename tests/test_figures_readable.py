"""Figures for a laptop screen: every figure function of hdml_lite.viz builds a figure no wider than
about 1000 px at matplotlib's default dpi (titles and legends included, as Jupyter's inline backend
crops with bbox_inches="tight"), with legends at 9 pt or more; the sweep's tick labels do not
overprint; N-pair and HDML differ in lightness as well as hue; the notebooks' progress bars are
tqdm.auto's (a widget in Jupyter)."""
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from hdml_lite.viz import mechanism, mining, palette, plots, results, toy, tsne, widgets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAX_PX = 1000
DPI = matplotlib.rcParamsDefault["figure.dpi"]          # 100: what a notebook shows


def _history(steps=60, seed=0):
    rng = np.random.default_rng(seed)
    train, evals = [], []
    for s in range(steps):
        t = s / (steps - 1)
        train.append({"step": s, "loss": 2 - t, "j_metric": 1 - t / 2, "acc_real": 0.9 * t, "acc_syn": 0.45 * t,
                      "weight_syn": 0.01 + 0.9 * t, "pull_factor": 1.0 if s < 10 else 0.3, "j_avg": 1 - t / 2,
                      "j_gen_avg": 5e3 * (1 - t / 2), "hard_real": 3 - t + 0.05 * rng.normal(), "hard_aug": 2 - t,
                      "hard_gen": 1.6 + 0.05 * rng.normal()})
    for s in range(0, steps, 10):
        for split in ("test", "val"):
            evals.append({"step": s, "split": split, **{m: 0.3 + 0.005 * s for m in ("r1", "nmi", "f1", "map_r")}})
    return {"train": train, "eval": evals}


def _hdc_rec(step=0, q=300, p=40, seed=0):
    rng = np.random.default_rng(seed)
    heads = []
    for frac in (1.0, 0.5, 0.2):
        neg_d2, pos_d2 = rng.uniform(0, 4, q), rng.uniform(0, 2, p)
        loss = np.maximum(0, 1 - neg_d2)
        heads.append({"neg_d2": neg_d2, "neg_loss": loss, "neg_kept": loss >= np.quantile(loss, 1 - frac),
                      "pos_d2": pos_d2, "pos_kept": pos_d2 >= np.quantile(pos_d2, 1 - frac)})
    return {"step": step, "heads": heads}


def _hdml_rec(step=0, n=240, seed=0):
    rng = np.random.default_rng(seed)
    d_pos = rng.uniform(0.5, 1.0, n)
    d_neg = d_pos * rng.uniform(0.8, 3.0, n)
    return {"step": step, "d_pos": d_pos, "d_neg": d_neg, "d_syn": (d_neg + d_pos) / 2, "d_gen": d_neg * 0.9,
            "factor": 0.5, "weight_syn": 0.4}


def _sweep_rows():
    """A pull-target grid with the preset's alpha in it: two alphas close together."""
    rows = []
    for method in ("lab_hdml_npair", "lab_hdml_triplet"):
        for a, p in ((0.0, 1.0), (0.0302, 0.9), (0.0334, 0.89), (0.2, 0.5), (0.67, 0.1), (1.34, 0.01)):
            for seed in range(3):
                rows.append({"method": method, "alpha": a, "pull_target": p, "seed": seed, "split": "test",
                             "pull_factor": p, "r1": 0.6 + 0.01 * seed, "nmi": 0.7, "f1": 0.4})
    return rows


@pytest.fixture(scope="module")
def explorer():
    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset
    from hdml_lite.training.trainer import build_method
    from hdml_lite.viz.synthetic import SyntheticExplorer

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 15)
    x = rng.normal(size=(60, 8)) + 4 * np.eye(8)[labels]
    emb = tsne.fit_tsne(x, n_iter=100, early_exaggeration_iter=50, n_jobs=1)
    cfg = apply_overrides(get_preset("lab_hdml_npair"), [
        "model.width=4", "model.pretrained=false", "model.embedding_size=8", "hdml.gen_hidden=16",
        "train.device=cpu", "data.max_classes=10"])
    method = build_method(cfg, 10, 1, torch.device("cpu"))
    method.tracker._j_avg = 2.0
    return SyntheticExplorer(method, emb, torch.as_tensor(x, dtype=torch.float32), labels, anchor=0,
                             n_negatives=3, n_iter=30)


def _figures(explorer):
    """name -> a function building that figure."""
    hist = _history()
    many = {"N-pair": hist, "HDML (N-pair)": hist, "triplet": hist, "HDML (triplet)": hist,
            "HDML without J_soft": hist, "HDC": hist}
    images = np.random.default_rng(0).integers(0, 255, size=(60, 1, 12, 12), dtype=np.uint8)
    ds = SimpleNamespace(images=np.repeat(images, 2, axis=0), labels=np.repeat(np.arange(12), 10),
                         class_names=[f"class {c}" for c in range(12)])
    xy = np.random.default_rng(1).normal(size=(60, 2))
    lab = np.repeat(np.arange(6), 10)
    summary = {m: {k: (0.6, 0.01, 3) for k in ("r1", "nmi", "f1")} for m in
               ("lab_npair", "lab_hdml_npair", "lab_triplet", "lab_hdml_triplet", "lab_hdc", "lab_contrastive_hdcbatch")}
    return {
        "plots.plot_learning_curves": lambda: plots.plot_learning_curves(many),
        "plots.plot_learning_curves(4 metrics)": lambda: plots.plot_learning_curves(
            many, metrics=("r1", "nmi", "f1", "map_r")),
        "plots.plot_loss": lambda: plots.plot_loss(hist, keys=("loss", "j_metric")),
        "plots.plot_class_grid": lambda: plots.plot_class_grid(ds, n_classes=12, per_class=12),
        "plots.plot_hdml_state": lambda: plots.plot_hdml_state(hist, alpha=0.0302, beta=1e4),
        "plots.plot_npair_batch": lambda: plots.plot_npair_batch(images[:24].astype(float),
                                                                 np.repeat(np.arange(12), 2), n_pairs=12,
                                                                 class_names=[f"c{c}" for c in range(12)]),
        "mechanism.plot_mechanism": lambda: mechanism.plot_mechanism(
            {"HDML (N-pair)": hist, "HDML without J_soft": _history(seed=1),
             "HDML without J_soft, weight matched": _history(seed=2)}),
        "mining.plot_hdc_selection": lambda: mining.plot_hdc_selection(_hdc_rec()),
        "mining.plot_hdml_synthesis": lambda: mining.plot_hdml_synthesis(_hdml_rec()),
        "mining.plot_hardness_over_steps": lambda: mining.plot_hardness_over_steps(
            [_hdc_rec(s, seed=s) for s in (0, 100, 200)], [_hdml_rec(s, seed=s) for s in (0, 100, 200)]),
        "results.plot_sweep": lambda: results.plot_sweep(_sweep_rows()),
        "results.plot_result_bars": lambda: results.plot_result_bars(summary),
        "toy.plot_pull_factor": lambda: toy.plot_pull_factor().figure,
        "toy.plot_synthetic_weight": lambda: toy.plot_synthetic_weight().figure,
        "tsne.plot_tsne_map": lambda: tsne.plot_tsne_map(xy, lab, images=images, n_thumbs=20,
                                                         class_names=[f"c{c}" for c in range(6)]),
        "tsne.map_grid": lambda: tsne.map_grid(5)[0],
        "widgets.update_augmentation": lambda: widgets.update_augmentation(5.0, 2.0, draw=True)["fig"],
        "widgets.update_tsne_alpha": lambda: widgets.update_tsne_alpha(
            1.0, {1.0: {"coords": xy, "labels": lab, "metrics": {"r1": 0.5}}}, images=images, draw=True,
            n_thumbs=20)["fig"],
        "widgets.update_synthetic": lambda: widgets.update_synthetic(1.0, explorer, draw=True)["fig"],
    }


FIGURE_FUNCTIONS = {  # every public plot_*/update_* (draw=True) of viz/, each built above
    "plots": ("plot_learning_curves", "plot_loss", "plot_class_grid", "plot_hdml_state", "plot_npair_batch"),
    "mechanism": ("plot_mechanism",), "mining": ("plot_hdc_selection", "plot_hdml_synthesis", "plot_hardness_over_steps"),
    "results": ("plot_sweep", "plot_result_bars"), "toy": ("plot_pull_factor", "plot_synthetic_weight"),
    "tsne": ("plot_tsne_map",), "widgets": ("update_augmentation", "update_tsne_alpha", "update_synthetic"),
}


def test_every_figure_function_is_measured():
    mods = {"plots": plots, "mechanism": mechanism, "mining": mining, "results": results, "toy": toy,
            "tsne": tsne, "widgets": widgets}
    for name, mod in mods.items():
        found = {f for f in dir(mod) if re.match(r"(plot_|update_)", f) and callable(getattr(mod, f))
                 and getattr(getattr(mod, f), "__module__", "") == mod.__name__}
        if name == "widgets":
            found = {f for f in found if "draw" in getattr(mod, f).__code__.co_varnames}
        assert found == set(FIGURE_FUNCTIONS[name]), (name, found)


def test_figures_fit_a_laptop_screen_with_readable_legends(explorer):
    too_wide, small = [], []
    with matplotlib.rc_context({"figure.dpi": DPI}):
        for name, make in _figures(explorer).items():
            fig = make()
            fig.canvas.draw()
            width = fig.get_size_inches()[0] * fig.dpi
            tight = fig.get_tightbbox(fig.canvas.get_renderer()).width * fig.dpi   # inches -> px
            if max(width, tight) > MAX_PX:
                too_wide.append(f"{name}: {width:.0f} px (tight {tight:.0f} px)")
            legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
            small += [f"{name}: legend at {t.get_fontsize():.1f} pt" for lg in legends for t in lg.get_texts()
                      if t.get_fontsize() < palette.LEGEND_PT]
            plt.close(fig)
    assert not too_wide, too_wide
    assert not small, sorted(set(small))


def test_sweep_tick_labels_do_not_overprint():
    fig = results.plot_sweep(_sweep_rows())
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in [a for a in fig.axes if a.get_visible()]:
        boxes = [t.get_window_extent(r) for t in ax.get_xticklabels() if t.get_text()]
        assert len(boxes) == 6
        for a, b in zip(boxes, boxes[1:]):
            assert a.x1 + 2 <= b.x0, f"{ax.get_title()}: ticks overprint"
        assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 8
    plt.close(fig)


def _lab(hex_colour):
    """CIELAB (L*, a*, b*) of an sRGB colour, D65."""
    c = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), 0.008856))
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


@pytest.mark.parametrize("base, hdml", [("npair", "hdml_npair"), ("triplet", "hdml_triplet")])
def test_a_baseline_and_its_hdml_differ_in_lightness_and_hue(base, hdml):
    (l0, a0, b0), (l1, a1, b1) = _lab(palette.METHOD_COLORS[base]), _lab(palette.METHOD_COLORS[hdml])
    hue = abs((np.degrees(np.arctan2(b0, a0)) - np.degrees(np.arctan2(b1, a1)) + 180) % 360 - 180)
    assert abs(l0 - l1) >= 15, f"{base}/{hdml}: lightness L* {l0:.0f} vs {l1:.0f}"
    assert hue >= 20, f"{base}/{hdml}: hue angles {hue:.0f} degrees apart"


def test_method_colours_are_told_apart():
    """Any two method colours differ by at least 15 in CIELAB (delta E 1976)."""
    cols = palette.METHOD_COLORS
    close = [(m, n) for i, m in enumerate(cols) for n in list(cols)[i + 1:]
             if np.linalg.norm(np.subtract(_lab(cols[m]), _lab(cols[n]))) < 15]
    assert not close, close


OPT_IN = {"hdml_lite/viz/notebook.py": 1}     # text_progress_bars' HDML_TEXT_BARS=1 branch, nothing else


def test_progress_bars_are_tqdm_auto_everywhere(monkeypatch):
    """The kit imports tqdm.auto only (tqdm.std is a text bar on stderr, pink in Jupyter), except the
    opt-in text bars for headless runs; the notebooks' set-up helper keeps tqdm.auto by default."""
    from tqdm.auto import tqdm as auto_tqdm

    from hdml_lite.training import trainer
    from hdml_lite.viz.notebook import text_progress_bars

    other = {}
    for path in sorted((REPO / "hdml_lite").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^\s*(from tqdm(?:\.\w+)? import [^\n]+|import tqdm[^\n]*)", text, flags=re.M):
            if not m.group(1).startswith("from tqdm.auto import"):
                rel = path.relative_to(REPO).as_posix()
                other[rel] = other.get(rel, 0) + 1
    assert other == OPT_IN, other
    saved = trainer.tqdm
    try:
        monkeypatch.delenv("HDML_TEXT_BARS", raising=False)
        text_progress_bars()
        assert trainer.tqdm is auto_tqdm
        monkeypatch.setenv("HDML_TEXT_BARS", "1")
        text_progress_bars()
        assert trainer.tqdm.func.__module__ == "tqdm.std"
    finally:
        trainer.tqdm = saved
