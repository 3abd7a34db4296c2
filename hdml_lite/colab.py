"""Set-up on Colab (or any Python without the kit): find a copy of the repository, install it.

The notebooks' set-up cell loads this file by its path (the kit is not importable yet), so it uses
the standard library only and imports nothing from the kit:

    colab = <this file, loaded by path>
    root = colab.setup(path_of_this_file)   # installs the copy with pip; raises SetupError if that fails
    %cd {root}                               # then `import hdml_lite` imports the copy

The cell finds the copy where a student puts it on Colab: cloned into ``/content/<folder>``, or
uploaded as a zip to ``/content`` (the cell unpacks it with ``unzip -n``, which never overwrites
and drops ".." and absolute member paths). The install is a plain
``pip install <copy>`` (not editable: an editable install needs a kernel restart), and it never
touches Colab's Jupyter stack: JupyterLab and the widgets are the kit's ``[lab]`` extra, not
requirements. Nothing here uses the network except the pip process itself.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

MARKER = Path("hdml_lite") / "colab.py"      # a folder holding this (and pyproject.toml) is a copy


class SetupError(RuntimeError):
    """The set-up failed. In IPython it shows as its one-line message (no traceback), and, being an
    error, it stops "Run all" before the next cell imports a broken install."""

    def _render_traceback_(self):            # IPython calls this instead of printing a traceback
        return [f"SetupError: {self}"]


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
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))       # `import hdml_lite` finds the copy, as it would from its folder
    importlib.invalidate_caches()
    return root
