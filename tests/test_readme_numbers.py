"""The study numbers of the README and of the docs it links to (docs/STUDY.md, docs/BENCHMARKS.md,
docs/CLI.md) are the result files' numbers (not typed by hand); the README opens with the lab."""
import json
import re
from pathlib import Path

from hdml_lite.study.files import read_rows

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
STUDY = (REPO / "docs" / "STUDY.md").read_text()
BENCH = (REPO / "docs" / "BENCHMARKS.md").read_text()
CLI = (REPO / "docs" / "CLI.md").read_text()
DOCS = {"README.md": README, "docs/STUDY.md": STUDY, "docs/CLI.md": CLI}


def test_readme_study_cost_is_study_json():
    study = json.loads((REPO / "results" / "study.json").read_text())
    text = (f"{study['runs_done']} runs, {study['wall_s'] / 60:.0f} min on 2 shared cores, "
            f"{study['cpu_s_per_run']:.0f} CPU-s per run")
    assert text in " ".join(README.split())


def test_study_compare_on_the_glyphs_is_its_verdicts_csv():
    """docs/STUDY.md: 'finds HDML(N-pair) ahead on R@1 by about one point'"""
    assert "finds HDML(N-pair) ahead on R@1 by about one point" in " ".join(STUDY.split())
    r1 = next(r for r in read_rows(REPO / "results" / "compare_glyphs_npair" / "verdicts.csv") if r["metric"] == "r1")
    assert r1["verdict"] == "supported" and 0.5 <= 100 * r1["mean_diff"] <= 1.5
    assert "HDML(triplet) equivalent to triplet" in " ".join(STUDY.split())
    tri = read_rows(REPO / "results" / "compare_glyphs_triplet" / "verdicts.csv")
    assert {r["verdict"] for r in tri} == {"equivalent"}


def test_benchmarks_study_timing_is_study_json():
    study = json.loads((REPO / "results" / "study.json").read_text())
    text = (f"{study['runs_done']} runs, {study['wall_s'] / 60:.0f} min wall with 2 processes of one thread, "
            f"{study['cpu_s_per_run']:.0f} CPU-s per run")
    assert text in " ".join(BENCH.split())


def _block(name: str, text: str) -> list[str] | None:
    m = re.search(rf"<!-- {name}:.*?-->\n(.*?)\n<!-- /{name} -->", text, re.S)
    return m.group(1).splitlines() if m else None


# where each generated block lives (moved out of the README with its check: issue 24)
BLOCK_HOMES = {"findings": ("README.md", "docs/STUDY.md"), "weight": ("docs/STUDY.md",),
               "hypotheses": ("docs/STUDY.md",), "folder": ("docs/CLI.md",)}


def test_generated_blocks_are_their_files():
    """The headline findings, the weight-matched arm, the folder comparison and the hypotheses:
    scripts/readme_blocks.py writes each block from its result files, in README.md and docs/."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_blocks", REPO / "scripts" / "readme_blocks.py")
    blocks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(blocks)
    assert set(blocks.DOCS) == set(DOCS) and set(BLOCK_HOMES) == set(blocks.BLOCKS)
    for name, homes in BLOCK_HOMES.items():
        for rel in homes:
            assert _block(name, DOCS[rel]) == blocks.BLOCKS[name](), f"{rel}: {name}"
        for rel in set(DOCS) - set(homes):
            assert _block(name, DOCS[rel]) is None, f"{rel} holds the {name} block: add it to BLOCK_HOMES"
    for rel, text in DOCS.items():
        assert blocks.render(text) == text, rel


def test_readme_weight_matched_prose_matches_its_verdicts():
    """docs/STUDY.md: 'the ablation's loss is the weight ... equivalent to full HDML'"""
    text = " ".join(STUDY.split())
    assert "So the ablation's loss is the weight, not the labels" in text
    v = {(r["claim"], r["metric"]): r["verdict"] for r in read_rows(REPO / "results" / "verdicts.csv")}
    assert v[("HDML(N-pair) > HDML(N-pair) without softmax, weight matched", "r1")] == "equivalent"
    assert v[("HDML(N-pair) without softmax, weight matched > without softmax", "r1")] == "supported"
    eng = read_rows(REPO / "results" / "engagement.csv")
    med = lambda m: sorted(r["acc_syn"] for r in eng if r["method"] == m)[2]  # noqa: E731  (5 runs)
    assert med("lab_hdml_npair_nosoftmax_wmatch") >= 0.5 > med("lab_hdml_npair_nosoftmax")


