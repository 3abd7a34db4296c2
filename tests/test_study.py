"""The reproduction study: the fast study end to end, the plan, verdicts, alpha grid, imports, paper table."""
import ast
import csv
import json
import math
import time
from pathlib import Path

import pytest

import hdml_lite.study as study_pkg
from hdml_lite.study.__main__ import main
from hdml_lite.study.collect import collect, estimate_hours
from hdml_lite.study.files import (CURVE_COLUMNS, ENGAGEMENT_COLUMNS, MECHANISM_COLUMNS, SELECTION_COLUMNS,
                                   SWEEP_COLUMNS, TABLE_COLUMNS, VERDICT_COLUMNS, header, read_rows)
from hdml_lite.study.engine import choices, choose
from hdml_lite.study.lab import make_settings
from hdml_lite.study.paper import PAPER, compare_markdown, split_name
from hdml_lite.study.plan import (Choices, dummy_choices, eval_splits, overrides, plan_all, plan_counts, plan_final,
                                  plan_fingerprint, plan_select_lr)
from hdml_lite.study.stats import alpha_grid, paired_verdict, second_half_median, t_quantile


def test_fast_study_writes_every_csv_figure_and_readme(tmp_path, capsys):
    out = tmp_path / "results"
    t0 = time.process_time()          # CPU time: the budget (< 60 s), robust to a busy machine
    assert main(["lab", "--fast", "--design", "once", "--out", str(out)]) == 0   # the committed study's design
    assert time.process_time() - t0 < 60
    for name, cols in (("lab_table", TABLE_COLUMNS), ("curves", CURVE_COLUMNS), ("sweep", SWEEP_COLUMNS),
                       ("selection", SELECTION_COLUMNS), ("verdicts", VERDICT_COLUMNS),
                       ("mechanism", MECHANISM_COLUMNS), ("engagement", ENGAGEMENT_COLUMNS)):
        assert header(out / f"{name}.csv") == cols, name
    table = read_rows(out / "lab_table.csv")
    keys = {"contrastive", "triplet", "semihard", "lifted", "npair", "angular", "hdml_triplet", "hdml_npair", "hdc",
            "contrastive_hdcbatch", "hdml_npair_nosoftmax", "hdml_npair_norecon", "hdml_npair_nosoftmax_wmatch"}
    assert {r["method"] for r in table} == {f"lab_{k}" for k in keys}
    assert all(0.0 <= r["r1"] <= 1.0 and r["train_s"] >= 0 for r in table)
    n_key = sum(r["method"] == "lab_hdml_npair" for r in table)
    assert n_key in (2, 3) and n_key == sum(r["method"] == "lab_npair" for r in table)   # fast: 2 seeds, up to 3
    for k in ("lab_hdml_npair_nosoftmax", "lab_hdml_npair_nosoftmax_wmatch"):   # the weight-matched arm: seeds_key
        assert sum(r["method"] == k for r in table) == 2, k
    assert sum(r["method"] == "lab_hdml_npair_norecon" for r in table) == 1     # the others: seeds_rest
    # the sweep: pull targets 1 -> alpha 0 (measured factor exactly 1), and the targets as asked
    sweep = read_rows(out / "sweep.csv")
    assert {r["pull_target"] for r in sweep} == {1.0, 0.5, 0.1} and {r["split"] for r in sweep} == {"val", "test"}
    assert all(r["pull_factor_median"] == 1.0 for r in sweep if r["alpha"] == 0.0)
    assert all(r["pull_factor_median"] < 1.0 for r in sweep if r["alpha"] > 0.0)
    # selection: every stage present; one chosen value per (stage, method), chosen on validation rows
    selection = read_rows(out / "selection.csv")
    assert {r["stage"] for r in selection} == {"select_lr", "select_alpha", "select_bn", "select_fractions"}
    for st, m in {(r["stage"], r["method"]) for r in selection}:
        mine = [r for r in selection if (r["stage"], r["method"]) == (st, m)]
        chosen = {(r.get("lr"), r.get("alpha"), r.get("setting")) for r in mine if r["chosen"] == 1}
        assert len(chosen) == 1, (st, m)
    assert {r["setting"] for r in selection if r["stage"] == "select_bn"} == {"bn_stats=official", "bn_stats=real"}
    verdicts = read_rows(out / "verdicts.csv")
    assert len(verdicts) == 14 and {r["verdict"] for r in verdicts} <= {"supported", "contradicted", "equivalent",
                                                                         "undecided"}
    assert all(r["margin"] == 0.01 for r in verdicts)
    mech = read_rows(out / "mechanism.csv")
    assert {r["method"] for r in mech} == {"lab_hdml_npair", "lab_hdml_triplet", "lab_hdml_npair_nosoftmax",
                                           "lab_hdml_npair_norecon", "lab_hdml_npair_nosoftmax_wmatch"}
    eng = read_rows(out / "engagement.csv")
    assert all(set(r) >= {"acc_syn", "pull_median", "engaged_v1", "engaged_v2"} for r in eng)
    trade = read_rows(out / "tradeoff.csv")
    assert {r["pull_target"] for r in trade} == {1.0, 0.5, 0.1} and all(0 <= r["acc_syn"] <= 1 for r in trade)
    assert all(0.0 <= r["pull_factor"] <= 1.0 for r in mech)
    assert len(read_rows(out / "engagement.csv")) == len({(r["method"], r["seed"]) for r in mech})
    for png in ("lab_table.png", "curves.png", "sweep.png", "mechanism.png", "tradeoff.png"):
        assert (out / png).stat().st_size > 1000
    readme = (out / "README.md").read_text()
    for text in ("verdicts (lab regime)", "final models on the test classes (lab regime)", "pull factor (lab regime)",
                 "mechanism switched on? (lab regime)", "Timings (lab regime)", "is a finding", "runbook", "ESTIMATE",
                 "python -m hdml_lite.study lab --plan", "`bn_stats=real` minus `bn_stats=official`",
                 "`fractions=1,1,1` minus `fractions=1,0.5,0.2`", "within seed noise", "plan's fingerprint",
                 "hardness-label trade-off"):
        assert text in readme, text
    info = json.loads((out / "study.json").read_text())
    assert info["regime"] == "lab" and info["runs_done"] == info["runs_total"] >= 36
    fast = make_settings("lab", out / "runs", fast=True, design="once")
    assert info["plan_fingerprint"] == plan_fingerprint(fast, choices(fast)[0])      # the runs as they ran
    assert info["beta"]["lab_hdml_npair_nosoftmax_wmatch"] > 0
    assert set(info["alpha"]) == {"lab_hdml_npair", "lab_hdml_triplet"} and info["bn_stats"] in ("official", "real")
    assert set(info["stage_wall_s"]) == {"select_lr", "select_alpha", "select_bn", "select_fractions", "final"}
    assert info["wall_s"] > 0
    # a second invocation trains nothing: it keeps the first one's record (no invocation, wall time
    # or process count of its own)
    capsys.readouterr()
    assert main(["lab", "--fast", "--design", "once", "--out", str(out), "--jobs", "3"]) == 0
    log = capsys.readouterr().out
    assert f"{info['runs_done']} done" in log and "== round" not in log and "done in" in log
    again = json.loads((out / "study.json").read_text())
    assert [again[k] for k in ("wall_s", "invocations", "jobs")] == [info[k] for k in ("wall_s", "invocations", "jobs")]
    assert info["invocations"] == 1


