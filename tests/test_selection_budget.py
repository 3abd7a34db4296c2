"""One selection budget, whole-pipeline replicates (selection noise inside the interval), and a plan
fingerprint that covers the choices (issue 25, items 2, 3 and 7)."""
import json
from pathlib import Path

from hdml_lite.study.engine import choice_counts, choices, is_done, run_dir, run_rounds
from hdml_lite.study.lab import FAST, make_settings
from hdml_lite.study.plan import (Settings, Spec, choice_record, choices_from_record, claim_budgets, dummy_choices,
                                  plan_all, plan_counts, plan_counts_at, plan_fingerprint, plan_select_lr, sel_seed,
                                  selection_budgets)

ROOT = Path(__file__).resolve().parents[1]


def test_every_method_gets_the_same_selection_budget():
    s = make_settings("lab")                       # the study's design: replicates, one budget
    bud = selection_budgets(s)
    hdml = bud["lab_hdml_npair"]
    assert hdml == len(s.lrs) + len(s.pull_targets)                     # HDML: lr grid + alpha grid
    for key in ("lab_npair", "lab_triplet", "lab_contrastive", "lab_angular", "lab_hdml_triplet"):
        assert bud[key] == hdml, key                                    # baselines: as many lr runs
    for _, a, b in s.claims[:s.headline_claims]:
        assert claim_budgets(s, a, b) == (hdml, hdml)
    # the committed first study (one selection) did not: 3 runs for a baseline, 27 for HDML(N-pair)
    once = make_settings("lab", design="once")
    assert selection_budgets(once)["lab_npair"] == 3 and selection_budgets(once)["lab_hdml_npair"] == 27


def test_budgets_that_cannot_be_equal_are_printed(capsys):
    from hdml_lite.study.__main__ import main

    assert main(["lab", "--plan", "--runs", "/nonexistent/h5b"]) == 0
    out = capsys.readouterr().out
    assert "selection runs per replicate: lab_contrastive 6" in out and "lab_hdc 7" in out
    assert "not all equal: printed beside the verdicts" in out


def test_the_once_design_still_reproduces_the_committed_study_plan():
    s = make_settings("lab", design="once")
    assert plan_counts(s) == {"select_lr": 30, "select_alpha": 42, "select_bn": 3, "select_fractions": 5, "final": 51}
    committed = json.loads((ROOT / "results" / "study.json").read_text())
    if committed.get("design", "once") == "once" and "fingerprint_of" not in committed:
        assert plan_fingerprint(s) == committed["plan_fingerprint"]


def test_each_replicate_selects_with_its_own_seeds():
    s = make_settings("lab")
    finals = set(range(s.max_seeds))
    seen = {}
    for r in range(s.max_seeds):
        seeds = {x.seed for x in plan_select_lr(s, r)}
        assert seeds and not seeds & finals                             # never a final seed
        for other, theirs in seen.items():
            assert not seeds & theirs, (r, other)                       # never another replicate's
        seen[r] = seeds
    assert sel_seed(s, 0, 0) == 100 and sel_seed(s, 2, 1) == 301
    # the plan grows by whole replicates: selection and final, for the headline methods
    five, six = plan_counts_at(s, 5), plan_counts_at(s, 6)
    per_rep = sum(selection_budgets(s)[k] + 1 for k in ("lab_npair", "lab_hdml_npair", "lab_triplet",
                                                         "lab_hdml_triplet"))
    assert sum(six.values()) - sum(five.values()) == per_rep


def test_fingerprint_covers_the_choices():
    s = make_settings("lab")
    design = plan_fingerprint(s)
    ch = dummy_choices(s)
    ran = plan_fingerprint(s, ch)
    assert ran != design                                                # the record of the choices is hashed
    ch2 = dummy_choices(s)
    ch2.reps[3].lr["lab_npair"] = s.lrs[1]                             # one replicate chose another lr
    assert plan_fingerprint(s, ch2) != ran
    ch3 = dummy_choices(s)
    ch3.reps[0].alpha["lab_hdml_npair"] = 0.5                          # another alpha
    assert plan_fingerprint(s, ch3) != ran
    once = make_settings("lab", design="once")
    c1, c2 = dummy_choices(once), dummy_choices(once)
    c2.lr["lab_npair"] = once.lrs[1]
    assert plan_fingerprint(once, c1) != plan_fingerprint(once, c2)


