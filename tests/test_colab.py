"""The notebooks' set-up cell, run for real against copies of the repository in a temporary
"/content": cloned, uploaded as a zip, missing, and with a failing install (pip is injected:
nothing is installed)."""
import builtins
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hdml_lite import colab
from conftest import FakeIPython

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))


def _setup_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def _copy_repo(dest: Path) -> Path:
    """The repository's tracked files (as a clone would have them) copied to ``dest``."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "pyproject.toml", "hdml_lite"], check=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / f, dest / f)
    (dest / "hdml_lite" / "colab.py").parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "hdml_lite" / "colab.py", dest / "hdml_lite" / "colab.py")   # also before it is committed
    shutil.copyfile(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _run_cell(content: Path, monkeypatch, status=0):
    """Run notebook 00's set-up cell with /content -> ``content``, hdml_lite 'not installed' at
    the first import, and pip replaced by a recorder returning ``status``. Returns (namespace, pip calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(_setup_cell(NOTEBOOKS[0]).replace("/content", str(content)))
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: calls.append(cmd) or status)
    monkeypatch.setattr(sys, "path", list(sys.path))
    import importlib.metadata                      # the cell asks pip's records too: not installed until pip ran
    real_version = importlib.metadata.version

    def version(name):
        if name == "hdml_lite" and not (calls and status == 0):
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    work = content.parent / "notebook_folder"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    # an older cell asked `import hdml_lite` first; one that asks pip's records (version) needs no fake import
    real_import, first = builtins.__import__, ['version("hdml_lite")' not in _setup_cell(NOTEBOOKS[0])]

    def importer(name, *args, **kw):
        if name == "hdml_lite" and first[0]:
            first[0] = False
            raise ModuleNotFoundError("No module named 'hdml_lite'")
        return real_import(name, *args, **kw)

    ns = {"__builtins__": {**vars(builtins), "__import__": importer}}
    ns["get_ipython"] = lambda: ns["_ip"]
    ns["_ip"] = FakeIPython(ns)
    exec(compile(code, "setup-cell", "exec"), ns)
    return ns, calls


def test_every_notebook_has_the_same_setup_cell():
    cells = {_setup_cell(p) for p in NOTEBOOKS}
    assert len(NOTEBOOKS) >= 12 and len(cells) == 1
    cell = cells.pop()
    assert cell == colab.SETUP_CELL, "a notebook's set-up cell is not colab.SETUP_CELL: run python scripts/sync_setup_cell.py"
    assert "%cd {root}" in cell and "colab.setup(" in cell and "git clone https://github.com/hdml-lite/hdml_lite" in cell
    assert "%pip" not in cell and "jupyterlab" not in cell.split("#")[0]


def test_setup_cell_installs_a_clone_in_content(tmp_path, monkeypatch):
    content = tmp_path / "content"
    copy = _copy_repo(content / "hdml_lite")
    ns, calls = _run_cell(content, monkeypatch)
    assert Path.cwd() == copy.resolve() and ns["_ip"].cds == [copy.resolve()]      # %cd'ed into the copy
    assert len(calls) == 1 and calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert calls[0][-1] == str(copy.resolve())                                    # a plain install of the copy
    assert sys.path[0] == str(copy.resolve())


def test_setup_cell_unpacks_an_uploaded_zip(tmp_path, monkeypatch):
    content = tmp_path / "content"
    copy = _copy_repo(tmp_path / "src" / "hdml_lite-main")
    content.mkdir()
    with zipfile.ZipFile(content / "hdml_lite-main.zip", "w") as zf:              # GitHub's "Download ZIP" layout
        for f in copy.rglob("*"):
            zf.write(f, f.relative_to(copy.parent))
    ns, calls = _run_cell(content, monkeypatch)
    unpacked = next(p for p in (content / "hdml_lite_zip" / "hdml_lite-main", content / "hdml_lite-main") if p.is_dir())
    assert Path.cwd() == unpacked.resolve()                   # hdml_lite/colab.py's SETUP_CELL unpacks into hdml_lite_zip/
    assert calls and calls[0][-1] == str(unpacked.resolve())


def test_setup_cell_without_a_copy_says_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "content").mkdir()
    with pytest.raises(ModuleNotFoundError, match="upload the repository's zip into"):
        _run_cell(tmp_path / "content", monkeypatch)


def test_a_failed_install_stops_the_notebook_with_one_line(tmp_path, monkeypatch):
    content = tmp_path / "content"
    _copy_repo(content / "hdml_lite")
    with pytest.raises(RuntimeError) as err:          # colab.SetupError, as loaded by path from the copy
        _run_cell(content, monkeypatch, status=1)
    assert type(err.value).__name__ == "SetupError"
    lines = err.value._render_traceback_()
    assert len(lines) == 1 and "pip exit status 1" in lines[0] and "rerun this cell" in lines[0]


def test_setup_refuses_a_folder_that_is_no_copy(tmp_path):
    (tmp_path / "colab.py").write_text("")
    with pytest.raises(colab.SetupError, match="not inside a copy"):
        colab.setup(tmp_path / "colab.py", installer=lambda root: 0)
    copy = _copy_repo(tmp_path / "copy")
    seen = []
    assert colab.setup(copy / "hdml_lite" / "colab.py", installer=lambda r: seen.append(r) or 0) == copy.resolve()
    assert seen == [copy.resolve()]
