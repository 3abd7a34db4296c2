"""hdml_lite.colab.SETUP_CELL, run for real against a fake "/content" in tmp_path: zips with and
without a top-level folder, a clone, nothing at all, and a folder that Python could import from the
working directory although nothing is installed. pip is injected (nothing is installed) and the
installed package is simulated through importlib.metadata."""
import builtins
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hdml_lite import colab
from conftest import FakeIPython

REPO = Path(__file__).resolve().parents[1]


def _copy_repo(dest: Path) -> Path:
    """The files a copy needs to be found and installed (pyproject.toml, the package)."""
    shutil.copytree(REPO / "hdml_lite", dest / "hdml_lite",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pt", "results_data"))
    shutil.copyfile(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _zip(folder: Path, zip_path: Path, top_level: bool) -> Path:
    """Zip ``folder``'s files, inside a folder named like it (GitHub's "Download ZIP") or at the top."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, f.relative_to(folder.parent if top_level else folder))
    return zip_path


def run_cell(content: Path, monkeypatch, cwd: Path, installed=False, status=0):
    """SETUP_CELL with /content -> ``content``, run in ``cwd``. The kit counts as installed when
    ``installed`` or once the (fake) pip ran with exit status 0. Returns (namespace, pip calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(colab.SETUP_CELL.replace("/content", str(content)))
    calls, state = [], {"installed": installed}

    def pip(cmd, **kw):
        calls.append(cmd)
        state["installed"] = state["installed"] or status == 0
        return status

    real_version = importlib.metadata.version

    def version(name):
        if name == "hdml_lite" and not state["installed"]:
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(subprocess, "call", pip)
    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(sys, "path", list(sys.path))
    cwd.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(cwd)
    ns = {"__builtins__": builtins}
    ns["get_ipython"] = lambda: ns["_ip"]
    ns["_ip"] = FakeIPython(ns)
    exec(compile(code, "setup-cell", "exec"), ns)
    return ns, calls


@pytest.mark.parametrize("top_level", [True, False], ids=["zip-with-folder", "zip-without-folder"])
def test_an_uploaded_zip_is_found_with_or_without_a_top_level_folder(tmp_path, monkeypatch, top_level):
    content = tmp_path / "content"
    src = _copy_repo(tmp_path / "src" / "hdml_lite-main")
    _zip(src, content / "hdml_lite-main.zip", top_level)
    ns, calls = run_cell(content, monkeypatch, cwd=content)
    root = (content / "hdml_lite_zip" / ("hdml_lite-main" if top_level else "")).resolve()
    assert len(calls) == 1 and calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert calls[0][-1] == str(root)                      # a plain install of the unpacked copy
    assert Path.cwd() == root and ns["_ip"].cds == [root]


def test_a_clone_in_content_is_installed(tmp_path, monkeypatch):
    content = tmp_path / "content"
    copy = _copy_repo(content / "hdml_lite")
    ns, calls = run_cell(content, monkeypatch, cwd=content)
    assert [c[-1] for c in calls] == [str(copy.resolve())] and Path.cwd() == copy.resolve()


def test_an_importable_folder_in_the_working_directory_is_not_an_installed_kit(tmp_path, monkeypatch):
    """The zip unpacked by hand into /content puts hdml_lite/ in the working directory: `import
    hdml_lite` would succeed without the kit's dependencies. The cell installs the copy instead."""
    content = tmp_path / "content"
    _copy_repo(content)                                   # /content/hdml_lite/__init__.py, /content/pyproject.toml
    ns, calls = run_cell(content, monkeypatch, cwd=content)
    assert [c[-1] for c in calls] == [str(content.resolve())]


def test_an_installed_kit_is_only_imported(tmp_path, monkeypatch):
    content = tmp_path / "content"
    _copy_repo(content / "hdml_lite")
    ns, calls = run_cell(content, monkeypatch, cwd=tmp_path / "elsewhere", installed=True)
    assert calls == [] and ns["_ip"].cds == [] and ns["hdml_lite"].__name__ == "hdml_lite"


def test_neither_installed_nor_a_copy_says_what_to_do_in_one_line(tmp_path, monkeypatch):
    content = tmp_path / "content"
    content.mkdir()
    (content / "sample_data").mkdir()
    with pytest.raises(ModuleNotFoundError) as err:
        run_cell(content, monkeypatch, cwd=content)
    msg = str(err.value)
    assert "\n" not in msg and "not installed" in msg and "upload the repository's zip into" in msg
    assert "rerun this cell" in msg


def test_a_failed_install_is_one_line(tmp_path, monkeypatch):
    content = tmp_path / "content"
    _copy_repo(content / "hdml_lite")
    with pytest.raises(RuntimeError) as err:
        run_cell(content, monkeypatch, cwd=content, status=1)
    assert type(err.value).__name__ == "SetupError"
    lines = err.value._render_traceback_()
    assert len(lines) == 1 and "pip exit status 1" in lines[0]


def test_setup_requires_the_installed_package_after_pip(tmp_path, monkeypatch):
    """pip exits 0 but the kit is still not installed (another Python's pip): one line, no import
    from the folder."""
    copy = _copy_repo(tmp_path / "copy")

    def version(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(colab.SetupError, match="still not installed in this Python") as err:
        colab.setup(copy, installer=lambda root: 0)
    assert len(err.value._render_traceback_()) == 1


def test_setup_names_a_dependency_the_install_did_not_bring(tmp_path, monkeypatch):
    copy = _copy_repo(tmp_path / "copy")
    monkeypatch.setattr(colab, "NEEDED", ("torch", "no_such_module_xyz"))
    with pytest.raises(colab.SetupError, match="no_such_module_xyz cannot be imported"):
        colab.setup(copy, installer=lambda root: 0)
