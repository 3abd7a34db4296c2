"""The lab reproduction study: plan, run (resumable, 2 processes), collect into CSV files.

    python -m hdml_lite.study lab                     # the whole study (see results/README.md)
    python -m hdml_lite.study lab --fast --out /tmp/s # tiny settings, seconds (the tests)

Three stages, every run on the embedded glyphs with the lab presets and the same budget:

1. ``select_lr``: each baseline (and HDC) with lr in ``LRS``, seed 0, trained on 80% of
   the TRAIN classes (``data.val_classes=0.2``), scored on the other 20% (validation).
2. ``select_alpha``: HDML(N-pair) and HDML(triplet) with alpha in ``ALPHAS_*``, at the lr
   chosen for their base loss; same split. The N-pair grid is also the alpha sweep
   (paper fig. 6-7), reported on the validation and the test classes.
3. ``final``: every method with its chosen values, ``seeds`` seeds, trained on ALL
   train classes, the final model scored on the test classes. N-pair, HDML(N-pair) and
   the two HDML ablations (no softmax, no reconstruction) are evaluated along the way
   for the learning curves (paper fig. 4-5).

Choice rule: highest validation Recall@1 (ties: NMI). The test classes are never used
for a choice. A run whose ``metrics.json`` exists is skipped, an interrupted one
resumes from its checkpoint, so rerunning the command continues the study.
"""
from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

BASELINES = ("lab_contrastive", "lab_triplet", "lab_semihard", "lab_lifted", "lab_npair", "lab_angular", "lab_hdc")
HDML = {"lab_hdml_npair": "lab_npair", "lab_hdml_triplet": "lab_triplet"}      # HDML run -> its baseline
METHODS = BASELINES[:6] + ("lab_hdml_triplet", "lab_hdml_npair", "lab_hdc")    # the table's order
ABLATIONS = {"lab_hdml_npair_nosoftmax": ["hdml.softmax=false"], "lab_hdml_npair_norecon": ["hdml.recon=false"]}
CURVE_METHODS = ("lab_npair", "lab_hdml_npair", *ABLATIONS)
LRS = (1e-3, 3e-3)
# J_avg of the lab runs falls from ~6 to ~1.7 (N-pair) and from ~100 to ~11 (triplet, a sum over 22
# triplets), so these grids span pull factors exp(-alpha/J_avg) from 1 (alpha=0: no pulling) to ~0 (full).
ALPHAS_NPAIR = (0.0, 0.5, 1.0, 2.0, 4.0, 90.0)
ALPHAS_TRIPLET = (2.0, 7.0, 30.0)
VAL_CLASSES = 0.2

FAST = ["train.steps=6", "train.eval_every=0", "train.ckpt_every=0", "data.max_classes=10",
        "data.max_per_class=6", "data.batch_classes=4", "data.images_per_class=2", "model.width=4",
        "model.embedding_size=8", "hdml.block=2", "hdml.gen_hidden=16", "hdc.head_dim=8", "train.device=cpu"]

TABLE_COLUMNS = ("method", "seed", "nmi", "f1", "r1", "r2", "r4", "r8", "map_r", "train_s")
CURVE_COLUMNS = ("method", "seed", "step", "split", "nmi", "f1", "r1")
SWEEP_COLUMNS = ("alpha", "seed", "split", "r1", "nmi", "f1")
SELECTION_COLUMNS = ("stage", "method", "lr", "alpha", "seed", "val_r1", "val_nmi", "val_f1", "val_map_r", "chosen")


@dataclass
class Run:
    """One training run: a preset plus overrides, in its own folder."""
    stage: str
    method: str                      # table name, e.g. lab_hdml_npair_norecon
    preset: str
    seed: int
    lr: float
    alpha: float | None = None
    extra: list = field(default_factory=list)

    def overrides(self, settings: "Settings") -> list[str]:
        ov = list(settings.base) + [f"train.seed={self.seed}", f"optim.lr={self.lr:g}", "train.progress=false",
                                    f"train.out_dir={self.out_dir(settings)}"]
        ov.append(f"data.val_classes={VAL_CLASSES if self.stage != 'final' else 0.0}")
        curves = self.stage == "final" and self.method in CURVE_METHODS
        ov.append(f"train.eval_every={settings.eval_every if curves else 0}")
        if self.alpha is not None:
            ov.append(f"hdml.alpha={self.alpha:g}")
        return ov + list(self.extra)

    def out_dir(self, settings: "Settings") -> Path:
        tag = f"lr{self.lr:g}" + (f"_a{self.alpha:g}" if self.alpha is not None else "")
        return settings.runs / self.stage / f"{self.method}__{tag}__seed{self.seed}"