def test_plan_counts_budget_and_validation_classes():
    s = make_settings("lab", design="once")          # the committed study's design (replicates: test_selection_budget)
    assert plan_counts(s) == {"select_lr": 30, "select_alpha": 42, "select_bn": 3, "select_fractions": 5, "final": 51}
    runs = plan_all(s, dummy_choices(s))
    assert len({r.stage + "/" + r.folder() for r in runs}) == len(runs)          # one folder per run
    for r in runs:
        ov = overrides(r, s)
        assert f"data.val_classes={0.2 if r.stage != 'final' else 0.0}" in ov
        assert ("test" in eval_splits(r)) == (r.stage in ("final", "select_alpha"))
        assert ("val" in eval_splits(r)) == (r.stage != "final")
    final = plan_final(s, dummy_choices(s))
    seeds = {}
    for r in final:
        seeds[r.method] = seeds.get(r.method, 0) + 1
    assert seeds["lab_hdml_npair"] == seeds["lab_triplet"] == 5 and seeds["lab_hdc"] == seeds["lab_angular"] == 3
    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset

    def batch(run):
        d = apply_overrides(get_preset(run.preset), overrides(run, s)).data
        return d.sampler, d.batch_classes, d.images_per_class

    hdcb = next(r for r in final if r.method == "lab_contrastive_hdcbatch")
    hdc = next(r for r in final if r.method == "lab_hdc")
    assert batch(hdcb) == batch(hdc) == ("m_per_class", 10, 6)           # HDC's baseline at HDC's batch
    # with --steps every run gets that budget
    s2 = make_settings("lab", steps=50)
    assert all("train.steps=50" in overrides(r, s2) for r in plan_select_lr(s2))
    # a final HDML run waits for every choice it needs
    assert not [r for r in plan_final(s, Choices(lr={"lab_hdml_npair": 1e-3})) if r.method == "lab_hdml_npair"]
    # every setting a stage varies is an explicit override and in the folder name
    for r in runs:
        ov = overrides(r, s)
        if s.spec(r.method).kind == "hdml":
            assert any(o.startswith("hdml.alpha=") for o in ov) and any(o.startswith("hdml.bn_stats=") for o in ov)
            assert "_a" in r.folder() and "bn-" in r.folder()
        if s.spec(r.method).kind == "hdc":
            assert any(o.startswith("hdc.fractions=") for o in ov) and "fractions-" in r.folder()


