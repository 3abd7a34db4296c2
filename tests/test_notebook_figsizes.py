"""Figures drawn in the notebooks' own code cells fit a laptop screen (the kit's figure functions are
measured in tests/test_figures_readable.py; this covers what the notebooks draw themselves).

Static: every ``figsize=(W, H)`` and ``set_size_inches(W, H)`` in a code cell of a notebook or solution
must have a width that is provably at most ``palette.FIG_MAX_W`` inches: a number, the name
``FIG_MAX_W``, or ``min(...)`` with one such argument. A width that grows with a count
(``5.5 * len(maps)``) fails: use ``viz.tsne.map_grid`` or cap it with ``min(FIG_MAX_W, ...)``.
Every ``legend(fontsize=N)`` with a number must have N >= ``palette.LEGEND_PT``.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from hdml_lite.viz.palette import FIG_MAX_W, LEGEND_PT

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))


def _code_cells(nb: dict) -> list[tuple[int, str]]:
    """(cell index, source) of each code cell, IPython's ``!``/``%`` lines blanked so that ast parses it."""
    out = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code":
            continue
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        lines = ["" if line.lstrip().startswith(("!", "%")) else line for line in src.splitlines()]
        out.append((i, "\n".join(lines)))
    return out


def _width_ok(node: ast.expr) -> bool:
    """True when ``node`` is provably <= FIG_MAX_W inches without running the cell."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value <= FIG_MAX_W
    if isinstance(node, ast.Name):
        return node.id == "FIG_MAX_W"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "min":
        return any(_width_ok(a) for a in node.args)
    return False


def too_wide(source: str) -> list[str]:
    """The figure widths (as written) in ``source`` that are not provably <= FIG_MAX_W, and every
    numeric legend font size below LEGEND_PT."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        widths = [kw.value.elts[0] for kw in node.keywords
                  if kw.arg == "figsize" and isinstance(kw.value, (ast.Tuple, ast.List)) and kw.value.elts]
        widths += [kw.value for kw in node.keywords if kw.arg == "figsize" and not isinstance(kw.value, (ast.Tuple, ast.List))]
        if isinstance(node.func, ast.Attribute) and node.func.attr == "set_size_inches" and node.args:
            first = node.args[0]
            widths.append(first.elts[0] if isinstance(first, (ast.Tuple, ast.List)) and first.elts else first)
        bad += [f"figure width {ast.unparse(w)}" for w in widths if not _width_ok(w)]
        if isinstance(node.func, ast.Attribute) and node.func.attr == "legend":
            bad += [f"legend fontsize {ast.unparse(kw.value)}" for kw in node.keywords
                    if kw.arg == "fontsize" and isinstance(kw.value, ast.Constant)
                    and isinstance(kw.value.value, (int, float)) and kw.value.value < LEGEND_PT]
    return bad


@pytest.mark.parametrize("source, expected", [
    ("fig, ax = plt.subplots(figsize=(6.5, 3.4))", []),
    ("fig, ax = plt.subplots(figsize=(FIG_MAX_W, 3.4))", []),
    ("fig, ax = plt.subplots(figsize=(min(FIG_MAX_W, 1.4 * len(x)), 3))", []),
    ("fig, axes = plt.subplots(1, 3, figsize=(17, 4.3))", ["figure width 17"]),
    ("fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))", ["figure width 11"]),
    ("fig, axes = plt.subplots(1, len(maps), figsize=(5.5 * len(maps), 5.5))", ["figure width 5.5 * len(maps)"]),
    ("fig = plt.figure(figsize=[13, 6.5])", ["figure width 13"]),
    ("fig.set_size_inches(12, 4)", ["figure width 12"]),
    ("ax.legend(fontsize=8)", ["legend fontsize 8"]),
    ("ax.legend(fontsize=LEGEND_PT)", []),
    ("!pip list\nfig, ax = plt.subplots(figsize=(10, 2))", ["figure width 10"]),
])
def test_the_scan_finds_wide_figures_and_small_legends(source, expected):
    nb = {"cells": [{"cell_type": "code", "source": source}]}
    assert [b for _, s in _code_cells(nb) for b in too_wide(s)] == expected


def test_no_notebook_draws_a_figure_wider_than_a_laptop_screen():
    assert len(NOTEBOOKS) >= 12
    found = []
    for path in NOTEBOOKS:
        for i, source in _code_cells(json.loads(path.read_text(encoding="utf-8"))):
            found += [f"{path.relative_to(REPO)} cell {i}: {b}" for b in too_wide(source)]
    assert not found, (f"wider than FIG_MAX_W = {FIG_MAX_W} in or legend below LEGEND_PT = {LEGEND_PT} pt "
                       "(use viz.tsne.map_grid or min(FIG_MAX_W, ...)):\n" + "\n".join(found))