def test_readme_hypotheses_prose_matches_the_csv():
    """docs/STUDY.md: 'No hypothesis finds a gain ...' against results/hypotheses.csv."""
    text = " ".join(STUDY.split())
    assert "**No hypothesis finds a gain.** No arm supports HDML on either metric." in text
    rows = read_rows(REPO / "results" / "hypotheses.csv")
    assert rows and not [r for r in rows if r["verdict"] == "supported"]
    assert "the four hypotheses the study tested, none of which finds a gain" in " ".join(README.split())
    assert len({r["hypothesis"].split()[0] for r in rows}) == 4                       # H1-H4: "the four"
    late = [r for r in rows if r["hypothesis"].startswith(("H3", "H4"))]
    assert all(r["engaged_v2"] == "5/5" for r in late)
    assert {r["verdict"] for r in late} <= {"equivalent", "undecided", "contradicted"}
    h3 = {(r["loss"], r["metric"]): r["verdict"] for r in late if r["hypothesis"].startswith("H3")}
    assert h3[("npair", "nmi")] == "contradicted" and "with 4x the steps HDML(N-pair) falls behind N-pair on NMI" in text
    early = {(r["hypothesis"], r["setting"], r["loss"]): r for r in rows if r["hypothesis"].startswith(("H1", "H2"))}
    assert len(early) == 6 and sum(r["hdml_alpha"] == 0 for r in early.values()) == 3
    assert "no pull at all (alpha 0) in three of the six arms" in text
    engaged = sum(int(r["engaged_v2"].split("/")[0]) for r in early.values())
    assert engaged <= 0.1 * sum(int(r["engaged_v2"].split("/")[1]) for r in early.values())   # "few"


def test_readme_opens_with_the_lab():
    """A newcomer's first screen (the first 45 lines): how to start JupyterLab, the demo and the
    tests, the notebooks in order with a time each, the two-hour plan and the teaching guide."""
    first = "\n".join(README.splitlines()[:45])
    for text in ("jupyter lab notebooks/", "bash scripts/demo.sh", "bash scripts/test.sh", "Two hours",
                 "docs/TEACHING.md", "python -m hdml_lite handout DIR", "Colab"):
        assert text in first, text
    rows = re.findall(r"^\| `(\d\d)_\w+` \| [^|]+ \| ([^|]+) \|$", first, flags=re.M)
    assert [n for n, _ in rows] == [f"{k:02d}" for k in range(7)]
    notebooks = sorted(p.name[:2] for p in (REPO / "notebooks").glob("0*.ipynb"))
    assert [n for n, _ in rows] == notebooks
    assert all(t.strip() for _, t in rows)


def test_readme_links_the_moved_material():
    for rel in ("docs/STUDY.md", "docs/BENCHMARKS.md", "docs/CLI.md", "docs/TEACHING.md", "results/README.md"):
        assert f"]({rel})" in README and (REPO / rel).is_file(), rel
    assert len(README.splitlines()) < 300


def _measured_times() -> dict:
    """{"00": (cpu_s, wall_s), ...} from each notebook's **Time and runs** paragraph (its first cell)."""
    out = {}
    for path in sorted((REPO / "notebooks").glob("0*.ipynb")):
        top = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"]
        top = " ".join(("".join(top) if isinstance(top, list) else top).split())
        m = re.search(r"(\d+) s of CPU time(?: and|,) (\d+) s of wall time", top)
        assert m, f"{path.name}: no measured CPU and wall time in its first cell"
        out[path.name[:2]] = (int(m.group(1)), int(m.group(2)))
    return out


def test_notebook_times_are_the_notebooks_measurements():
    """The README's time column and docs/TEACHING.md's table are the times each notebook states
    (measured by bench/notebook_cpu.py; 06 in its smoke mode), not typed separately."""
    times = _measured_times()
    readme = dict(re.findall(r"^\| `(\d\d)_\w+` \| [^|]+ \| (\d+) s\b[^|]*\|$", README, flags=re.M))
    assert {k: int(v) for k, v in readme.items()} == {k: w for k, (_, w) in times.items()}
    guide = (REPO / "docs" / "TEACHING.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d\d) [^|]+\| (\d+) s \| (\d+) s\b[^|]*\|", guide, flags=re.M)
    assert {k: (int(c), int(w)) for k, c, w in rows} == times
    assert "TODO-TIME" not in README and "TODO-TIME" not in guide
