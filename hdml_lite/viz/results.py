"""Read the reproduction study's CSV files, summarise over seeds, compare with the paper.

    rows = read_csv("results/lab_table.csv")      # method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s
    summary = summarise(rows)                     # {method: {metric: (mean, std, n)}}
    histories = curves_to_histories(read_csv("results/curves.csv"))   # for plot_learning_curves
    plot_sweep(read_csv("results/sweep.csv"))     # alpha,seed,split,r1,nmi,f1[,pull_factor]

Scores in the CSV files are fractions in [0, 1] (the kit's convention); tables print %.
"""
from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..study.paper import DATASETS, DISPLAY, PAPER, dataset_key, split_name
from .palette import FIG_MAX_W, LEGEND_PT, color_for
from .plots import METRIC_NAMES

# The papers' numbers (docs/METHOD.md §1.8 and §2) live in one place: hdml_lite.study.paper.
PAPER_ROWS = ("triplet", "hdml_triplet", "npair", "hdml_npair", "hdc")
TABLE_METRICS = ("nmi", "f1", "r1", "r2", "r4", "r8")


def paper_results(dataset: str = "cars") -> dict:
    """{display name: {metric: %}} of the paper's rows for ``dataset`` (cub | cars | cars196 | sop)."""
    ds = dataset_key(dataset)
    return {DISPLAY[k]: PAPER[ds][k] for k in PAPER_ROWS if k in PAPER[ds]}


def label(name: str) -> str:
    """Display name of a run or study method: ``lab_hdml_npair_norecon`` -> "HDML (N-pair) w/o reconstruction"."""
    _, key, official = split_name(str(name))
    return DISPLAY.get(key, str(name)) + (" [official settings]" if official else "")


def _num(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def read_csv(path) -> list[dict]:
    """Rows of a CSV file as dicts; numeric fields as floats (``seed``, ``step`` as ints)."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {k: _num(v) for k, v in r.items()}
            for k in ("seed", "step"):
                if isinstance(row.get(k), float) and row[k].is_integer():
                    row[k] = int(row[k])
            rows.append(row)
    return rows


STUDY_FILES = ("lab_table", "curves", "sweep", "verdicts", "mechanism")


def load_study(results_dir) -> dict:
    """{name: rows | None} for each of ``STUDY_FILES`` (lab_table, curves, sweep, verdicts,
    mechanism) in ``results_dir``: None where the file is absent. Where ``verdicts_v2.csv`` is
    there too (``python -m hdml_lite.study reverdict``: the committed claims under the add-a-seed
    boundary and Holm, docs/METHOD.md §6), its rows for ``verdicts.csv`` are the verdicts."""
    d = Path(results_dir)
    out = {}
    for name in STUDY_FILES:
        p = d / f"{name}.csv"
        out[name] = read_csv(p) if p.is_file() else None
    again = d / "verdicts_v2.csv"      # the same claims under the boundary and Holm (study reverdict)
    if out["verdicts"] is not None and again.is_file():
        rows = [r for r in read_csv(again) if r.get("source") == "verdicts.csv"]
        out["verdicts"] = rows or out["verdicts"]
    return out


def load_settings(results_dir) -> dict | None:
    """The study's settings and choices (``study.json``: chosen lr and alpha per method, the J_avg its
    alpha grid was built on, ...), or None where the file is absent. Read as JSON data only."""
    p = Path(results_dir) / "study.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def summarise(rows: list[dict], by: str = "method", metrics=TABLE_METRICS + ("map_r", "train_s")) -> dict:
    """{group: {metric: (mean, std, n)}} over seeds (std with ddof=0; 0 for one seed)."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for m in metrics:
            v = r.get(m)
            if isinstance(v, float) and math.isfinite(v):
                groups[r[by]][m].append(v)
    return {g: {m: (float(np.mean(v)), float(np.std(v)), len(v)) for m, v in ms.items()}
            for g, ms in groups.items()}


def select(rows: list[dict] | None, methods) -> list[dict]:
    """The rows of ``methods`` (in that order of methods); all rows when none matches (other names)."""
    rows = rows or []
    keep = [r for m in methods for r in rows if r.get("method") == m]
    return keep or rows