def test_choose_uses_mean_validation_map_r_then_r1():
    rows = [{"lr": 1e-3, "val_map_r": 0.5, "val_r1": 0.9}, {"lr": 3e-3, "val_map_r": 0.6, "val_r1": 0.1}]
    assert choose(rows, "lr") == 3e-3                    # MAP@R decides, not the saturated R@1
    rows[1]["val_map_r"] = 0.5
    assert choose(rows, "lr") == 1e-3                    # tie on MAP@R: R@1
    seeds = [{"alpha": 1.0, "val_map_r": 0.9, "val_r1": 0}, {"alpha": 1.0, "val_map_r": 0.1, "val_r1": 0},
             {"alpha": 2.0, "val_map_r": 0.6, "val_r1": 0}, {"alpha": 2.0, "val_map_r": 0.6, "val_r1": 0}]
    assert choose(seeds, "alpha") == 2.0                 # mean 0.6 beats mean 0.5 (despite the best single seed)


def test_selection_noise_flags_a_gap_inside_seed_noise():
    from hdml_lite.study.engine import selection_noise

    rows = [{"stage": "select_alpha", "method": "m", "alpha": a, "val_map_r": v}
            for a, v in ((0.0, 0.50), (0.0, 0.54), (1.0, 0.53), (1.0, 0.55))]
    rows += [{"stage": "select_lr", "method": "m", "lr": lr, "val_map_r": v} for lr, v in ((1e-3, 0.40), (3e-3, 0.60))]
    got = {r["stage"]: r for r in selection_noise(rows)}
    sd = math.sqrt(((0.02 ** 2) * 2 + (0.01 ** 2) * 2) / 2)          # pooled over the two 2-seed groups
    assert got["select_alpha"]["seed_sd"] == pytest.approx(sd)
    assert got["select_alpha"]["within_noise"] and got["select_alpha"]["gap"] == pytest.approx(0.02)
    assert not got["select_lr"]["within_noise"]                       # 20 points apart: a real choice


def test_equivalent_verdict_two_one_sided_tests():
    # d = (0.002, -0.001, 0.0, 0.001, -0.002): mean 0, sd 0.0015811, se 0.00070711; t(0.95, 4) = 2.131847
    a = [0.702, 0.699, 0.700, 0.701, 0.698]
    v = paired_verdict(a, [0.70] * 5, margin=0.01)
    assert v["tost_high"] == pytest.approx(2.131847 * 0.00070711, rel=1e-4) and v["verdict"] == "equivalent"
    assert paired_verdict(a, [0.70] * 5, margin=0.001)["verdict"] == "undecided"      # the interval pokes out
    wide = paired_verdict([0.60, 0.75, 0.70], [0.70, 0.70, 0.70], margin=0.01)
    assert wide["verdict"] == "undecided"                                             # rules out almost nothing
    with pytest.raises(ValueError, match="margin"):
        paired_verdict(a, a, margin=0.0)


def test_study_start_values_are_its_own_not_the_presets(monkeypatch):
    """The plan (and its fingerprint) does not read HDML's alpha or HDC's fractions from the presets:
    a study that rewrites its presets regenerates as it ran."""
    from hdml_lite import presets

    s = make_settings("lab")
    before = [(r.folder(), overrides(r, s)) for r in plan_select_lr(s)]
    assert any("hdml.alpha=0.3" in ov for _, ov in before)                  # the first study's start value
    assert any("hdc.fractions=[1.0, 0.5, 0.2]" in ov for _, ov in before)
    monkeypatch.setitem(presets.REGIMES["lab"], "alpha_npair", 5.0)
    s2 = make_settings("lab")
    assert [(r.folder(), overrides(r, s2)) for r in plan_select_lr(s2)] == before


