"""The notebooks' sentences about numbers: the pure functions that write them (hdml_lite/prose.py,
hdml_lite/viz/map_moves.py), checked at their boundaries, and the notebooks' markdown checked against
what they compute (no regime typed next to the preset; run and map counts stated = made)."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from hdml_lite.prose import (condition_in_both, count_phrase, fractions_phrase, hardness_phrase, labels_phrase,
                             pull_regime, pull_sentence)
from hdml_lite.viz.map_moves import map_moves, map_radius

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"


# ------------------------------------------------------------------ the pull factor's words
@pytest.mark.parametrize("factor, word", [(1.0, "no"), (0.995, "no"), (0.99, "no"), (0.95, "mild"), (0.9, "mild"),
                                          (0.7, "mild"), (0.69, "moderate"), (0.5, "moderate"), (0.3, "moderate"),
                                          (0.25, "moderate"), (0.2, "strong"), (0.1, "strong"), (0.05, "strong"),
                                          (0.049, "extreme"), (0.01, "extreme"), (0.0, "extreme")])
def test_pull_regime_at_its_boundaries(factor, word):
    assert pull_regime(factor) == word


def test_a_factor_of_0_9_is_the_mildest_pull_of_the_grid():
    """z^ sits at d+ + (d- - d+) * factor (docs/METHOD.md §1.1): a large factor leaves the negative near
    where it was. The words must order the grid as the distances do."""
    from hdml_lite.hdml.augment import augment_npair
    import torch

    a = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    p = torch.tensor([[1.0, 0.0], [5.0, 6.0]])           # d+ = 1 for both anchors
    dist = {}
    for f in (0.9, 0.5, 0.1, 0.01):
        alpha = -math.log(f)                              # J_avg = 1
        cand = augment_npair(a, p, alpha, 1.0)
        dist[f] = float((cand[0, 1] - a[0]).norm())       # p_1 pulled toward a_0
    d_neg = float((p[1] - a[0]).norm())
    assert d_neg > dist[0.9] > dist[0.5] > dist[0.1] > dist[0.01] > 1.0
    assert abs(dist[0.9] - (1 + 0.9 * (d_neg - 1))) < 1e-4
    order = ["no", "mild", "moderate", "strong", "extreme"]
    assert [order.index(pull_regime(f)) for f in (0.9, 0.5, 0.1, 0.01)] == sorted(
        order.index(pull_regime(f)) for f in (0.9, 0.5, 0.1, 0.01))
    assert "mild" in pull_sentence(0.9) and "keeps 90%" in pull_sentence(0.9)
    assert "strong" not in pull_sentence(0.9)
    assert "extreme" in pull_sentence(0.01) and "almost at $d^+$" in pull_sentence(0.01)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_pull_regime_refuses_a_factor_outside_0_1(bad):
    with pytest.raises(ValueError, match="pull factor"):
        pull_regime(bad)


def test_the_presets_regimes_match_their_pull_factors():
    """At the study's J_avg, lab_hdml_npair's alpha is a mild pull (about 0.9)."""
    from hdml_lite.hdml import pull_factor
    from hdml_lite.presets import get_preset
    from hdml_lite.viz.notebook import results_dir
    from hdml_lite.viz.results import load_settings

    j = (load_settings(results_dir()) or {}).get("j_avg", {}).get("lab_hdml_npair")
    if not j:
        pytest.skip("no study.json")
    f = pull_factor(get_preset("lab_hdml_npair").hdml.alpha, j)
    assert pull_regime(f) == "mild", f


# ------------------------------------------------------------------ other phrases
def test_count_phrase():
    assert count_phrase(1, "run") == "1 run" and count_phrase(5, "map") == "5 maps" and count_phrase(0, "run") == "0 runs"


def test_labels_phrase_at_the_threshold():
    assert labels_phrase(0.5) == "labels kept" and labels_phrase(0.499) == "labels lost"


def test_condition_in_both_says_what_the_verdicts_are():
    assert condition_in_both("weight", True, True, "HDML", "HDML without J_soft").endswith("passes in both runs")
    s = condition_in_both("weight", True, False, "HDML", "HDML without J_soft")
    assert "passes in HDML only" in s and "both" not in s
    assert "fails in both" in condition_in_both("weight", False, False, "a", "b")


def test_fractions_phrase_names_the_fractions_not_the_keys():
    s = fractions_phrase([1.0, 1.0, 1.0])
    assert s.startswith("fractions (1, 1, 1)") and "no head selects anything" in s
    s = fractions_phrase((1, 0.5, 0.2))
    assert "(1, 0.5, 0.2)" in s and "head 3 the hardest 20%" in s and "no head" not in s
    with pytest.raises((TypeError, ValueError)):
        fractions_phrase({"lab_hdc": [1, 1, 1]})          # a dict's keys are not fractions


def test_hardness_phrase():
    assert hardness_phrase(1.2, 1.1).startswith("farther") and hardness_phrase(1.0, 1.1).startswith("no farther")


# ------------------------------------------------------------------ 04's bars against map
def test_map_moves_divides_by_the_radius_once():
    """A synthetic 1 map unit from its negative on a map of radius 10 is 0.1 radius away: not 'on' it
    (dividing by the radius twice made it 0.01 < 0.02 and counted it)."""
    neg = np.zeros((8, 2))
    syn = np.zeros((8, 2))
    syn[:5, 0] = 1.0                                      # 5 moved by 0.1 radius, 3 stayed
    m = map_moves(syn, neg, radius=10.0)
    assert m["on"] == 3 and m["of"] == 8 and m["jumped"] is None
    assert np.allclose(m["offset"][:5], 0.1)
    m2 = map_moves(syn + [[2.0, 0]] * 8, neg, radius=10.0, previous_xy=syn)
    assert m2["jumped"] == 8 and m2["on"] == 0


def test_map_radius():
    xy = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1], [0, 0]])
    assert map_radius(xy) == 1.0
    with pytest.raises(ValueError):
        map_moves(xy, xy, radius=0.0)


# ------------------------------------------------------------------ the notebooks' markdown
NOTEBOOKS = ["00_setup_and_data.ipynb", "01_formulation.ipynb", "02_training.ipynb", "03_ablations.ipynb",
             "04_tsne.ipynb", "05_mining_vs_synthesis.ipynb"]          # the lab (06 is the paper protocol)
SOLUTIONS = [f"solutions/{n.replace('.ipynb', '_solutions.ipynb')}" for n in NOTEBOOKS]
REGIME = re.compile(r"\b(mild|moderate|strong|strong-pulling|extreme|weak)\b", re.I)
WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}


def _load(name: str) -> dict:
    return json.loads((NB_DIR / name).read_text(encoding="utf-8"))


def _source(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def preset_regime_sentences(nb: dict) -> list[str]:
    """Markdown sentences that give the preset's pull a regime by hand ("the lab preset's is the
    strong-pulling end"): the preset's regime is printed by a cell (hdml_lite.prose), never typed."""
    bad = []
    for c in nb["cells"]:
        if c["cell_type"] != "markdown":
            continue
        for sentence in re.split(r"(?<=[.;:!?])\s+", _source(c).replace("\n", " ")):
            if "preset" in sentence and REGIME.search(sentence):
                bad.append(sentence.strip())
    return bad


