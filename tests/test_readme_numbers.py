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
DOCS = {"README.md": README, "docs/STUDY.md": STUDY, "docs/CLI.md": CLI, "docs/BENCHMARKS.md": BENCH}


def test_readme_study_cost_is_study_json():
    study = json.loads((REPO / "results" / "study.json").read_text())
    text = (f"{study['runs_done']} runs, {study['wall_s'] / 60:.0f} min wall on {study.get('jobs') or 2} processes "
            f"of one thread, {study['cpu_s_per_run']:.0f} CPU-s per run")
    for rel in ("README.md", "docs/STUDY.md"):
        assert text in " ".join(DOCS[rel].split()), rel


def _v2(source: str) -> list[dict]:
    """results/verdicts_v2.csv rows re-verdicted from ``source`` (the boundary, Holm; nothing re-trained)."""
    return [r for r in read_rows(REPO / "results" / "verdicts_v2.csv") if r["source"] == source]


def _v2_at(source: str, claim_start: str, metric: str) -> dict:
    return next(r for r in _v2(source) if r["claim"].startswith(claim_start) and r["metric"] == metric)


def test_study_answer_is_the_reverdicted_headline():
    """README and docs/STUDY.md: the bold answer says what the Holm-adjusted headline verdicts allow
    (verdicts_v2.csv), for the replicate design; "first reported as" is the first study's verdict (v1/)."""
    head = [r for r in _v2("verdicts.csv") if r["family"] == "headline"]
    assert len(head) == 4 and {r["margin"] for r in head} == {0.01}
    holm = {r["verdict_holm"] for r in head}
    if not holm & {"supported", "contradicted", "equivalent"}:
        answer = ("**The study's answer: no effect of HDML was detected on the glyphs, and none larger than the "
                  "1-point margin was ruled out.**")
    elif not holm & {"supported", "contradicted"}:
        answer = "**The study's answer: no effect of HDML was detected on the glyphs; an effect larger than"
    else:
        answer = "**The study's answer: HDML " + ("ahead" if "supported" in holm else "behind")
    for rel in ("README.md", "docs/STUDY.md"):
        text = " ".join(DOCS[rel].split())
        assert answer in text, rel
        assert "the replicate design: each final seed repeats the whole pipeline" in text, rel
        assert "pending" not in text.split("## The study")[1].split("##")[0] if rel == "README.md" else True
    assert json.loads((REPO / "results" / "study.json").read_text())["design"] == "replicate"
    first = {(r["claim"], r["metric"]): r["verdict"] for r in read_rows(REPO / "results" / "v1" / "verdicts.csv")}
    assert all(r["old_verdict"] == first[(r["claim"], r["metric"])] for r in head)     # the first study's words


def test_study_rules_quote_the_boundary():
    """docs/STUDY.md's per-look levels are the ones the headline verdicts used (sequential.py's table)."""
    text = " ".join(STUDY.split())
    row = next(r for r in _v2("verdicts.csv") if r["family"] == "headline")
    assert f"two-sided p <= {row['level']:.4f} and each one-sided TOST p <= {row['level_tost']:.4f}" in text


# the first report's prose that went past its numbers (issue 25): it must not come back
OVERCLAIMS = ("does not help here, by more than one point", "why HDML does not help", "HDML gives no gain",
              "weight-matched arm that separates the two", "rule out any effect larger than the margin",
              "the size of any effect here is at most the margin", "the verdict does not hinge on it",
              "So the ablation's loss is the weight, not the labels", "No hypothesis finds a gain",
              "a longer budget costs", "none of which finds a gain", "no effect larger than that",
              "rejected with the list of valid keys")


def test_no_prose_past_the_numbers():
    """README.md and the docs it hands the study to (results/README.md may quote them to correct them)."""
    for path in [REPO / rel for rel in ("README.md", "docs/STUDY.md", "docs/CLI.md", "docs/BENCHMARKS.md",
                                        "docs/TEACHING.md")]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        for claim in OVERCLAIMS:
            assert claim not in text, f"{path.name}: {claim!r}"


def test_study_names_the_cause_where_compare_disagrees():
    """docs/STUDY.md: the study against compare on the glyphs, after Holm (verdicts_v2.csv): opposite
    verdicts on the same claim come with their cause; the pull target's spread over replicates is read."""
    text = " ".join(STUDY.split())
    st = {r["metric"]: r["verdict_holm"] for r in _v2("verdicts.csv") if r["claim"] == "HDML(N-pair) > N-pair"}
    cp = {r["metric"]: r["verdict_holm"] for r in _v2("compare_glyphs_npair/verdicts.csv")}
    opposite = [m for m in st if st[m] != cp[m] and {st[m], cp[m]} & {"supported", "contradicted"}]
    if opposite:
        assert "disagree on HDML(N-pair) > N-pair" in text and "The cause to name is that difference" in text
    else:
        assert "do not give opposite verdicts on HDML(N-pair) > N-pair" in text
    counts = read_rows(REPO / "results" / "choice_counts.csv")
    won = {r["value"] for r in counts if r["stage"] == "select_alpha" and r["method"] == "lab_hdml_npair" and r["chosen"]}
    assert len(won) >= 2          # "picks a different pull target from one replicate to the next"
    assert "validation MAP@R picks a different pull target from one replicate to the next" in text


