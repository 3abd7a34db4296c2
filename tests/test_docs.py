"""Citations: code, notebooks and docs cite the kit's own reference, docs/METHOD.md, by
sections that exist (and never the maintainers' internal spec)."""
import json
import re
from pathlib import Path

from conftest import repo_files as _files

REPO = Path(__file__).resolve().parents[1]
SPEC = "HDML" + "_SPEC"          # the maintainers' internal spec (spelled so this file does not match)
NUM = r"\d+(?:\.\d+)?"
# "METHOD §1.4", "docs/METHOD.md §1.2, §1.3", "METHOD §1.2-§1.3", "METHOD §1.8 and §2"
CITATION = re.compile(rf"METHOD(?:\.md)?,? (§{NUM}(?:(?:/|-|, | and | or )§{NUM})*)")



def _text(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)
    return path.read_text(encoding="utf-8")


def method_sections() -> set[str]:
    """Section numbers of docs/METHOD.md's numbered headings ("## 1. HDML", "### 1.4 ...")."""
    text = (REPO / "docs" / "METHOD.md").read_text(encoding="utf-8")
    return set(re.findall(rf"^#{{2,4}} ({NUM})\.?\s", text, flags=re.M))


def cited_sections(text: str) -> list[str]:
    return [n for m in CITATION.finditer(text) for n in re.findall(NUM, m.group(1))]


def test_citation_parser_on_known_forms():
    text = ("(METHOD §1.4) docs/METHOD.md §1.2, §1.3 and METHOD §1.2-§1.3, METHOD §1.8 and §2; "
            "METHOD §4. and METHOD §1.2/§1.3")
    assert cited_sections(text) == ["1.4", "1.2", "1.3", "1.2", "1.3", "1.8", "2", "4", "1.2", "1.3"]


def test_method_has_the_spec_numbering():
    sections = method_sections()
    expected = {"1", "2", "3", "4", "5"} | {f"1.{i}" for i in range(1, 10)}
    assert expected <= sections, sorted(expected - sections)


def test_nothing_cites_the_internal_spec():
    """No .py, .ipynb, or .md outside results/ names the internal spec (users never see it)."""
    offenders = [str(p.relative_to(REPO)) for p in _files(".py", ".ipynb", ".md")
                 if not (p.suffix == ".md" and p.relative_to(REPO).parts[0] == "results")
                 and SPEC in _text(p)]
    assert offenders == [], f"cite docs/METHOD.md instead of {SPEC} in: {offenders}"


def test_every_method_citation_has_its_section():
    sections = method_sections()
    bad = []
    for p in _files(".py", ".ipynb", ".md"):
        text = _text(p)
        cited = cited_sections(text)
        if p == REPO / "docs" / "METHOD.md":                  # its own cross-references: "(see §1.9)"
            cited += re.findall(rf"§({NUM})", text)
        bad += [f"{p.relative_to(REPO)}: §{n}" for n in cited if n not in sections]
    assert not bad, f"citations of sections docs/METHOD.md does not have: {bad}"
    assert len(sections) >= 14
