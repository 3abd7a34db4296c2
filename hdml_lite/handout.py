"""The students' copy of the lab: the repository without the worked solutions, zipped.

    python -m hdml_lite handout DIR      # DIR/hdml_lite_lab/ and DIR/hdml_lite_lab.zip

The copy holds the repository's files (those git tracks or would track: ``.gitignore`` applies;
without git, the same rules by hand) except ``notebooks/solutions/`` and hidden files. Everything
sits in one top-level folder, in the zip too, so that unpacking never spills files into the
current folder (on Colab, the set-up cell finds either layout). A teaching assistant keeps the
solutions; students get the zip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

LEFT_OUT = ("notebooks/solutions/",)            # what students must not get
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", "runs", "build"}     # outputs, anywhere (git ignores them too)


def repository_root() -> Path:
    """The checkout holding this package; ValueError when the kit is installed without one."""
    root = Path(__file__).resolve().parents[1]
    if not ((root / "pyproject.toml").is_file() and (root / "notebooks").is_dir()):
        raise ValueError(f"handout: {root} is not a copy of the repository (no pyproject.toml and notebooks/): "
                         "run it from a clone of the repository, where the notebooks are")
    return root


def _git_files(root: Path) -> list[str] | None:
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True)
    return sorted(set(out.stdout.split("\0")) - {""}) if out.returncode == 0 else None


def _walked_files(root: Path) -> list[str]:
    """Without git: every file but hidden ones, outputs, caches, data/ (except its README) and weights
    other than the shipped ones (the rules of .gitignore)."""
    out = []
    for folder, dirs, names in os.walk(root):
        rel_dir = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info"))
        for n in sorted(names):
            rel = (rel_dir / n).as_posix()
            if n.startswith(".") or (rel.startswith("data/") and rel != "data/README.md"):
                continue
            if n.endswith(".pt") and not rel.startswith(("hdml_lite/weights/", "results/")):
                continue
            out.append(rel)
    return out


def student_files(root: Path) -> list[str]:
    """Repository-relative paths (posix) of the students' copy: no solutions, no hidden files."""
    files = _git_files(root)
    files = _walked_files(root) if files is None else files
    return [f for f in files if (root / f).is_file() and not f.startswith(LEFT_OUT)
            and not any(part.startswith(".") or part in SKIP_DIRS for part in Path(f).parts)]


def write_handout(dest, name: str = "hdml_lite_lab", root: Path | None = None) -> tuple[Path, Path, int]:
    """Write ``dest/name/`` (the copy) and ``dest/name.zip`` (the same files under ``name/``).

    Returns (folder, zip, number of files). ValueError, naming the path, when either exists already.
    """
    root = repository_root() if root is None else Path(root)
    dest = Path(dest).expanduser()
    folder, archive = dest / name, dest / f"{name}.zip"
    for p in (folder, archive):
        if p.exists():
            raise ValueError(f"handout: {p} exists already: remove it, or give another DIR")
    files = student_files(root)
    if not any(f.startswith("notebooks/") and f.endswith(".ipynb") for f in files):
        raise ValueError(f"handout: no notebooks under {root / 'notebooks'}: expected a copy of the repository")
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, folder / f)
    tmp = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(folder / f, f"{name}/{f}")
    os.replace(tmp, archive)
    return folder, archive, len(files)
