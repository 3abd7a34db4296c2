"""Every exercise check passes the worked solution's answer and fails a wrong one; every exercise
of the notebooks has its check, and every solution asserts it."""
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hdml_lite.exercises import EXERCISES, check
from hdml_lite.hdml import augment_triplet, pull_factor
from hdml_lite.study.stats import alpha_grid

REPO = Path(__file__).resolve().parents[1]


def _test_set():
    """Three classes of 4x4 images: class 'b' and 'c' have nearly the same mean image."""
    rng = np.random.default_rng(0)
    base = {0: 0, 1: 200, 2: 205}
    labels = np.repeat([0, 1, 2], [3, 4, 5])
    images = np.stack([np.full((1, 4, 4), base[c]) + rng.integers(0, 3, (1, 4, 4)) for c in labels]).astype(np.uint8)
    return SimpleNamespace(images=images, labels=labels, class_names=["a", "b", "c"])


def _run(r1=0.5, train_s=10.0, weight_syn=0.4, map_r=0.3):
    return SimpleNamespace(metrics={"r1": r1, "map_r": map_r}, train_s=train_s,
                           history={"train": [{"weight_syn": 0.1}, {"weight_syn": weight_syn}]})


def _min_ratio():
    """Solution 01.3: the smallest d(z, z^) / d+ over random tuples and settings, pulled negatives."""
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(2000, 8, generator=g, dtype=torch.float64) for _ in range(3))
    d_pos, d_neg = (p - a).norm(dim=1), (n - a).norm(dim=1)
    pulled = d_neg > d_pos
    return min(float(((augment_triplet(a, p, n, al, 1.0) - a).norm(dim=1)[pulled] / d_pos[pulled]).min())
               for al in (0.0, 1.0, 1e3))


def _grad_fixture():
    """A fake method whose J_gen reaches 'metric' and 'generator' but not 'softmax'."""
    m, gen, soft = (torch.nn.Parameter(torch.ones(2)) for _ in range(3))
    method = SimpleNamespace(param_groups=lambda: {"metric": [m], "generator": [gen], "softmax": [soft]})
    return {"method": method, "terms": {"j_gen": (m * gen).sum() + 0 * soft.sum()}}


TS = _test_set()
XY_LABELS = np.array([0, 0, 1, 1, 1])
J = 0.29
CASES = {   # key: (given, the solution's answer, a wrong answer)
    "00.1": ({"test_set": TS}, ("c", "b"), ("a", "b")),
    "00.2": ({}, np.array([3, 3, 1, 5, 5, 2]), np.array([3, 3, 1, 1, 5, 5])),
    "00.3": ({}, "d", "b"),
    "00.4": ({"test_set": TS}, float(np.mean([(np.bincount(TS.labels)[c] - 1) / 11 for c in TS.labels])), 1 / 3),
    "01.1": ({}, 0.5, 2.0),
    "01.2": ({"j_avg": J}, alpha_grid(J, (0.5,))[0], J),
    "01.3": ({}, _min_ratio(), 0.9),
    "01.4": ({}, "b", "a"),
    "01.5": (_grad_fixture(), {"metric", "generator"}, {"generator"}),
    "02.1": ({"seed0": _run(0.60), "seed1": _run(0.583)}, -1.7, 1.7),
    "02.2": ({"run": _run(weight_syn=0.999)}, 0.999, 0.1),
    "02.3": ({"hdml": _run(train_s=15.0), "baseline": _run(train_s=10.0)}, 1.5, 1.0),
    "02.4": ({"metrics": {"r1": 0.7, "map_r": 0.3}}, "map_r", "r1"),
    "03.1": ({"alpha0": _run(0.682), "baseline": _run(0.664)}, 1.8, -1.8),
    "03.2": ({"j_avg": J}, alpha_grid(J, (0.5,))[0], 1.32),
    "03.3": ({"j_gen": 500.0, "weight": 0.36}, -500.0 * math.log(1 - 0.36), 1e4),
    "03.4": ({}, 1 - math.exp(-1e4 / 10), 0.632),
    "04.1": ({"z": np.array([[1, 0], [1, 0.05], [0, 1], [0.05, 1], [1, 0.1]]), "labels": XY_LABELS,
              "class_names": ["x", "y"]}, "x", "y"),              # cosine 1-NN: x 1 of 2 right, y 2 of 3
    "04.2": ({}, "b", "c"),
    "04.3": ({"map_r1": {"N-pair": 0.41, "HDML (N-pair)": 0.39}}, "N-pair", "HDML (N-pair)"),
    "04.4": ({}, "b", "a"),
    "05.1": ({}, True, False),
    "05.2": ({"scores": {"head 1": {"r1": 0.5}, "head 3": {"r1": 0.63}, "concatenation": {"r1": 0.614}}},
             "head 3", "concatenation"),
    "05.3": ({"hdc": _run(0.614), "baseline": _run(0.65)}, -3.6, 3.6),
    "05.4": ({}, "b", "a"),
}


