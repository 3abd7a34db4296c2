"""The verdicts as the docs show them (issue 25 follow-ups): the notebooks' table, results/README.md's
section "Verdicts under the new rules" (generated from results/verdicts_v2.csv) and its prose."""
from pathlib import Path

from hdml_lite.study.files import read_rows
from hdml_lite.study.reverdict_report import allowed, reverdict_section
from hdml_lite.viz.results import verdicts_markdown

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
V2 = read_rows(RESULTS / "verdicts_v2.csv")


def _row(source, claim, metric):
    return next(v for v in V2 if (v["source"], v["claim"], v["metric"]) == (source, claim, metric))


def test_verdicts_markdown_old_files_render_as_before():
    rows = [{"claim": "HDML(N-pair) > N-pair", "metric": "r1", "n_seeds": 5.0, "mean_diff": 0.0026,
             "ci_low": -0.0044, "ci_high": 0.0096, "margin": 0.01, "verdict": "equivalent"}]
    md = verdicts_markdown(rows).splitlines()
    assert md[0] == "| the paper's claim | metric | seeds | mean difference (points) | 95% interval | verdict |"
    assert md[2] == "| HDML(N-pair) > N-pair | Recall@1 | 5 | +0.3 | [-0.4, +1.0] | **equivalent** |"
    assert "the 90% interval lies inside ±1 point" in md[-1]


def test_verdicts_markdown_shows_holm_raw_look_interval_and_p_improve():
    from hdml_lite.study.tables import _improve

    rows = [v for v in V2 if v["source"] == "verdicts.csv"]
    lines = verdicts_markdown(rows).splitlines()
    assert "seeds (look)" in lines[0] and "verdict after Holm (raw)" in lines[0] and "P(A > B)" in lines[0]
    for v in (v for v in rows if v["family"] == "headline"):
        name = {"r1": "Recall@1", "nmi": "NMI"}[v["metric"]]
        line = next(x for x in lines if x.startswith(f"| {v['claim']} | {name} |"))
        assert f"| {int(v['n_seeds'])} ({int(v['look'])}) |" in line
        assert f"**{v['verdict_holm']}**" in line and f"at {100 * (1 - v['level']):.3g}%" in line
        assert _improve(v) in line
    assert "after Holm's correction" in lines[-1]


def test_allowed_words_follow_the_holm_verdict():
    base = {"margin": 0.01, "mean_diff": 0.004, "ci_low": -0.006, "ci_high": 0.014, "level": 0.0173,
            "tost_low": -0.004, "tost_high": 0.008}
    assert allowed(dict(base, verdict="equivalent", verdict_holm="equivalent")).startswith(
        "no effect larger than 1 point was detected (equivalence interval [-0.40, +0.80])")
    assert allowed(dict(base, verdict="equivalent", verdict_holm="undecided")) == \
        "not detected (98.3% interval [-0.60, +1.40] points)"
    assert allowed(dict(base, mean_diff=0.0102, ci_low=0.0062, verdict="supported", verdict_holm="supported")) \
        .startswith("supported: A ahead by +1.02 points")
    for v in V2:                        # every committed row: the words of its Holm-adjusted verdict
        words = allowed(v)
        assert words.startswith({"equivalent": "no effect larger than", "undecided": "not detected",
                                 "supported": "supported: A ahead", "contradicted": "contradicted: A behind"}
                                [v["verdict_holm"]]), (v["claim"], words)


def test_reverdict_section_names_the_design_the_causes_and_the_cost():
    import json

    text = "\n".join(reverdict_section(RESULTS, ["COST LINE"]))
    study = json.loads((RESULTS / "study.json").read_text())
    assert study["design"] == "replicate"
    assert text.startswith("## Verdicts under the new rules (the re-run)")
    assert "`--design replicate`" in text and "`v1/`" in text
    hyp_info = json.loads((RESULTS / "hypotheses.json").read_text())
    assert ("the hypotheses are still the first run's" in text.lower()) == (not hyp_info["grid"].get("parity"))
    assert "A re-run under the replicate design" not in text        # the study's own re-run is this page
    # every claim of verdicts_v2.csv has a row in the table
    assert sum(line.startswith("| ") for line in text.splitlines()) == len(V2) + 1
    head = [v for v in V2 if v["source"] == "verdicts.csv" and v["family"] == "headline"]
    n_eq = sum(v["verdict_holm"] == "equivalent" for v in head)
    assert f'holds for {n_eq} of 4 headline tests' in text
    assert ("disagree on HDML(N-pair) > N-pair" in text or "do not give opposite verdicts" in text)
    assert "weight-matched ablation" in text
    hyp = [v for v in V2 if v["source"] == "hypotheses.csv"]
    raw = ", ".join(f"{n} {k}" for k in ("supported", "contradicted", "equivalent", "undecided")
                    if (n := sum(v["verdict"] == k for v in hyp)))
    assert f"Of {len(hyp)} tests at 5% each: {raw};" in text
    gain = any(v["verdict_holm"] == "supported" for v in hyp)
    assert ("**No hypothesis detects a gain" in text) == (not gain)
    assert "H3 reuses the 400-step lr at 1,600 steps" in text
    assert reverdict_section(RESULTS / "no_such_folder") == []