@pytest.mark.parametrize("name", NOTEBOOKS + SOLUTIONS)
def test_no_regime_is_typed_next_to_the_preset(name):
    assert not preset_regime_sentences(_load(name))


def test_the_regime_check_catches_the_old_sentence():
    nb = {"cells": [{"cell_type": "markdown", "source": "The kit chooses alpha; the lab preset's is the "
                                                         "strong-pulling end. A factor of 1 is no pull."}]}
    assert preset_regime_sentences(nb) == ["the lab preset's is the strong-pulling end."]


def _number(word: str) -> int:
    return int(word) if word.isdigit() else WORDS[word.lower()]


def stated_counts(nb: dict) -> dict:
    """{"runs": n, "maps": m} that the notebook's "**Time and runs.**" paragraph states ("Uses 5 runs",
    "Trains nothing": 0 runs; "draws 5 t-SNE maps"); a key is absent where the paragraph says nothing."""
    top = next((_source(c) for c in nb["cells"] if c["cell_type"] == "markdown" and "**Time and runs.**" in _source(c)), "")
    para = top[top.find("**Time and runs.**"):].split("\n\n")[0].replace("\n", " ")
    out = {}
    m = re.search(r"\bUses (\d+|\w+) runs?\b", para)
    if m:
        out["runs"] = _number(m.group(1))
    elif re.search(r"\bTrains nothing\b", para):
        out["runs"] = 0
    m = re.search(r"\bdraws (\d+|\w+) (?:t-SNE )?maps?\b", para)
    if m:
        out["maps"] = _number(m.group(1))
    return out