def test_plan_fingerprint_at_head_equals_the_committed_study():
    """results/study.json records the fingerprint of the plan that produced it; the plan at HEAD
    must be the same (else `python -m hdml_lite.study lab` would run a different study)."""
    from hdml_lite.study.plan import choices_from_record

    committed = json.loads((Path(__file__).parents[1] / "results" / "study.json").read_text())
    s = make_settings("lab", design=committed.get("design", "once"))
    ran = choices_from_record(committed["choices_record"]) if "choices_record" in committed else None
    assert committed["plan_fingerprint"] == plan_fingerprint(s, ran)      # older study.json: the design's hash
    s2 = make_settings("lab", lrs=(1e-3,))
    assert plan_fingerprint(s2) != plan_fingerprint(s)


def test_partial_export_refuses_to_replace_a_complete_study(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"runs_done": 127, "runs_total": 127}))
    (out / "lab_table.csv").write_text("keep me\n")
    assert main(["lab", "--export", "--out", str(out), "--runs", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "complete study (127 of 127 runs)" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "lab_table.csv").read_text() == "keep me\n"
    assert main(["lab", "--export", "--force", "--out", str(out), "--runs", str(tmp_path / "none")]) == 0


def test_paired_verdict_hand_computed():
    # d = (0.10, 0.07, 0.05): mean 0.07333, sd 0.025166, se 0.014530, t(0.975, 2) = 4.302653
    v = paired_verdict([0.60, 0.62, 0.65], [0.50, 0.55, 0.60])
    assert v["n_seeds"] == 3 and v["mean_diff"] == pytest.approx(0.0733333, abs=1e-6)
    assert v["ci_low"] == pytest.approx(0.0108166, abs=1e-5) and v["ci_high"] == pytest.approx(0.1358500, abs=1e-5)
    assert v["verdict"] == "supported" and v["margin"] == 0.01
    assert paired_verdict([0.50, 0.55, 0.60], [0.60, 0.62, 0.65])["verdict"] == "contradicted"
    assert paired_verdict([0.6, 0.5, 0.65], [0.5, 0.6, 0.6])["verdict"] == "undecided"
    one = paired_verdict([0.9], [0.1])
    assert one["verdict"] == "undecided" and math.isnan(one["ci_low"])
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-5)
    with pytest.raises(ValueError):
        paired_verdict([0.1, 0.2], [0.1])


def test_alpha_grid_gives_the_target_pull_factors():
    from hdml_lite.hdml.augment import pull_factor

    targets = (1.0, 0.9, 0.7, 0.5, 0.3, 0.1, 0.01)
    for j_avg in (1.7, 11.0, 0.05):
        alphas = alpha_grid(j_avg, targets)
        assert alphas[0] == 0.0 and alphas == sorted(alphas)
        assert [pull_factor(a, j_avg) for a in alphas] == pytest.approx(list(targets), rel=1e-12)
    for bad in ((0.0, targets), (float("nan"), targets), (1.0, (0.0,)), (1.0, (1.5,))):
        with pytest.raises(ValueError):
            alpha_grid(*bad)
    assert second_half_median([1e6, 1e6, 3.0, 2.0, 1.0, 5.0]) == 2.0     # the settled half only


def test_study_modules_import_no_circle():
    """No import circle among hdml_lite/study modules, counting imports inside functions too."""
    pkg = Path(study_pkg.__file__).parent
    mods = {p.stem for p in pkg.glob("*.py")}
    graph = {}
    for p in pkg.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hdml_lite.study."):
                deps.add(node.module.split(".")[2])
        graph[p.stem] = deps & mods - {p.stem}
    assert graph["collect"] and "lab" not in graph["collect"]      # the old circle collect -> lab -> report -> collect
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "active", f"import circle: {' -> '.join(path + [m])}"
        state[m] = "active"
        for d in sorted(graph[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])


def test_mechanism_rows_stay_small(monkeypatch):
    from hdml_lite.study import export as lab
    from hdml_lite.study.plan import Run

    hist = [{"step": i, "ce_real": 1.0, "acc_real": 0.5, "acc_syn": 0.4, "weight_syn": 0.3, "pull_factor": 0.2,
             "hard_real": 1.5, "hard_aug": 1.1, "hard_gen": 1.2} for i in range(5000)]
    monkeypatch.setattr(lab, "read_run", lambda path: {"history": {"train": hist}})
    s = make_settings("lab", "/nonexistent")
    runs = [Run("final", "lab_hdml_npair", "lab_hdml_npair", seed, 1e-3, 1.0) for seed in range(8)]
    rows = lab.mechanism_rows(runs, s)
    assert len(rows) <= lab.MECHANISM_MAX_ROWS + len(runs)
    assert {r["step"] for r in rows if r["seed"] == 0} >= {0, 4999}
    assert all(tuple(r) == MECHANISM_COLUMNS for r in rows)


