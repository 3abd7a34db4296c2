"""Where datasets and the glyph cache live: one rule, one function.

    $HDML_DATA                      if set (and not empty)
    else $XDG_CACHE_HOME/hdml_lite  if XDG_CACHE_HOME is set (and not empty)
    else ~/.cache/hdml_lite

The embedded glyphs are cached as ``<root>/glyphs_v*.npz``; a real dataset ``name``
lives in ``<root>/<name>/`` (``python -m hdml_lite download name``). An explicit
``data.root`` (or ``download --root``) overrides the rule. Nothing here creates folders.
"""
from __future__ import annotations

import os
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
