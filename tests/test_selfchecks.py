"""The notebooks' self-checks as a student meets them: the near-miss is rejected, the options are in
the exercise text, no check cell echoes a stray `False`, and exercise 05.2 has its helper."""
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from IPython.core.displayhook import DisplayHook

from hdml_lite.exercises import EXERCISES, check, evaluate_heads, option_text

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
WITH_CHECKS = [p for p in NOTEBOOKS if "from hdml_lite.exercises import" in p.read_text(encoding="utf-8")]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _exercise_items(path: Path) -> dict[int, str]:
    """{n: the text of exercise n} from the notebook's "## Exercises" section, whitespace collapsed."""
    md = "\n".join(_src(c) for c in _cells(path) if c["cell_type"] == "markdown")
    section = re.split(r"^##+ Exercises", md, flags=re.M)[-1]
    parts = re.split(r"^(\d+)\. ", section, flags=re.M)
    return {int(n): " ".join(text.split()) for n, text in zip(parts[1::2], parts[2::2])}


def _notebook(prefix: str) -> Path:
    return next(p for p in NOTEBOOKS if p.name.startswith(prefix))


def test_chance_level_rejects_one_over_the_classes():
    """00.4 on the glyph test split's shape (177 classes x 48 images): the near-miss 1/177 = 0.00565
    is not the chance level 47/8495 = 0.00553."""
    ts = SimpleNamespace(labels=np.repeat(np.arange(177), 48))
    exact = 47 / (177 * 48 - 1)
    assert check("00.4", exact, test_set=ts) and check("00.4", round(exact, 4), test_set=ts)
    assert not check("00.4", 1 / 177, test_set=ts)
    assert not check("00.4", 1 / 176, test_set=ts)


def test_letter_answers_have_options_and_the_markdown_shows_them_word_for_word():
    letters = [k for k, ex in EXERCISES.items() if not ex.expected.__code__.co_varnames
               and ex.expected() in ("a", "b", "c")]
    assert {"01.4", "04.2", "04.4", "05.4"} <= set(letters)
    for key in letters:
        ex = EXERCISES[key]
        assert len(ex.options) == 3, key
        items = _exercise_items(_notebook(key[:2]))
        text = items[int(key.split(".")[1])]
        assert option_text(ex.options) in text, f"{key}: the notebook's exercise does not list {ex.options}"


def test_unanswered_check_prints_the_options(capsys):
    check("01.4", None)
    out = capsys.readouterr().out
    assert "(a) pull it closer to the anchor" in out and "(c) leave it where it is" in out


def test_01_4_asks_what_the_formula_would_do_not_what_hdml_does():
    """The old wording ("Why does HDML leave hard negatives unchanged?") led to answer (c), which is
    what HDML does, while the check asks what the formula would do."""
    text = _exercise_items(_notebook("01"))[4]
    assert "applied to such a negative anyway" in text and "what would it do" in text
    assert "were applied to it anyway" in EXERCISES["01.4"].question


def test_the_lab_notebooks_have_check_cells():
    assert {p.name[:2] for p in WITH_CHECKS} >= {"00", "01", "02", "03", "04", "05"}


@pytest.mark.parametrize("path", WITH_CHECKS, ids=lambda p: p.name[:2])
def test_check_cells_echo_nothing(path):
    """IPython echoes a cell's last expression unless it ends with ';' (its own test, comments allowed)."""
    cells = [_src(c) for c in _cells(path) if c["cell_type"] == "code" and "from hdml_lite.exercises import" in _src(c)]
    assert cells, f"{path.name}: no check cell"
    for src in cells:
        assert DisplayHook.semicolon_at_end_of_expression(src), f"{path.name}: the check cell ends without ';'"


def test_05_2_names_its_helper():
    text = _exercise_items(_notebook("05"))[2]
    assert "evaluate_heads(hdc_run)" in text
    assert "evaluate_heads" in EXERCISES["05.2"].hint


