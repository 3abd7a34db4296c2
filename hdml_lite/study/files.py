"""The study's file formats: CSV columns and one reader/writer (no other study module imported here).

Every CSV the study writes has its columns fixed below; scores are fractions (0-1).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

TABLE_COLUMNS = ("method", "seed", "nmi", "f1", "r1", "r2", "r4", "r8", "map_r", "train_s")
CURVE_COLUMNS = ("method", "seed", "step", "split", "nmi", "f1", "r1")   # nmi, f1: the final step only (k-means)
SWEEP_COLUMNS = ("alpha", "pull_target", "seed", "split", "r1", "nmi", "f1", "pull_factor_median", "method")
SELECTION_COLUMNS = ("stage", "method", "lr", "alpha", "setting", "seed", "val_r1", "val_nmi", "val_f1",
                     "val_map_r", "chosen", "replicate")
# A verdict (study/sequential.py): statistics at the look that decided (``look`` paired seeds of ``n_seeds``),
# ci_* the 1 - level t-interval, tost_* the 1 - 2 level_tost interval, p / p_tost over the whole design,
# Holm within ``family``; p_improve: P(A > B) over the paired seeds, with a bootstrap 95% interval.
VERDICT_STATS = ("n_seeds", "look", "level", "level_tost", "mean_diff", "ci_low", "ci_high", "tost_low", "tost_high",
                 "margin", "p", "p_tost", "verdict", "reason", "p_holm", "p_tost_holm", "verdict_holm", "p_improve",
                 "p_improve_low", "p_improve_high")
VERDICT_COLUMNS = ("claim", "family", "metric") + VERDICT_STATS + ("budget_a", "budget_b")   # selection runs per
# replicate of A and of B (plan.selection_budgets: equal under the study's one-budget design)
MECHANISM_KEYS = ("ce_real", "acc_real", "acc_syn", "weight_syn", "pull_factor", "hard_real", "hard_aug", "hard_gen")
MECHANISM_COLUMNS = ("method", "seed", "step") + MECHANISM_KEYS
CONDITIONS = ("classifier", "labels", "weight", "pull", "hardness")   # hdml.diagnostics.engagement's v2 keys
CONDITIONS_V1 = ("classifier", "weight", "pull", "hardness")
ENGAGEMENT_COLUMNS = ("method", "seed", "alpha", "acc_syn", "pull_median") + tuple(
    f"{c}_{k}" for c in CONDITIONS for k in ("value", "ok")) + ("engaged_v1", "engaged_v2")
TRADEOFF_COLUMNS = ("method", "alpha", "pull_target", "seed", "pull_median", "acc_syn", "hard_ratio", "val_map_r",
                    "val_r1")
NOISE_COLUMNS = ("stage", "method", "best", "runner_up", "gap", "noise_se", "within_noise", "seed_sd", "n_values",
                 "replicate")
CHOICE_COUNT_COLUMNS = ("stage", "method", "value", "chosen", "replicates", "share")
BUDGET_COLUMNS = ("method", "selection_runs", "lr_seeds")
HYPOTHESES_COLUMNS = ("hypothesis", "setting", "loss", "family", "metric") + VERDICT_STATS + ("engaged_v2",
                                                                                             "hdml_alpha")
HYPOTHESES_SEED_COLUMNS = ("hypothesis", "setting", "loss", "method", "seed", "r1", "r2", "r4", "r8", "map_r", "nmi",
                           "f1", "train_s")
PER_SEED_COLUMNS = ("source", "claim", "metric", "seed", "a", "b", "score_a", "score_b", "diff")
COMPARE_TABLE_COLUMNS = ("method", "seed", "r1", "r2", "r4", "r8", "map_r", "nmi", "f1", "train_s")


def _cell(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return "" if v is None else v


def write_csv(path: str | Path, rows: list[dict], columns) -> None:
    """``rows`` -> CSV with exactly ``columns`` (missing keys: empty cells; extra keys dropped)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in columns})


def read_rows(path: str | Path) -> list[dict]:
    """A CSV -> rows with numeric cells as floats (``seed``, ``step`` as ints); empty cells dropped."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {}
            for k, v in r.items():
                if v in ("", None):
                    continue
                try:
                    row[k] = float(v)
                except ValueError:
                    row[k] = v
            for k in ("seed", "step", "n_seeds", "look"):
                if isinstance(row.get(k), float) and row[k].is_integer():
                    row[k] = int(row[k])
            rows.append(row)
    return rows


def header(path: str | Path) -> tuple[str, ...]:
    with open(path, newline="") as f:
        return tuple(next(csv.reader(f)))


def _mode(vals: list):
    """The value seen most often; ties: the earliest (so replicate 0's where it ties first)."""
    return max(vals, key=lambda v: (vals.count(v), -vals.index(v)))


def _modal_alpha(st: dict, reps: list[dict], key: str) -> float:
    """HDML's alpha in the replicate design: each replicate turns the pull targets into its own alphas
    (its own J_avg, ``stats.alpha_grid``), so the alphas themselves rarely repeat (except 0, at pull
    target 1). The mode is taken over the pull targets; the alpha is the earliest replicate's at that
    target. Without J_avg or pull targets in study.json: the mode of the alphas."""
    from .stats import alpha_grid

    chosen = [c for c in reps if key in c.get("alpha", {})]
    targets = st.get("pull_targets")
    if not targets or not all(key in c.get("j_avg", {}) for c in chosen):
        return _mode([c["alpha"][key] for c in chosen])
    pulled = [min(zip(alpha_grid(c["j_avg"][key], targets), targets), key=lambda t: abs(t[0] - c["alpha"][key]))[1]
              for c in chosen]
    return chosen[pulled.index(_mode(pulled))]["alpha"][key]


def study_choices(study_json: str | Path, loss: str) -> dict | None:
    """``Settings.fixed`` for ``lab_<loss>`` and ``lab_hdml_<loss>`` from the study's choices
    (each method's lr, HDML's alpha; in the replicate design the value chosen in most replicates,
    ``replicate_choices``); None without a study.json."""
    path = Path(study_json)
    if not path.is_file():
        return None
    st = json.loads(path.read_text())
    base, hdml = f"lab_{loss}", f"lab_hdml_{loss}"
    reps = [c for _, c in sorted(st.get("replicate_choices", {}).items(), key=lambda kv: int(kv[0]))]
    if reps:         # the replicate design: the value chosen in most replicates (ties: the earliest replicate's)
        lrs = lambda key: [c["lr"][key] for c in reps if key in c.get("lr", {})]  # noqa: E731
        return {base: {"lr": _mode(lrs(base))}, hdml: {"lr": _mode(lrs(hdml)), "alpha": _modal_alpha(st, reps, hdml)}}
    return {base: {"lr": st["lr"][base]}, hdml: {"lr": st["lr"][hdml], "alpha": st["alpha"][hdml]}}
