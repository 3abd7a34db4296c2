"""Rewrite the generated blocks of the README and docs/ from the result files (the tests check them).

    python scripts/readme_blocks.py          # rewrite README.md, docs/STUDY.md, docs/CLI.md in place
    python scripts/readme_blocks.py --check  # exit 1 if a block differs from its files

Each block sits between ``<!-- name: ... -->`` and ``<!-- /name -->``; ``BLOCKS`` computes its lines,
``DOCS`` lists the files that hold blocks (README.md: the headline findings; docs/STUDY.md: the
findings, the weight-matched arm, the hypotheses; docs/CLI.md: the folder comparison).

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
from hdml_lite.study.reverdict_report import allowed
from hdml_lite.study.tables import NAMES, engagement_summary_line, hypotheses_cost, hypotheses_lines

REPO = Path(__file__).resolve().parents[1]
RES = REPO / "results"
DOCS = ("README.md", "docs/STUDY.md", "docs/CLI.md")
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
    return ([f"({hypotheses_cost(info)}; `results/hypotheses.json`; the verdicts in the table are the first "
             "report's, at 5% each)", ""] + hypotheses_lines(rows) + ["", hypotheses_holm_line()])


BLOCKS = {
    "findings": lambda: claim_lines([v for v in v2_rows("verdicts.csv") if v.get("family") == "headline"]),
    "weight": lambda: claim_lines(v2_rows("verdicts.csv", lambda c: "without softmax" in c))
    + [engagement_summary_line(read_rows(RES / "engagement.csv"), WEIGHT_ARMS)],
    "folder": lambda: claim_lines(v2_rows("compare_folder/verdicts.csv")),
    "hypotheses": hypotheses_block,
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