@dataclass
class Settings:
    runs: Path                       # run folders (runs/study/steps<N>/...)
    steps: int
    seeds: int
    eval_every: int
    base: list                       # overrides applied to every run
    lrs: tuple = LRS
    alphas_npair: tuple = ALPHAS_NPAIR
    alphas_triplet: tuple = ALPHAS_TRIPLET
    fast: bool = False


def make_settings(runs_root: str | Path, steps: int = 200, seeds: int = 3, fast: bool = False) -> Settings:
    """The study's settings; ``fast``: 6 steps, 1 seed, tiny data and smaller grids (the tests)."""
    if fast:
        return Settings(runs=Path(runs_root) / "fast", steps=6, seeds=1, eval_every=3, base=FAST + ["train.steps=6"],
                        lrs=LRS[:1], alphas_npair=(0.0, 2.0), alphas_triplet=(7.0,), fast=True)
    base = [f"train.steps={steps}", f"train.ckpt_every={max(1, steps // 4)}"]
    return Settings(runs=Path(runs_root) / f"steps{steps}", steps=steps, seeds=seeds,
                    eval_every=max(1, steps // 5), base=base)


# ---------------------------------------------------------------- plan
def plan_select_lr(s: Settings) -> list[Run]:
    return [Run("select_lr", m, m, 0, lr) for m in BASELINES for lr in s.lrs]


def plan_select_alpha(s: Settings, lr: dict) -> list[Run]:
    runs = [Run("select_alpha", "lab_hdml_npair", "lab_hdml_npair", 0, lr["lab_npair"], a) for a in s.alphas_npair]
    runs += [Run("select_alpha", "lab_hdml_triplet", "lab_hdml_triplet", 0, lr["lab_triplet"], a)
             for a in s.alphas_triplet]
    return runs


def plan_final(s: Settings, lr: dict, alpha: dict) -> list[Run]:
    """The final runs, in the order they are trained: HDML and its baselines and ablations first
    (a study cut short still has the key comparisons), then the others. Methods whose lr (or
    alpha) is not chosen yet are left out."""
    runs = []
    for seed in range(s.seeds):
        for m in METHODS:
            base = HDML.get(m, m)
            if base in lr and (m not in HDML or m in alpha):
                runs.append(Run("final", m, m, seed, lr[base], alpha.get(m)))
        if "lab_npair" in lr and "lab_hdml_npair" in alpha:
            for m, extra in ABLATIONS.items():
                runs.append(Run("final", m, "lab_hdml_npair", seed, lr["lab_npair"], alpha["lab_hdml_npair"], extra))
    # HDML, its baselines and ablations first (all seeds), then the other methods seed by seed
    return sorted(runs, key=lambda r: (r.method not in CURVE_METHODS + tuple(HDML) + tuple(HDML.values()), r.seed))


# ---------------------------------------------------------------- execution
_EVAL_CACHE: dict = {}


def _materialise(ds):
    """Apply the deterministic test transform once: a tensor dataset with the same items."""
    import torch
    from torch.utils.data import TensorDataset

    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    out = TensorDataset(xs, torch.as_tensor(ds.labels))
    out.labels = ds.labels
    return out


def _eval_sets(cfg) -> dict:
    """The trainer's evaluation sets (val if any, test), cached per process (HDML_SPEC 4)."""
    from ..data import input_channels, load_dataset

    in_ch = input_channels(cfg.data.dataset, cfg.model.backbone)
    d = cfg.data
    splits = (["val"] if d.val_classes > 0 else []) + ["test"]
    out = {}
    for split in splits:
        key = (split, d.dataset, d.root, d.image_size, d.resize, d.transforms, d.val_classes, d.max_classes,
               d.max_per_class, in_ch)
        if key not in _EVAL_CACHE:
            _EVAL_CACHE[key] = _materialise(load_dataset(d, split, in_channels=in_ch, train_transform=False))
        out[split] = _EVAL_CACHE[key]
    return out


def run_one(preset: str, overrides: list[str]) -> str:
    """Train one run unless its metrics.json exists; returns its folder. Records the seconds spent
    in intermediate evaluations (``eval_s.json``) so that training time can exclude them."""
    from ..config import apply_overrides
    from ..presets import get_preset
    from ..training import trainer

    cfg = apply_overrides(get_preset(preset), overrides)
    out = Path(cfg.train.out_dir)
    if (out / "metrics.json").is_file():
        return str(out)
    eval_s = [0.0]
    evaluate = trainer.evaluate

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return evaluate(*a, **k)
        finally:
            eval_s[0] += time.perf_counter() - t0

    trainer.evaluate = timed
    cpu0 = time.process_time()
    try:
        res = trainer.train(cfg, eval_sets=_eval_sets(cfg))
    finally:
        trainer.evaluate = evaluate
    final_eval = sum(1 for e in res.history["eval"] if e["step"] == cfg.train.steps)
    n_evals = max(1, len({(e["step"], e["split"]) for e in res.history["eval"]}))
    # the final evaluation runs after the timed loop: subtract only the intermediate ones
    inter = eval_s[0] * (n_evals - final_eval) / n_evals
    (out / "eval_s.json").write_text(json.dumps({"eval_s": eval_s[0], "intermediate_eval_s": inter,
                                                 "cpu_s": time.process_time() - cpu0}))
    return str(out)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _job(args):
    t0 = time.perf_counter()
    path = run_one(*args)
    return path, time.perf_counter() - t0


def execute(runs: list[Run], s: Settings, jobs: int = 2, log=print) -> int:
    """Run ``runs`` (skipping finished ones) in ``jobs`` processes (0: in this process).
    Returns the number of runs trained."""
    todo = [r for r in runs if not (r.out_dir(s) / "metrics.json").is_file()]
    log(f"{len(runs) - len(todo)} of {len(runs)} runs already done; {len(todo)} to go")
    args = [(r.preset, r.overrides(s)) for r in todo]
    if not todo:
        return 0
    t0 = time.perf_counter()
    if jobs <= 0:
        results = (_job(a) for a in args)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"          # inherited by the spawned workers
        os.environ["MKL_NUM_THREADS"] = "1"
        pool = mp.get_context("spawn").Pool(jobs, initializer=_init_worker)
        results = pool.imap_unordered(_job, args)
    try:
        for i, (path, sec) in enumerate(results, 1):
            log(f"[{i}/{len(todo)}] {Path(path).name} done in {sec:.0f} s (elapsed {time.perf_counter() - t0:.0f} s)")
    finally:
        if jobs > 0:
            pool.close()
            pool.join()
    return len(todo)


# ---------------------------------------------------------------- reading results
def read_run(path: Path) -> dict:
    """metrics.json + history.json (+ eval_s.json) of a finished run."""
    path = Path(path)
    m = json.loads((path / "metrics.json").read_text())
    m["history"] = json.loads((path / "history.json").read_text())
    ev = path / "eval_s.json"
    m["intermediate_eval_s"] = json.loads(ev.read_text())["intermediate_eval_s"] if ev.is_file() else 0.0
    return m


def choose(rows: list[dict], key: str) -> float:
    """The value of ``key`` with the best validation R@1 (ties: NMI, then the smaller value)."""
    best = max(rows, key=lambda r: (round(r["val_r1"], 6), round(r["val_nmi"], 6), -r[key]))
    return best[key]


def selection_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        val = read_run(r.out_dir(s))["val"]
        rows.append({"stage": r.stage, "method": r.method, "lr": r.lr, "alpha": "" if r.alpha is None else r.alpha,
                     "seed": r.seed, "val_r1": val["r1"], "val_nmi": val["nmi"], "val_f1": val["f1"],
                     "val_map_r": val["map_r"], "chosen": 0})
    return rows


def mark_chosen(rows: list[dict], key: str) -> dict:
    """{method: chosen value}, and sets ``chosen`` = 1 on the chosen rows."""
    out = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == m]
        out[m] = choose(mine, key)
        for r in mine:
            r["chosen"] = int(r[key] == out[m])
    return out


def table_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        m = read_run(r.out_dir(s))
        t = m["test"]
        rows.append({"method": r.method, "seed": r.seed, **{k: t[k] for k in TABLE_COLUMNS[2:-1]},
                     "train_s": m["train_s"] - m["intermediate_eval_s"]})
    return rows


def curve_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        if r.method in CURVE_METHODS:
            for e in read_run(r.out_dir(s))["history"]["eval"]:
                rows.append({"method": r.method, "seed": r.seed, "step": e["step"], "split": e["split"],
                             **{k: e[k] for k in ("nmi", "f1", "r1")}})
    return rows


def sweep_rows(runs: list[Run], s: Settings) -> list[dict]:
    rows = []
    for r in runs:
        if r.method == "lab_hdml_npair":
            m = read_run(r.out_dir(s))
            for split in ("val", "test"):
                rows.append({"alpha": r.alpha, "seed": r.seed, "split": split,
                             **{k: m[split][k] for k in ("r1", "nmi", "f1")}})
    return rows


def write_csv(path: Path, rows: list[dict], columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


# ---------------------------------------------------------------- the study
def finished(runs: list[Run], s: Settings) -> list[Run]:
    return [r for r in runs if (r.out_dir(s) / "metrics.json").is_file()]


def choices(s: Settings) -> tuple[list[Run], list[dict], dict, list[Run], list[dict], dict]:
    """From the finished selection runs: (lr runs, their rows, chosen lr, alpha runs, their rows,
    chosen alpha). A method is chosen for only once all of its grid has finished."""
    sel_lr = plan_select_lr(s)
    done = finished(sel_lr, s)
    complete = [r for r in done if all(q in done for q in sel_lr if q.method == r.method)]
    rows_lr = selection_rows(complete, s)
    lr = mark_chosen(rows_lr, "lr")
    if "lab_npair" not in lr and "lab_triplet" not in lr:
        return sel_lr, rows_lr, lr, [], [], {}
    sel_alpha = [r for r in plan_select_alpha(s, {**{"lab_npair": 0, "lab_triplet": 0}, **lr})
                 if HDML[r.method] in lr]
    done = finished(sel_alpha, s)
    complete = [r for r in done if all(q in done for q in sel_alpha if q.method == r.method)]
    rows_alpha = selection_rows(complete, s)
    return sel_lr, rows_lr, lr, sel_alpha, rows_alpha, mark_chosen(rows_alpha, "alpha")


def export(out: str | Path, s: Settings, extra: dict | None = None, log=print) -> dict:
    """CSV files, study.json, figures and README from the runs finished so far (a partial
    study gives partial tables; ``python -m hdml_lite.study lab --export`` any time)."""
    out = Path(out)
    sel_lr, rows_lr, lr, sel_alpha, rows_alpha, alpha = choices(s)
    final = finished(plan_final(s, lr, alpha), s)
    write_csv(out / "selection.csv", rows_lr + rows_alpha, SELECTION_COLUMNS)
    write_csv(out / "lab_table.csv", table_rows(final, s), TABLE_COLUMNS)
    write_csv(out / "curves.csv", curve_rows(final, s), CURVE_COLUMNS)
    write_csv(out / "sweep.csv", sweep_rows(finished(sel_alpha, s), s), SWEEP_COLUMNS)
    total = len(plan_select_lr(s)) + len(plan_select_alpha(s, {"lab_npair": 0, "lab_triplet": 0})) + 11 * s.seeds
    n_done = len(rows_lr) + len(rows_alpha) + len(final)
    info = {"steps": s.steps, "seeds": s.seeds, "fast": s.fast, "lr": lr, "alpha": alpha,
            "lrs": list(s.lrs), "alphas_npair": list(s.alphas_npair), "alphas_triplet": list(s.alphas_triplet),
            "val_classes": VAL_CLASSES, "eval_every": s.eval_every, "runs": str(s.runs),
            "runs_done": n_done, "runs_total": total, **(extra or {})}
    if "lab_npair" in lr:   # the sweep's N-pair reference: same 80% of the train classes, seed 0, chosen lr
        ref = next(r for r in sel_lr if r.method == "lab_npair" and r.lr == lr["lab_npair"])
        info["sweep_reference"] = {split: read_run(ref.out_dir(s))[split] for split in ("val", "test")}
    done_runs = finished(sel_lr + sel_alpha, s) + final
    info["sum_train_s"] = sum(read_run(r.out_dir(s))["train_s"] for r in done_runs)
    cpu = [json.loads((r.out_dir(s) / "eval_s.json").read_text()).get("cpu_s") for r in done_runs
           if (r.out_dir(s) / "eval_s.json").is_file()]
    cpu = [c for c in cpu if c is not None]
    if cpu:   # CPU seconds per run (training + evaluations), measured with time.process_time
        info["cpu_s_per_run"] = sum(cpu) / len(cpu)
        info["cpu_s_measured_runs"] = len(cpu)
    old = out / "study.json"
    if "wall_s" not in info and old.is_file():   # an export keeps the duration of the study it exports
        prev = json.loads(old.read_text())
        if (prev.get("steps"), prev.get("seeds"), prev.get("runs")) == (s.steps, s.seeds, str(s.runs)):
            info.update({k: prev[k] for k in ("wall_s", "jobs") if k in prev})
    (out / "study.json").write_text(json.dumps(info, indent=1))
    from .report import write_report

    write_report(out)
    log(f"exported {n_done} of {total} runs to {out}")
    return info


def run_study(out: str | Path = "results", runs_root: str | Path = "runs/study", steps: int = 200, seeds: int = 3,
              jobs: int = 2, fast: bool = False, log=print) -> dict:
    """All three stages, then the CSV files, figures and README in ``out``. Returns study.json's dict.

    Stage 2 also runs the final runs of HDML's baselines (they need only their lr), so no core
    idles while the alpha grid finishes; a resumed study whose alpha is known runs every
    remaining final run in stage 2. Final runs go in ``plan_final``'s order (HDML first)."""
    import torch

    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if jobs <= 0:
        torch.set_num_threads(1)
    try:
        out = Path(out)
        s = make_settings(runs_root, steps, seeds, fast)
        log(f"== study: {s.steps} steps per run, {s.seeds} seed(s), runs in {s.runs}, results in {out}")
        sel_lr = plan_select_lr(s)
        log(f"== stage 1: lr selection on the validation classes ({len(sel_lr)} runs)")
        trained = execute(sel_lr, s, jobs, log)
        lr = choices(s)[2]
        log(f"chosen lr: {lr}")
        sel_alpha = plan_select_alpha(s, lr)
        # while the alpha grid runs: the final runs of HDML's two baselines; the other methods wait
        # for stage 3 (after HDML), so a study cut short still has the key comparisons
        base_final = [r for r in plan_final(s, lr, {}) if r.method in HDML.values()]
        if all(m in choices(s)[5] for m in HDML):   # a resumed study: alpha known, no stage boundary
            base_final = plan_final(s, lr, choices(s)[5])
        log(f"== stage 2: alpha selection on the validation classes ({len(sel_alpha)} runs), "
            f"then final runs ({len(base_final)})")
        trained += execute(sel_alpha + base_final, s, jobs, log)
        alpha = choices(s)[5]
        log(f"chosen alpha: {alpha}")
        final = plan_final(s, lr, alpha)
        log(f"== stage 3: final runs on all train classes, scored on the test classes ({len(final)} runs)")
        trained += execute(final, s, jobs, log)
        wall = time.perf_counter() - t0
        old = Path(out) / "study.json"
        if old.is_file():   # a resumed study: add the earlier invocations' time
            prev = json.loads(old.read_text())
            if (prev.get("steps"), prev.get("seeds"), prev.get("runs")) == (s.steps, s.seeds, str(s.runs)):
                wall = prev.get("wall_s", 0.0) + (wall if trained else 0.0)
        info = export(out, s, {"jobs": jobs, "wall_s": wall}, log)
    finally:
        torch.set_num_threads(threads)
    log(f"== done in {time.perf_counter() - t0:.0f} s: {out}")
    return info
