"""The teaching notebooks and their solutions: committed clean, structured alike, executing top to bottom.

Each notebook runs with nbclient in ``notebooks/`` in FAST mode (HDML_FAST=1, tiny data,
few steps; the notebooks load the pinned runs, hdml_lite/pinned, and train nothing), with
MPLBACKEND=Agg and any run written to a temporary HDML_RUNS, and must
not write into the repository: nothing may change under notebooks/ or runs/notebooks/
(the default run folder; the glyph cache under data/ is the library's, and any test may
create it). The notebooks run in order and share that HDML_RUNS, so later notebooks
reload the runs of earlier ones, as they do for a reader. The solutions (notebooks/solutions/,
one per notebook, a worked answer to every exercise) run last, in the same way.
"""
import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from hdml_lite.colab import SETUP_CELL

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
EXPECTED = ["00_setup_and_data.ipynb", "01_formulation.ipynb", "02_training.ipynb", "03_ablations.ipynb",
            "04_tsne.ipynb", "05_mining_vs_synthesis.ipynb"]
SOL_DIR = NB_DIR / "solutions"
SOLUTIONS = [n.replace(".ipynb", "_solutions.ipynb") for n in EXPECTED]
CELL_TIMEOUT = 600          # seconds per cell
COLAB = "https://colab.research.google.com/github/hdml-lite/hdml_lite/blob/main/notebooks/{name}"


def _load(name: str, folder: Path = NB_DIR) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _source(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_the_series_is_there():
    # 06 (the paper's protocol on a GPU, no exercises) has its own tests: tests/test_notebook06.py
    assert sorted(p.name for p in NB_DIR.glob("*.ipynb")) == EXPECTED + ["06_paper_protocol.ipynb"]
    assert sorted(p.name for p in SOL_DIR.glob("*.ipynb")) == SOLUTIONS


@pytest.mark.parametrize("name", EXPECTED + [f"solutions/{s}" for s in SOLUTIONS])
def test_committed_without_outputs(name):
    nb = _load(name)
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{name}: cells {dirty} have outputs or execution counts; strip them "
                       f"(jupyter nbconvert --clear-output --inplace notebooks/{name})")


def _exercises(nb: dict) -> int:
    """Number of numbered items in the notebook's Exercises section."""
    md = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    section = re.split(r"^##+ Exercises", md, flags=re.M)[-1]
    return len(re.findall(r"^\d+\. ", section, flags=re.M))


@pytest.mark.parametrize("name", EXPECTED)
def test_every_exercise_has_a_worked_solution(name):
    nb, sol = _load(name), _load(name.replace(".ipynb", "_solutions.ipynb"), SOL_DIR)
    n = _exercises(nb)
    headings = [int(k) for c in sol["cells"] if c["cell_type"] == "markdown"
                for k in re.findall(r"^### Exercise (\d+)\.", _source(c), flags=re.M)]
    assert n >= 3 and headings == list(range(1, n + 1)), (name, n, headings)
    code = "\n".join(_source(c) for c in sol["cells"] if c["cell_type"] == "code")
    assert 'FAST = os.environ.get("HDML_FAST") == "1"' in code and "colab.setup(" in code
    assert not re.search(r"^\s*(def|class) ", code, re.M), "define functions in hdml_lite, not in notebooks"