def metrics_to_summary(runs: dict) -> dict:
    """{name: metrics dict (one run)} -> the ``summarise`` format (std 0, n 1)."""
    return {n: {k: (float(v), 0.0, 1) for k, v in m.items() if isinstance(v, (int, float))} for n, m in runs.items()}


def comparison_markdown(summary: dict, metrics=TABLE_METRICS, paper_dataset: str | None = "cars",
                        caption: str = "") -> str:
    """A markdown table: the kit's rows (mean ± std over seeds, %) then the paper's rows for
    ``paper_dataset`` (METHOD §1.8; HDC: R@1 only), clearly marked as another dataset."""
    head = "| source | method | " + " | ".join(METRIC_NAMES.get(m, m.upper()) for m in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for name, ms in summary.items():
        cells = []
        for m in metrics:
            if m not in ms:
                cells.append("-")
                continue
            mean, std, n = ms[m]
            cells.append(f"{100 * mean:.1f} ± {100 * std:.1f}" if n > 1 else f"{100 * mean:.1f}")
        lines.append(f"| this kit, glyphs | {label(name)} | " + " | ".join(cells) + " |")
    if paper_dataset:
        ds = DATASETS[dataset_key(paper_dataset)]
        for meth, vals in paper_results(paper_dataset).items():
            lines.append(f"| paper, {ds} (other data!) | {meth} | "
                         + " | ".join(f"{vals[m]:.1f}" if m in vals else "-" for m in metrics) + " |")
    if caption:
        lines.append("")
        lines.append(caption)
    return "\n".join(lines)


def curves_to_histories(rows: list[dict], split: str | None = None) -> dict:
    """curves.csv rows (method,seed,step,split,nmi,f1,r1) -> {method: [history per seed]} in the
    trainer's history format (keys: display names, see ``label``), for ``plot_learning_curves``.
    NMI and F1 are present at the final step only (k-means runs at the final evaluation)."""
    per: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if split is None or r["split"] == split:
            per[r["method"]][r["seed"]].append({k: v for k, v in r.items()      # empty: no k-means at that step
                                                if k not in ("method", "seed") and v not in ("", None)})
    return {label(m): [{"train": [], "eval": sorted(ev, key=lambda e: e["step"])} for _, ev in sorted(seeds.items())]
            for m, seeds in per.items()}


def seeds_per_alpha(rows: list[dict], split: str = "test") -> list[int]:
    """Number of distinct seeds of each (alpha, method) present among ``split``'s rows."""
    seeds: dict = defaultdict(set)
    for r in rows:
        if r.get("split", split) == split:
            seeds[(float(r["alpha"]), r.get("method"))].add(r.get("seed", 0))
    return [len(v) for _, v in sorted(seeds.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))]


def _by_pull_target(rows: list[dict]) -> bool:
    """True for sweep rows of the replicate design: every row has a pull target, and a target has several
    alphas (each replicate's alpha comes from its own J_avg), so the sweep is read by target, not alpha."""
    return (bool(rows) and all(isinstance(r.get("pull_target"), float) for r in rows)
            and len({r["pull_target"] for r in rows}) < len({float(r["alpha"]) for r in rows}))


def sweep_caption(rows: list[dict], split: str = "test") -> str:
    """What the sweep figure shows, read from the rows: "3 seeds per alpha: mean, band min-max",
    "one seed per alpha", or "1-3 seeds per alpha: mean, band min-max"."""
    mine = [r for r in rows if r.get("split", split) == split]
    if _by_pull_target(mine):
        per = {}
        for r in mine:      # one run per replicate and target (its own alpha): count runs per target and method
            per[(r["pull_target"], r.get("method"))] = per.get((r["pull_target"], r.get("method")), 0) + 1
        lo, hi = min(per.values()), max(per.values())
        return (f"{lo if lo == hi else f'{lo}-{hi}'} replicates per pull target (each its own alpha): mean, "
                "band min-max")
    n = seeds_per_alpha(rows, split)
    if not n:
        return "no rows"
    lo, hi = min(n), max(n)
    if hi == 1:
        return "one seed per alpha"
    count = f"{lo} seeds" if lo == hi else f"{lo}-{hi} seeds"
    return f"{count} per alpha: mean, band min-max"


