"""The study's markdown tables (results/README.md, compare's output): pure functions of CSV rows."""
from __future__ import annotations

import math

import numpy as np

from .keys import KEYS, method_key
from .paper import DISPLAY, split_name

TABLE_METRICS = ("nmi", "f1", "r1", "r2", "r4", "r8", "map_r")
NAMES = {"nmi": "NMI", "f1": "F1", "r1": "R@1", "r2": "R@2", "r4": "R@4", "r8": "R@8", "map_r": "MAP@R"}
STAGES = ("select_lr", "select_alpha", "select_bn", "select_fractions", "final")


def label(method: str) -> str:
    return DISPLAY.get(split_name(method)[1], method)


def ordered(rows: list[dict]) -> list[dict]:
    """Rows in the table's order (plan.KEYS first, other methods after, each by seed)."""
    rank = {k: i for i, k in enumerate(KEYS)}
    return sorted(rows, key=lambda r: (rank.get(method_key(str(r["method"])), len(KEYS)), str(r["method"]),
                                       r.get("seed", 0)))


def by_method(rows: list[dict], metric: str) -> dict:
    """{method: np.array of the metric over seeds (fractions)}, in the rows' order."""
    out: dict = {}
    for r in rows:
        if isinstance(r.get(metric), float):
            out.setdefault(r["method"], []).append(r[metric])
    return {m: np.array(v) for m, v in out.items()}


def fmt(v, scale: float = 100.0, digits: int = 1) -> str:
    """mean ± std (sample std, ddof=1) of ``v`` times ``scale``; one value alone; "-" for none."""
    if v is None or len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{scale * v[0]:.{digits}f}"
    return f"{scale * np.mean(v):.{digits}f} ± {scale * np.std(v, ddof=1):.{digits}f}"