def test_results_readme_holds_the_generated_section_and_not_the_overclaims(monkeypatch):
    """results/README.md was regenerated from the files: the section is the one the code writes now
    (`python -m hdml_lite.study report --out results`, run from the checkout), and the first study's
    overclaims are gone from its prose (results/notes.md)."""
    from hdml_lite.study.cost import study_cost_lines

    monkeypatch.chdir(REPO)
    readme = (RESULTS / "README.md").read_text()
    section = "\n".join(reverdict_section(Path("results"), study_cost_lines(results="results")))
    assert section in readme
    for gone in ("rules out any effect larger than the margin", "and the verdict does not hinge on it",
                 "So the no-softmax ablation hurts because", "it costs.", "no gain anywhere",
                 "a sequential design: its error rates are somewhat above the nominal 5%"):
        assert gone not in readme, gone
    assert "two-sided p <= 0.0173 and each one-sided TOST p <= 0.0192" in readme


def test_method_doc_states_the_boundary_the_code_uses():
    """docs/METHOD.md §6 types the per-look levels: they are sequential.levels of the design."""
    from hdml_lite.study.sequential import DESIGN, levels

    text = " ".join((REPO / "docs" / "METHOD.md").read_text().split())
    lv, lt = levels(*DESIGN)
    assert f"at {DESIGN[0]}..{DESIGN[1]} seeds, two-sided p <= {lv:g} and each one-sided TOST p <= {lt:g}" in text
    for word in ("Pocock-type boundary", "Holm", "P(A > B)", "replicate design", "One selection budget",
                 "k-means only at the final evaluation", "fewer than 3 seeds", "no spread"):
        assert word in text, word


def test_compare_names_how_its_design_differs_from_the_study():
    """compare selects once (its own grids); the study selects again in every replicate with one
    budget: --plan prints the budgets and the differences, the cause to name where they disagree."""
    from hdml_lite.study.compare import design_lines, make_compare_settings, plan_lines
    from hdml_lite.study.lab import make_settings
    from hdml_lite.study.plan import selection_budgets

    s = make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", ["train.kmeans_restarts=1"],
                              log=lambda *_: None)
    text = "\n".join(plan_lines(s))
    bud = selection_budgets(s)
    assert bud["lab_hdml_npair"] == bud["lab_npair"]                      # one budget (parity), selecting once
    assert f"selection runs per method: lab_hdml_npair {bud['lab_hdml_npair']}, lab_npair {bud['lab_npair']}\n" in text
    unequal = plan_lines(make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", [], parity=False,
                                               log=lambda *_: None))
    assert any("(not all equal: printed beside the verdicts)" in line for line in unequal)
    (line,) = design_lines(s)
    assert "once for every seed" in line and "every replicate selects again in the study" in line
    st = selection_budgets(make_settings("lab"))
    assert f"lab_hdml_npair {st['lab_hdml_npair']}, lab_npair {st['lab_npair']} per replicate in the study" in line
    assert line in text


def test_report_curves_note_only_when_kmeans_ran_at_the_final_step_only():
    from hdml_lite.study.report import _curves_note

    assert _curves_note([{"step": 100, "r1": 0.5}, {"step": 400, "r1": 0.6, "nmi": 0.7}]).startswith(" R@1 along")
    assert _curves_note([{"step": 100, "r1": 0.5, "nmi": 0.6}, {"step": 400, "r1": 0.6, "nmi": 0.7}]) == ""
    assert _curves_note(read_rows(RESULTS / "curves.csv")).startswith(" R@1 along")   # the re-run: final only