def _printed(nb: dict) -> list[str]:
    lines = []
    for c in nb["cells"]:
        for o in c.get("outputs", []) if c["cell_type"] == "code" else []:
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                text = o["text"] if isinstance(o["text"], str) else "".join(o["text"])
                lines += text.splitlines()
    return lines


def made_counts(nb: dict) -> dict:
    """From an executed notebook's printout: the distinct runs it got (``get_run`` prints "run KEY: ...")
    and the maps it made (notebook 04 prints "map alpha=A ...: ..." per map)."""
    lines = _printed(nb)
    runs = {m.group(1) for line in lines for m in [re.match(r"run (\S+): ", line)] if m}
    maps = {m.group(1) for line in lines for m in [re.match(r"map (\S+) ", line)] if m}
    return {"runs": len(runs), "maps": len(maps)}


def count_mismatches(nb: dict) -> list[str]:
    """Where the markdown ("Uses N runs", "draws M maps") or a printout ("M maps: ...", "the sweep: P
    points") names another number than the executed notebook made."""
    made, bad = made_counts(nb), []
    for key, n in stated_counts(nb).items():
        if n != made[key]:
            bad.append(f"the markdown states {n} {key}, the notebook made {made[key]}")
    for line in _printed(nb):
        m = re.match(r"(\d+) maps?: ", line)
        if m and int(m.group(1)) != made["maps"]:
            bad.append(f"printed '{line}', the notebook made {made['maps']} maps")
    return bad


def test_each_notebook_states_its_runs():
    for name in NOTEBOOKS:
        assert "runs" in stated_counts(_load(name)), f"{name}: the Time and runs paragraph names no number of runs"
    assert stated_counts(_load("04_tsne.ipynb")).get("maps"), "04 states how many maps it draws"


def _fake(stated: str, printed: list[str]) -> dict:
    return {"cells": [{"cell_type": "markdown", "source": f"# x\n\n**Time and runs.** {stated}\n\nmore"},
                      {"cell_type": "code", "source": "", "outputs": [
                          {"output_type": "stream", "name": "stdout", "text": "\n".join(printed) + "\n"}]}]}


def test_the_count_check_fails_on_a_wrong_number():
    runs = [f"run k{i}: pinned (cpu budget) R@1 50.0%" for i in range(6)]
    maps = [f"map alpha={a}: pinned" for a in (0, 0.2, 0.66, 1.3, 0.03)]
    assert count_mismatches(_fake("Uses 6 runs. It draws 5 t-SNE maps.", runs + maps + ["5 maps: 1 fitted"])) == []
    bad = count_mismatches(_fake("Uses 5 runs. It draws 4 t-SNE maps.", runs + runs[:2] + maps + ["4 maps: x"]))
    assert bad == ["the markdown states 5 runs, the notebook made 6", "the markdown states 4 maps, the notebook made 5",
                   "printed '4 maps: x', the notebook made 5 maps"]
    assert count_mismatches(_fake("Trains nothing.", runs[:1])) == ["the markdown states 0 runs, the notebook made 1"]


def test_the_seeds_lesson_states_the_studys_design():
    """05's section on adding seeds names the study's first and last look (study.sequential.DESIGN)."""
    seq = pytest.importorskip("hdml_lite.study.sequential")
    md = "\n".join(_source(c) for c in _load("05_mining_vs_synthesis.ipynb")["cells"] if c["cell_type"] == "markdown")
    if "### Adding seeds until it is significant" not in md:
        pytest.skip("the lesson is not in notebook 05")
    m = re.search(r"starts each headline claim at (\d+) paired seeds and adds one at a time, up to (\d+)", md.replace("\n", " "))
    assert m and (int(m.group(1)), int(m.group(2))) == tuple(seq.DESIGN)