def test_top_cells_say_time_runs_and_install():
    """Each notebook says how long it takes, what it trains, how to force the full budget, and
    how to install from a clone of the repository (until published)."""
    for name in EXPECTED:
        nb = _load(name)
        top = _source(nb["cells"][0])
        assert "**Time and runs.**" in top and "HDML_BUDGET=full" in top and "GPU" in top, name
        assert re.search(r"fast mode .*\d+ s", top.replace("\n", " ")), f"{name}: no measured fast-mode time"
        setup = next(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
        assert "git clone https://github.com/hdml-lite/hdml_lite" in setup, name
        assert re.search(r"\*\*On Colab\.?\*\*.*not (yet )?public", top.replace("\n", " ")), \
            f"{name}: the first cell must say what to do on Colab while the repository is not public"


@pytest.mark.parametrize("name", EXPECTED)
def test_structure(name):
    nb = _load(name)
    cells = nb["cells"]
    md = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    code = [_source(c) for c in cells if c["cell_type"] == "code"]
    assert cells[0]["cell_type"] == "markdown" and "colab-badge.svg" in md[0]
    assert COLAB.format(name=name) in md[0], "the Colab badge must point at this notebook"
    setup = code[0]
    assert setup == SETUP_CELL, "first code cell: hdml_lite.colab.SETUP_CELL (python scripts/sync_setup_cell.py)"
    assert "text_progress_bars()" in code[1], "the imports cell sets the progress bars (widgets; text with HDML_TEXT_BARS=1)"
    joined = "\n".join(code)
    assert 'FAST = os.environ.get("HDML_FAST") == "1"' in joined
    assert "pick_device(" in joined
    assert any(re.search(r"^##+ Summary", m, re.M) for m in md), "needs a Summary section"
    assert any(re.search(r"^##+ Exercises", m, re.M) for m in md), "needs an Exercises section"
    # the library's math is imported, never redefined in a notebook
    assert not re.search(r"^\s*(def|class) ", joined, re.M), "define functions in hdml_lite, not in notebooks"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def _snapshot(*folders: Path) -> dict:
    """{path: (size, mtime)} of every file under ``folders`` (missing folders: empty)."""
    out = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".ipynb_checkpoints")]
            for f in filenames:
                p = Path(dirpath) / f
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


# Where a notebook could write inside the repository: its own folder and the default run
# folder (runs/notebooks/, used when HDML_RUNS is unset). Other folders are left out so that
# other processes working in the checkout (e.g. the study writing runs/study/) do not count.
WATCHED = (NB_DIR, REPO / "runs" / "notebooks")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebook_runs")


DURATIONS: dict = {}
MAX_PX = 1000        # tests/test_figures_readable.py's limit: FIG_MAX_W (960 px at 100 dpi) plus tight bbox's margin
MEASURE_DPI = 'import matplotlib as _mpl\nprint("FIGURE_DPI", _mpl.rcParams["figure.dpi"])'   # appended, removed again


def figure_widths(nb, dpi: float) -> list[tuple[int, float]]:
    """(cell index, width in px at 100 dpi) of every PNG figure the executed notebook ``nb`` shows
    (Jupyter's inline backend: the tight bounding box at ``dpi``, the "width" metadata when retina)."""
    import base64
    import struct

    out = []
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            png = (o.get("data") or {}).get("image/png")
            if not png:
                continue
            shown = (o.get("metadata") or {}).get("image/png", {}).get("width")
            px = shown or struct.unpack(">I", base64.b64decode(png)[16:20])[0]    # PNG IHDR: width at byte 16
            out.append((i, px * 100.0 / dpi))
    return out


@pytest.mark.parametrize("name", EXPECTED)
def test_executes_in_fast_mode(name, runs_dir, monkeypatch):
    """The notebooks load the pinned runs (hdml_lite/pinned): they train nothing, and the numbers of
    runs and maps their markdown and printouts state are those they make (tests/test_notebook_prose.py)."""
    from hdml_lite.pinned import pinned_keys
    from test_notebook_prose import count_mismatches

    nb = _execute(NB_DIR, name, runs_dir, monkeypatch)
    if pinned_keys():                     # the pinned set is there: nothing is trained
        trained = sorted(p.name for p in (runs_dir / "notebooks").glob("*/*")) if (runs_dir / "notebooks").is_dir() else []
        assert not trained, f"{name} trained {trained} instead of loading the pinned runs"
    bad = count_mismatches(nb)
    assert not bad, f"{name}: " + "; ".join(bad)


@pytest.mark.parametrize("name", SOLUTIONS)
def test_solutions_execute_in_fast_mode(name, runs_dir, monkeypatch):
    """After the notebooks (same HDML_RUNS: the solutions reload their runs)."""
    _execute(SOL_DIR, name, runs_dir, monkeypatch)


