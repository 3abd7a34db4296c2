"""The section "Verdicts under the new rules" of results/README.md: the committed claims re-verdicted.

    reverdict_section(results_dir)      # markdown lines from verdicts_v2.csv (+ study.json, compare_*/,
                                        # selection.csv, engagement.csv); [] when verdicts_v2.csv is absent
    allowed(row)                        # what one verdict row allows one to say, in words

``python -m hdml_lite.study reverdict`` writes ``verdicts_v2.csv``: every committed verdict again under
the add-a-seed boundary (study/sequential.py), Holm within each family and P(A > B), from the
committed per-seed tables, with nothing re-trained. Every number and every verdict word on this
section comes from those files; the sentences that correct the first study's prose are generated
here, so they follow the files if the files change.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .files import read_rows
from .sequential import verdict_text
from .tables import NAMES, _improve, _p, _pts

SOURCES = {"verdicts.csv": "lab study", "scratch/verdicts.csv": "scratch study",
           "compare_glyphs_npair/verdicts.csv": "compare on the glyphs (N-pair)",
           "compare_glyphs_triplet/verdicts.csv": "compare on the glyphs (triplet)",
           "compare_folder/verdicts.csv": "compare on an image folder", "hypotheses.csv": "hypotheses"}
ORDER = ("supported", "contradicted", "equivalent", "undecided")


def _fin(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _interval(v: dict, with_level: bool = True) -> str:
    """"98.3% interval [-0.73, +1.24] points" (the interval at 1 - level), or the bare interval."""
    lv = v.get("level")
    lev = f"{100 * (1 - lv):.3g}% interval " if _fin(lv) and with_level else ""
    if not _fin(v.get("ci_low")):
        return "no interval"
    return f"{lev}[{_pts(v['ci_low'])}, {_pts(v['ci_high'])}] points"


def allowed(v: dict) -> str:
    """The words one verdict row allows, from its Holm-adjusted verdict: "no effect larger than 1
    point was detected" only where "equivalent" holds after Holm; "not detected (interval ...)" where
    nothing holds; the direction and size where supported / contradicted holds."""
    holm = v.get("verdict_holm", v.get("verdict"))
    m = 100 * v["margin"] if _fin(v.get("margin")) else 1.0
    if holm == "equivalent":
        return (f"no effect larger than {m:g} point was detected (equivalence interval "
                f"[{_pts(v.get('tost_low'))}, {_pts(v.get('tost_high'))}])")
    if holm in ("supported", "contradicted"):
        side = "ahead" if holm == "supported" else "behind"
        return f"{holm}: A {side} by {_pts(v.get('mean_diff'))} points ({_interval(v)})"
    return f"not detected ({_interval(v)})"


def _counts(rows: list[dict], key: str) -> str:
    vals = [r.get(key, "") for r in rows]
    return ", ".join(f"{vals.count(k)} {k}" for k in ORDER if vals.count(k))


def v2_table(rows: list[dict]) -> list[str]:
    """One line per claim and metric: old verdict, new raw verdict, Holm-adjusted, look, level, P(A > B)."""
    lines = ["| source | claim (A > B) | family | metric | old verdict (seeds) | new verdict, raw | "
             "**Holm-adjusted** | look (of seeds) | levels (test, TOST) | mean (points) | interval (1 - level) | "
             "P(A > B) [95%] |", "|" + "---|" * 12]
    for v in rows:
        old_n = v.get("old_n_seeds")
        old = f"{v.get('old_verdict', '-') or '-'}" + (f" ({int(old_n)})" if _fin(old_n) else "")
        look = f"{int(v['look'])} (of {int(v.get('n_seeds', v['look']))})" if _fin(v.get("look")) else "-"
        lines.append(f"| {SOURCES.get(v['source'], v['source'])} | {v['claim']} | {v.get('family', '-')} | "
                     f"{NAMES.get(v['metric'], v['metric'])} | {old} | {verdict_text(v)} | "
                     f"**{verdict_text(v, 'verdict_holm')}** | {look} | {_p(v.get('level'))}, "
                     f"{_p(v.get('level_tost'))} | {_pts(v.get('mean_diff'))} | {_interval(v, False)} | "
                     f"{_improve(v)} |")
    return lines


def _read(path: Path):
    if not path.is_file():
        return None
    return json.loads(path.read_text()) if path.suffix == ".json" else read_rows(path)


def _pull_target(selection: list[dict], method: str) -> str:
    """The pull target of HDML's chosen alpha ("pull_target=0.9" in selection.csv's setting), "?"."""
    for r in selection or []:
        if r.get("stage") == "select_alpha" and r.get("method") == method and r.get("chosen") in (1, 1.0):
            s = str(r.get("setting", ""))
            if s.startswith("pull_target="):
                return s.split("=", 1)[1]
    return "?"


def _choice_text(counts: list[dict], stage: str, method: str) -> str | None:
    """"0.1 in 3 of 5 replicates, 0.5 in 2" from choice_counts.csv (the replicate design), None without rows."""
    rows = [r for r in counts or [] if r.get("stage") == stage and r.get("method") == method and r.get("chosen")]
    if not rows:
        return None
    rows.sort(key=lambda r: -r["chosen"])
    n = int(rows[0]["replicates"])
    return ", ".join(f"{str(r['value']).replace('pull_target=', '')} in {int(r['chosen'])}"
                     + (f" of {n} replicates" if i == 0 else "") for i, r in enumerate(rows))


def _hinge_lines(rows: list[dict], res: Path) -> list[str]:
    """The study against compare on the glyphs, HDML(N-pair) > N-pair: same claim, its verdicts, and the
    choices in which the two differ (lr, pull target, bn_stats) read from their files."""
    from .keys import STARTS

    study, cmp_ = _read(res / "study.json"), _read(res / "compare_glyphs_npair" / "compare.json")
    a = [v for v in rows if v["source"] == "verdicts.csv" and v["claim"] == "HDML(N-pair) > N-pair"]
    b = [v for v in rows if v["source"] == "compare_glyphs_npair/verdicts.csv"]
    if not (study and cmp_ and a and b):
        return []
    hd, base = "lab_hdml_npair", "lab_npair"
    per, differ = [], []
    for m in ("r1", "nmi"):
        x = next((v for v in a if v["metric"] == m), None)
        y = next((v for v in b if v["metric"] == m), None)
        if x and y:
            per.append(f"{NAMES[m]}: study **{x['verdict_holm']}** (old: {x.get('old_verdict')}; {allowed(x)}), "
                       f"compare **{y['verdict_holm']}** (old: {y.get('old_verdict')}; {allowed(y)})")
            if {x["verdict_holm"], y["verdict_holm"]} & {"supported", "contradicted"} and \
                    x["verdict_holm"] != y["verdict_holm"]:
                differ.append(NAMES[m])
    if study.get("design") == "replicate":
        counts = _read(res / "choice_counts.csv")
        chosen = [f"{what}: {txt}" for what, stage, key in (("lr of HDML(N-pair)", "select_lr", hd),
                                                            ("lr of N-pair", "select_lr", base),
                                                            ("HDML's pull target", "select_alpha", hd))
                  if (txt := _choice_text(counts, stage, key))]
        theirs = (f"lr of HDML(N-pair) {cmp_.get('lr', {}).get(hd)}, lr of N-pair {cmp_.get('lr', {}).get(base)}, "
                  f"HDML's pull target "
                  f"{_pull_target(_read(res / 'compare_glyphs_npair' / 'selection.csv'), hd)}")
        cause = ("They test the same claim with different designs: the study selects again in every replicate "
                 f"(its choices: {'; '.join(chosen) or 'not recorded'}; choice_counts.csv), so its interval holds "
                 "the selection's noise; compare selects once for all its seeds (its choices: " + theirs +
                 "; compare.json), so its interval holds the seeds' noise only.")
        if differ:
            return [f"- **The study and `compare` on the glyphs disagree on HDML(N-pair) > N-pair "
                    f"({', '.join(differ)}).** " + "; ".join(per) + ". " + cause + " The cause to name is that "
                    "difference: one selection's choices, held fixed over the seeds, against choices that vary "
                    "as the selection's noise makes them vary."]
        return [f"- **The study and `compare` on the glyphs do not give opposite verdicts on HDML(N-pair) > "
                f"N-pair.** " + "; ".join(per) + ". " + cause]
    mine = {"lr of HDML(N-pair)": study.get("lr", {}).get(hd), "lr of N-pair": study.get("lr", {}).get(base),
            "HDML's pull target": _pull_target(_read(res / "selection.csv"), hd),
            "hdml.bn_stats": study.get("bn_stats")}
    theirs = {"lr of HDML(N-pair)": cmp_.get("lr", {}).get(hd), "lr of N-pair": cmp_.get("lr", {}).get(base),
              "HDML's pull target": _pull_target(_read(res / "compare_glyphs_npair" / "selection.csv"), hd),
              "hdml.bn_stats": cmp_.get("bn_stats", STARTS["lab"]["bn_stats"])}
    diff = [f"{k} {mine[k]} (study) against {theirs[k]} (compare)" for k in mine if str(mine[k]) != str(theirs[k])]
    same = [f"{k} {mine[k]}" for k in mine if str(mine[k]) == str(theirs[k])]
    noise = _read(res / "selection_noise.csv") or []
    gaps = [f"{r['stage'][7:]} {100 * r['gap']:.2f} points of validation MAP@R (seed noise s.e. "
            f"{100 * r['noise_se']:.2f})" for r in noise
            if r.get("method") == hd and r.get("stage") in ("select_alpha", "select_bn")]
    return [f"- **The N-pair headline does hinge on near-tied choices.** The study and `compare` on the glyphs "
            f"(`compare_glyphs_npair/`) test the same claim on the same data; " + "; ".join(per) + ". "
            "They differ in " + ("; ".join(diff) or "no recorded choice") + (f" (the same: {', '.join(same)})"
                                                                            if same else "") +
            ". The study chose these by " + (", ".join(gaps) or "gaps not recorded") + ", within the "
            "noise of the selection, which the committed intervals (one selection for every seed) do not "
            "cover. So the first study's \"the verdict does not hinge on it\" does not hold: the alpha and "
            "bn_stats choices move the N-pair R@1 verdict."]


def _weight_lines(rows: list[dict], res: Path) -> list[str]:
    eng = _read(res / "engagement.csv") or []
    wm = [v for v in rows if v["source"] == "verdicts.csv" and "weight matched" in v["claim"]]
    if not wm:
        return []

    def med(method):
        xs = sorted(float(r["acc_syn"]) for r in eng if r["method"] == method and _fin(r.get("acc_syn")))
        return f"{xs[len(xs) // 2]:.2f}" if xs else "?"

    said = "; ".join(f"{v['claim']} on {NAMES[v['metric']]}: **{v['verdict_holm']}** after Holm "
                     f"(raw {v['verdict']})" for v in wm)
    wm_acc, un_acc = med("lab_hdml_npair_nosoftmax_wmatch"), med("lab_hdml_npair_nosoftmax")
    acc = (f"(median acc_syn {wm_acc}, against {un_acc} without J_soft, unmatched; full HDML "
           f"{med('lab_hdml_npair')}; engagement.csv)")
    if wm_acc != "?" and un_acc != "?" and float(wm_acc) - float(un_acc) >= 0.1:
        return [f"- **The weight-matched ablation does not separate weight from labels.** {said}. The "
                f"weight-matched arm keeps its labels as well as its weight {acc}, so weight and labels still move "
                "together: the data do not say that the no-softmax ablation's loss is the weight and not the "
                "labels."]
    return [f"- **The weight-matched ablation.** {said}. Its labels are kept no better than without J_soft "
            f"{acc}: it changes the weight alone, so its verdicts speak of the weight."]


def join_and(xs: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def paper_gain_line(head: list[dict]) -> str:
    """The paper's gain (CUB, its smallest; study.paper.PAPER) beside the upper end of each headline
    interval (``head``: verdicts_v2.csv rows of the study's headline claims): "not reproduced" where
    every paper gain lies above the interval, named where one does not. README, docs/STUDY.md and
    notebook 02 print it."""
    from .paper import PAPER

    parts, above = [], []
    for v in head:
        loss = "npair" if "N-pair" in v["claim"] else "triplet"
        gain = PAPER["cub"][f"hdml_{loss}"][v["metric"]] - PAPER["cub"][loss][v["metric"]]
        hi = 100 * v["ci_high"]
        parts.append(f"{v['claim'].split(' > ')[0]} {NAMES[v['metric']]} {gain:+.1f} (the lab's upper end {hi:+.2f})")
        above.append(gain > hi)
    if all(above):
        verdict = ("**The paper's gain was not reproduced in this lab**: every gain the paper reports on CUB "
                   "lies above the upper end of the lab's interval for the same claim")
    else:
        verdict = ("The lab's intervals still allow the paper's CUB gain on "
                   + join_and([p.split(" (")[0] for p, a in zip(parts, above) if not a]))
    return (f"{verdict} (the paper's HDML minus its baseline, in points, `hdml_lite/study/paper.py`: "
            f"{'; '.join(parts)}). The glyphs are not CUB: this says the gain did not carry over to this lab's "
            "data and budget, not that the paper's CUB numbers are wrong; notebook 06 runs the paper's protocol.")


def _engaged(r: dict) -> tuple[int, int]:
    """hypotheses.csv's engaged_v2 ("3/5"): (HDML runs engaged, HDML runs)."""
    n, of = str(r["engaged_v2"]).split("/")
    return int(n), int(of)


def hypotheses_reading(v2: list[dict], rows: list[dict]) -> list[str]:
    """What the hypotheses allow, in sentences: a gain detected or not and ruled out or not (the
    Holm-adjusted verdicts ``v2``, verdicts_v2.csv rows of hypotheses.csv), the arms where every HDML
    run is engaged, raw verdicts that do not survive Holm, and what H1/H2's validation chose
    (``rows``: hypotheses.csv, for engaged_v2 and hdml_alpha)."""
    from .tables import LOSS_NAMES

    name = lambda v: f"{v['claim']} on {NAMES.get(v['metric'], v['metric'])}"  # noqa: E731
    by = {k: [v for v in v2 if v["verdict_holm"] == k] for k in ("supported", "contradicted", "equivalent")}
    lead = ("**No hypothesis detects a gain" if not by["supported"]
            else f"**A gain is detected in {len(by['supported'])} of {len(v2)}") + (
        ", and none rules one out**" if not by["equivalent"]
        else f"; an effect larger than 1 point is ruled out in {len(by['equivalent'])} of {len(v2)}**")
    out = [f"{lead} (after Holm over the {len(v2)}): "
           + ("; ".join(f"{name(v)}: {allowed(v)}" for v in by["supported"] + by["contradicted"] + by["equivalent"])
              or "every one is undecided") + "."]
    engaged = [r for r in rows if _engaged(r)[0] == _engaged(r)[1] > 0]
    if engaged:
        groups: dict[str, list[str]] = {}
        for r in engaged:
            groups.setdefault(r["hypothesis"].split()[0], []).append(LOSS_NAMES.get(r["loss"], r["loss"]))
        where = join_and([f"{h} ({join_and(list(dict.fromkeys(ls)))})" for h, ls in groups.items()])
        ahead = [r for r in engaged if r["verdict"] == "supported"]
        out.append(f"Where every HDML run is engaged by conditions v2 ({where}), "
                   + (f"HDML is ahead at 5% in {len(ahead)} of {len(engaged)} tests before Holm." if ahead
                      else "no test finds HDML ahead, even at 5% before Holm."))
    lost = [v for v in v2 if v["verdict"] in ("supported", "contradicted") and v["verdict"] != v["verdict_holm"]]
    if lost:
        out.append("At 5% before Holm, but not after: " + "; ".join(
            f"{name(v)} {v['verdict']} ({_pts(v.get('mean_diff'))} points, p {_p(v.get('p'))}, Holm p "
            f"{_p(v.get('p_holm'))})" for v in lost) + "; the prose does not use them.")
    early = [r for r in rows if r["hypothesis"].startswith(("H1", "H2"))]
    arms = {(r["hypothesis"], r["setting"], r["loss"]): r for r in early}
    if arms:
        zero = sum(float(r["hdml_alpha"]) == 0 for r in arms.values())
        n_eng, n_all = (sum(x) for x in zip(*map(_engaged, arms.values())))
        out.append(f"Where fewer images or smaller batches should leave room for hard synthetics (H1, H2), validation "
                   f"chose no pull at all (alpha 0) in {zero} of the {len(arms)} arms, and {n_eng} of {n_all} HDML "
                   "runs there are engaged (v2).")
    return out


def _hypotheses_lines(rows: list[dict], res: Path) -> list[str]:
    h = [v for v in rows if v["source"] == "hypotheses.csv"]
    if not h:
        return []
    top = max(h, key=lambda v: v.get("ci_high", -math.inf))
    from .files import study_choices

    lr = {}
    for loss in ("npair", "triplet"):
        for key, got in (study_choices(res / "study.json", loss) or {}).items():
            lr[key] = got["lr"]
    h3 = [v for v in h if v["claim"].startswith("H3")]
    hyp = read_rows(res / "hypotheses.csv") if (res / "hypotheses.csv").is_file() else []
    out = ["- " + s for s in hypotheses_reading(h, hyp)]
    out.append(f"- Of {len(h)} tests at 5% each: {_counts(h, 'verdict')}; after Holm over the {len(h)}: "
               f"{_counts(h, 'verdict_holm')}. The largest upper bound is {_pts(top.get('ci_high'))} points "
               f"({top['claim']}, {NAMES[top['metric']]}).")
    if h3:
        out.append("- **H3 reuses the 400-step lr at 1,600 steps.** H3 trains 4x longer with each method's lr as "
                   "selected at 400 steps (the study's choice, in most replicates under the replicate design; "
                   "study.json: " + ", ".join(
                       f"{k.replace('lab_', '')} {v:g}" for k, v in lr.items() if k in ("lab_hdml_npair", "lab_npair",
                                                                                        "lab_hdml_triplet",
                                                                                        "lab_triplet")) +
                   "); no lr was selected at 1,600 steps, for either method, so H3 does not test a longer budget "
                   "with a tuned lr.")
    return out


def _rerun_sentence(res: Path) -> str:
    """Which of the compares on the glyphs and the hypotheses were re-run under the new rules (one
    selection budget: ``parity`` in compare.json's identity, hypotheses.json's grid), which are the
    first run's."""
    done, old = [], []
    for name in ("compare_glyphs_npair", "compare_glyphs_triplet"):
        ident = (_read(res / name / "compare.json") or {}).get("identity") or {}
        (done if ident.get("parity") else old).append(f"`{name}`")
    hyp = ((_read(res / "hypotheses.json") or {}).get("grid") or {}).get("parity")
    (done if hyp else old).append("the hypotheses")

    def verb(xs: list[str], one: str, many: str) -> str:     # "the hypotheses" is plural on its own
        return one if len(xs) == 1 and xs[0] != "the hypotheses" else many

    text = ""
    if done:
        text += (f"{join_and(done)} {verb(done, 'was', 'were')} re-run with the study's per-replicate grid and "
                 "one budget, but select once for all seeds: their intervals hold the seeds' noise only. ")
    if old:
        text += (f"{join_and(old)} {verb(old, 'is', 'are')} still the first run's (one selection, unequal "
                 "budgets); their re-run is pending. ")
    return text[0].upper() + text[1:] if text else ""


def reverdict_section(res: str | Path, cost_lines: list[str] | None = None) -> list[str]:
    """The whole section (markdown lines) from ``res``/verdicts_v2.csv; [] without that file.
    ``cost_lines``: the re-run's cost (``cost.study_cost_lines``), printed as a code block."""
    res = Path(res)
    rows = _read(res / "verdicts_v2.csv")
    if not rows:
        return []
    study = _read(res / "study.json") or {}
    design = study.get("design") or "once"
    head = [v for v in rows if v["source"] == "verdicts.csv" and v.get("family") == "headline"]
    n_eq = sum(v.get("verdict_holm") == "equivalent" for v in head)
    if design == "once":
        lines = ["## Verdicts under the new rules (re-verdict of the committed study, nothing re-trained)", "",
                 "The committed study ran the first design (`--design once`: one selection of lr, alpha and "
                 "bn_stats for every seed, and the add-a-seed rule at 5% per look). `python -m hdml_lite.study "
                 "reverdict` (study/reverdict.py) takes its committed per-seed scores and gives every claim again "
                 "under the rules of study/sequential.py: the boundary at every look (docs/METHOD.md §6), Holm "
                 "within each family (headline, ablations, each compare, the hypotheses) and P(A > B) over the "
                 "paired seeds (`verdicts_v2.csv`; the scores behind it: `verdicts_per_seed.csv`). Nothing was "
                 "re-trained, so the intervals still hold the seeds' noise only, not the selection's."]
    else:
        lines = ["## Verdicts under the new rules (the re-run)", "",
                 f"The study on this page is the re-run under the new rules (`--design {design}`). Each final "
                 "seed is a replicate of the whole pipeline: selection runs seeded by that replicate, the final run "
                 "with that replicate's choices, its score. So the study's intervals hold the selection's noise as "
                 "well as the seeds'. Every method had one selection budget (`budgets.csv`), and the headline "
                 "claims added replicates under the boundary at every look (docs/METHOD.md §6). "
                 + _rerun_sentence(res) + "`python -m "
                 "hdml_lite.study reverdict` (study/reverdict.py) gathers every verdict into `verdicts_v2.csv`, "
                 "with Holm within each family (headline, ablations, each compare, the hypotheses) and P(A > B) "
                 "over the paired seeds; the scores behind it are in `verdicts_per_seed.csv`. The \"old verdict\" "
                 "column is the first study's, under the old rules (`v1/`)."]
    if design == "once":
        lines[-1] += (" **A re-run under the replicate design (`python -m hdml_lite.study lab`: selection again in "
                      "every replicate, one selection budget per method) is pending.** Its cost (`python -m "
                      "hdml_lite.study estimate`)" + (":" if cost_lines else " is printed by that command."))
        lines.append("")
        if cost_lines:
            lines += ["```", *cost_lines, "```", ""]
    else:
        lines.append("")
    lines += ["What the numbers allow (after Holm; generated from the files named):", ""]
    for v in head:
        lines.append(f"- Headline, {v['claim']}, {NAMES[v['metric']]}: {allowed(v)}; raw {verdict_text(v)}, "
                     f"old {v.get('old_verdict')}.")
    lines.append(f"- So the first study's \"the size of any effect here is at most the margin\" holds for {n_eq} of "
                 f"{len(head)} headline tests: " + ("an effect larger than the margin is not ruled out on "
                                                    + ", ".join(f"{v['claim']} {NAMES[v['metric']]}" for v in head
                                                                if v.get("verdict_holm") != "equivalent")
                                                    if n_eq < len(head) else "all of them") + ".")
    lines += _hinge_lines(rows, res) + _weight_lines(rows, res) + _hypotheses_lines(rows, res)
    lines += ["", "Per source, old -> new raw -> after Holm:", ""]
    for src in dict.fromkeys(v["source"] for v in rows):
        mine = [v for v in rows if v["source"] == src]
        lines.append(f"- {SOURCES.get(src, src)} (`{src}`): old {_counts(mine, 'old_verdict')} -> raw "
                     f"{_counts(mine, 'verdict')} -> Holm {_counts(mine, 'verdict_holm')}.")
    if any(str(v.get("data", "")).startswith("summary") for v in rows):
        lines += ["", "P(A > B): \"-\" for the hypotheses, whose per-seed scores were not committed (their tests "
                  "are recomputed from each row's mean and interval)."]
    lines += ["", *v2_table(rows)]
    return lines
