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
    md = verdicts_markdown([v for v in V2 if v["source"] == "verdicts.csv"])
    lines = md.splitlines()
    assert "seeds (look)" in lines[0] and "verdict after Holm (raw)" in lines[0] and "P(A > B)" in lines[0]
    # N-pair NMI: equivalent raw, not after Holm over the 4 headline tests; interval at 1 - 0.0173
    npair_nmi = next(line for line in lines if line.startswith("| HDML(N-pair) > N-pair | NMI"))
    assert "**undecided** (equivalent)" in npair_nmi and "at 98.3%" in npair_nmi and "0.80 [0.40, 1.00]" in npair_nmi
    # triplet NMI was decided at look 7 of the 9 seeds run; triplet R@1 stopped undecided
    tri = [line for line in lines if line.startswith("| HDML(triplet) > triplet |")]
    assert "| 9 (7) |" in tri[1]
    assert "**undecided** (undecided (stopped at 9 of 10 seeds))" in tri[0]
    assert "after Holm's correction" in lines[-1]


def test_allowed_words_follow_the_holm_verdict():
    eq = _row("verdicts.csv", "HDML(N-pair) > HDML(N-pair) without softmax, weight matched", "nmi")
    assert eq["verdict_holm"] == "equivalent"
    assert allowed(eq).startswith("no effect larger than 1 point was detected")
    raw_eq = _row("verdicts.csv", "HDML(N-pair) > N-pair", "nmi")          # equivalent raw, not after Holm
    assert raw_eq["verdict"] == "equivalent" and raw_eq["verdict_holm"] == "undecided"
    assert allowed(raw_eq).startswith("not detected (98.3% interval [-0.43, +0.95] points")
    sup = _row("compare_glyphs_npair/verdicts.csv", "lab_hdml_npair > lab_npair", "r1")
    assert allowed(sup).startswith("supported: A ahead by +1.02 points")


def test_reverdict_section_names_the_design_the_causes_and_the_cost():
    text = "\n".join(reverdict_section(RESULTS, ["COST LINE"]))
    assert text.startswith("## Verdicts under the new rules (re-verdict of the committed study, nothing re-trained)")
    assert "`--design once`" in text and "is pending" in text and "COST LINE" in text
    # every claim of verdicts_v2.csv has a row in the table
    assert sum(line.startswith("| ") for line in text.splitlines()) == len(V2) + 1
    # the overclaims, corrected from the files
    assert 'holds for 0 of 4 headline tests' in text
    assert "HDML's pull target 0.9 (study) against 0.5 (compare)" in text
    assert "hdml.bn_stats real (study) against official (compare)" in text
    assert "median acc_syn 0.64, against 0.23" in text and "weight and labels still move together" in text
    assert "Of 20 tests, 12 are undecided" in text and "after Holm over the 20: 20 undecided" in text
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
    assert _curves_note(read_rows(RESULTS / "curves.csv")) == ""          # the committed study: k-means every step
