"""bench/gpu_check.py, the prepared GPU script, run on the CPU in its tiny mode (--steps 3 --tiny)."""
import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_cub_has_the_real_layout(tmp_path):
    from hdml_lite.data.real import read_cub

    gc = _load()
    folder = gc.make_synthetic_cub(tmp_path, n_classes=6, per_class=3, size=(40, 30))
    assert folder.name == "CUB_200_2011" and (folder / "images.txt").read_text().startswith("1 001.Synthetic_001/")
    train, test = read_cub(tmp_path)
    assert len(train.paths) == len(test.paths) == 9  # classes 1-3 train, 4-6 test
    assert len(set(train.labels)) == len(set(test.labels)) == 3


def test_gpu_check_tiny_run_on_cpu(tmp_path, capsys):
    gc = _load()
    out = tmp_path / "result.json"
    code = gc.main(["--steps", "3", "--tiny", "--device", "cpu", "--root", str(tmp_path / "w"), "--json", str(out)])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result == json.loads(out.read_text())
    assert result["device"] == "cpu" and set(result["runs"]) == {"cub_npair", "cub_hdml_npair"}
    assert result["data"]["cache"] is True and result["data"]["cache_build_s"] >= 0   # on the uint8 cache
    assert result["threads"] == 1 and "train.threads=0 -> auto" in result["threads_line"]
    assert len(result["load_avg"]) == 3 and len(result["load_avg_end"]) == 3
    for name, run in result["runs"].items():
        assert run["error"] is None, name
        assert run["steps"] == 3 and run["timed_steps"] >= 1 and run["batch"] == 8
        assert run["images_per_s"] > 0 and run["step_s_median"] > 0
        assert 0 <= run["data_wait_frac"] < 1
        assert run["peak_mem_gib"] is None  # CPU: no GPU memory
        assert 0 <= run["final"]["r1"] <= 1
        assert run["config"]["cache"] is True


def test_gpu_check_rejects_bad_arguments(capsys):
    gc = _load()
    assert gc.main(["--steps", "1", "--tiny"]) == 2
    assert gc.main(["--weights", "/nonexistent/w.pth"]) == 2
    err = capsys.readouterr().err
    assert "--steps=1" in err and "/nonexistent/w.pth" in err
