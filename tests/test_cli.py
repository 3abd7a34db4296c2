import subprocess
import sys
from pathlib import Path

from hdml_lite.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_presets_listed(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.split()
    assert "lab_hdml_npair" in out and "cub_hdml_triplet" in out


def test_bad_key_and_preset_are_clear_errors(capsys):
    assert main(["train", "--preset", "lab_npair", "hdml.alhpa=3"]) == 2
    assert "unknown config key 'hdml.alhpa'" in capsys.readouterr().err
    assert main(["train", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_demo_fast_prints_table_and_plot(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "hdml_lite", "demo", "--fast", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "lab_npair" in r.stdout and "lab_hdml_npair" in r.stdout and "NMI" in r.stdout
    assert (out / "demo_curves.png").stat().st_size > 10_000


def test_eval_checkpoint(tmp_path, tiny_overrides, capsys):
    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset
    from hdml_lite.training.trainer import train

    res = train(apply_overrides(get_preset("lab_npair"), tiny_overrides))
    assert main(["eval", "--checkpoint", str(res.out_dir / "checkpoint.pt"), "--json"]) == 0
    out = capsys.readouterr().out
    assert "R1" in out and '"nmi"' in out
