"""The budget check at the end of train on new data: did R@1 still rise over the last quarter?"""
from hdml_lite.training.budget import budget_check, budget_line


def _rows(r1s, split="test", every=100):
    return [{"step": every * (i + 1), "split": split, "r1": r} for i, r in enumerate(r1s)]


def test_still_rising_suggests_more_steps():
    # the character set of issue 20: mean test R@1 59.6 / 64.6 / 67.7 / 69.8 at steps 100-400
    check = budget_check(_rows([0.596, 0.646, 0.677, 0.698]), steps=400)
    assert check["rising"] and check["from_step"] == 300 and check["to_step"] == 400
    assert abs(check["rise"] - 0.021) < 1e-9 and check["suggested_steps"] == 800
    line = budget_line(check)
    assert line == ("budget: test-curve R@1 rose +2.1 points over the last quarter (step 300: 67.7 -> step 400: "
                    "69.8): still rising; try train.steps=800")


def test_flat_run_and_validation_preferred():
    rows = _rows([0.90, 0.93, 0.940, 0.945], split="val") + _rows([0.5, 0.6, 0.7, 0.8])
    check = budget_check(rows, steps=400)
    assert check["split"] == "val" and not check["rising"] and check["suggested_steps"] is None
    assert "validation R@1" in budget_line(check) and "looks enough" in budget_line(check)


def test_no_evaluation_before_the_last_quarter_cannot_tell():
    assert budget_check(_rows([0.5]), steps=100) is None
    assert "cannot tell" in budget_line(None)
    assert budget_check(_rows([0.5, 0.6, 0.7], every=100), steps=1000) is None   # no evaluation at step 1000