def verdicts_markdown(rows: list[dict] | None) -> str:
    """verdicts.csv rows (claim, metric, n_seeds, mean_diff, ci_low, ci_high, verdict; fractions) as a
    markdown table in points of %, or a line saying the study has not been run.

    Rows of the sequential rule (study/sequential.py: ``verdict_holm``, ``look``, ``level``,
    ``p_improve``) show the Holm-adjusted verdict with the raw one beside it, the look that decided,
    the interval at 1 - level and P(A > B) [bootstrap 95%]; older files render as before."""
    if not rows:
        return "The study has not been run here (no `results/verdicts.csv`): no verdict on the paper's claims."
    def pts(v):
        return f"{100 * v:+.1f}" if isinstance(v, float) and math.isfinite(v) else "-"

    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    def count(n):
        return int(n) if num(n) else n

    new = any("verdict_holm" in r for r in rows)
    if not new:
        lines = ["| the paper's claim | metric | seeds | mean difference (points) | 95% interval | verdict |",
                 "|---|---|---|---|---|---|"]
    else:
        lines = ["| the paper's claim | metric | seeds (look) | mean difference (points) | interval (1 - level) | "
                 "verdict after Holm (raw) | P(A > B) [95%] |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        n = r.get("n_seeds")
        if not new:
            lines.append(f"| {r['claim']} | {METRIC_NAMES.get(r['metric'], r['metric'])} | "
                         f"{count(n)} | {pts(r.get('mean_diff'))} | "
                         f"[{pts(r.get('ci_low'))}, {pts(r.get('ci_high'))}] | **{r['verdict']}** |")
            continue
        lv = r.get("level")
        ci = f"[{pts(r.get('ci_low'))}, {pts(r.get('ci_high'))}]" + (f" at {100 * (1 - lv):.3g}%" if num(lv) else "")
        raw = r["verdict"] + (f" ({r['reason']})" if r["verdict"] == "undecided" and r.get("reason") else "")
        look = f"{count(n)} ({count(r['look'])})" if num(r.get("look")) else f"{count(n)}"
        pi, lo, hi = r.get("p_improve"), r.get("p_improve_low"), r.get("p_improve_high")
        pab = (f"{pi:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if num(lo) and num(hi) else "")) if num(pi) else "-"
        lines.append(f"| {r['claim']} | {METRIC_NAMES.get(r['metric'], r['metric'])} | {look} | "
                     f"{pts(r.get('mean_diff'))} | {ci} | **{r.get('verdict_holm', r['verdict'])}** ({raw}) | {pab} |")
    margin = next((r["margin"] for r in rows if isinstance(r.get("margin"), float)), None)
    if margin is not None and not new:
        lines.append(f"\n**supported** / **contradicted**: the 95% interval lies above / below 0; **equivalent**: "
                     f"the 90% interval lies inside ±{100 * margin:g} point (any effect is smaller than that); "
                     f"**undecided**: none of these (docs/METHOD.md §6).")
    elif margin is not None:
        lines.append(f"\n**supported** / **contradicted**: the interval at 1 - level lies above / below 0; "
                     f"**equivalent**: both one-sided tests place the mean inside ±{100 * margin:g} point; "
                     f"**undecided**: none of these, or fewer than 3 seeds, or no spread. seeds (look): the paired "
                     f"seeds run and the look (seeds) at which the verdict was decided, at that look's level "
                     f"(the add-a-seed boundary). The verdict in bold is after Holm's correction within the claim's "
                     f"family, the raw one beside it. P(A > B): how often A beats B over the paired seeds, with a "
                     f"bootstrap 95% interval (docs/METHOD.md §6).")
    return "\n".join(lines)


def engagement_markdown(rows: list[dict] | None, caption: str = "") -> str:
    """engagement.csv rows as a markdown table: method, seed, every condition's value and verdict
    (``<name>_value`` / ``<name>_ok``), the extra numbers when present (``acc_syn``, ``pull_median``), and
    every ``engaged*`` column (v1, v2, ...). A line saying the file is absent when ``rows`` is empty."""
    if not rows:
        return "No engagement table here (`engagement.csv` is absent)."
    cols = list(rows[0])
    conds = [c[:-6] for c in cols if c.endswith("_value")]
    extra = [c for c in ("acc_syn", "pull_median") if c in cols]
    verdicts = [c for c in cols if c.startswith("engaged")]

    def cell(r, c):
        v = r.get(c)
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    def cond(r, c):
        ok = r.get(f"{c}_ok")
        return cell(r, f"{c}_value") + ("" if ok is None else " ✓" if ok == 1 else " ✗")

    head = ["method", "seed", *conds, *extra, *verdicts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [label(r["method"]), str(r.get("seed", "")), *(cond(r, c) for c in conds), *(cell(r, c) for c in extra),
                *("**yes**" if r.get(c) == 1 else "no" for c in verdicts)]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines + ([""] + [caption] if caption else []))


def verdict_of(rows: list[dict] | None, claim_start: str, metric: str = "r1") -> str | None:
    """The verdict of the first claim starting with ``claim_start`` on ``metric`` (None: absent): the
    Holm-adjusted one where the row has it (verdicts_v2.csv), else the row's verdict."""
    for r in rows or []:
        if str(r["claim"]).startswith(claim_start) and r["metric"] == metric:
            return str(r.get("verdict_holm") or r["verdict"])
    return None


def mechanism_to_histories(rows: list[dict] | None, seed: int = 0) -> dict:
    """mechanism.csv rows (method, seed, step, diagnostics) -> {display name: history} of one seed,
    for ``plot_mechanism``."""
    per: dict = defaultdict(list)
    for r in rows or []:
        if r.get("seed", 0) == seed:
            per[r["method"]].append({k: v for k, v in r.items() if k not in ("method", "seed")})
    return {label(m): {"train": sorted(v, key=lambda e: e["step"]), "eval": []} for m, v in per.items()}


def plot_sweep(rows: list[dict], metrics=("r1", "nmi", "f1"), split: str = "test", ax_row=None,
               title: str = "Pulling factor alpha (paper fig. 7)", reference: dict | None = None):
    """One panel per metric: mean over seeds at each swept alpha, the alphas evenly spaced in increasing
    order (one tick each, so that close alphas never overprint), min-max band when an alpha has several seeds.

    rows: sweep.csv rows (alpha, seed, split, metrics; optional ``pull_factor``, the run's final
    exp(-alpha/J_avg), printed under each tick; optional ``pull_target``, the pull factor the alpha
    was chosen for: then each tick reads "p=0.5 / alpha=0.2", readable on a grid of close alphas). The title gets ``sweep_caption(rows)`` appended,
    so it says how many seeds there are. reference: optional {metric: value} of a baseline drawn
    as a horizontal line. Returns the figure.
    """
    rows = [r for r in rows if r.get("split", split) == split]
    alphas = sorted({float(r["alpha"]) for r in rows})
    by_target = _by_pull_target(rows)
    if by_target:    # the replicate design: each replicate's alpha for a target differs (its own J_avg)
        span = {}
        for r in rows:
            span.setdefault(r["pull_target"], []).append(float(r["alpha"]))
        alphas = sorted(span, reverse=True)       # the x positions: targets, from no pull to the hardest

        def xkey(r):
            return r["pull_target"]
    else:
        def xkey(r):
            return float(r["alpha"])
    if ax_row is None:   # as many panels per row as leave each tick about 0.55 inch (no overprinting)
        cols = max(1, min(len(metrics), int(FIG_MAX_W // (0.55 * len(alphas) + 1.0))))
        rows_n = -(-len(metrics) // cols)
        fig, grid = plt.subplots(rows_n, cols, figsize=(FIG_MAX_W if cols > 1 else min(FIG_MAX_W, 0.55 * len(alphas)
                                                                                          + 2.0), 3.6 * rows_n + 0.4),
                                 squeeze=False)
        ax_row = list(grid.ravel())
        for ax in ax_row[len(metrics):]:
            ax.set_visible(False)
    fig = ax_row[0].figure
    pkey = "pull_factor" if any(isinstance(r.get("pull_factor"), float) for r in rows) else "pull_factor_median"
    methods = list(dict.fromkeys(r.get("method", "lab_hdml_npair") for r in rows)) or ["lab_hdml_npair"]
    main = methods[0]
    pulls = [[r[pkey] for r in rows if xkey(r) == a and r.get("method", main) == main
              and isinstance(r.get(pkey), float) and math.isfinite(r[pkey])] for a in alphas]
    targets = {float(r["alpha"]): r["pull_target"] for r in rows if isinstance(r.get("pull_target"), float)}
    if by_target:
        ticks = [f"p={p:g}\n\u03b1={min(span[p]):.2g}" + (f"-{max(span[p]):.2g}" if max(span[p]) > min(span[p]) else "")
                 for p in alphas]
        x_label = "target pull factor p and its alphas\n(alpha = -J_avg ln p at each run's tracked J_avg)"
    elif len(targets) == len(alphas):    # a grid chosen from the pull factor: label each alpha by its target
        ticks = [f"p={targets[a]:g}\n\u03b1={a:.2g}" for a in alphas]
        x_label = "target pull factor p and its alpha\n(alpha = -J_avg ln p at the tracked J_avg)"
    else:
        ticks = [f"{a:g}" + (f"\n({np.mean(p):.2f})" if p else "") for a, p in zip(alphas, pulls)]
        x_label = "alpha" + ("\n(median pull factor exp(-alpha/J_avg))" if any(pulls) else " (pulling factor)")
    base_colour = color_for("npair")
    x = np.arange(len(alphas), dtype=float)      # evenly spaced: the grid's alphas span decades, some close
    for ax, m in zip(ax_row, metrics):
        for j, meth in enumerate(methods):
            vals = [[100 * r[m] for r in rows if xkey(r) == a and r.get("method", main) == meth
                     and isinstance(r.get(m), float)] for a in alphas]
            mean = np.array([np.mean(v) if v else np.nan for v in vals])
            several = any(len(v) > 1 for v in vals)
            colour = color_for(meth, j) if "method" in rows[0] else color_for("hdml_npair")
            name = label(meth) if "method" in rows[0] else "HDML (N-pair)"
            ax.plot(x, mean, marker="o", color=colour, label=name + (", mean over seeds" if several else ""))
            if several:
                ax.fill_between(x, [min(v) if v else np.nan for v in vals], [max(v) if v else np.nan for v in vals],
                                color=colour, alpha=0.2, label="min-max over seeds")
        if reference and m in reference:
            ax.axhline(100 * reference[m], color=base_colour, ls="--", label="baseline N-pair")
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_xlim(-0.5, len(alphas) - 0.5)
        ax.set_xlabel(x_label, fontsize=8)
        ax.set_ylabel(f"{METRIC_NAMES.get(m, m)} (%)")
        ax.set_title(f"{METRIC_NAMES.get(m, m)} on {split} classes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=LEGEND_PT)
    fig.suptitle(f"{title}:\n{sweep_caption(rows, split)}", fontsize=11)
    fig.tight_layout()
    return fig


def plot_result_bars(summary: dict, metrics=("r1", "nmi", "f1"), title: str = "Final models on the test classes"):
    """Grouped bars (mean, with std error bars when several seeds) of ``summarise`` output."""
    names = list(summary)
    fig, ax = plt.subplots(figsize=(min(FIG_MAX_W, 2.0 + 0.45 * len(metrics) * max(1, len(names))), 4.2))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(metrics))
    for i, n in enumerate(names):
        mean = [100 * summary[n].get(m, (np.nan, 0, 0))[0] for m in metrics]
        std = [100 * summary[n].get(m, (np.nan, 0, 0))[1] for m in metrics]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, mean, width, yerr=std, capsize=3,
               color=color_for(n, i), edgecolor="white", label=label(n))
    ax.set_xticks(x, [METRIC_NAMES.get(m, m) for m in metrics])
    ax.set_ylabel("score (%)")
    ax.set_title(title)
    ax.legend(fontsize=LEGEND_PT, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(3, max(1, len(names))))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