def test_choice_counts_over_replicates():
    rows = [{"stage": "select_alpha", "method": "m", "setting": f"pull_target={p}", "alpha": a, "replicate": r,
             "chosen": int(p == win), "val_map_r": 0.5}
            for r, win in enumerate((0.5, 0.5, 0.1)) for p, a in ((0.5, 1.0), (0.1, 2.0))]
    got = {r["value"]: (r["chosen"], r["replicates"]) for r in choice_counts(rows)}
    assert got == {"pull_target=0.5": (2, 3), "pull_target=0.1": (1, 3)}


def _tiny(tmp_path, **kw) -> Settings:
    a, b = "lab_hdml_npair", "lab_npair"
    specs = (Spec(a, a, kind="hdml"), Spec(b, b), Spec("lab_hdml_npair_norecon", a, ("hdml.recon=false",), kind="hdml",
                                                       lr_of=a, headline=False))
    opts = dict(specs=specs, runs=tmp_path / "runs", base=list(FAST), steps=6, start={"alpha": {a: 0.3},
                "bn_stats": "official"}, lrs=(1e-3,), pull_targets=(1.0, 0.1), select_seeds=1, seeds_key=2,
                max_seeds=2, seeds_rest=1, claims=(("HDML(N-pair) > N-pair", a, b),), headline_claims=1,
                replicate=True, parity=True, fast=True)
    opts.update(kw)
    return Settings(**opts)


def test_replicates_choose_again_from_their_own_selection_runs(tmp_path):
    s = _tiny(tmp_path)
    assert selection_budgets(s) == {"lab_hdml_npair": 3, "lab_npair": 3}
    run_rounds(s, jobs=0, log=lambda *_: None)
    ch, rows = choices(s)
    assert sorted(ch.reps) == [0, 1] and all("lab_hdml_npair" in ch.reps[r].alpha for r in (0, 1))
    assert {r["replicate"] for r in rows} == {0, 1}
    finals = [r for r in plan_all(s, ch) if r.stage == "final"]
    assert all(is_done(r, s) for r in plan_all(s, ch))
    for r in finals:              # final seed r was trained with replicate r's choices
        sub = ch.reps[r.seed]
        assert r.lr == sub.lr["lab_hdml_npair" if "hdml" in r.method else r.method]
        if r.method == "lab_hdml_npair":
            assert r.alpha == sub.alpha["lab_hdml_npair"]
    assert sorted((r.method, r.seed) for r in finals) == [("lab_hdml_npair", 0), ("lab_hdml_npair", 1),
                                                          ("lab_hdml_npair_norecon", 0), ("lab_npair", 0),
                                                          ("lab_npair", 1)]
    # replicate 1's J_avg comes from its own lr-selection run, so its alpha grid is its own
    assert ch.reps[0].j_avg["lab_hdml_npair"] != ch.reps[1].j_avg["lab_hdml_npair"]
    counts = choice_counts(rows)
    for stage in ("select_lr", "select_alpha"):
        mine = [c for c in counts if c["stage"] == stage and c["method"] == "lab_hdml_npair"]
        assert sum(c["chosen"] for c in mine) == 2 and {c["replicates"] for c in mine} == {2}
    # the recorded fingerprint: study.json's record of the choices gives it back without the run folders,
    # and it changes when a replicate's choice does
    fp = plan_fingerprint(s, ch)
    assert plan_fingerprint(s, choices_from_record(json.loads(json.dumps(choice_record(ch))))) == fp
    ch.reps[1].alpha["lab_hdml_npair"] += 1.0
    assert plan_fingerprint(s, ch) != fp
    assert run_dir(finals[0], s).is_dir()