def main_table(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cols = {m: by_method(rows, m) for m in TABLE_METRICS + ("train_s",)}
    head = "| method | seeds | " + " | ".join(NAMES[m] for m in TABLE_METRICS) + " | train s |"
    lines = [head, "|" + "---|" * (len(TABLE_METRICS) + 3)]
    for k in methods:
        n = len(cols["r1"].get(k, []))
        cells = [fmt(cols[m].get(k)) for m in TABLE_METRICS]
        lines.append(f"| {label(k)} | {n} | " + " | ".join(cells) + f" | {fmt(cols['train_s'].get(k), 1.0, 0)} |")
    return "\n".join(lines)


def _yes(x) -> bool:
    """A CSV flag (read back as 1 / 1.0, or a bool) that is set."""
    return x in (1, 1.0, True)


def _pts(x) -> str:
    return "-" if not isinstance(x, float) or not math.isfinite(x) else f"{100 * x:+.2f}"


def _ci(v: dict, lo: str, hi: str) -> str:
    x, y = v.get(lo), v.get(hi)
    if isinstance(x, float) and math.isfinite(x):
        return f"[{_pts(x)}, {_pts(y)}]"
    return "- (fewer than 2 seeds)"


def _p(x) -> str:
    return f"{x:.3g}" if isinstance(x, float) and math.isfinite(x) else "-"


def _improve(v: dict) -> str:
    """P(A > B) [bootstrap 95%] of a verdict row, "-" without it."""
    p = v.get("p_improve")
    if not isinstance(p, float) or not math.isfinite(p):
        return "-"
    lo, hi = v.get("p_improve_low"), v.get("p_improve_high")
    return f"{p:.2f} [{lo:.2f}, {hi:.2f}]" if isinstance(lo, float) and math.isfinite(lo) else f"{p:.2f}"


def verdict_table(verdicts: list[dict], table: list[dict], regime: str) -> str:
    """verdicts.csv rows, with the per-seed differences read back from the table. ``regime``: the
    study's method-name prefix ("" for compare, whose claims name methods in full). Rows of the
    sequential rule (study/sequential.py) add the look, the per-look levels, the p-values over the
    design, the Holm-adjusted verdict of the row's family and P(A > B)."""
    from .engine import paired
    from .keys import CLAIMS, method_name
    from .sequential import verdict_text

    pairs = {claim: (method_name(regime, a), method_name(regime, b)) for claim, a, b in CLAIMS} if regime else {}
    for v in verdicts:
        if "a" in v and "b" in v:
            pairs[v["claim"]] = (v["a"], v["b"])
    new = any("verdict_holm" in v for v in verdicts)
    if new:
        lines = ["| claim (A > B) | family | metric | seeds (look) | per-seed A - B (points) | mean (points) | "
                 "interval (1 - level) | equivalence interval (1 - 2 level_tost) | levels (test, TOST) | margin | "
                 "p (difference, equivalence) | Holm p | verdict | **Holm-adjusted** | P(A > B) [95%] |",
                 "|" + "---|" * 15]
    else:
        lines = ["| claim (A > B) | metric | seeds | per-seed A - B (points) | mean (points) | 95% t-interval | "
                 "90% interval (equivalence) | margin | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        diffs = ""
        if v["claim"] in pairs:
            _, xa, xb = paired(table, *pairs[v["claim"]], v["metric"])
            diffs = ", ".join(f"{100 * (p - q):+.1f}" for p, q in zip(xa, xb))
        n = int(v.get("n_seeds", 0))
        margin = f"±{100 * v['margin']:.3g}" if isinstance(v.get("margin"), float) else "-"
        if not new:
            lines.append(f"| {v['claim']} | {NAMES.get(v['metric'], v['metric'])} | {n} | {diffs or '-'} | "
                         f"{_pts(v.get('mean_diff'))} | {_ci(v, 'ci_low', 'ci_high')} | "
                         f"{_ci(v, 'tost_low', 'tost_high')} | {margin} | **{v['verdict']}** |")
            continue
        look = int(v.get("look", n))
        lines.append(f"| {v['claim']} | {v.get('family', '-')} | {NAMES.get(v['metric'], v['metric'])} | "
                     f"{n} ({look}) | {diffs or '-'} | {_pts(v.get('mean_diff'))} | {_ci(v, 'ci_low', 'ci_high')} | "
                     f"{_ci(v, 'tost_low', 'tost_high')} | {_p(v.get('level'))}, {_p(v.get('level_tost'))} | "
                     f"{margin} | {_p(v.get('p'))}, {_p(v.get('p_tost'))} | "
                     f"{_p(v.get('p_holm'))}, {_p(v.get('p_tost_holm'))} | "
                     f"{verdict_text(v)} | **{verdict_text(v, 'verdict_holm')}** | {_improve(v)} |")
    return "\n".join(lines)


def noise_table(rows: list[dict]) -> str:
    """selection_noise rows: how many choices were within seed noise of the runner-up."""
    lines = ["| stage | method | values | chosen: val MAP@R | runner-up | gap (points) | 2 s.e. of a gap | within noise |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        two_se = 2 * r["noise_se"] if isinstance(r.get("noise_se"), float) else float("nan")
        lines.append(f"| {r['stage']} | {label(r['method'])} | {int(r['n_values'])} | {100 * r['best']:.1f} | "
                     f"{100 * r['runner_up']:.1f} | {100 * r['gap']:.2f} | "
                     f"{100 * two_se:.2f} | {'**yes**' if r.get('within_noise') in (1, 1.0, True) else 'no'} |")
    n = sum(r.get("within_noise") in (1, 1.0, True) for r in rows)
    lines.append(f"\n{n} of {len(rows)} choices were within seed noise of the runner-up.")
    return "\n".join(lines)


def selection_table(rows: list[dict]) -> str:
    lines = ["| stage | method | lr | alpha | setting | seed | val R@1 | val NMI | val F1 | val MAP@R | chosen |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        alpha = f"{r['alpha']:.4g}" if isinstance(r.get("alpha"), float) else ""
        lines.append(f"| {r['stage']} | {label(r['method'])} | {r['lr']:g} | {alpha} | {r.get('setting', '')} | "
                     f"{r['seed']} | {100 * r['val_r1']:.1f} | {100 * r['val_nmi']:.1f} | {100 * r['val_f1']:.1f} | "
                     f"{100 * r['val_map_r']:.1f} | {'**yes**' if int(r['chosen']) else ''} |")
    return "\n".join(lines)


def sweep_table(rows: list[dict]) -> str:
    lines = ["| method | pull target p | alpha | measured pull factor | seeds | val R@1 mean [min, max] | "
             "test R@1 mean |", "|---|---|---|---|---|---|---|"]
    for meth in dict.fromkeys(r.get("method", "") for r in rows):
        test = {p["alpha"]: p for p in sweep_points(rows, meth, "test")}
        for p in sweep_points(rows, meth, "val"):
            t = test.get(p["alpha"])
            t_mean = "-" if t is None else f"{100 * t['mean']:.1f}"
            lines.append(f"| {label(meth)} | {p['pull_target']:g} | {p['alpha']:.4g} | {p['pull_factor']:.3f} | "
                         f"{p['n']} | {100 * p['mean']:.1f} [{100 * p['min']:.1f}, {100 * p['max']:.1f}] | {t_mean} |")
    return "\n".join(lines)


def paired_selection_lines(selection: list[dict]) -> list[str]:
    """For the selection stages that compare two settings over paired seeds (bn_stats, HDC
    fractions): second setting - first, validation MAP@R (the selection metric), per seed, mean
    and 95% t-interval."""
    from .stats import paired_verdict

    lines = []
    for stage in ("select_bn", "select_fractions"):
        rows = [r for r in selection if r["stage"] == stage]
        settings = list(dict.fromkeys(r.get("setting", "") for r in rows))
        if len(settings) != 2:
            continue
        a = {r["seed"]: r["val_map_r"] for r in rows if r.get("setting", "") == settings[1]}
        b = {r["seed"]: r["val_map_r"] for r in rows if r.get("setting", "") == settings[0]}
        seeds = sorted(set(a) & set(b))
        v = paired_verdict([a[k] for k in seeds], [b[k] for k in seeds])
        ci = (f"95% t-interval [{100 * v['ci_low']:+.2f}, {100 * v['ci_high']:+.2f}]" if len(seeds) > 1
              else "one seed: no interval")
        chosen = next((r.get("setting") for r in rows if int(r["chosen"])), "?")
        lines.append(f"- {label(rows[0]['method'])}, `{settings[1]}` minus `{settings[0]}`, validation MAP@R per seed: "
                     + ", ".join(f"{100 * d:+.1f}" for d in v["diffs"])
                     + f" points; mean {100 * v['mean_diff']:+.2f}, {ci}; chosen: `{chosen}`.")
    return lines


def engagement_table(rows: list[dict]) -> str:
    """engagement.csv rows: the v2 conditions with their numbers, and both versions' verdicts."""
    from .files import CONDITIONS

    names = {"classifier": "a. acc_real at end", "labels": "b. acc_syn (2nd-half median)",
             "weight": "c. weight_syn (2nd-half mean)", "pull": "d. pull factor (2nd-half median)",
             "hardness": "e. hard_gen (vs hard_real)"}
    lines = ["| method | seed | alpha | " + " | ".join(names[c] for c in CONDITIONS) + " | engaged v2 | engaged v1 |",
             "|" + "---|" * (len(CONDITIONS) + 5)]
    yes = lambda x: x in (1, 1.0, True)  # noqa: E731

    def cell(r, c):
        v, ok = r.get(f"{c}_value"), r.get(f"{c}_ok")
        num = f"{v:.3g}" if isinstance(v, float) and math.isfinite(v) else "nan"
        return f"{num} {'ok' if yes(ok) else 'NO'}"

    for r in rows:
        alpha = f"{r['alpha']:.3g}" if isinstance(r.get("alpha"), float) else "-"
        lines.append(f"| {label(r['method'])} | {r['seed']} | {alpha} | " + " | ".join(cell(r, c) for c in CONDITIONS)
                     + f" | {'**yes**' if yes(r.get('engaged_v2')) else 'no'} | {'yes' if yes(r.get('engaged_v1')) else 'no'} |")
    n2 = sum(yes(r.get("engaged_v2")) for r in rows)
    n1 = sum(yes(r.get("engaged_v1")) for r in rows)
    lines.append(f"\nEngaged: {n2} of {len(rows)} runs by conditions v2, {n1} of {len(rows)} by v1."
                 + (" **No run meets v2.**" if rows and not n2 else ""))
    return "\n".join(lines)


def timing_table(study: dict) -> str:
    counts = study.get("runs_per_stage", {})
    done = study.get("runs_done_per_stage", {})
    wall = study.get("stage_wall_s", {})
    lines = ["| stage | runs planned | runs finished | run wall-clock, summed (min) |", "|---|---|---|---|"]
    for st in STAGES:
        if st in counts:
            lines.append(f"| {st} | {counts[st]} | {done.get(st, '-')} | {wall.get(st, 0.0) / 60:.1f} |")
    lines.append(f"| **total** | {study.get('runs_total', '-')} | {study.get('runs_done', '-')} | "
                 f"{sum(wall.values()) / 60:.1f} |")
    return "\n".join(lines)




def sweep_points(rows: list[dict], method: str, split: str, metric: str = "r1") -> list[dict]:
    """Per alpha of ``method``: pull target, measured pull factor (mean over seeds of the
    per-run medians), and the metric's mean, min and max over seeds. Sorted by pull target.
    Rows with a pull target are grouped by it (the replicate design: each replicate's alpha for a
    target is its own, -J_avg ln p from its own J_avg); ``alpha`` is then the group's median."""
    out = []
    mine = [r for r in rows if r.get("method", method) == method and r["split"] == split]
    by_target = all(isinstance(r.get("pull_target"), float) for r in mine)
    key = (lambda r: float(r["pull_target"])) if by_target else (lambda r: float(r["alpha"]))  # noqa: E731
    for k in sorted({key(r) for r in mine}):
        g = [r for r in mine if key(r) == k]
        a = float(np.median([float(r["alpha"]) for r in g]))
        v = [r[metric] for r in g if isinstance(r.get(metric), float)]
        pf = [r["pull_factor_median"] for r in g if isinstance(r.get("pull_factor_median"), float)]
        out.append({"alpha": a, "pull_target": g[0].get("pull_target", float("nan")),
                    "pull_factor": float(np.mean(pf)) if pf else float("nan"), "n": len(v),
                    "mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))})
    return sorted(out, key=lambda p: -p["pull_target"] if isinstance(p["pull_target"], float) else 0)


def tradeoff_groups(rows: list[dict]) -> list[dict]:
    """tradeoff.csv rows -> one row per (method, pull target): seeds, the medians over seeds of
    pull_median, acc_syn, hard_ratio and val_map_r, and ``ok``: whether those medians meet conditions
    v2 b (acc_syn >= 0.5), d (pull factor in [0.05, 0.95]) and e's first half (hard_gen < hard_real)."""
    from ..hdml.diagnostics import MIN_ACC_SYN, PULL_RANGE_V2

    out = []
    for meth in dict.fromkeys(r["method"] for r in rows):
        for p in sorted({r["pull_target"] for r in rows if r["method"] == meth}, reverse=True):
            g = [r for r in rows if r["method"] == meth and r["pull_target"] == p]
            med = {k: float(np.median([r[k] for r in g if isinstance(r.get(k), float)] or [np.nan]))
                   for k in ("pull_median", "acc_syn", "hard_ratio", "val_map_r")}
            ok = bool(med["acc_syn"] >= MIN_ACC_SYN and PULL_RANGE_V2[0] <= med["pull_median"] <= PULL_RANGE_V2[1]
                      and med["hard_ratio"] < 1.0)
            out.append({"method": meth, "pull_target": p, "n": len(g), **med, "ok": ok})
    return out


def tradeoff_lines(rows: list[dict]) -> list[str]:
    """tradeoff_groups as a markdown table, and whether any alpha meets b, d and e together."""
    lines = ["| method | pull target | seeds | pull factor | acc_syn | hard_gen / hard_real | val MAP@R | b, d, e together |",
             "|---|---|---|---|---|---|---|---|"]
    groups = tradeoff_groups(rows)
    for g in groups:
        lines.append(f"| {label(g['method'])} | {g['pull_target']:g} | {g['n']} | {g['pull_median']:.3g} | "
                     f"{g['acc_syn']:.2f} | {g['hard_ratio']:.2f} | {100 * g['val_map_r']:.1f} | "
                     f"{'**yes**' if g['ok'] else 'no'} |")
    lines.append("\n" + ("Some alpha meets b, d and e together (see the rows marked yes)." if any(g["ok"] for g in groups)
                          else "**No alpha meets b (labels kept), d (hardness adapts) and e (harder than the real "
                          "negatives) together.**"))
    return lines


def findings_lines(verdicts: list[dict], engagement: list[dict]) -> list[str]:
    """The page's summary, every number computed from verdicts.csv and engagement.csv."""
    from .files import CONDITIONS
    from .sequential import verdict_text

    lines = []
    for claim in dict.fromkeys(v["claim"] for v in verdicts):
        parts = []
        for v in (v for v in verdicts if v["claim"] == claim):
            ci = (f"95% [{_pts(v.get('ci_low'))}, {_pts(v.get('ci_high'))}]"
                  if isinstance(v.get("ci_low"), float) and math.isfinite(v["ci_low"]) else "no interval")
            if "verdict_holm" not in v:        # a file from before the sequential rule
                parts.append(f"**{v['verdict']}** on {NAMES.get(v['metric'], v['metric'])} ({_pts(v.get('mean_diff'))} "
                             f"points, {ci}, {int(v.get('n_seeds', 0))} paired seeds)")
                continue
            ci = (f"[{_pts(v.get('ci_low'))}, {_pts(v.get('ci_high'))}] at level {_p(v.get('level'))}"
                  if isinstance(v.get("ci_low"), float) and math.isfinite(v["ci_low"]) else "no interval")
            parts.append(f"**{v['verdict_holm']}** after Holm (raw: {verdict_text(v)}) on "
                         f"{NAMES.get(v['metric'], v['metric'])} ({_pts(v.get('mean_diff'))} points, {ci}, at look "
                         f"{int(v.get('look', 0))} of {int(v.get('n_seeds', 0))} paired seeds; P(A > B) {_improve(v)})")
        lines.append(f"- {claim}: " + "; ".join(parts) + ".")
    if engagement:
        n2 = sum(_yes(r.get("engaged_v2")) for r in engagement)
        n1 = sum(_yes(r.get("engaged_v1")) for r in engagement)
        fails = {c: sum(not _yes(r.get(f"{c}_ok")) for r in engagement) for c in CONDITIONS}
        worst = ", ".join(f"{c} fails in {n}" for c, n in sorted(fails.items(), key=lambda kv: -kv[1]) if n)
        lines.append(f"- HDML's mechanism: {n2} of {len(engagement)} final HDML runs are engaged by conditions v2 "
                     f"({n1} by v1)" + (f"; of v2's conditions, {worst}." if worst else "."))
    return lines


LOSS_NAMES = {"npair": "N-pair", "triplet": "triplet"}


def hypotheses_lines(rows: list[dict]) -> list[str]:
    """The hypotheses table (results/hypotheses.csv) as markdown: one line per arm and loss, HDML
    minus its baseline on R@1 and NMI (points, 95% interval, verdict), then one summary line, every
    number computed from the rows."""
    lines = ["| hypothesis | setting | loss | HDML's alpha | R@1: HDML - baseline | NMI: HDML - baseline | "
             "HDML runs engaged (v2) |", "|---|---|---|---|---|---|---|"]
    arms = list(dict.fromkeys((r["hypothesis"], r["setting"], r["loss"]) for r in rows))
    for hyp, setting, loss in arms:
        mine = {r["metric"]: r for r in rows if (r["hypothesis"], r["setting"], r["loss"]) == (hyp, setting, loss)}

        def cell(m):
            v = mine.get(m)
            if v is None:
                return "-"
            ci = _ci(v, "ci_low", "ci_high")
            if "verdict_holm" in v:     # after Holm over every arm and metric (one family), raw beside it
                return (f"{_pts(v.get('mean_diff'))} {ci} **{v['verdict_holm']}** (raw: {v['verdict']}, p "
                        f"{_p(v.get('p'))}, TOST p {_p(v.get('p_tost'))}; n={int(v.get('n_seeds', 0))})")
            return f"{_pts(v.get('mean_diff'))} {ci} **{v['verdict']}** (n={int(v.get('n_seeds', 0))})"

        first = next(iter(mine.values()), {})
        a = first.get("hdml_alpha")
        alpha = f"{a:.3g}" if isinstance(a, (int, float)) and math.isfinite(a) else "-"
        lines.append(f"| {hyp} | {setting} | {LOSS_NAMES.get(loss, loss)} | {alpha} | {cell('r1')} | {cell('nmi')} | "
                     f"{first.get('engaged_v2', '-')} |")
    verdicts = [r["verdict"] for r in rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("supported", "contradicted", "equivalent", "undecided")
                       if verdicts.count(v))
    if rows and all("verdict_holm" in r for r in rows):
        held = [r["verdict_holm"] for r in rows]
        counts = (", ".join(f"{held.count(v)} {v}" for v in ("supported", "contradicted", "equivalent", "undecided")
                            if held.count(v)) + f" after Holm over all {len(rows)} (raw, each at 5%: {counts})")
    lines += ["", f"Over {len(arms)} arms x {len({r['metric'] for r in rows})} metrics: {counts}. HDML's alpha: "
              "chosen on the arm's validation classes (H1, H2) or the study's (H3, H4); 0 = no pull, where the "
              "generator only reconstructs and conditions v2 cannot hold."]
    return lines


def hypotheses_cost(info: dict) -> str:
    """What the hypotheses cost, from hypotheses.json: runs, wall minutes, processes, CPU-s per run."""
    wall, cpu = info.get("wall_s"), info.get("cpu_s_per_run")
    if not wall:
        return "cost not recorded"
    return (f"{info.get('runs', '?')} runs, {wall / 60:.0f} min wall with {info.get('jobs', '?')} processes of one "
            f"thread" + (f", {cpu:.0f} CPU-s per run" if cpu else ""))


def hypotheses_section(rows: list[dict], info: dict) -> list[str]:
    """The hypotheses' section of results/README.md (and the README's block): what was run, at what
    cost, and the table (``hypotheses_lines``)."""
    grid = info.get("grid") or {}
    cost = hypotheses_cost(info)
    return ["## Why no gain? The hypotheses, each tested (lab regime)", "",
            "Each arm is a `compare` of HDML against its baseline (`python -m hdml_lite.study hypotheses`;"
            " hdml_lite/study/hypotheses.py): H1 headroom (4 or 8 images per class in every split), H2 in-batch"
            " negatives (8-class N-pair batches; triplet at the same image count), H3 length (1,600 steps),"
            " H4 labels kept (alpha fixed at the hardest pull target where the study's trade-off keeps labels)."
            f" The grid: lr {grid.get('lrs')}, pull targets {grid.get('pull_targets')},"
            f" {grid.get('select_seeds')} seed(s) per alpha"
            + (", one selection budget (the baseline's lr grid gets as many runs as HDML's lr x alpha grid); one "
               "replicate of the study's grid, but each arm selects once for all its seeds, so its intervals hold "
               "the seeds' noise only" if grid.get("parity") else " (smaller than the study's)") +
            ". H3 and H4 do not select again: they take the study's"
            " choices (each method's lr and HDML's alpha, selected at 400 steps the same way for both methods,"
            " in most replicates; H4's alpha from the trade-off), so **H3 reuses the 400-step lr at 1,600 steps**:"
            f" its lr was not re-tuned for its longer budget, for either method. {info.get('seeds', '?')} paired"
            f" seeds per arm; {cost}.", "",
            *hypotheses_lines(rows)]


def engagement_summary_line(engagement: list[dict], methods: tuple) -> str:
    """One line from engagement.csv: per method, the median over its final runs of acc_syn and of
    weight_syn (condition c's value), and how many runs meet conditions v2."""
    parts = []
    for m in methods:
        rows = [r for r in engagement if r["method"] == m]
        if not rows:
            continue
        med = lambda k: float(np.median([float(r[k]) for r in rows]))  # noqa: E731
        n = sum(_yes(r.get("engaged_v2")) for r in rows)
        parts.append(f"{label(m)}: acc_syn {med('acc_syn'):.2f}, weight_syn {med('weight_value'):.2f}, "
                     f"engaged (v2) {n}/{len(rows)}")
    return "- Labels kept and weight (medians over the final runs, engagement.csv): " + "; ".join(parts) + "."
