"""Rewrite the generated blocks of the README and docs/ from the result files (the tests check them).

    python scripts/readme_blocks.py          # rewrite README.md, docs/STUDY.md, docs/CLI.md in place
    python scripts/readme_blocks.py --check  # exit 1 if a block differs from its files

Each block sits between ``<!-- name: ... -->`` and ``<!-- /name -->``; ``BLOCKS`` computes its lines,
``DOCS`` lists the files that hold blocks (README.md: the answer and the headline findings;
docs/STUDY.md: those, the contrast with the first study and compare, the weight-matched arm, the
hypotheses; docs/CLI.md: the folder comparison; docs/BENCHMARKS.md: the study's time).

The verdicts are those of ``results/verdicts_v2.csv`` (``python -m hdml_lite.study reverdict``: the
committed claims under the boundary, Holm and P(A > B), nothing re-trained), in the words each row
allows (``hdml_lite.study.reverdict_report.allowed``): "no effect larger than 1 point was detected"
only where the Holm-adjusted verdict is equivalent, "not detected (interval ...)" where none holds.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from hdml_lite.study.files import read_rows
from hdml_lite.study.reverdict_report import allowed, join_and, paper_gain_line
from hdml_lite.study.tables import NAMES, engagement_summary_line, hypotheses_cost, hypotheses_lines

REPO = Path(__file__).resolve().parents[1]
RES = REPO / "results"
DOCS = ("README.md", "docs/STUDY.md", "docs/CLI.md", "docs/BENCHMARKS.md")
WEIGHT_ARMS = ("lab_hdml_npair", "lab_hdml_npair_nosoftmax", "lab_hdml_npair_nosoftmax_wmatch")


def v2_rows(source: str, keep=lambda claim: True) -> list[dict]:
    """The rows of results/verdicts_v2.csv re-verdicted from ``source`` (e.g. "verdicts.csv")."""
    return [v for v in read_rows(RES / "verdicts_v2.csv") if v["source"] == source and keep(v["claim"])]


def claim_lines(rows: list[dict]) -> list[str]:
    """One line per claim: each metric in the words its Holm-adjusted verdict allows, the paired seeds,
    why an undecided one stopped, and the verdict first reported (before the boundary and Holm)."""
    lines = []
    for claim in dict.fromkeys(v["claim"] for v in rows):
        parts = []
        for v in (v for v in rows if v["claim"] == claim):
            why = f", {v['reason']}" if v.get("reason") else ""
            raw = f" after Holm (raw: {v['verdict']})" if v["verdict"] != v["verdict_holm"] else ""
            parts.append(f"{NAMES.get(v['metric'], v['metric'])}: {allowed(v)}{raw}, {int(v['n_seeds'])} paired "
                         f"seeds{why}, first reported as {v.get('old_verdict') or '-'}")
        lines.append(f"- {claim}: " + "; ".join(parts) + ".")
    return lines


def hypotheses_holm_line() -> str:
    """The hypotheses after Holm over all of them (verdicts_v2.csv) and the largest upper bound."""
    h = v2_rows("hypotheses.csv")
    if not h:
        return "Not re-verdicted yet: `python -m hdml_lite.study reverdict` writes results/verdicts_v2.csv."
    holm = [v["verdict_holm"] for v in h]
    counts = ", ".join(f"{holm.count(k)} {k}" for k in ("supported", "contradicted", "equivalent", "undecided")
                       if holm.count(k))
    top = max(h, key=lambda v: v["ci_high"])
    return (f"After Holm over the {len(h)} tests (one family; `results/verdicts_v2.csv`): {counts}. The largest "
            f"upper bound is {100 * top['ci_high']:+.2f} points ({top['claim']}, {NAMES[top['metric']]}).")


def hypotheses_block() -> list[str]:
    rows = read_rows(RES / "hypotheses.csv") if (RES / "hypotheses.csv").is_file() else []
    if not rows:
        return ["Not run yet: `python -m hdml_lite.study hypotheses` writes results/hypotheses.csv."]
    info = json.loads((RES / "hypotheses.json").read_text()) if (RES / "hypotheses.json").is_file() else {}
    g = info.get("grid", {})
    if g.get("parity"):
        design = (f"Each arm selects once for all its seeds, from one replicate of the study's grid (lrs "
                  f"{', '.join(f'{x:g}' for x in g['lrs'])}; pull targets "
                  f"{', '.join(f'{x:g}' for x in g['pull_targets'])}; {g['select_seeds']} seed per grid point) with "
                  "one selection budget: the baseline gets as many selection runs as HDML (`parity`); H3 and H4 take "
                  "the study's choices (the value chosen in most replicates; for HDML's alpha, the pull target "
                  "chosen most). ")
        which = "the table's verdicts are Holm-adjusted over all of them, the raw one beside each"
    else:
        design = ("**These are the first run's hypotheses**, made under the old rules (a smaller grid than the "
                  "study's, one selection, more selection runs for HDML than for its baseline). ")
        which = "the verdicts in the table are the first report's, at 5% each"
    return ([f"{design}({hypotheses_cost(info)}; `results/hypotheses.json`; {which})", ""]
            + hypotheses_lines(rows) + ["", hypotheses_holm_line()])


def hypotheses_reading_lines() -> list[str]:
    """What the hypotheses allow, in words (reverdict_report.hypotheses_reading), as one paragraph."""
    from hdml_lite.study.reverdict_report import hypotheses_reading

    rows = read_rows(RES / "hypotheses.csv") if (RES / "hypotheses.csv").is_file() else []
    v2 = v2_rows("hypotheses.csv")
    if not rows or not v2:
        return ["Not run or not re-verdicted yet (`python -m hdml_lite.study hypotheses`, then `reverdict`)."]
    return [" ".join(hypotheses_reading(v2, rows))]


def answer_lines() -> list[str]:
    """The study's answer in one bold sentence, then how it was reached (design, replicates, budget,
    runs, time), every word and number from verdicts_v2.csv (Holm-adjusted headline verdicts),
    study.json and budgets.csv."""
    head = [v for v in v2_rows("verdicts.csv") if v.get("family") == "headline"]
    st = json.loads((RES / "study.json").read_text())
    name = lambda v: f"{v['claim'].split(' > ')[0]} {NAMES.get(v['metric'], v['metric'])}"  # noqa: E731
    by = {k: [name(v) for v in head if v["verdict_holm"] == k] for k in ("supported", "contradicted", "equivalent",
                                                                          "undecided")}
    if not by["supported"] and not by["contradicted"]:
        first = "no effect of HDML was detected on the glyphs"
        first += (f"; an effect larger than the 1-point margin was ruled out on {join_and(by['equivalent'])} only"
                  if by["equivalent"] else ", and none larger than the 1-point margin was ruled out")
    else:
        parts = [f"HDML ahead on {join_and(by['supported'])}"] if by["supported"] else []
        parts += [f"HDML behind on {join_and(by['contradicted'])}"] if by["contradicted"] else []
        parts += [f"no effect larger than 1 point on {join_and(by['equivalent'])}"] if by["equivalent"] else []
        parts += [f"nothing detected on {join_and(by['undecided'])}"] if by["undecided"] else []
        first = "; ".join(parts)
    budgets = read_rows(RES / "budgets.csv") if (RES / "budgets.csv").is_file() else []
    bud = sorted({int(r["selection_runs"]) for r in budgets})
    reps = sorted({int(v["n_seeds"]) for v in head})
    how = (f"How: the study (`python -m hdml_lite.study lab`, the replicate design: each final seed repeats the whole "
           f"pipeline, selecting every method's lr and HDML's pull target on validation MAP@R from selection runs "
           f"seeded by that replicate, {'-'.join(str(b) for b in bud)} selection runs per method and replicate "
           f"(`results/budgets.csv`); {'-'.join(str(r) for r in reps)} replicates for the headline claims; "
           f"{st['runs_done']} runs, {st['wall_s'] / 60:.0f} min wall on {st.get('jobs') or 2} processes of one "
           f"thread, {st['cpu_s_per_run']:.0f} CPU-s per run) gives, after Holm within the headline family "
           "(`results/verdicts_v2.csv`):") if st.get("design") == "replicate" else (
           f"How: the study (`python -m hdml_lite.study lab`; {st['runs_done']} runs) ran the first design: one "
           "selection for every seed, seeds added at 5% per look. Its headline claims, re-verdicted under the "
           "current rules (`results/verdicts_v2.csv`):")
    return [f"**The study's answer: {first}.** " + paper_gain_line(head), "", how]


def contrast_lines() -> list[str]:
    """The re-run against the first study (headline interval widths, how often each pull target won) and
    against `compare` on the glyphs (reverdict_report's generated reading), from the files."""
    from hdml_lite.study.reverdict_report import _choice_text, _hinge_lines

    head = [v for v in v2_rows("verdicts.csv") if v.get("family") == "headline"]
    first = [r for r in read_rows(RES / "v1" / "verdicts.csv") if r["claim"] in {v["claim"] for v in head}]
    width = lambda rows: [100 * (r["ci_high"] - r["ci_low"]) for r in rows]  # noqa: E731
    lines = []
    if first:
        lines.append(f"- Headline intervals: {min(width(first)):.1f}-{max(width(first)):.1f} points wide in the first "
                     f"study (one selection; 95% at each look), {min(width(head)):.1f}-{max(width(head)):.1f} in the "
                     "re-run (each replicate selects again; at the boundary's level). The first study called all "
                     f"four {join_and(sorted({r['verdict'] for r in first}))}.")
    counts = read_rows(RES / "choice_counts.csv") if (RES / "choice_counts.csv").is_file() else []
    for key, nm in (("lab_hdml_npair", "HDML(N-pair)"), ("lab_hdml_triplet", "HDML(triplet)")):
        txt = _choice_text(counts, "select_alpha", key)
        if txt:
            lines.append(f"- {nm}'s pull target, as chosen by validation MAP@R: {txt} (`results/choice_counts.csv`).")
    return lines + _hinge_lines(read_rows(RES / "verdicts_v2.csv"), RES)


def weight_lines() -> list[str]:
    from hdml_lite.study.reverdict_report import _weight_lines

    return (claim_lines(v2_rows("verdicts.csv", lambda c: "without softmax" in c))
            + [engagement_summary_line(read_rows(RES / "engagement.csv"), WEIGHT_ARMS)]
            + _weight_lines(read_rows(RES / "verdicts_v2.csv"), RES))


def study_time_lines() -> list[str]:
    """What the lab study cost, from results/study.json (all its invocations)."""
    st = json.loads((RES / "study.json").read_text())
    per = st.get("runs_done_per_stage", {})
    return [f"{st['runs_done']} runs, {st['wall_s'] / 60:.0f} min wall with {st.get('jobs') or 2} processes of one "
            f"thread, {st['cpu_s_per_run']:.0f} CPU-s per run on average (`results/study.json`, "
            f"{st.get('invocations', 1)} invocation(s); runs per stage: "
            + ", ".join(f"{k} {v}" for k, v in per.items() if v) + ")."]


BLOCKS = {
    "answer": answer_lines,
    "study_time": study_time_lines,
    "contrast": contrast_lines,
    "findings": lambda: claim_lines([v for v in v2_rows("verdicts.csv") if v.get("family") == "headline"]),
    "weight": weight_lines,
    "folder": lambda: claim_lines(v2_rows("compare_folder/verdicts.csv")),
    "hypotheses": hypotheses_block,
    "hypotheses_reading": hypotheses_reading_lines,
}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pat = re.compile(rf"(<!-- {name}:.*?-->\n)(.*?)(<!-- /{name} -->)", re.S)
        if pat.search(text):
            text = pat.sub(lambda m: m.group(1) + "\n".join(make()) + "\n" + m.group(3), text)
    return text


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = 0
    for rel in DOCS:
        doc = REPO / rel
        old = doc.read_text()
        new = render(old)
        stale += new != old
        if "--check" not in argv and new != old:
            doc.write_text(new)
    return int(bool(stale) and "--check" in argv)


if __name__ == "__main__":
    sys.exit(main())
