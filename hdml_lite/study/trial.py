"""Where a fast or partial study writes: never into the committed results.

``results/`` and its packaged copy (``hdml_lite/results_data/``) hold the study as committed. A
fast study (``--fast``: the tests' tiny settings) or a partial one (``--steps``, a subset of
``--stages``, a smaller grid) writes to ``runs/trial/<name>`` (``TRIAL_ROOT``, ignored by git)
unless ``--out`` names another folder, and says so in one line; ``--out results`` is refused.
Only the full study with its default settings writes ``results/`` (and refreshes the packaged
copy, results_data.sync_if_repo_results).

    study_changes(s, full)             # [] for the full study, else e.g. ["--fast"], ["--steps", "--stages"]
    refuse_committed(out, changes)     # ConfigError (one line) when ``out`` is a committed results folder
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from ..config import ConfigError
from ..results_data import committed_folder

TRIAL_ROOT = Path("runs") / "trial"
# the lab study's settings fields -> the option of ``python -m hdml_lite.study lab`` that sets them
OPTIONS = {"fast": "--fast", "steps": "--steps", "base": "--steps", "stages": "--stages", "lrs": "--lrs",
           "pull_targets": "--pull-targets", "hdc_fractions": "--hdc-fractions", "select_seeds": "--select-seeds",
           "seeds_key": "--seeds-key", "seeds_rest": "--seeds-rest"}


def trial_out(name: str) -> Path:
    """The default output folder of a fast or partial study ``name`` (e.g. "lab", "hypotheses")."""
    return TRIAL_ROOT / name


def study_changes(s, full) -> list[str]:
    """What makes the lab study's settings ``s`` (plan.Settings) fast or partial, as the options
    that set it; [] for the full study with its default settings (the run folder does not count).
    ``full``: the full study's settings of the same regime (``lab.make_settings(s.regime)``)."""
    if s.fast:
        return ["--fast"]
    out = []
    for f in fields(s):
        if f.name != "runs" and getattr(s, f.name) != getattr(full, f.name):
            opt = OPTIONS.get(f.name, f.name)
            if opt not in out:
                out.append(opt)
    return out


def refuse_committed(out, changes: list[str], what: str = "study", default: str = "lab") -> None:
    """ConfigError (one line) when ``out`` is, or lies in, a committed results folder and
    ``changes`` (the options making the study fast or partial) is not empty. ``default``: the
    name whose ``trial_out`` the message offers."""
    folder = committed_folder(out) if changes else None
    if folder is not None:
        raise ConfigError(f"--out {out}: a fast or partial {what} ({' '.join(changes)}) never writes into the "
                          f"committed results folder {folder}; omit --out (a trial writes to {trial_out(default)}) "
                          f"or name another folder")


def where_line(out, changes: list[str], what: str = "study") -> str:
    """The one line a fast or partial study prints before it starts: where it writes."""
    return (f"a fast or partial {what} ({' '.join(changes)}): writing to {out}, not to results/ (the committed "
            f"study); --out DIR for another folder")
