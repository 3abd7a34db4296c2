"""What the notebooks share: fast mode, where runs and results live, the training budget.

    FAST = is_fast()                                   # HDML_FAST=1: tiny data, few steps (tests)
    budget = pick_budget(device)                       # "fast" | "cpu" | "full"
    cfg = notebook_config("lab_hdml_npair", "hdml.alpha=3", budget=budget)
    result = train(cfg)                                # resumes from runs/notebooks/...: instant when done
    run = hdml_lite.pinned.get_run(cfg)                # the notebooks: the pinned copy (HDML_TRAIN=1: train)

Budgets:

- "full": the preset as it is (its own steps, the whole glyph set): used when a GPU is present,
          or anywhere with ``HDML_BUDGET=full``.
- "cpu":  the lab preset's steps (400 for ``lab_*``), batch and network, on 24 images per class
          (train and test), an evaluation every 80 steps (5 points per learning curve): about
          45-75 CPU-seconds per run on one thread (OMP_NUM_THREADS=1, measured on a shared 2-core
          machine; wall time there was up to 2.5x longer). Shorter runs do not work: at 100 steps
          the classifier reaches about 20% on the training classes and the synthetic loss weighs
          about 0.2. Whether HDML's mechanism is engaged at 400 steps is what
          ``hdml_lite.hdml.diagnostics.engagement`` prints for each run (docs/METHOD.md §5).
- "fast": seconds (HDML_FAST=1): 12 classes x 8 images, 6 steps, tiny networks (a pretrained
          CNN keeps its width: the shipped weights fix it).

``HDML_BUDGET=fast|cpu|full`` forces a budget. ``HDML_FAST=1`` (what the tests set) selects "fast";
set together with a different ``HDML_BUDGET`` it is an error, not a silent choice. A bad value
stops the set-up cell with one line (``BudgetError``), not a traceback.

Runs go under ``$HDML_RUNS`` (default ``<repo>/runs``, or ``./runs`` outside a checkout),
in ``notebooks/<budget>/<preset>[__<overrides>]``; results are read from ``results_dir()``
(``$HDML_RESULTS``, else ``<repo>/results``, else the copy packaged with the kit:
``hdml_lite.results_data``).

``text_progress_bars()`` (the set-up cell calls it) keeps tqdm.auto's bars, widgets in Jupyter and
JupyterLab; with ``HDML_TEXT_BARS=1`` (for a notebook executed headless and saved, where a widget
is saved as its first frame, "0%") it makes the trainer draw its bar as text instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..config import Config, apply_overrides
from ..presets import get_preset

BUDGETS = {
    "fast": ["train.steps=6", "train.eval_every=3", "train.ckpt_every=0", "data.max_classes=12",
             "data.max_per_class=8", "data.batch_classes=4", "model.width=8", "model.embedding_size=16",
             "train.progress=false", "hdml.block=2", "hdml.gen_hidden=32", "hdc.head_dim=16"],
    "cpu": ["train.eval_every=80", "train.ckpt_every=100", "data.max_per_class=24"],
    "full": [],
}


def is_fast() -> bool:
    """HDML_FAST=1 selects tiny data and few steps (what the tests run)."""
    return os.environ.get("HDML_FAST") == "1"


class BudgetError(ValueError):
    """A bad HDML_BUDGET / HDML_FAST setting. In IPython it shows as its one-line message (no traceback)."""

    def _render_traceback_(self):          # IPython calls this instead of printing the traceback
        return [f"BudgetError: {self}"]


def pick_budget(device=None) -> str:
    """"fast" when HDML_FAST=1, else ``$HDML_BUDGET`` when set (fast | cpu | full), else "full"
    on a GPU and "cpu" otherwise. Raises BudgetError for an unknown HDML_BUDGET, or for
    HDML_FAST=1 together with another HDML_BUDGET (neither overrides the other silently)."""
    forced = os.environ.get("HDML_BUDGET", "").strip()
    if forced and forced not in BUDGETS:
        raise BudgetError(f"HDML_BUDGET={forced!r}: expected one of {', '.join(BUDGETS)} (or leave it unset)")
    if is_fast():
        if forced and forced != "fast":
            raise BudgetError(f"HDML_FAST=1 and HDML_BUDGET={forced} disagree: unset one of them "
                              "(HDML_FAST=1 means the fast budget)")
        return "fast"
    if forced:
        return forced
    return "full" if device is not None and getattr(device, "type", str(device)) == "cuda" else "cpu"


def text_progress_bars(mininterval: float = 2.0) -> None:
    """The trainer's progress bar: tqdm.auto's widget in Jupyter (the default), or plain text
    (``tqdm.std``) when ``HDML_TEXT_BARS=1``. Call once, in the set-up cell.

    A student sees a widget. A notebook executed headless (nbclient, papermill) and saved keeps
    only a widget's first text frame ("0%| 0/400"); with ``HDML_TEXT_BARS=1`` the bar is a text
    line rewritten with carriage returns, so the saved copy ends on the final line ("100%| 400/400"),
    redrawn at most every ``mininterval`` seconds (default 2) so that the copy stays small.
    """
    from functools import partial

    from tqdm.auto import tqdm as auto_tqdm

    from ..training import trainer

    if os.environ.get("HDML_TEXT_BARS") == "1":
        from tqdm.std import tqdm as text_tqdm      # opt-in: text for saved copies of headless runs

        trainer.tqdm = partial(text_tqdm, mininterval=mininterval)
    else:
        trainer.tqdm = auto_tqdm


def repo_root() -> Path | None:
    """The checkout holding this package (None when installed elsewhere, e.g. pip from git)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def runs_dir() -> Path:
    if os.environ.get("HDML_RUNS"):
        return Path(os.environ["HDML_RUNS"]).expanduser()
    return (repo_root() or Path.cwd()) / "runs"


