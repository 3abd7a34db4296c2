"""Shared test settings: tests run on CPU, few threads, headless matplotlib."""
import os
import signal
import subprocess
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HDML_FAST", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

# A test run started in the background by a non-interactive shell (`pytest ... &`, CI scripts) inherits
# SIGINT *ignored*, and so would every process it starts: the Ctrl-C tests (test_faults.py,
# test_round3_study_and_writes.py) then see no interrupt at all and time out. Handle SIGINT as a
# terminal's Python does; processes started from here get the default action again (exec resets a
# handled signal, but not an ignored one).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tiny training settings on the embedded glyphs, shared by trainer/CLI tests.
TINY = ["train.steps=6", "train.eval_every=3", "train.ckpt_every=2", "data.max_classes=10",
        "data.max_per_class=6", "data.batch_classes=4", "model.width=4", "model.pretrained=false", "model.embedding_size=8",
        "train.progress=false", "train.device=cpu", "hdml.block=2", "hdml.gen_hidden=16"]


@pytest.fixture
def tiny_overrides(tmp_path):
    return TINY + [f"train.out_dir={tmp_path / 'run'}"]


REPO = Path(__file__).resolve().parents[1]
TOP_SKIP = {"runs", "build", "data"}                   # top-level folders of outputs and datasets
SKIP_DIRS = {"__pycache__", "venv", "env"}          # anywhere, as are hidden folders


def repo_files(*suffixes: str) -> list[Path]:
    """Files of the repository with these suffixes, skipping hidden folders, runs, caches, venvs."""
    out = []
    for folder, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
                   and not (Path(folder) == REPO and d in TOP_SKIP)]
        out += [Path(folder) / n for n in names if Path(n).suffix in suffixes]
    return sorted(out)


def make_flaky_metric_loss(monkeypatch, at_call: int, factor: float) -> None:
    """Patch ``hdml_lite.losses.metric_loss`` so that its ``at_call``-th call returns the loss
    times ``factor`` (inf or nan): a non-finite loss at a known step."""
    import hdml_lite.losses as losses

    real, calls = losses.metric_loss, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * factor if calls["n"] == at_call else out

    monkeypatch.setattr(losses, "metric_loss", flaky)


class FakeIPython:
    """What the transformed cell calls: ``!cmd`` runs in a shell, ``%cd {expr}`` changes folder."""

    def __init__(self, ns):
        self.ns, self.cds = ns, []

    def system(self, cmd):
        subprocess.run(cmd, shell=True, check=False)

    def run_line_magic(self, name, line):
        assert name == "cd"
        target = eval(line.strip()[1:-1], self.ns) if line.strip().startswith("{") else line
        self.cds.append(Path(target))
        import os
        os.chdir(target)
