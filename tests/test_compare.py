"""`python -m hdml_lite compare`: the comparison engine on a tiny image folder, refusals, resume."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdml_lite.cli import main
from hdml_lite.config import ConfigError
from hdml_lite.study.compare import make_compare_settings, run_compare
from hdml_lite.study.files import COMPARE_TABLE_COLUMNS, SELECTION_COLUMNS, VERDICT_COLUMNS, header, read_rows
from hdml_lite.study.lab import FAST

TINY = [o for o in FAST if not o.startswith("data.max_classes")]


def make_folder(root: Path, n_classes: int = 20, per_class: int = 4, size: int = 12) -> Path:
    """``n_classes`` grey classes, each a distinct blob pattern with noise."""
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (size, size))
        for i in range(per_class):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).convert("RGB").save(d / f"{i}.png")
    return root


def _small(**kw):
    return dict(lrs=(1e-3,), pull_targets=(1.0, 0.1), select_seeds=1, **kw)


def test_compare_on_a_folder_end_to_end_and_resume(tmp_path, capsys):
    data = make_folder(tmp_path / "imgs")
    out = tmp_path / "cmp"
    ov = TINY + ["data.batch_classes=50", "data.channels=3"]
    res = run_compare(["lab_hdml_npair", "lab_npair"], f"folder:{data}", ov, seeds=2, max_seeds=3, out=str(out),
                      jobs=0, **_small())
    log = capsys.readouterr().out
    assert "batch rule: lab_hdml_npair: data.batch_classes 50 -> 8" in log       # 10 train classes - 2 validation
    assert "classes: 8 train + 2 validation" in log and "10 test" in log
    assert "lab_hdml_npair > lab_npair" in log and "time:" in log
    assert header(out / "selection.csv") == SELECTION_COLUMNS
    assert header(out / "table.csv") == COMPARE_TABLE_COLUMNS
    assert header(out / "verdicts.csv") == VERDICT_COLUMNS
    table = read_rows(out / "table.csv")
    n = {m: sum(r["method"] == m for r in table) for m in ("lab_hdml_npair", "lab_npair")}
    assert n["lab_hdml_npair"] == n["lab_npair"] in (2, 3)                      # paired seeds, up to max_seeds
    verdicts = read_rows(out / "verdicts.csv")
    assert {r["metric"] for r in verdicts} == {"r1", "nmi"} and all(r["margin"] == 0.01 for r in verdicts)
    assert all(r["verdict"] in ("supported", "contradicted", "equivalent", "undecided") for r in verdicts)
    sel = read_rows(out / "selection.csv")
    assert {r["stage"] for r in sel} == {"select_lr", "select_alpha"}
    assert all("val_map_r" in r for r in sel)
    assert (out / "engagement.csv").is_file()
    assert res["choices"].lr.keys() == {"lab_hdml_npair", "lab_npair"}
    # the same command again: nothing left to train, same table
    before = (out / "table.csv").read_text()
    run_compare(["lab_hdml_npair", "lab_npair"], f"folder:{data}", ov, seeds=2, max_seeds=3, out=str(out), jobs=0,
                **_small())
    assert (out / "table.csv").read_text() == before
    capsys.readouterr()
    # another comparison into the same folder is refused, one line, nothing lost
    assert main(["compare", "lab_triplet", "lab_npair", "--data", f"folder:{data}", "--out", str(out)] + ov) == 2
    err = capsys.readouterr().err.strip()
    assert "holds another comparison" in err and "presets" in err and len(err.splitlines()) == 1
    assert (out / "table.csv").read_text() == before


@pytest.mark.parametrize("argv, needle", [
    (["compare", "lab_npair"], "at least two presets"),
    (["compare", "lab_npair", "cub_npair"], "preset cub_npair is for data set 'cub'"),
    (["compare", "lab_npair", "lab_hdml_npair", "--seeds", "1"], "--seeds 1"),
    (["compare", "lab_npair", "lab_hdml_npair", "--margin", "-1"], "--margin -1"),
    (["compare", "lab_npair", "lab_hdml_npair", "--data", "folder:/nonexistent/x"], "is not a folder"),
    (["compare", "lab_npair", "lab_hdml_npair", "--data", "imagenet"], "expected glyphs or folder:PATH"),
    (["compare", "lab_npair", "no_such_preset"], "no_such_preset"),
])
def test_compare_refusals_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_compare_refuses_data_too_small_naming_the_numbers(tmp_path):
    data = make_folder(tmp_path / "imgs", n_classes=6)
    with pytest.raises(ConfigError) as e:
        make_compare_settings(["lab_hdml_npair", "lab_npair"], f"folder:{data}", TINY + ["data.channels=3"],
                              log=lambda *_: None)
    msg = str(e.value)
    assert "cannot support a comparison" in msg and "1 validation classes" in msg and "2 training classes" in msg


def test_compare_needs_one_budget(tmp_path):
    with pytest.raises(ConfigError, match="different budgets"):
        make_compare_settings(["lab_npair", "scratch_npair"], "glyphs", TINY[1:], log=lambda *_: None)


def test_compare_plan_prints_runs_without_training(tmp_path, capsys):
    data = make_folder(tmp_path / "imgs")
    assert main(["compare", "lab_hdml_npair", "lab_npair", "--data", f"folder:{data}", "--plan",
                 "--out", str(tmp_path / "cmp")] + TINY + ["data.channels=3"]) == 0
    out = capsys.readouterr().out
    assert "comparison plan: 2 methods" in out and "select_lr/lab_npair__lr0.0003__seed0" in out
    assert not (tmp_path / "cmp" / "runs").exists()
    assert not json.dumps(out).count("Traceback")


def test_fixed_choices_skip_selection_and_are_checked(tmp_path):
    """Settings.fixed (the hypotheses' H3/H4 take the study's choices): no selection run for a fixed
    method, its values in the choices; a fixed HDML needs its alpha."""
    from hdml_lite.study.engine import choices
    from hdml_lite.study.plan import plan_all

    quiet = lambda *_: None  # noqa: E731
    fixed = {"lab_npair": {"lr": 3e-4}, "lab_hdml_npair": {"lr": 1e-3, "alpha": 0.25}}
    s = make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", TINY, out=tmp_path, fixed=fixed, log=quiet,
                              **_small())
    ch, rows = choices(s)
    assert ch.lr == {"lab_npair": 3e-4, "lab_hdml_npair": 1e-3} and ch.alpha == {"lab_hdml_npair": 0.25}
    runs = plan_all(s, ch)
    assert rows == [] and {r.stage for r in runs} == {"final"}
    assert {(r.method, r.lr, r.alpha) for r in runs} == {("lab_npair", 3e-4, None), ("lab_hdml_npair", 1e-3, 0.25)}
    half = make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", TINY, out=tmp_path,
                                 fixed={"lab_npair": {"lr": 3e-4}}, log=quiet, **_small())
    assert {r.method for r in plan_all(half, choices(half)[0]) if r.stage == "select_lr"} == {"lab_hdml_npair"}
    with pytest.raises(ConfigError, match="lab_hdml_npair"):
        make_compare_settings(["lab_hdml_npair", "lab_npair"], "glyphs", TINY, out=tmp_path,
                              fixed={"lab_hdml_npair": {"lr": 1e-3}}, log=quiet, **_small())
