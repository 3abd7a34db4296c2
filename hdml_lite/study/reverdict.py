"""Every committed verdict again, under the sequential rule, Holm and P(A > B), without training.

    python -m hdml_lite.study reverdict                     # reads results/, writes results/verdicts_v2.csv
    python -m hdml_lite.study reverdict --out /tmp/v2       # anywhere else (the tests)

Sources: the lab study (``lab_table.csv`` + ``study.json``: the headline claims under the add-a-seed
design of study.json, the others at their fixed seeds), the scratch study (``scratch/``; its
study.json records no add-a-seed design: fixed seeds), every ``compare_*/`` (``table.csv`` +
``compare.json``), and the hypotheses (``hypotheses.csv``: no per-seed table is committed, so the
tests are recomputed from each row's mean and 95% interval, which fix the t-test: P(A > B) is not
available there). Writes ``verdicts_v2.csv`` (one row per claim and metric, beside the committed
verdict) and ``verdicts_per_seed.csv`` (the paired scores behind every per-seed row). This is the
only writer of those two files; run it by hand.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .engine import paired
from .files import PER_SEED_COLUMNS, VERDICT_STATS, read_rows, write_csv
from .keys import CLAIMS, HEADLINE_CLAIMS, method_name
from .sequential import sequential_verdict, verdict_row, verdict_text, with_holm
from .stats import t_quantile

V2_COLUMNS = ("source", "claim", "family", "metric") + VERDICT_STATS + ("old_verdict", "old_n_seeds", "data")


OLD_DIR = "v1"      # results/v1/: the first study's verdict files, kept when the re-run replaced them


def _old(path: Path) -> dict:
    """{(claim, metric): row} of the verdicts the first study committed for the source at ``path``
    (``results/<x>/verdicts.csv``): ``results/v1/<x>/verdicts.csv`` when that copy exists (the source
    was re-run under the new rules), else the file itself."""
    path = Path(path)
    results = next((p for p in path.parents if (p / OLD_DIR).is_dir()), None)
    if results is not None:
        first = results / OLD_DIR / path.relative_to(results)
        if first.is_file():
            path = first
    return {(r["claim"], r["metric"]): r for r in read_rows(path)} if path.is_file() else {}


def _claim_rows(source: str, table: list[dict], claims, headline: int, design, margin: float, old: dict,
                family_head: str = "headline") -> tuple[list[dict], list[dict]]:
    rows, seeds_rows = [], []
    for i, (claim, a, b) in enumerate(claims):
        for metric in ("r1", "nmi"):
            seeds, xa, xb = paired(table, a, b, metric)
            if not seeds:
                continue
            n0, n_max = design if i < headline else (len(seeds), len(seeds))
            v = verdict_row(xa, xb, n0, n_max, margin)
            o = old.get((claim, metric), {})
            rows.append({"source": source, "claim": claim, "family": family_head if i < headline else "ablations",
                         "metric": metric, **v, "old_verdict": o.get("verdict", ""), "old_n_seeds": o.get("n_seeds"),
                         "data": "per-seed"})
            seeds_rows += [{"source": source, "claim": claim, "metric": metric, "seed": k, "a": a, "b": b,
                            "score_a": p, "score_b": q, "diff": p - q} for k, p, q in zip(seeds, xa, xb)]
    return rows, seeds_rows


def _study(results: Path, sub: str, regime: str) -> tuple[list[dict], list[dict]]:
    folder = results / sub if sub else results
    if not (folder / "lab_table.csv").is_file():
        return [], []
    info = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
    margin = float(info.get("margin", 0.01))
    design = (int(info.get("seeds_key", 5)), int(info.get("max_seeds", info.get("seeds_key", 5))))
    claims = [(c, method_name(regime, a), method_name(regime, b)) for c, a, b in CLAIMS]
    source = f"{sub}/verdicts.csv" if sub else "verdicts.csv"
    return _claim_rows(source, read_rows(folder / "lab_table.csv"), claims, HEADLINE_CLAIMS, design, margin,
                       _old(folder / "verdicts.csv"))


def _compare(folder: Path) -> tuple[list[dict], list[dict]]:
    ident = json.loads((folder / "compare.json").read_text()).get("identity", {})
    presets = ident.get("presets", [])
    claims = [(f"{presets[0]} > {b}", presets[0], b) for b in presets[1:]]
    design = (int(ident.get("seeds", 5)), int(ident.get("max_seeds", 10)))
    return _claim_rows(f"{folder.name}/verdicts.csv", read_rows(folder / "table.csv"), claims, len(claims), design,
                       float(ident.get("margin", 1.0)) / 100, _old(folder / "verdicts.csv"))


def summary_verdict(mean: float, ci_high: float, n: int, margin: float, level: float = 0.95) -> dict:
    """The fixed-seed verdict from a row's mean and its ``level`` t-interval over n paired seeds (the
    t-tests depend on the differences only through their mean and sd): differences with that mean
    and sd, through the kit's own decision function."""
    sd = (ci_high - mean) / t_quantile((1 + level) / 2, n - 1) * math.sqrt(n)
    u = np.arange(n, dtype=float)
    u = (u - u.mean()) / u.std(ddof=1)
    return sequential_verdict(mean + sd * u, n, n, margin)


def _hypotheses_claim(r: dict) -> str:
    return f"{r['hypothesis']}, {r['setting']}: HDML({r['loss']}) > {r['loss']}"


