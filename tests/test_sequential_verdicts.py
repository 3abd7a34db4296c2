"""Verdicts that hold their error rate (issue 25): the add-a-seed rule's boundary, Holm within families,
degenerate cases, P(A > B), the margin's range, and the re-verdict of the committed files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hdml_lite.study import sequential as sq
from hdml_lite.study.engine import claim_verdict, verdict_rows
from hdml_lite.study.files import read_rows
from hdml_lite.study.stats import check_margin, holm, paired_verdict, prob_improvement

REPO = Path(__file__).resolve().parents[1]


def _bound(reps: int, rate: float = 0.05) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / reps)


def test_error_rates_of_the_add_a_seed_rule_hold_5_percent():
    """The kit's own decision function, 5 seeds adding one to 10, at paired sds 0.5-3 points: both
    error rates at most 5% (plus 3 Monte-Carlo s.e.). With the nominal 5% at every look (the old
    rule) the same check fails: the test can see the fault."""
    reps = 20_000
    res = sq.error_rates(reps=reps)
    assert set(res["type1"]) == set(sq.SDS) == set(res["equiv_at_margin"])
    for sd in sq.SDS:
        assert res["type1"][sd] <= _bound(reps), (sd, res["type1"][sd])
        assert res["equiv_at_margin"][sd] <= _bound(reps), (sd, res["equiv_at_margin"][sd])
    old = sq.error_rates(reps=reps, sds=(1.0,), level=0.05, level_tost=0.05)
    assert old["type1"][1.0] > _bound(reps) and old["equiv_at_margin"][1.0] > _bound(reps)


def test_stored_boundary_reproduces():
    """The constants in sequential.TABLE are what ``calibrate`` computes (another seed, fewer reps)."""
    got = sq.calibrate(5, 10, reps=100_000, seed=7)
    i = sq.ALPHAS.index(0.05)
    stored = sq.TABLE[(5, 10)]
    assert got["test"][i] == pytest.approx(stored["test"][i], rel=0.06)
    assert got["tost"][i] == pytest.approx(stored["tost"][i], rel=0.06)
    assert sq.levels(5, 10) == (stored["test"][i], stored["tost"][i]) and 0.01 < sq.levels(5, 10)[0] < 0.05


def test_error_rates_command_prints_a_table_and_one_json_line(capsys):
    from hdml_lite.study.__main__ import main

    assert main(["error-rates", "--reps", "2000"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    last = json.loads(out[-1])
    assert set(last) == {"type1", "equiv_at_margin", "reps"} and last["reps"] == 2000
    assert set(last["type1"]) == {"0.5", "1.0", "2.0", "3.0"} and all(0 <= x <= 1 for x in last["type1"].values())
    assert main(["error-rates", "--reps", "5"]) == 2
    err = capsys.readouterr().err
    assert "--reps 5" in err and len(err.strip().splitlines()) == 1


def test_fixed_design_keeps_the_plain_5_percent_tests():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(0.7, 0.01, 5), rng.normal(0.7, 0.01, 5)
        v = sq.sequential_verdict(a - b, 5, 5, 0.01)
        old = paired_verdict(a, b)
        assert (v["level"], v["level_tost"], v["look"]) == (0.05, 0.05, 5)
        assert v["verdict"] == old["verdict"] and v["p"] == pytest.approx(old["p"])
        assert v["ci_low"] == pytest.approx(old["ci_low"]) and v["tost_high"] == pytest.approx(old["tost_high"])


def test_sequential_verdict_agrees_with_its_p_values_and_locks_the_first_decision():
    """supported/contradicted exactly when the design's p <= 5%, equivalent when its TOST p <= 5%;
    a decision at look L is kept when seeds are added (for the other metric)."""
    rng = np.random.default_rng(1)
    d = rng.normal(0.004, 0.01, size=(4000, 10))
    v = sq.sequential_verdict(d, 5, 10, 0.01)
    sig = np.isin(v["code"], (1, 2))
    assert np.array_equal(sig, v["p"] <= 0.05)
    assert np.array_equal(v["code"] == 3, ~sig & (v["p_tost"] <= 0.05))
    assert set(np.unique(v["look"])) <= set(range(5, 11)) and (v["look"] > 5).any()
    k = int(np.flatnonzero((v["code"] != 0) & (v["look"] == 6))[0])
    first = sq.sequential_verdict(d[k, :6], 5, 10, 0.01)
    later = sq.sequential_verdict(d[k], 5, 10, 0.01)
    assert first["verdict"] == later["verdict"] != "undecided" and later["look"] == 6 and later["n_seeds"] == 10


def test_degenerate_cases_are_undecided_with_the_reason():
    """R@1 on a grid of 1/180, scores written with 6 significant digits: equal differences are ties,
    not a verdict (the old rule called this "supported" from the rounding noise)."""
    k = np.array([101, 103, 104, 107, 110])                    # correct answers of 180 queries
    b = np.array([float(f"{x / 180:.6g}") for x in k])         # as read back from a CSV
    a = np.array([float(f"{(x + 1) / 180:.6g}") for x in k])   # A: one query more, every seed
    assert 0 < np.std(a - b) < 1e-6                            # the rounding leaves a tiny spread
    v = paired_verdict(a, b)
    assert v["verdict"] == "undecided" and v["reason"] == "no spread"
    s = sq.sequential_verdict(a - b, 5, 10, 0.01)
    assert sq.verdict_text(s) == "undecided (no spread)"
    two = paired_verdict([0.7, 0.72], [0.6, 0.61])
    assert two["verdict"] == "undecided" and two["reason"] == "fewer than 3 seeds"
    assert sq.verdict_text(sq.sequential_verdict(np.array([0.1, 0.09]), 2, 2, 0.01)) == "undecided (fewer than 3 seeds)"


@pytest.mark.parametrize("margin", [0.0, -0.01, math.inf, math.nan, 0.11])
def test_margin_out_of_range_is_refused(margin):
    with pytest.raises(ValueError, match="margin"):
        check_margin(margin)
    with pytest.raises(ValueError, match="margin"):
        paired_verdict([0.7, 0.71, 0.72], [0.7, 0.7, 0.7], margin=margin)


@pytest.mark.parametrize("value", ["inf", "nan", "0", "10.5"])
def test_compare_margin_is_one_line_exit_2(value, capsys):
    from hdml_lite.cli import main

    assert main(["compare", "lab_hdml_npair", "lab_npair", "--margin", value, "--plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--margin {value}" in err and "at most 10" in err
    assert check_margin(0.1) == 0.1


def test_holm_adjusts_within_each_family():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    adj = holm([0.02, np.nan, 0.001])
    assert math.isnan(adj[1]) and adj[2] == pytest.approx(0.002) and adj[0] == pytest.approx(0.02)
    rows = [{"family": "a", "verdict": "supported", "p": 0.02, "p_tost": 0.9},
            {"family": "a", "verdict": "equivalent", "p": 0.5, "p_tost": 0.02},
            {"family": "b", "verdict": "supported", "p": 0.02, "p_tost": 0.9}]
    out = sq.with_holm(rows)
    assert [r["verdict_holm"] for r in out] == ["supported", "equivalent", "supported"]
    rows[1]["p_tost"] = 0.2
    rows[0]["p"] = 0.03
    out = sq.with_holm(rows)
    assert out[0]["verdict_holm"] == "undecided" and out[0]["p_holm"] == pytest.approx(0.06)
    assert sq.verdict_text(out[0], "verdict_holm") == "undecided (after Holm)" and "verdict_holm" not in rows[0]


def test_probability_of_improvement_and_its_bootstrap_interval():
    p, lo, hi = prob_improvement([0.01, 0.02, -0.01, 0.0, 0.03])
    assert p == pytest.approx(0.7) and 0 <= lo <= p <= hi <= 1 and lo < hi   # the tie counts 1/2
    assert prob_improvement([0.01, 0.02, -0.01, 0.0, 0.03]) == (p, lo, hi)   # seeded: the same again
    assert prob_improvement([0.01, 0.02, 0.03]) == (1.0, 1.0, 1.0)
    assert math.isnan(prob_improvement([0.01])[1])


def _settings(**kw):
    from hdml_lite.study.plan import Settings, Spec

    specs = tuple(Spec(k, f"lab_{k}") for k in ("a", "b", "c"))
    base = dict(specs=specs, runs=Path("/nonexistent"), base=[], steps=10, headline_claims=1, seeds_key=5,
                max_seeds=10, margin=0.01, claims=(("A > B", "a", "b"), ("A > C", "a", "c")))
    return Settings(**{**base, **kw})


def test_engine_verdict_rows_carry_look_level_family_holm_and_p_improve():
    rng = np.random.default_rng(2)
    table = []
    for seed in range(7):
        base = rng.normal(0.7, 0.01)
        for m, shift in (("a", 0.0), ("b", -0.002), ("c", -0.03)):
            table.append({"method": m, "seed": seed, "r1": base + shift + rng.normal(0, 0.004),
                          "nmi": base + shift + rng.normal(0, 0.004)})
    for r in table:
        if r["method"] == "c" and r["seed"] >= 5:
            r["method"] = "c_unused"          # the fixed claim has 5 paired seeds
    rows = verdict_rows(table, _settings())
    head = [r for r in rows if r["family"] == "headline"]
    rest = [r for r in rows if r["family"] == "ablations"]
    assert len(head) == len(rest) == 2
    assert all(r["level"] == sq.levels(5, 10)[0] and 5 <= r["look"] <= 7 and r["n_seeds"] == 7 for r in head)
    assert all(r["level"] == 0.05 and r["look"] == 5 for r in rest)
    assert all({"p_holm", "p_tost_holm", "verdict_holm", "p_improve", "p_improve_low"} <= set(r) for r in rows)
    assert rest[0]["verdict"] == "supported" and rest[0]["p_improve"] == 1.0
    v = claim_verdict(table, "a", "b", "r1", 0.01, (5, 10))
    assert v["level"] == sq.levels(5, 10)[0] and v["seeds"] == list(range(7))


def test_optional_stopping_lesson_shows_the_inflation_and_the_fix():
    res = sq.optional_stopping(reps=6000)
    assert res["nominal"] > 0.07 > 0.055 > res["boundary"]
    assert abs(res["fixed"] - 0.05) < 0.015


def test_reverdict_of_the_committed_files(tmp_path):
    """The committed results again under the new rules (written to tmp_path, never results/): the
    re-verdict of the re-run's own per-seed tables reproduces its verdicts; every row has the first
    study's verdict beside the new ones (results/v1/); the hypotheses are one family."""
    from hdml_lite.study.__main__ import main

    assert main(["reverdict", "--results", str(REPO / "results"), "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "verdicts_v2.csv")
    seeds = read_rows(tmp_path / "verdicts_per_seed.csv")
    lab = {(r["claim"], r["metric"]): r for r in rows if r["source"] == "verdicts.csv"}
    study = {(r["claim"], r["metric"]): r for r in read_rows(REPO / "results" / "verdicts.csv")}
    first = {(r["claim"], r["metric"]): r for r in read_rows(REPO / "results" / "v1" / "verdicts.csv")}
    for key, r in lab.items():          # the engine's verdicts, re-derived from the per-seed scores
        assert (r["verdict"], r["look"], r["n_seeds"]) == (study[key]["verdict"], study[key]["look"],
                                                           study[key]["n_seeds"]), key
        assert r["mean_diff"] == pytest.approx(study[key]["mean_diff"], abs=1e-5)
        assert r["old_verdict"] == first[key]["verdict"]
    hyp = [r for r in rows if r["source"] == "hypotheses.csv"]
    assert len(hyp) == 20 and {r["family"] for r in hyp} == {"hypotheses"}
    assert all(r["old_verdict"] for r in rows)
    assert {r["source"] for r in seeds} >= {"verdicts.csv", "compare_glyphs_npair/verdicts.csv"}
    tri = lab[("HDML(triplet) > triplet", "r1")]
    lab_seeds = [r for r in seeds if r["source"] == "verdicts.csv" and r["claim"] == "HDML(triplet) > triplet"
                 and r["metric"] == "r1"]
    assert len(lab_seeds) == tri["n_seeds"] and all(r["diff"] == pytest.approx(r["score_a"] - r["score_b"])
                                                     for r in lab_seeds)
    assert main(["reverdict", "--results", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2


def test_tables_show_raw_and_adjusted_verdicts_side_by_side():
    """New verdict rows: the table and the findings lead with the Holm-adjusted verdict, the raw one beside
    it, with look, levels and P(A > B); rows from before the rule keep their old rendering."""
    from hdml_lite.study.tables import findings_lines, hypotheses_lines, verdict_table

    table = [{"method": m, "seed": k, "r1": 0.7 + (0.01 if m == "a" else 0.0) + 0.001 * k * (m == "a"), "nmi": 0.6}
             for k in range(5) for m in ("a", "b")]
    v = verdict_row_for(table)
    text = verdict_table([v], table, "")
    assert "Holm-adjusted" in text and "| headline | R@1 | 5 (5) |" in text and "**supported**" in text
    line = findings_lines([v], [])[0]
    assert line.startswith("- a > b: **supported** after Holm (raw: supported) on R@1") and "P(A > B) 1.00" in line
    old = {k: v[k] for k in ("claim", "metric", "n_seeds", "mean_diff", "ci_low", "ci_high", "verdict")}
    assert "after Holm" not in findings_lines([old], [])[0] and "Holm" not in verdict_table([old], table, "")
    hyp = [dict(v, hypothesis="H1", setting="s", loss="npair", family="hypotheses", verdict="contradicted",
                verdict_holm="undecided")]
    assert "1 undecided after Holm over all 1 (raw, each at 5%: 1 contradicted)" in hypotheses_lines(hyp)[-1]


def verdict_row_for(table):
    from hdml_lite.study.engine import claim_verdict

    v = claim_verdict(table, "a", "b", "r1", 0.01, (5, 10))
    return sq.with_holm([{"claim": "a > b", "family": "headline", "a": "a", "b": "b", "metric": "r1", **v}])[0]


def test_seed_choices_add_seeds_under_the_boundary(monkeypatch):
    """The engine's add-a-seed loop uses the boundary: differences with p = 0.029 at 5 seeds stop the
    old rule (5% per look) at 5 seeds, but not the new one."""
    from types import SimpleNamespace

    from hdml_lite.study import engine
    from hdml_lite.study.plan import Choices

    diffs = [0.01, 0.02, 0.005, 0.015, 0.003, -0.02, 0.02, -0.02, 0.02, -0.02]
    runs = [SimpleNamespace(method=m, seed=k) for k in range(10) for m in ("a", "b")]
    monkeypatch.setattr(engine, "plan_final", lambda s, ch: runs)
    monkeypatch.setattr(engine, "is_done", lambda r, s: True)
    monkeypatch.setattr(engine, "is_failed", lambda r, s: False)
    score = lambda r: 0.7 + (diffs[r.seed] if r.method == "a" else 0.0)  # noqa: E731
    monkeypatch.setattr(engine, "table_rows", lambda rr, s: [
        {"method": r.method, "seed": r.seed, "r1": score(r), "nmi": score(r)} for r in rr])
    s = _settings(claims=(("A > B", "a", "b"),))
    ch = Choices()
    engine._seed_choices(s, ch)
    assert ch.seeds["a"] == ch.seeds["b"] > 5
    monkeypatch.setattr(sq, "levels", lambda n0, n_max, overall=0.05: (0.05, 0.05))   # the old rule
    ch = Choices()
    engine._seed_choices(s, ch)
    assert ch.seeds["a"] == 5


def test_reverdict_reads_the_hypotheses_per_seed_table(tmp_path):
    """With hypotheses_per_seed.csv beside hypotheses.csv, every (arm, loss, metric) row is verdicted
    from its own arm's paired seeds (fixed n, one family), in the listed order; the per-seed rows
    carry each difference."""
    import random

    from hdml_lite.study.files import HYPOTHESES_COLUMNS, HYPOTHESES_SEED_COLUMNS, write_csv
    from hdml_lite.study.reverdict import _hypotheses

    rng, listed, seeds = random.Random(0), [], []
    arms = (("H1 headroom", "4 images per class", "npair", 0.02), ("H1 headroom", "4 images per class", "triplet", 0.0),
            ("H3 length", "1,600 steps (4x)", "npair", -0.03))
    for hyp, setting, loss, shift in arms:
        for metric in ("r1", "nmi"):
            listed.append({"hypothesis": hyp, "setting": setting, "loss": loss, "family": "hypotheses",
                           "metric": metric, "n_seeds": 5, "mean_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0,
                           "margin": 0.01, "verdict": "undecided", "engaged_v2": "5/5", "hdml_alpha": 0.5})
        for seed in range(5):
            base = {m: 0.5 + 0.01 * rng.random() for m in ("r1", "r2", "r4", "r8", "map_r", "nmi", "f1")}
            for method, d in ((f"lab_hdml_{loss}", shift), (f"lab_{loss}", 0.0)):
                seeds.append({"hypothesis": hyp, "setting": setting, "loss": loss, "method": method, "seed": seed,
                              **{m: v + d + 0.002 * rng.random() for m, v in base.items()}, "train_s": 1.0})
    write_csv(tmp_path / "hypotheses.csv", listed, HYPOTHESES_COLUMNS)
    write_csv(tmp_path / "hypotheses_per_seed.csv", seeds, HYPOTHESES_SEED_COLUMNS)
    rows, per_seed = _hypotheses(tmp_path)
    assert [(r["claim"].split(":")[0], r["metric"]) for r in rows] == [
        (f"{h}, {s}", m) for h, s, _, _ in arms for m in ("r1", "nmi")]
    assert all(r["family"] == "hypotheses" and r["data"] == "per-seed" and r["n_seeds"] == 5 for r in rows)
    for r in rows:
        mine = [x for x in per_seed if x["claim"] == r["claim"] and x["metric"] == r["metric"]]
        assert len(mine) == 5 and abs(sum(x["diff"] for x in mine) / 5 - r["mean_diff"]) < 1e-9
    by = {(r["claim"], r["metric"]): r["verdict"] for r in rows}
    assert by[("H1 headroom, 4 images per class: HDML(npair) > npair", "r1")] == "supported"     # +2 points
    assert by[("H1 headroom, 4 images per class: HDML(triplet) > triplet", "r1")] == "equivalent"  # 0
    assert by[("H3 length, 1,600 steps (4x): HDML(npair) > npair", "nmi")] == "contradicted"     # -3 points