def test_benchmarks_study_timing_is_study_json():
    study = json.loads((REPO / "results" / "study.json").read_text())
    text = (f"{study['runs_done']} runs, {study['wall_s'] / 60:.0f} min wall with 2 processes of one thread, "
            f"{study['cpu_s_per_run']:.0f} CPU-s per run")
    assert text in " ".join(BENCH.split())


def _block(name: str, text: str) -> list[str] | None:
    m = re.search(rf"<!-- {name}:.*?-->\n(.*?)\n<!-- /{name} -->", text, re.S)
    return m.group(1).splitlines() if m else None


# where each generated block lives (moved out of the README with its check: issue 24)
BLOCK_HOMES = {"answer": ("README.md", "docs/STUDY.md"), "findings": ("README.md", "docs/STUDY.md"),
               "contrast": ("docs/STUDY.md",), "study_time": ("docs/BENCHMARKS.md",), "weight": ("docs/STUDY.md",),
               "hypotheses": ("docs/STUDY.md",), "hypotheses_reading": ("docs/STUDY.md",),
               "folder": ("docs/CLI.md",)}


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
    """docs/STUDY.md: the weight-matched arm's reading follows engagement.csv (labels kept or not)."""
    text = " ".join(STUDY.split())
    eng = read_rows(REPO / "results" / "engagement.csv")
    med = lambda m: sorted(r["acc_syn"] for r in eng if r["method"] == m)[2]  # noqa: E731  (5 runs)
    if med("lab_hdml_npair_nosoftmax_wmatch") - med("lab_hdml_npair_nosoftmax") >= 0.1:
        assert "**The weight-matched ablation does not separate weight from labels.**" in text
    else:
        assert "it changes the weight alone, so its verdicts speak of the weight" in text


def test_readme_hypotheses_prose_matches_the_csv():
    """docs/STUDY.md: the hypotheses' reading says what hypotheses.csv and the Holm-adjusted verdicts
    (verdicts_v2.csv, one family over every arm and metric) allow; H3 reuses the 400-step lr."""
    text = " ".join(STUDY.split())
    rows = read_rows(REPO / "results" / "hypotheses.csv")
    v2 = _v2("hypotheses.csv")
    assert rows and len(v2) == len(rows)
    holm = [r["verdict_holm"] for r in v2]
    assert ("**No hypothesis detects a gain" in text) == ("supported" not in holm)
    assert (", and none rules one out**" in text) == ("equivalent" not in holm)
    if "equivalent" in holm:
        assert f"an effect larger than 1 point is ruled out in {holm.count('equivalent')} of {len(v2)}**" in text
    reading = text.split("<!-- hypotheses_reading")[1].split("<!-- /hypotheses_reading -->")[0]
    for r in v2:                                # a raw verdict lost to Holm is named as such
        lost = r["verdict"] in ("supported", "contradicted") and r["verdict"] != r["verdict_holm"]
        said = f"{r['claim']} on {'R@1' if r['metric'] == 'r1' else 'NMI'} {r['verdict']}"
        assert (said in reading) == lost, said
    assert "the four hypotheses the study tested" in " ".join(README.split())
    assert len({r["hypothesis"].split()[0] for r in rows}) == 4                       # H1-H4: "the four"
    from hdml_lite.study.hypotheses import arms
    info = json.loads((REPO / "results" / "hypotheses.json").read_text())
    assert ("**These are the first run's hypotheses**" in text) == (not info["grid"].get("parity"))
    used = REPO / "results" / ("" if info["grid"].get("parity") else "v1")     # the study the arms read
    h3_arms = [a for a in arms(used) if a[0].startswith("H3")]
    assert h3_arms and all(a[5] is not None and set(a[5][f"lab_{a[2]}"]) == {"lr"} for a in h3_arms)
    assert "**H3 reuses the lr chosen for 400 steps at 1,600 steps**" in text
    early = {(r["hypothesis"], r["setting"], r["loss"]): r for r in rows if r["hypothesis"].startswith(("H1", "H2"))}
    zero = sum(float(r["hdml_alpha"]) == 0 for r in early.values())
    assert len(early) == 6 and f"validation chose no pull at all (alpha 0) in {zero} of the 6 arms" in text