def _execute(folder: Path, name: str, runs_dir: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("HDML_FAST", "1")
    monkeypatch.delenv("HDML_BUDGET", raising=False)      # HDML_FAST=1 with another budget is an error
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HDML_RUNS", str(runs_dir))
    monkeypatch.delenv("HDML_TRAIN", raising=False)       # the default: load the pinned runs
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(folder / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(MEASURE_DPI))         # removed again below
    before = _snapshot(*WATCHED)
    t0 = time.perf_counter()
    # IPC transport: unix sockets instead of TCP ports, so kernels started at the same time by
    # other processes on the machine cannot race for the same ports
    sockets = tempfile.mkdtemp(prefix="nbk")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()                  # raises CellExecutionError naming the failing cell
    finally:
        if km.has_kernel:                 # a km passed in is not shut down by nbclient
            km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    DURATIONS[name] = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    measured = nb.cells.pop()
    dpi = float(next(o["text"] for o in measured.outputs if o.get("name") == "stdout").split("FIGURE_DPI")[1])
    widths = figure_widths(nb, dpi)
    wide = [f"cell {i}: {px:.0f} px" for i, px in widths if px > MAX_PX]
    assert not wide, f"{name}: figures wider than {MAX_PX} px at 100 dpi (palette.FIG_MAX_W: a laptop screen): {wide}"
    after = _snapshot(*WATCHED)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"{name} wrote into the repository: {changed[:10]}"
    print(f"{name}: {DURATIONS[name]:.1f} s (total so far {sum(DURATIONS.values()):.1f} s); {len(widths)} figures, "
          f"widest {max((px for _, px in widths), default=0):.0f} px")
    return nb


# ------------------------------------------------------------------ prose against the presets it runs
PRESET_VALUE = {   # quantity: a regex whose group 1 is a number stated in markdown
    "alpha": r"(?:\\alpha|\balpha)\s*(?:=|of)?\s*\$?\s*(\d+(?:\.\d+)?)(?![\d.]*\s*(?:x|\\times)\s*J)",
    "steps": r"\b(\d+)[- ]steps?\b",
    "lr": r"\b(?:lr|learning rate)\s*(?:=|of)?\s*`?(\d+(?:\.\d+)?(?:e-?\d+)?)",
    "images per class": r"\b(\d+) (?:training |test )?images per class\b",
}


def _preset_values(nb: dict) -> dict:
    """{quantity: allowed values} for a notebook: those of every preset it runs (at the CPU budget and
    as the preset is), plus alpha = 0 (augmentation off) and the paper's alphas (quoted as the paper's)."""
    import inspect

    from hdml_lite.data.glyphs import generate_glyphs
    from hdml_lite.presets import get_preset
    from hdml_lite.viz.notebook import notebook_config

    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    presets = set(re.findall(r'(?:notebook_config|get_preset)\("([a-z0-9_]+)"', code))
    allowed = {"alpha": {0.0, 90.0, 7.0}, "steps": set(), "lr": set(),
               "images per class": {float(inspect.signature(generate_glyphs).parameters["per_class"].default)}}
    for p in presets:
        for cfg in (get_preset(p), notebook_config(p, budget="cpu")):
            allowed["steps"] |= {float(cfg.train.steps), float(cfg.hdml.block), float(cfg.train.eval_every)}
            allowed["lr"].add(float(cfg.optim.lr))
            if cfg.train.method == "hdml":
                allowed["alpha"].add(float(cfg.hdml.alpha))
            if cfg.data.max_per_class:
                allowed["images per class"].add(float(cfg.data.max_per_class))
    return allowed


def stated_preset_values(nb: dict) -> list[str]:
    """Numbers in the notebook ``nb``'s markdown for alpha, steps, lr or images per class that no preset it runs has."""
    allowed = _preset_values(nb)
    bad = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "markdown":
            continue
        text = _source(c).replace("\n", " ")
        for q, pattern in PRESET_VALUE.items():
            for m in re.finditer(pattern, text):
                v = float(m.group(1))
                if not any(math.isclose(v, a, rel_tol=0.005) for a in allowed[q]):
                    bad.append(f"cell {i}: {q} {m.group(1)} ('...{text[max(0, m.start() - 30):m.end() + 10]}...'); "
                               f"its presets have {sorted(allowed[q])}")
    return bad


@pytest.mark.parametrize("name", EXPECTED + [f"solutions/{s}" for s in SOLUTIONS])
def test_markdown_states_the_presets_values(name):
    """A value of alpha, steps, lr or images per class typed in the prose is one the notebook runs
    (or the paper's alpha, or alpha = 0); anything else must come from a cell."""
    bad = stated_preset_values(_load(name))
    assert not bad, "\n".join(bad)


def test_the_preset_check_catches_a_stale_alpha():
    nb = _load("03_ablations.ipynb")
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["The preset's $\\alpha = 0.3$ and 800 steps."]})
    bad = stated_preset_values(nb)
    assert len(bad) == 2 and "alpha 0.3" in bad[0] and "steps 800" in bad[1]
