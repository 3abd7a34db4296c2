"""The study's result tables that the notebooks read, shipped inside the package.

An installed kit (``pip install .``, e.g. on Colab) has no ``results/`` folder next to it, so the
few CSV files the notebooks read are copied here at export time; ``find_results`` prefers the
checkout's ``results/`` and falls back to this copy.

    find_results()                        # $HDML_RESULTS, else <repo>/results, else this folder
    sync_packaged_results("results")      # refresh this copy from the study's results/
    sync_if_repo_results(out)             # the same, when ``out`` is the checkout's results/ (export, hypotheses)
    committed_folder(out)                 # the committed folder that ``out`` lies in (a fast study refuses it)

Pure standard library: no import of the rest of the kit (the study's export can call it).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

PACKAGED_DIR = Path(__file__).resolve().parent
# The files the notebooks read, relative to results/. A file absent from results/ is absent here.
PACKAGED = ("lab_table.csv", "curves.csv", "sweep.csv", "verdicts.csv", "mechanism.csv", "engagement.csv",
            "selection.csv", "study.json", "tradeoff.csv", "hypotheses.csv", "verdicts_v2.csv", "scratch/engagement.csv", "scratch/lab_table.csv")


def repo_results() -> Path | None:
    """``<checkout>/results`` when this package lives in a checkout holding that folder, else None."""
    root = PACKAGED_DIR.parents[1]
    res = root / "results"
    return res if (root / "pyproject.toml").is_file() and res.is_dir() else None


def find_results() -> Path:
    """The folder to read results from: ``$HDML_RESULTS`` when set, else the checkout's ``results/``,
    else the copy packaged with the kit (``PACKAGED_DIR``)."""
    if os.environ.get("HDML_RESULTS"):
        return Path(os.environ["HDML_RESULTS"]).expanduser()
    return repo_results() or PACKAGED_DIR


def committed_folder(out) -> Path | None:
    """The committed results folder that ``out`` is, or lies inside, else None: the checkout's
    ``results/``, a ``results/`` folder in the working directory, or this packaged copy.

    A fast or partial study (the tests, a trial) must never write there (study/trial.py)."""
    target = Path(out).expanduser().resolve()
    for folder in (repo_results(), Path.cwd() / "results", PACKAGED_DIR):
        if folder is not None and folder.is_dir() and target.is_relative_to(folder.resolve()):
            return folder
    return None


def sync_packaged_results(results_dir, dest: Path | None = None) -> list[str]:
    """Copy each of ``PACKAGED`` from ``results_dir`` into ``dest`` (default: this package folder),
    and delete the packaged copy of any file that ``results_dir`` no longer has.

    Returns the relative paths copied. Raises FileNotFoundError when ``results_dir`` is not a folder.
    """
    src, dest = Path(results_dir), Path(dest) if dest is not None else PACKAGED_DIR
    if not src.is_dir():
        raise FileNotFoundError(f"results folder {src} does not exist")
    copied = []
    for rel in PACKAGED:
        target = dest / rel
        if (src / rel).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
            copied.append(rel)
        elif target.is_file():
            target.unlink()
    return copied


def sync_if_repo_results(out) -> list[str]:
    """``sync_packaged_results(out)`` when ``out`` is this checkout's ``results/`` (what the study's
    export and the hypotheses write), else nothing. Returns the relative paths copied."""
    res = repo_results()
    if res is None or Path(out).resolve() != res.resolve():
        return []
    return sync_packaged_results(out)
