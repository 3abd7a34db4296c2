"""The lab presets carry the values the first study chose on validation classes (results/v1/study.json,
one selection for every seed): the README, the demo and the notebooks' pinned runs then run what that
study validated. The re-run selects again in every replicate (results/choice_counts.csv)."""
import json
from pathlib import Path

import pytest

from hdml_lite.presets import get_preset

STUDY = Path(__file__).resolve().parents[1] / "results" / "v1" / "study.json"


@pytest.fixture(scope="module")
def study():
    return json.loads(STUDY.read_text())


def test_lab_presets_use_the_studys_choices(study):
    assert study["regime"] == "lab" and not study["fast"]
    for key, lr in study["lr"].items():
        assert get_preset(key).optim.lr == pytest.approx(lr), key
    for key, alpha in study["alpha"].items():
        assert get_preset(key).hdml.alpha == pytest.approx(alpha, rel=0.01), key
    assert get_preset("lab_hdml_npair").hdml.bn_stats == study["bn_stats"]
    assert get_preset("lab_hdc").hdc.fractions == pytest.approx(study["fractions"]["lab_hdc"])
    assert get_preset("lab_npair").train.steps == study["steps"]