def test_readme_demo_prints_what_the_demo_prints():
    """The README's demo block ends with the engagement verdict line as diagnostics.engagement_lines
    writes it (v2, then v1 named as an earlier, looser set of conditions)."""
    from hdml_lite.hdml.diagnostics import NAMES_V2, engagement_lines

    result = {k: {"ok": k != "hardness", "text": ""} for k in NAMES_V2} | {"engaged": False,
                                                                           "v1": {"engaged": False}}
    assert "  " + engagement_lines(result)[-1] in README.splitlines()


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


def test_results_notes_claims_hold():
    """results/notes.md (hand-written after the re-run): each claim it makes about the files holds."""
    notes = " ".join((REPO / "results" / "notes.md").read_text().split())
    head = [r for r in _v2("verdicts.csv") if r["family"] == "headline"]
    first = [r for r in read_rows(REPO / "results" / "v1" / "verdicts.csv") if r["claim"] in {h["claim"] for h in head}]
    width = lambda rows: sorted(r["ci_high"] - r["ci_low"] for r in rows)  # noqa: E731
    if "headline intervals are wider than the first study's" in notes:
        assert width(head)[len(head) // 2] > width(first)[len(first) // 2]          # the medians
    if "are still about as wide as the first study's" in notes:
        assert abs(width(head)[len(head) // 2] / width(first)[len(first) // 2] - 1) < 0.25
        assert {int(r["n_seeds"]) for r in head} == {10} and {int(r["n_seeds"]) for r in first} == {5, 9}
    counts = read_rows(REPO / "results" / "choice_counts.csv")
    for m in ("lab_hdml_npair", "lab_hdml_triplet"):        # "a different pull target from one replicate to the next"
        assert len({r["value"] for r in counts if r["stage"] == "select_alpha" and r["method"] == m and r["chosen"]}) >= 2
    budgets = {r["method"]: r["selection_runs"] for r in read_rows(REPO / "results" / "budgets.csv")}
    assert budgets.pop("lab_hdc") == 1 + max(budgets.values()) and len(set(budgets.values())) == 1   # "HDC one more"
    info = json.loads((REPO / "results" / "hypotheses.json").read_text())
    assert ("are still the first run's" in notes) == (not info["grid"].get("parity"))
    if "were re-run under the same rules as the two compares" in notes:           # the hypotheses' bullet
        rows = read_rows(REPO / "results" / "hypotheses.csv")
        seeds = read_rows(REPO / "results" / "hypotheses_per_seed.csv")
        assert info["grid"]["parity"] and {int(r["n_seeds"]) for r in rows} == {5} and info["seeds"] == 5
        assert {r["hypothesis"] for r in seeds} == {r["hypothesis"] for r in rows}
        h4 = lambda rows: {r["setting"] for r in rows if r["hypothesis"].startswith("H4") and r["loss"] == "npair"}  # noqa: E731
        assert (h4(read_rows(REPO / "results" / "v1" / "hypotheses.csv")), h4(rows)) == (
            {"alpha at pull target 0.3 (labels kept there)"}, {"alpha at pull target 0.1 (labels kept there)"})


def test_answer_sets_the_paper_gain_beside_the_lab_interval():
    """README and docs/STUDY.md say plainly whether the paper's reported gain was reproduced: "not
    reproduced" only when every CUB gain (paper.py) lies above the upper end of the lab's interval for
    the same claim (verdicts_v2.csv); each gain and upper end is quoted."""
    from hdml_lite.study.paper import PAPER

    head = [r for r in _v2("verdicts.csv") if r["family"] == "headline"]
    above = []
    for r in head:
        loss = "npair" if "N-pair" in r["claim"] else "triplet"
        gain = PAPER["cub"][f"hdml_{loss}"][r["metric"]] - PAPER["cub"][loss][r["metric"]]
        above.append(gain > 100 * r["ci_high"])
        quoted = f"{'R@1' if r['metric'] == 'r1' else 'NMI'} {gain:+.1f} (the lab's upper end {100 * r['ci_high']:+.2f})"
        for rel in ("README.md", "docs/STUDY.md"):
            assert quoted in " ".join(DOCS[rel].split()), (rel, quoted)
    for rel in ("README.md", "docs/STUDY.md"):
        text = " ".join(DOCS[rel].split())
        assert ("**The paper's gain was not reproduced in this lab**" in text) == all(above), rel
        assert "The glyphs are not CUB" in text, rel
    nb = json.loads((REPO / "notebooks" / "02_training.ipynb").read_text())       # the notebook prints the same line
    assert any("paper_gain_line(head)" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
