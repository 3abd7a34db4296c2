"""Set-up on Colab (or any Python without the kit): find a copy of the repository, install it.

The notebooks' set-up cell (``SETUP_CELL`` below, the same in every notebook) loads this file by its
path (the kit is not importable yet), so it uses the standard library only and imports nothing
from the kit:

    colab = <this file, loaded by path>
    root = colab.setup(path_of_this_file)   # installs the copy with pip; raises SetupError if that fails
    %cd {root}                               # then `import hdml_lite` imports the copy

The cell finds the copy where a student puts it on Colab: cloned into ``/content/<folder>``, or
uploaded as a zip to ``/content``, with or without a top-level folder inside the zip (the cell
unpacks every zip into ``/content/hdml_lite_zip`` with ``unzip -n``, which never overwrites and
drops ".." and absolute member paths). It only counts the kit as there when it is *installed*
(``importlib.metadata`` knows it): a folder named ``hdml_lite`` in the working directory that
Python could import, without the kit's dependencies, is not an installed kit. When neither an
installed kit nor a copy is found, it stops with one line saying what to do. The install is a
plain ``pip install <copy>`` (not editable: an editable install needs a kernel restart), and it
never touches Colab's Jupyter stack: JupyterLab and the widgets are the kit's ``[lab]`` extra, not
requirements. Nothing here uses the network except the pip process itself.

Each Colab notebook runs on its own fresh machine: runs trained in one notebook are gone in the
next unless ``HDML_RUNS`` points at a mounted Drive folder (docs/TEACHING.md).
"""
from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

MARKER = Path("hdml_lite") / "colab.py"      # a folder holding this (and pyproject.toml) is a copy
NEEDED = ("torch", "openTSNE", "sklearn", "matplotlib")   # imported by every notebook: the install brought them

# The first code cell of every notebook (tests/test_colab_setup.py runs it against a fake /content;
# scripts/sync_setup_cell.py writes it into the notebooks).
SETUP_CELL = """\
# Set-up. Where the kit is installed (a clone with `pip install -e ".[lab]"`), this cell only imports it.
# On Colab, first put a copy of the repository into /content, then run this cell:
#   - while the repository is not public: upload its zip (Files panel, drop it into /content);
#   - once it is public: !git clone https://github.com/hdml-lite/hdml_lite /content/hdml_lite
# The cell unpacks the zip (with or without a top-level folder), installs the copy with pip (Colab's own
# Jupyter is left alone: JupyterLab and the widgets are the kit's [lab] extra) and %cd's into it. It
# accepts only the installed kit, never a folder that merely sits in the working directory. If the
# install fails, it stops here with one line saying why. Each Colab notebook starts on a fresh
# machine: to keep runs between notebooks, set HDML_RUNS to a Drive folder (docs/TEACHING.md).
from importlib.metadata import PackageNotFoundError, version
try:
    version("hdml_lite")                     # installed with pip, not just a folder named hdml_lite here
    import hdml_lite
except PackageNotFoundError:
    import glob
    import importlib.util
    !unzip -qn '/content/*.zip' -d /content/hdml_lite_zip > /dev/null 2>&1
    found = sorted(glob.glob("../hdml_lite/colab.py") + glob.glob("/content/hdml_lite/colab.py")
                   + glob.glob("/content/*/hdml_lite/colab.py") + glob.glob("/content/*/*/hdml_lite/colab.py"))
    if not found:
        raise ModuleNotFoundError("hdml_lite is not installed and /content holds no copy of it: upload the "
                                  "repository's zip into /content (or clone it there), then rerun this cell")
    spec = importlib.util.spec_from_file_location("hdml_lite_colab", found[0])
    colab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(colab)           # hdml_lite/colab.py: the standard library only
    root = colab.setup(found[0])             # pip install <copy>; raises SetupError (one line) on failure
    %cd {root}
    import hdml_lite"""


class SetupError(RuntimeError):
    """The set-up failed. In IPython it shows as its one-line message (no traceback), and, being an
    error, it stops "Run all" before the next cell imports a broken install."""

    def _render_traceback_(self):            # IPython calls this instead of printing a traceback
        return [f"SetupError: {self}"]


def installed() -> bool:
    """True when the kit is installed in this Python (pip knows it), not merely importable from a folder."""
    from importlib import metadata

    try:
        metadata.version("hdml_lite")
    except metadata.PackageNotFoundError:
        return False
    return True


def is_copy(folder) -> bool:
    """True when ``folder`` holds a copy of the repository (pyproject.toml and hdml_lite/colab.py)."""
    folder = Path(folder)
    return (folder / "pyproject.toml").is_file() and (folder / MARKER).is_file()


def pip_install(root: Path) -> int:
    """``python -m pip install -q <root>`` in this kernel's Python; returns pip's exit status."""
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            str(root)])


def setup(start, installer=pip_install) -> Path:
    """Install the copy of the repository that holds ``start`` (the path of this file, or the copy's
    folder) and put it first on ``sys.path``. Returns the copy's folder: ``%cd`` into it next.

    installer: a function (root) -> exit status (default ``pip_install``; the tests inject one).
    Raises SetupError, with what to do, when ``start`` is no copy or the install fails.
    """
    start = Path(start).resolve()
    root = next((p for p in [start, *start.parents] if is_copy(p)), None)
    if root is None:
        raise SetupError(f"{start} is not inside a copy of the hdml_lite repository "
                         "(a folder with pyproject.toml and hdml_lite/colab.py)")
    status = installer(root)
    if status != 0:
        raise SetupError(f"installing {root} failed (pip exit status {status}); read pip's message above, fix "
                         "the cause (network, disk space) and rerun this cell")
    importlib.invalidate_caches()
    if not installed():
        raise SetupError(f"pip finished, but hdml_lite is still not installed in this Python ({sys.executable}): "
                         f"run `pip install {root}` in a terminal and read its message, then rerun this cell")
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        raise SetupError(f"hdml_lite is installed but {', '.join(missing)} cannot be imported: run "
                         f"`pip install {root}` again and read its message, then restart the runtime")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))       # `import hdml_lite` finds the copy, as it would from its folder
    importlib.invalidate_caches()
    return root