def test_evaluate_heads_scores_each_head_and_restores_the_method(tmp_path):
    from hdml_lite.config import apply_overrides
    from hdml_lite.training.trainer import train
    from hdml_lite.viz.notebook import notebook_config

    cfg = apply_overrides(notebook_config("lab_hdc", budget="fast"), [f"train.out_dir={tmp_path / 'hdc'}",
                                                                       "train.device=cpu"])
    run = train(cfg)
    scores = evaluate_heads(run)
    assert list(scores) == ["head 1", "head 2", "head 3", "concatenation"]
    assert all(0 <= s["r1"] <= 1 for s in scores.values())
    assert scores["concatenation"]["r1"] == pytest.approx(run.metrics["r1"], abs=1e-6)
    assert run.method.cfg.hdc.eval_head == -1
    assert check("05.2", max(scores, key=lambda k: scores[k]["r1"]), scores=scores)
    with pytest.raises(ValueError, match="expected a trained HDC run"):
        evaluate_heads(SimpleNamespace(method=SimpleNamespace(cfg=apply_overrides(cfg, ["train.method=baseline"]))))


def _run(r1=0.5, train_s=10.0):
    return SimpleNamespace(metrics={"r1": r1}, train_s=train_s, history={"train": []})


def _grads():
    import torch

    m, gen, soft = (torch.nn.Parameter(torch.ones(2)) for _ in range(3))
    method = SimpleNamespace(param_groups=lambda: {"metric": [m], "generator": [gen], "softmax": [soft]})
    return {"method": method, "terms": {"j_gen": (m * gen).sum() + 0 * soft.sum()}}


GLYPH_TEST = SimpleNamespace(labels=np.repeat(np.arange(177), 48))
MISTAKES = {   # docs/TEACHING.md, "Common mistakes the self-checks catch": (given, the mistaken answer)
    "00.4": ({"test_set": GLYPH_TEST}, 1 / 177),
    "00.2": ({}, np.array([0, 0, 1, 1, 2, 2])),                         # an N-pair batch's labels
    "01.1": ({}, 2.0),                                                  # the same alpha
    "01.4": ({}, "c"),
    "01.5": (_grads(), {"generator"}),
    "02.1": ({"seed0": _run(0.600), "seed1": _run(0.583)}, -0.017),     # a fraction, not points
    "02.3": ({"hdml": _run(train_s=15.0), "baseline": _run(train_s=10.0)}, 10.0 / 15.0),
    "03.3": ({"j_gen": 500.0, "weight": 0.36}, -5e4 * np.log(1 - 0.36)),   # full HDML's J_gen
    "05.2": ({"scores": {"head 1": {"r1": 0.5}, "head 2": {"r1": 0.6}, "head 3": {"r1": 0.63},
                         "concatenation": {"r1": 0.61}}}, "concatenation"),
}


@pytest.mark.parametrize("key", sorted(MISTAKES))
def test_the_mistakes_the_teaching_guide_lists_are_rejected(key, capsys):
    given, wrong = MISTAKES[key]
    assert check(key, wrong, **given) is False
    assert "Hint: " in capsys.readouterr().out
    guide = (REPO / "docs" / "TEACHING.md").read_text(encoding="utf-8")
    assert f"| {key} |" in guide


def test_the_teaching_guide_lists_only_checked_mistakes():
    guide = (REPO / "docs" / "TEACHING.md").read_text(encoding="utf-8")
    section = guide.split("## Common mistakes the self-checks catch")[1].split("\n## ")[0]
    assert sorted(re.findall(r"^\| (\d\d\.\d) \|", section, flags=re.M)) == sorted(MISTAKES)


def test_evaluate_heads_on_a_run_without_weights_says_what_to_do():
    class Pinned:                       # as hdml_lite.pinned's runs whose weights are not pinned
        cfg = None

        @property
        def method(self):
            raise AttributeError("the pinned run lab_hdc has no pinned weights: train it (HDML_TRAIN=1, or train(cfg))")

    with pytest.raises(ValueError, match="no pinned weights: train it"):
        evaluate_heads(Pinned())
