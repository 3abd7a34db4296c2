"""Rewrite the generated blocks of the README and docs/ from the result files (the tests check them).

    python scripts/readme_blocks.py          # rewrite README.md, docs/STUDY.md, docs/CLI.md in place
    python scripts/readme_blocks.py --check  # exit 1 if a block differs from its files

Each block sits between ``<!-- name: ... -->`` and ``<!-- /name -->``; ``BLOCKS`` computes its lines,
``DOCS`` lists the files that hold blocks (README.md: the headline findings; docs/STUDY.md: the
findings, the weight-matched arm, the hypotheses; docs/CLI.md: the folder comparison).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from hdml_lite.study.files import read_rows
from hdml_lite.study.tables import engagement_summary_line, findings_lines, hypotheses_cost, hypotheses_lines

REPO = Path(__file__).resolve().parents[1]
RES = REPO / "results"
DOCS = ("README.md", "docs/STUDY.md", "docs/CLI.md")
WEIGHT_ARMS = ("lab_hdml_npair", "lab_hdml_npair_nosoftmax", "lab_hdml_npair_nosoftmax_wmatch")


def _verdicts(path: Path, keep=lambda claim: True) -> list[dict]:
    return [v for v in read_rows(path) if keep(v["claim"])]


def hypotheses_block() -> list[str]:
    rows = read_rows(RES / "hypotheses.csv") if (RES / "hypotheses.csv").is_file() else []
    if not rows:
        return ["Not run yet: `python -m hdml_lite.study hypotheses` writes results/hypotheses.csv."]
    info = json.loads((RES / "hypotheses.json").read_text()) if (RES / "hypotheses.json").is_file() else {}
    return [f"({hypotheses_cost(info)}; `results/hypotheses.json`)", ""] + hypotheses_lines(rows)


BLOCKS = {
    "findings": lambda: findings_lines(read_rows(RES / "verdicts.csv"), read_rows(RES / "engagement.csv"))[:2],
    "weight": lambda: findings_lines(_verdicts(RES / "verdicts.csv", lambda c: "without softmax" in c), [])
    + [engagement_summary_line(read_rows(RES / "engagement.csv"), WEIGHT_ARMS)],
    "folder": lambda: findings_lines(read_rows(RES / "compare_folder" / "verdicts.csv"), []),
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