def test_every_exercise_has_a_case():
    assert sorted(CASES) == sorted(EXERCISES)


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_solution_passes_and_wrong_answer_fails(key, capsys):
    given, right, wrong = CASES[key]
    assert check(key, right, **given) is True
    assert capsys.readouterr().out.startswith(f"{key}: correct")
    assert check(key, wrong, **given) is False
    out = capsys.readouterr().out
    assert out.startswith(f"{key}: not yet") and "Hint: " in out
    assert check(key, None, **given) is False and "replace None" in capsys.readouterr().out


def test_numeric_checks_state_their_tolerance(capsys):
    assert check("01.2", alpha_grid(J, (0.5,))[0] * 1.015, j_avg=J)           # inside ±2%
    assert "±2%" in capsys.readouterr().out
    assert not check("01.2", alpha_grid(J, (0.5,))[0] * 1.03, j_avg=J)        # outside
    assert pull_factor(alpha_grid(J, (0.5,))[0], J) == pytest.approx(0.5)
    assert not check("01.2", "not a number", j_avg=J) and not check("01.2", float("nan"), j_avg=J)


def test_bad_calls_name_what_is_expected():
    with pytest.raises(ValueError, match="no exercise '9.9'"):
        check("9.9", 1)
    with pytest.raises(ValueError, match="pass the run's values as keyword arguments"):
        check("01.2", 0.2)                                                   # j_avg missing
    with pytest.raises(ValueError, match="pass the run's values"):
        check("02.1", 1.0, seed0=_run(), seed1=None)                         # the seed-1 run not trained yet
    assert check("02.1", None, seed0=_run(), seed1=None) is False            # no answer yet: no run needed


def _code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_notebooks_check_every_exercise_and_solutions_assert_it():
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        if nb.name == "06_paper_protocol.ipynb":      # the GPU protocol: no exercises (tests/test_notebook06.py)
            continue
        prefix = nb.name[:2]
        keys = sorted(k for k in EXERCISES if k.startswith(prefix + "."))
        md = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        n = len(re.findall(r"^\d+\. ", re.split(r"^##+ Exercises", md, flags=re.M)[-1], flags=re.M))
        assert len(keys) == n, f"{nb.name}: {n} exercises, checks {keys}"
        student = _code(nb)
        sol = _code(REPO / "notebooks" / "solutions" / nb.name.replace(".ipynb", "_solutions.ipynb"))
        assert "from hdml_lite.exercises import check" in student and "from hdml_lite.exercises import check" in sol
        for k in keys:
            assert re.search(rf'check\("{k}", None', student), f"{nb.name}: no check(\"{k}\", None, ...) cell"
            assert re.search(rf'assert check\("{k}", ', sol), f"solution of {nb.name}: no assert check(\"{k}\", ...)"
