"""Where datasets and the glyph cache live: one rule, one function.

    $HDML_DATA                      if set (and not empty)
    else $XDG_CACHE_HOME/hdml_lite  if XDG_CACHE_HOME is set (and not empty)
    else ~/.cache/hdml_lite

The embedded glyphs are cached as ``<root>/glyphs_v*.npz``; a real dataset ``name``
lives in ``<root>/<name>/`` (``python -m hdml_lite download name``). An explicit
``data.root`` (or ``download --root``) overrides the rule. Nothing here creates folders.

``check_data_root`` checks the folder before any work (a regular file, or read-only where the
glyph cache must be written): one line naming ``HDML_DATA`` or ``data.root``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The rule in words, shared by `download --help`, the config comment and the docs.
DATA_ROOT_RULE = "$HDML_DATA if set, else $XDG_CACHE_HOME/hdml_lite (default ~/.cache/hdml_lite)"


def data_root(root: str | os.PathLike = "") -> Path:
    """The data folder: ``root`` if given, else $HDML_DATA, else $XDG_CACHE_HOME/hdml_lite,
    else ~/.cache/hdml_lite. ``~`` is expanded; empty variables count as unset."""
    if str(root):
        return Path(root).expanduser()
    if os.environ.get("HDML_DATA"):
        return Path(os.environ["HDML_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "hdml_lite"


class DataRootError(ValueError):
    """The data folder is a regular file, or cannot be written where writing is needed (one line)."""


def root_setting(root: str | os.PathLike = "") -> str:
    """Which setting chose the data folder, as the user would set it: ``data.root=...``,
    ``HDML_DATA=...`` or the default cache folder."""
    if str(root):
        return f"data.root={str(root)!r}"
    if os.environ.get("HDML_DATA"):
        return f"HDML_DATA={os.environ['HDML_DATA']!r}"
    return f"the default data folder {str(data_root())!r} ({DATA_ROOT_RULE})"


def _writable(folder: Path) -> str | None:
    """None if a file can be created in ``folder`` (tried, then removed), else the reason."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write_test.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def check_data_root(root: str | os.PathLike = "", write: bool = False, why: str = "") -> Path:
    """``data_root(root)`` after checking it can serve, before any work is done: it must not be a
    regular file (nor lie below one); with ``write``, the folder (or the first existing folder
    above it, where it is still to be created) must be writable. Raises ``DataRootError`` naming
    the setting (``data.root``, ``HDML_DATA`` or the default); returns the folder. Leaves nothing
    behind (the write check removes its probe file)."""
    path = data_root(root)
    setting = root_setting(root)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe == path and not path.is_dir():
        raise DataRootError(f"{setting} is a regular file, not a folder; expected a folder for the datasets and "
                            f"the glyph cache (point it at a folder, or unset it)")
    if not probe.is_dir():
        raise DataRootError(f"{setting} is not a folder: {probe} above it is a regular file; expected a folder "
                            f"for the datasets and the glyph cache")
    if write:
        reason = _writable(probe)
        if reason:
            need = f" to {why}" if why else ""
            raise DataRootError(f"{setting} cannot be written{need} ({reason}: {probe}); expected a writable "
                                f"folder (point it at one)")
    return path