def _hypotheses(results: Path) -> tuple[list[dict], list[dict]]:
    """The hypotheses' verdicts: from ``hypotheses_per_seed.csv`` (fixed seeds, one family) when it
    exists, else from each row's mean and 95% interval (the first run committed no per-seed table)."""
    path = results / "hypotheses.csv"
    if not path.is_file():
        return [], []
    first = results / OLD_DIR / "hypotheses.csv"
    listed = read_rows(path)
    old_rows = read_rows(first) if first.is_file() else listed
    old = {(_hypotheses_claim(r), r["metric"]): r for r in old_rows}
    # an arm whose setting moved (H4's pull target follows the trade-off) keeps its old verdict by
    # hypothesis, loss and metric, where that names one row of the first run
    by_arm = {}
    for r in old_rows:
        by_arm.setdefault((r["hypothesis"], r["loss"], r["metric"]), []).append(r)
    for r in listed:
        got = by_arm.get((r["hypothesis"], r["loss"], r["metric"]), [])
        if (_hypotheses_claim(r), r["metric"]) not in old and len(got) == 1:
            old[(_hypotheses_claim(r), r["metric"])] = got[0]
    per_seed = results / "hypotheses_per_seed.csv"
    if per_seed.is_file():
        table = read_rows(per_seed)
        key = lambda x: (x["hypothesis"], x["setting"], x["loss"])  # noqa: E731  (one arm and loss)
        rows, seeds_rows = [], []
        for arm_key in dict.fromkeys(map(key, listed)):       # one verdict computation per arm, every metric
            mine = [r for r in listed if key(r) == arm_key]
            r, claim = mine[0], _hypotheses_claim(mine[0])
            a, b = f"lab_hdml_{r['loss']}", f"lab_{r['loss']}"
            got, s = _claim_rows("hypotheses.csv", [x for x in table if key(x) == arm_key], [(claim, a, b)], 0, None,
                                 float(r.get("margin", 0.01)),
                                 {(claim, m): o for (c, m), o in old.items() if c == claim}, "hypotheses")
            for m in (x["metric"] for x in mine):
                rows += [dict(x, family="hypotheses") for x in got if x["metric"] == m]
                seeds_rows += [x for x in s if x["metric"] == m]
        return rows, seeds_rows
    rows = []
    for r in listed:
        v = summary_verdict(r["mean_diff"], r["ci_high"], int(r["n_seeds"]), float(r.get("margin", 0.01)))
        claim = _hypotheses_claim(r)
        o = old.get((claim, r["metric"]), r)
        rows.append({"source": "hypotheses.csv", "claim": claim, "family": "hypotheses", "metric": r["metric"], **v,
                     "p_improve": math.nan, "p_improve_low": math.nan, "p_improve_high": math.nan,
                     "old_verdict": o["verdict"], "old_n_seeds": o["n_seeds"],
                     "data": "summary (mean and 95% interval; no per-seed table committed)"})
    return rows, []


def reverdict(results: str | Path = "results") -> tuple[list[dict], list[dict]]:
    """(verdicts_v2 rows, per-seed rows) from the committed files under ``results``; Holm within each
    source's families."""
    results = Path(results)
    rows, seeds = [], []
    for sub, regime in (("", "lab"), ("scratch", "scratch")):
        r, s = _study(results, sub, regime)
        rows += with_holm(r)
        seeds += s
    for folder in sorted(results.glob("compare_*")):
        if (folder / "compare.json").is_file() and (folder / "table.csv").is_file():
            r, s = _compare(folder)
            rows += with_holm(r)
            seeds += s
    r, s = _hypotheses(results)
    rows += with_holm(r)
    seeds += s
    return rows, seeds


def old_new_lines(rows: list[dict]) -> list[str]:
    """Markdown: every claim's committed verdict beside the new raw and Holm-adjusted ones."""
    lines = ["| source | claim | metric | seeds (look) | mean (points) | interval (1 - level) | "
             "p (TOST p if equivalent) | Holm p | old verdict | new verdict | Holm-adjusted | P(A > B) [95%] |",
             "|" + "---|" * 12]
    for r in rows:
        pi = r.get("p_improve")
        pis = (f"{pi:.2f} [{r['p_improve_low']:.2f}, {r['p_improve_high']:.2f}]" if isinstance(pi, float)
               and math.isfinite(pi) else "-")
        pick = "p_tost" if r["verdict"] == "equivalent" else "p"
        lines.append(f"| {r['source']} | {r['claim']} | {r['metric']} | {r['n_seeds']} ({r['look']}) | "
                     f"{100 * r['mean_diff']:+.2f} | [{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}] | "
                     f"{r[pick]:.3g} | {r[pick + '_holm']:.3g} | {r['old_verdict']} | {verdict_text(r)} | "
                     f"{verdict_text(r, 'verdict_holm')} | {pis} |")
    return lines


def write_reverdict(results: str | Path = "results", out: str | Path | None = None) -> list[str]:
    """Write ``verdicts_v2.csv`` and ``verdicts_per_seed.csv`` to ``out`` (default: ``results``);
    returns the old-vs-new table's lines."""
    rows, seeds = reverdict(results)
    if not rows:
        raise ValueError(f"{results}: no lab_table.csv, compare_*/table.csv or hypotheses.csv to re-verdict; "
                         f"expected the committed results folder")
    out = Path(out or results)
    write_csv(out / "verdicts_v2.csv", rows, V2_COLUMNS)
    write_csv(out / "verdicts_per_seed.csv", seeds, PER_SEED_COLUMNS)
    return old_new_lines(rows)