def test_bad_stage_is_one_line_exit_2(capsys):
    assert main(["lab", "--stages", "select_lr,bogus"]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "Traceback" not in err


def test_paper_numbers_match_the_reference():
    assert PAPER["cub"]["hdml_npair"] == dict(nmi=62.6, f1=31.6, r1=53.7, r2=65.7, r4=76.7, r8=85.7)
    assert PAPER["cub"]["triplet"] == dict(nmi=49.8, f1=15.0, r1=35.9, r2=47.7, r4=59.1, r8=70.0)
    assert PAPER["cars196"]["hdml_npair"] == dict(nmi=69.7, f1=41.6, r1=79.1, r2=87.1, r4=92.1, r8=95.5)
    assert PAPER["cars196"]["triplet"]["r8"] == 79.2
    assert PAPER["sop"]["hdml_npair"] == dict(nmi=89.3, f1=32.2, r1=68.7, r10=83.2, r100=92.4)
    assert {ds: PAPER[ds]["hdc"]["r1"] for ds in PAPER} == {"cub": 60.7, "cars196": 83.8, "sop": 70.1}
    for ds in PAPER:                     # the paper's tables: HDML above its baseline everywhere
        for base in ("npair", "triplet"):
            assert all(PAPER[ds]["hdml_" + base][m] > v for m, v in PAPER[ds][base].items())


def test_split_name():
    assert split_name("cub_hdml_npair_official") == ("cub", "hdml_npair", True)
    assert split_name("cars196_triplet") == ("cars196", "triplet", False)
    assert split_name("lab_hdml_npair") == (None, "hdml_npair", False)
    assert split_name("scratch_contrastive_hdcbatch") == (None, "contrastive_hdcbatch", False)


def _write(path, rows, cols=TABLE_COLUMNS):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def test_compare_on_a_tiny_csv(tmp_path, capsys):
    m = dict(nmi=0.6, f1=0.3, r1=0.5, r2=0.6, r4=0.7, r8=0.8, map_r=0.2, train_s=10)
    rows = [{"method": "cub_npair", "seed": 0, **m}, {"method": "cub_npair", "seed": 1, **m, "r1": 0.54},
            {"method": "lab_hdml_npair", "seed": 0, **m}]
    _write(tmp_path / "runs.csv", rows)
    assert main(["compare", str(tmp_path / "runs.csv"), "--dataset", "cars"]) == 0
    text = capsys.readouterr().out
    assert "CUB-200-2011" in text and "51.9" in text            # the paper's CUB N-pair R@1
    assert "52.0 ± 2.0" in text and "+0.1" in text              # ours: mean ± std, gap 52.0 - 51.9
    assert "DIFFERENT dataset" in text and "79.1" in text       # lab row against Cars HDML (N-pair)
    md = compare_markdown(read_rows(tmp_path / "runs.csv"))
    assert "no paper dataset" in md                             # lab rows without --dataset: no paper row


def test_collect_finished_and_unfinished_runs(tmp_path, capsys):
    done = tmp_path / "runs" / "cub_hdml_npair_s0"
    done.mkdir(parents=True)
    test = dict(r1=0.5, r2=0.6, r4=0.7, r8=0.8, nmi=0.6, f1=0.3, map_r=0.2, r_precision=0.25)
    (done / "metrics.json").write_text(json.dumps({"name": "cub_hdml_npair", "seed": 0, "train_s": 3600.0,
                                                   "test": test, "val": None}))
    pending = tmp_path / "runs" / "cub_npair_s0"
    pending.mkdir()
    (pending / "checkpoint.pt").write_bytes(b"x")
    rows = collect([tmp_path / "runs"], tmp_path / "paper_runs.csv")
    assert len(rows) == 1
    assert header(tmp_path / "paper_runs.csv") == TABLE_COLUMNS
    assert read_rows(tmp_path / "paper_runs.csv")[0]["r1"] == 0.5
    assert "unfinished" in capsys.readouterr().out


def test_t4_estimate_is_input_bound_arithmetic():
    e = estimate_hours("cub_hdml_npair")
    assert e["images"] == 128 * 8000 and e["evals"] == 16
    assert e["input_h"] > e["gpu_h"] > 0
    assert e["total_h"] == pytest.approx(max(e["gpu_h"], e["input_h"]) + e["eval_h"])


def test_hdc_study_fast_writes_both_routings_and_heads(tmp_path):
    from hdml_lite.study.hdc import run_hdc_study

    rows = run_hdc_study(tmp_path / "out", tmp_path / "runs", seeds=1, fast=True)
    saved = list(csv.DictReader(open(tmp_path / "out" / "hdc_table.csv")))
    assert len(saved) == len(rows) == 8
    assert {(r["routing"], r["head"]) for r in saved} == {(a, b) for a in ("top", "nested")
                                                          for b in ("concat", "head1", "head2", "head3")}
    assert all(0.0 <= float(r["r1"]) <= 1.0 for r in saved)


def test_a_diverged_run_is_recorded_and_scored_zero(tmp_path, monkeypatch):
    from hdml_lite.study import engine as lab
    from hdml_lite.training.method import NonFiniteLossError

    s = make_settings("lab", tmp_path / "runs")
    run = plan_select_lr(s)[0]

    def diverge(*a, **k):
        raise NonFiniteLossError("loss is nan at step 3")

    monkeypatch.setattr(lab, "run_one", diverge)
    assert not lab.is_done(run, s)
    path, _ = lab._job((run.preset, overrides(run, s), eval_splits(run)))
    assert Path(path) == lab.run_dir(run, s) and lab.is_done(run, s) and lab.is_failed(run, s)
    row = lab.val_row("select_lr", run, s)
    assert row["val_r1"] == 0.0 and row["val_nmi"] == 0.0           # loses every selection


def test_study_eval_sets_follow_data_channels():
    """The study's cached evaluation sets are built with the run's data.channels, as the trainer's."""
    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset
    from hdml_lite.study.engine import _eval_sets

    cfg = apply_overrides(get_preset("scratch_npair"), ["data.channels=3", "data.max_classes=4",
                                                        "data.max_per_class=2"])
    x, _ = _eval_sets(cfg, ("test",))["test"][0]
    assert x.shape[0] == 3


def test_hypotheses_fast_writes_every_arm(tmp_path):
    out = tmp_path / "results"
    assert main(["hypotheses", "--fast", "--out", str(out), "--runs", str(tmp_path / "runs")]) == 0
    from hdml_lite.study.files import HYPOTHESES_COLUMNS

    assert header(out / "hypotheses.csv") == HYPOTHESES_COLUMNS
    rows = read_rows(out / "hypotheses.csv")
    assert {r["hypothesis"] for r in rows} == {"H1 headroom", "H2 in-batch negatives", "H3 length", "H4 labels kept"}
    assert {r["loss"] for r in rows} == {"npair", "triplet"} and {r["metric"] for r in rows} == {"r1", "nmi"}
    assert all(r["n_seeds"] == 2 and "/" in str(r["engaged_v2"]) and r["hdml_alpha"] >= 0 for r in rows)
    # no trade-off file: H4 is the principled change (a larger J_soft weight)
    assert all("J_soft weight x10" in r["setting"] for r in rows if r["hypothesis"] == "H4 labels kept")
    # one Holm family over every arm and metric; the per-seed table behind every verdict (issue 25)
    assert {r["family"] for r in rows} == {"hypotheses"} and all("verdict_holm" in r for r in rows)
    seeds = read_rows(out / "hypotheses_per_seed.csv")
    assert len(seeds) == 2 * len(rows)          # per arm: 2 methods x 2 seeds; rows: 2 metrics per arm
    assert {r["hypothesis"] for r in seeds} == {r["hypothesis"] for r in rows}


def test_labels_kept_target_reads_the_tradeoff(tmp_path):
    from hdml_lite.study.files import TRADEOFF_COLUMNS, write_csv
    from hdml_lite.study.hypotheses import labels_kept_target

    rows = [{"method": "lab_hdml_npair", "alpha": a, "pull_target": p, "seed": s, "pull_median": p,
             "acc_syn": acc, "hard_ratio": 0.8, "val_map_r": 0.5, "val_r1": 0.9}
            for a, p, acc in ((0.0, 1.0, 0.76), (0.2, 0.5, 0.6), (1.3, 0.01, 0.32)) for s in range(3)]
    write_csv(tmp_path / "t.csv", rows, TRADEOFF_COLUMNS)
    assert labels_kept_target(tmp_path / "t.csv", "npair") == 0.5        # 1.0 fails d, 0.01 fails b and d
    assert labels_kept_target(tmp_path / "t.csv", "triplet") is None


def test_study_run_folder_held_by_another_process_is_one_line(tmp_path, capsys):
    """A run folder locked by another process (e.g. an earlier study still training): one line, exit 2."""
    import signal

    from hdml_lite.study.plan import plan_select_lr
    from hdml_lite.training.lock import out_dir_lock

    runs = tmp_path / "runs"
    fast = make_settings("lab", runs, fast=True)
    first = plan_select_lr(fast, 0 if fast.replicate else None)[0]
    folder = runs / "fast" / "lab" / first.stage / first.folder()
    with out_dir_lock(folder, announce=lambda *_: None):
        code = main(["lab", "--fast", "--out", str(tmp_path / "out"), "--runs", str(runs)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "is in use by process" in err[0], err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL      # the study's SIGTERM handler is gone again


def test_hypotheses_h3_and_h4_take_the_study_choices(tmp_path):
    from hdml_lite.study.files import TRADEOFF_COLUMNS, write_csv
    from hdml_lite.study.hypotheses import arms

    (tmp_path / "study.json").write_text(json.dumps({
        "lr": {"lab_npair": 3e-4, "lab_hdml_npair": 1e-3, "lab_triplet": 3e-4, "lab_hdml_triplet": 3e-4},
        "alpha": {"lab_hdml_npair": 0.03, "lab_hdml_triplet": 1.9}}))
    rows = [{"method": "lab_hdml_npair", "alpha": a, "pull_target": p, "seed": s, "pull_median": p,
             "acc_syn": acc, "hard_ratio": 0.8, "val_map_r": 0.5, "val_r1": 0.9}
            for a, p, acc in ((0.0, 1.0, 0.76), (0.2, 0.5, 0.6), (1.3, 0.01, 0.32)) for s in range(3)]
    write_csv(tmp_path / "tradeoff.csv", rows, TRADEOFF_COLUMNS)
    got = {(hyp.split()[0], loss): (change, fixed) for hyp, _, loss, _, change, fixed in arms(tmp_path)}
    assert got[("H1", "npair")][1] is None and got[("H2", "triplet")][1] is None        # these select
    assert got[("H3", "npair")][1] == {"lab_npair": {"lr": 3e-4}, "lab_hdml_npair": {"lr": 1e-3, "alpha": 0.03}}
    change, fixed = got[("H4", "npair")]
    assert change == {"pull_targets": (0.5,)} and fixed["lab_hdml_npair"] == {"lr": 1e-3, "alpha": 0.2}
    assert got[("H4", "triplet")] == ({}, None)     # no trade-off rows for triplet: the J_soft x10 arm selects


def test_hypotheses_take_the_choice_made_in_most_replicates(tmp_path):
    """Replicate design: H3/H4 fix each method's lr (and HDML's alpha) at the value chosen in most
    replicates (replicate 0's only where it is the mode or ties first), not replicate 0's."""
    from hdml_lite.study.hypotheses import study_choices

    reps = {str(r): {"lr": {"lab_npair": lr_b, "lab_hdml_npair": 1e-3}, "alpha": {"lab_hdml_npair": a}}
            for r, (lr_b, a) in enumerate(((3e-4, 0.5), (1e-3, 0.2), (1e-3, 0.2), (3e-4, 0.9), (1e-3, 0.5)))}
    (tmp_path / "study.json").write_text(json.dumps({
        "lr": {"lab_npair": 3e-4, "lab_hdml_npair": 1e-3}, "alpha": {"lab_hdml_npair": 0.5},
        "replicate_choices": reps}))
    got = study_choices(tmp_path / "study.json", "npair")
    assert got["lab_npair"] == {"lr": 1e-3}                 # 3 of 5 replicates; replicate 0 chose 3e-4
    assert got["lab_hdml_npair"]["alpha"] == 0.5            # 0.5 and 0.2 tie (2 each): replicate 0's value first


def test_hypotheses_take_the_pull_target_chosen_most_not_the_alpha_seen_most(tmp_path):
    """Each replicate turns the pull targets into its own alphas (its own J_avg), so alphas rarely
    repeat, except 0 at pull target 1. The mode is over the pull targets: the committed re-run chose
    HDML(triplet)'s target 0.1 in 5 of 10 replicates and 1 (alpha 0) in 2, and the mode of the alphas
    was 0 (H3 once trained HDML(triplet) without any pull)."""
    from hdml_lite.study.files import study_choices
    from hdml_lite.study.stats import alpha_grid

    targets = [1.0, 0.5, 0.1, 0.01]
    picks = [(0.9, 1.0), (1.1, 0.1), (0.8, 1.0), (1.0, 0.1), (1.2, 0.1), (0.7, 0.5)]     # (J_avg, pull target)
    reps = {str(r): {"lr": {"lab_triplet": 3e-4, "lab_hdml_triplet": 3e-4},
                     "alpha": {"lab_hdml_triplet": alpha_grid(j, targets)[targets.index(p)]},
                     "j_avg": {"lab_hdml_triplet": j}} for r, (j, p) in enumerate(picks)}
    (tmp_path / "study.json").write_text(json.dumps({"pull_targets": targets, "replicate_choices": reps}))
    got = study_choices(tmp_path / "study.json", "triplet")["lab_hdml_triplet"]["alpha"]
    assert got == reps["1"]["alpha"]["lab_hdml_triplet"] > 0         # target 0.1 (3 of 6): replicate 1's alpha
    committed = json.loads((Path(__file__).resolve().parents[1] / "results" / "study.json").read_text())
    if committed.get("replicate_choices"):
        from hdml_lite.study.files import study_choices as choices

        path = Path(__file__).resolve().parents[1] / "results" / "study.json"
        counts = {}
        for c in committed["replicate_choices"].values():
            a, j = c["alpha"]["lab_hdml_triplet"], c["j_avg"]["lab_hdml_triplet"]
            p = min(zip(alpha_grid(j, committed["pull_targets"]), committed["pull_targets"]),
                    key=lambda t: abs(t[0] - a))[1]
            counts[p] = counts.get(p, 0) + 1
        mode = max(counts, key=counts.get)
        assert (choices(path, "triplet")["lab_hdml_triplet"]["alpha"] == 0) == (mode == 1.0)


def test_compare_gives_every_method_one_selection_budget():
    """compare's default: the baseline's lr grid gets as many runs as HDML's lr x alpha grid (parity);
    parity=False keeps the old, unequal budgets (what the plan then prints beside the verdicts)."""
    from hdml_lite.study.compare import make_compare_settings
    from hdml_lite.study.plan import selection_budgets

    s = make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", [], log=lambda *_: None)
    assert selection_budgets(s) == {"lab_hdml_npair": 15, "lab_npair": 15}
    s = make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", [], lrs=(3e-4, 1e-3), select_seeds=1,
                              log=lambda *_: None)
    assert selection_budgets(s) == {"lab_hdml_npair": 6, "lab_npair": 6}       # one replicate of the study's grid
    s = make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", [], parity=False, log=lambda *_: None)
    assert selection_budgets(s) == {"lab_hdml_npair": 15, "lab_npair": 3}


def test_hypotheses_read_the_committed_study_wherever_they_write(tmp_path, monkeypatch):
    """`hypotheses --out ELSEWHERE` still takes H3/H4's choices and H4's pull target from results/
    (it once read them from --out, so a run written elsewhere silently became the J_soft x10 arm);
    --fast reads <out>; --study names another study."""
    import hdml_lite.study.hypotheses as hyp

    got = []
    monkeypatch.setattr(hyp, "run_hypotheses", lambda out, runs, **kw: got.append((out, kw["study"])))
    assert main(["hypotheses", "--out", str(tmp_path / "o"), "--runs", str(tmp_path / "r")]) == 0
    assert main(["hypotheses", "--fast", "--out", str(tmp_path / "f"), "--runs", str(tmp_path / "r")]) == 0
    assert main(["hypotheses", "--out", str(tmp_path / "o"), "--study", str(tmp_path / "s")]) == 0
    assert got == [(str(tmp_path / "o"), "results"), (str(tmp_path / "f"), str(tmp_path / "f")),
                   (str(tmp_path / "o"), str(tmp_path / "s"))]
    lines, committed = [], Path(__file__).resolve().parents[1] / "results"
    monkeypatch.undo()
    monkeypatch.setattr("hdml_lite.study.compare.run_compare", lambda *a, **k: {"verdicts": []})
    hyp.run_hypotheses(tmp_path / "o", tmp_path / "r", plan=True, log=lines.append, study=committed)
    assert lines[0].startswith(f"H3, H4: the study in {committed}/ (study.json: its choices")
    assert any("H4 labels kept, alpha at pull target" in ln for ln in lines)