def results_dir() -> Path:
    """Where the study's result tables are read: ``$HDML_RESULTS``, else the checkout's ``results/``,
    else the copy packaged with the kit (an installed kit, e.g. on Colab): see ``results_files``."""
    from ..results_data import find_results

    return find_results()


def _slug(overrides) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9.=_-]", "_", o) for o in overrides)


def run_key(preset: str, *overrides: str, seed: int = 0) -> str:
    """A notebook run's folder name under ``runs/notebooks/<budget>/``: ``preset[__overrides][__seedN]``."""
    return preset + (f"__{_slug(overrides)}" if overrides else "") + (f"__seed{seed}" if seed else "")


def notebook_config(preset: str, *overrides: str, budget: str = "cpu", seed: int = 0) -> Config:
    """``get_preset(preset)`` + the budget's overrides + ``overrides``; out_dir under ``runs_dir()``."""
    if budget not in BUDGETS:
        raise ValueError(f"budget={budget!r}; expected one of {', '.join(BUDGETS)}")
    cfg = get_preset(preset)
    extra = list(BUDGETS[budget])
    if cfg.model.pretrained:           # the shipped lab weights fix the CNN's width: keep the preset's
        extra = [o for o in extra if not o.startswith("model.width=")]
    out = runs_dir() / "notebooks" / budget / run_key(preset, *overrides, seed=seed)
    return apply_overrides(cfg, extra + [f"train.seed={seed}", *overrides, f"train.out_dir={out}"])


def curve_metrics(histories: dict, wanted=("r1", "map_r")) -> tuple:
    """The metrics of ``wanted`` that every test evaluation of every history has: the learning curves
    plot R@1 and MAP@R (intermediate evaluations may be retrieval-only, without NMI).
    histories: {label: history or [histories]}, a history being {"eval": [{"split", metric: value}]}."""
    rows = [e for hs in histories.values() for h in (hs if isinstance(hs, list) else [hs])
            for e in h.get("eval", []) if e.get("split", "test") == "test"]
    return tuple(m for m in wanted if rows and all(r.get(m) is not None for r in rows))


SWEEP_PULLS = (1.0, 0.5, 0.1, 0.01)    # the notebooks' graded alpha sweep, as pull factors


def tracked_j_avg(history: dict) -> float:
    """The J_avg a run tracked: the median of its logged ``j_avg`` over the second half of training
    (after the first blocks, when the tracker has settled). history: a run's ``history``."""
    from ..study.stats import second_half_median

    return second_half_median([r["j_avg"] for r in history["train"] if "j_avg" in r])


def sweep_alphas(j_avg: float, preset_alpha: float | None = None, targets=SWEEP_PULLS) -> dict:
    """{target pull factor: alpha} with exp(-alpha / j_avg) = target (``study.stats.alpha_grid``),
    alphas rounded to 3 significant digits (stable run names). A grid alpha within 10% of
    ``preset_alpha`` is replaced by it, so that point reuses the preset's run."""
    from ..study.stats import alpha_grid

    out = {}
    for p, a in zip(targets, alpha_grid(j_avg, targets)):
        a = float(f"{a:.3g}")
        if preset_alpha and a > 0 and abs(a - preset_alpha) <= 0.1 * preset_alpha:
            a = float(preset_alpha)
        out[p] = a
    return out


def describe_budget(budget: str, preset: str = "lab_hdml_npair") -> str:
    """One line for the notebook to print, with the steps and sizes ``preset`` really gets at ``budget``."""
    cfg = notebook_config(preset, budget=budget)
    per = f"{cfg.data.max_per_class} images per class" if cfg.data.max_per_class else "all images"
    classes = f"{cfg.data.max_classes} classes" if cfg.data.max_classes else "all classes"
    size = f"{cfg.train.steps} steps, {classes}, {per}, CNN width {cfg.model.width}"
    return {"fast": f"FAST mode (HDML_FAST=1): {size}; numbers are meaningless, the code path is real.",
            "cpu": f"CPU budget: {size}; the notebooks load the pinned runs of this budget "
                   "(hdml_lite/pinned; HDML_TRAIN=1 trains them, each run's printout gives its training time).",
            "full": f"full lab preset {preset}: {size}."}[budget]
