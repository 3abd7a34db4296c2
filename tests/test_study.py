"""The reproduction study: the fast study end to end, the paper table, collect, compare, verdicts."""
import csv
import json
import time

import numpy as np
import pytest

from hdml_lite.study.__main__ import main
from hdml_lite.study.collect import collect, estimate_hours
from hdml_lite.study.lab import (CURVE_COLUMNS, SELECTION_COLUMNS, SWEEP_COLUMNS, TABLE_COLUMNS, choose,
                                 make_settings, plan_final, plan_select_lr)
from hdml_lite.study.paper import PAPER, compare_markdown, read_rows, split_name
from hdml_lite.study.report import verdict


def _header(path):
    with open(path, newline="") as f:
        return next(csv.reader(f))


def test_fast_study_writes_csv_figures_and_readme(tmp_path, capsys):
    out = tmp_path / "results"
    t0 = time.process_time()          # CPU time: the budget (< 60 s), robust to a busy machine
    assert main(["lab", "--fast", "--out", str(out)]) == 0
    assert time.process_time() - t0 < 60
    assert tuple(_header(out / "lab_table.csv")) == TABLE_COLUMNS
    assert tuple(_header(out / "curves.csv")) == CURVE_COLUMNS
    assert tuple(_header(out / "sweep.csv")) == SWEEP_COLUMNS
    assert tuple(_header(out / "selection.csv")) == SELECTION_COLUMNS
    table = read_rows(out / "lab_table.csv")
    methods = {r["method"] for r in table}
    assert {"lab_npair", "lab_hdml_npair", "lab_hdml_triplet", "lab_hdc", "lab_contrastive", "lab_semihard",
            "lab_lifted", "lab_angular", "lab_triplet"} <= methods
    assert all(0.0 <= r["r1"] <= 1.0 and r["train_s"] >= 0 for r in table)
    sweep = read_rows(out / "sweep.csv")
    assert 0.0 in {r["alpha"] for r in sweep} and {r["split"] for r in sweep} == {"val", "test"}
    curves = read_rows(out / "curves.csv")
    assert {r["split"] for r in curves} == {"test"} and len({r["step"] for r in curves}) >= 2
    selection = read_rows(out / "selection.csv")
    for m in {r["method"] for r in selection}:            # exactly one chosen value per method
        assert sum(int(r["chosen"]) for r in selection if r["method"] == m) == 1
    for png in ("lab_table.png", "curves.png", "sweep.png"):
        assert (out / png).stat().st_size > 1000
    readme = (out / "README.md").read_text()
    for text in ("Tables 1-3 analogue", "learning curves", "pulling factor", "claims", "runbook", "ESTIMATE"):
        assert text in readme
    study = json.loads((out / "study.json").read_text())
    assert set(study["lr"]) >= {"lab_npair", "lab_hdc"} and set(study["alpha"]) == {"lab_hdml_npair",
                                                                                       "lab_hdml_triplet"}
    # a second invocation trains nothing: every run is skipped
    capsys.readouterr()
    assert main(["lab", "--fast", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert "0 to go" in log and "done in" in log


def test_plan_same_budget_and_never_val_on_final():
    s = make_settings("runs/x", steps=200, seeds=3)
    lr = {m: 1e-3 for m in ("lab_contrastive", "lab_triplet", "lab_semihard", "lab_lifted", "lab_npair",
                            "lab_angular", "lab_hdc")}
    final = plan_final(s, lr, {"lab_hdml_npair": 2.0, "lab_hdml_triplet": 7.0})
    assert len(final) == 3 * 11
    for r in final:
        ov = r.overrides(s)
        assert "train.steps=200" in ov and "data.val_classes=0.0" in ov
    for r in plan_select_lr(s):
        assert "data.val_classes=0.2" in r.overrides(s) and "train.eval_every=0" in r.overrides(s)
    assert len({r.out_dir(s) for r in final}) == len(final)


def test_choose_uses_validation_r1_then_nmi():
    rows = [{"lr": 1e-3, "val_r1": 0.5, "val_nmi": 0.4}, {"lr": 3e-3, "val_r1": 0.6, "val_nmi": 0.1}]
    assert choose(rows, "lr") == 3e-3
    rows[1]["val_r1"] = 0.5
    assert choose(rows, "lr") == 1e-3


def test_verdict_rule():
    assert verdict(np.array([0.5, 0.6]), np.array([0.3, 0.4])) == "yes"
    assert verdict(np.array([0.5, 0.3]), np.array([0.35, 0.4])).startswith("direction only")
    assert verdict(np.array([0.3]), np.array([0.4])) == "no"


def test_paper_numbers_match_spec():
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
    assert tuple(_header(tmp_path / "paper_runs.csv")) == TABLE_COLUMNS
    assert read_rows(tmp_path / "paper_runs.csv")[0]["r1"] == 0.5
    assert "unfinished" in capsys.readouterr().out


def test_t4_estimate_is_input_bound_arithmetic():
    e = estimate_hours("cub_hdml_npair")
    assert e["images"] == 128 * 8000 and e["evals"] == 16
    assert e["input_h"] > e["gpu_h"] > 0
    assert e["total_h"] == pytest.approx(max(e["gpu_h"], e["input_h"]) + e["eval_h"])


def test_hdc_study_fast_writes_both_routings_and_heads(tmp_path):
    import csv

    from hdml_lite.study.hdc import run_hdc_study

    rows = run_hdc_study(tmp_path / "out", tmp_path / "runs", seeds=1, fast=True)
    saved = list(csv.DictReader(open(tmp_path / "out" / "hdc_table.csv")))
    assert len(saved) == len(rows) == 8
    assert {(r["routing"], r["head"]) for r in saved} == {(a, b) for a in ("top", "nested")
                                                          for b in ("concat", "head1", "head2", "head3")}
    assert all(0.0 <= float(r["r1"]) <= 1.0 for r in saved)
