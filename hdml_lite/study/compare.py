"""``python -m hdml_lite compare``: one fair comparison of presets on any data set.

    python -m hdml_lite compare lab_hdml_npair lab_npair --data glyphs
    python -m hdml_lite compare lab_hdml_npair lab_npair --data folder:~/my_images --seeds 5 --out runs/cmp
    python -m hdml_lite compare lab_hdml_npair lab_npair --data glyphs --plan      # the runs, nothing trained

Every method gets the same procedure (the comparison engine, study/plan.py): its lr from the same
grid, HDML's alpha from a grid that spans the pull factor, HDC's fractions, all on a class-disjoint
validation split of the train classes (the same for every method); then final runs on paired seeds
on all train classes, scored on the test classes. Claims are "A > B" for the first preset A
against each other preset B, with verdicts supported / contradicted / equivalent (inside
±margin) / undecided; seeds are added one at a time up to ``--max-seeds`` while a verdict is
undecided. The presets' own lr, alpha and fractions are only start values here: a preset's lr was
chosen on the glyphs, so two presets side by side on other data would compare learning rates too.

``compare`` selects once (one choice of lr and alpha for every seed), unlike the lab study's
replicate design (every replicate selects again, one selection budget per method): its
intervals hold the seeds' noise, not the selection's. ``--plan`` prints every method's selection
runs, the printed report the budgets beside the verdicts, and, for the lab's presets, every way
in which the design differs from the study's (``design_lines``): where compare and the study
disagree on a claim, those differences are the cause to name.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..config import ConfigError, apply_overrides, to_dict
from .engine import (choices, is_done, is_failed, read_run, run_dir, run_rounds, selection_noise, table_rows,
                     verdict_rows)
from .files import (COMPARE_TABLE_COLUMNS, ENGAGEMENT_COLUMNS, NOISE_COLUMNS, SELECTION_COLUMNS, VERDICT_COLUMNS,
                    write_csv)
from .plan import (STAGES, Settings, Spec, overrides as run_overrides, plan_all, plan_counts, plan_final, plan_select_lr,
                   selection_budgets)
from .sequential import verdict_text
from .stats import MAX_MARGIN

PULL_TARGETS = (1.0, 0.5, 0.1, 0.01)     # the graded sweep: nothing pulled ... negatives at d+
MIN_TRAIN_CLASSES, MIN_VAL_CLASSES, MIN_TEST_CLASSES, MIN_IMAGES = 4, 2, 2, 2
BATCHED_SAMPLERS = ("npair", "m_per_class")   # data.batch_classes = classes per batch


def _kind(cfg) -> str:
    return {"hdml": "hdml", "hdc": "hdc"}.get(cfg.train.method, "plain")


def _data_overrides(data: str) -> tuple[str, list[str]]:
    """``--data`` -> (dataset name, overrides)."""
    if data == "glyphs":
        return "glyphs", []
    if data.startswith("folder:"):
        path = Path(data[len("folder:"):]).expanduser()
        if not path.is_dir():
            raise ConfigError(f"--data {data}: {str(path)!r} is not a folder; expected folder:PATH with one "
                              f"sub-folder of images per class")
        return "folder", ["data.dataset=folder", f"data.root={path}"]
    raise ConfigError(f"--data {data!r}; expected glyphs or folder:PATH")


def _count(cfg, split: str) -> tuple[int, int]:
    """(classes, median images per class) of ``split`` under ``cfg``'s data settings."""
    import numpy as np

    from ..data import config_channels, load_dataset

    ds = load_dataset(cfg.data, split, in_channels=config_channels(cfg), train_transform=False)
    counts = np.bincount(np.asarray(ds.labels, dtype=np.int64))
    counts = counts[counts > 0]
    return len(counts), int(np.median(counts)) if len(counts) else 0


def data_check(presets: list[str], cfgs: dict, extra: dict, data: str, val_classes: float, log=print) -> None:
    """The pre-flight check that ``train`` runs (data/report.py: the batch each sampler needs, the
    channels the pretrained small CNN needs, ...), here on every preset's selection-run config
    (the validation split: the fewest training classes), before the plan is printed or ``--out``
    claimed. Logs the first preset's report; raises ``DataReportError`` (one line) naming the
    presets each problem concerns."""
    from ..data import config_channels, load_dataset
    from ..data.report import DataReportError, lab_reminder, preflight, resolve_data

    found: dict[str, list[str]] = {}          # problem -> presets
    seen: dict = {}                           # data-relevant settings -> (lines, problems)
    for p in presets:
        cfg = apply_overrides(cfgs[p], list(extra[p]) + [f"data.val_classes={val_classes}"])
        key = json.dumps([to_dict(cfg)["data"], cfg.model.backbone, cfg.model.pretrained, cfg.name], default=str)
        if key not in seen:
            cfg, look = resolve_data(cfg)
            in_ch = config_channels(cfg)
            train_ds = load_dataset(cfg.data, "train", in_channels=in_ch)
            evals = {split: load_dataset(cfg.data, split, in_channels=in_ch, train_transform=False)
                     for split in ("val", "test")}
            lines, problems = preflight(cfg, look, train_ds, evals)
            reminder = lab_reminder(cfg)      # the lr is selected here: the reminder does not apply
            seen[key] = ([x for x in lines if x != reminder], problems)
        if p == presets[0]:
            for line in seen[key][0]:
                log(line)
        for problem in seen[key][1]:
            found.setdefault(problem, []).append(p)
    if found:
        listed = [f"{problem} (preset{'s' if len(ps) > 1 else ''} {', '.join(ps)})" for problem, ps in found.items()]
        raise DataReportError(f"--data {data}: every run of this comparison would fail the pre-flight check: "
                              + "; ".join(f"({i}) {x}" if len(listed) > 1 else x for i, x in enumerate(listed, 1)))


def make_compare_settings(presets: list[str], data: str, overrides: list[str], seeds: int = 5, margin: float = 1.0,
                          out: str | Path = "runs/compare", max_seeds: int = 10, lrs=(3e-4, 1e-3, 3e-3),
                          pull_targets=PULL_TARGETS, select_seeds: int = 3, val_classes: float = 0.2,
                          runs: str | Path = "", fixed: dict | None = None, parity: bool = True,
                          log=print) -> Settings:
    """Validate the request and build the engine's settings. ``margin`` in points (1 = 1 point of R@1/NMI);
    ``fixed``: {preset: {"lr": x, "alpha": a}} given instead of selected (HDML needs both); ``parity``:
    one selection budget (a baseline's lr grid gets as many seeds as HDML's lr x alpha grid has runs,
    plan.lr_seeds_of), so every method gets the same number of selection runs."""
    from ..presets import get_preset

    if len(presets) < 2:
        raise ConfigError(f"compare needs at least two presets, got {len(presets)} ({' '.join(presets) or 'none'}); "
                          f"expected e.g. `compare lab_hdml_npair lab_npair --data glyphs`")
    if len(set(presets)) != len(presets):
        raise ConfigError(f"compare: a preset is named twice ({' '.join(presets)}); expected distinct presets")
    if seeds < 2:
        raise ConfigError(f"--seeds {seeds}: a paired interval needs at least 2 seeds; expected --seeds >= 2 (5 is the default)")
    if select_seeds < 1:
        raise ConfigError(f"--select-seeds {select_seeds}: expected at least 1 seed per pull target")
    if max_seeds < seeds:
        raise ConfigError(f"--max-seeds {max_seeds} is below --seeds {seeds}; expected --max-seeds >= --seeds")
    if not (math.isfinite(margin) and 0 < margin <= 100 * MAX_MARGIN):
        raise ConfigError(f"--margin {margin:g}: expected a finite number of points above 0 and at most "
                          f"{100 * MAX_MARGIN:g} (1 = one point of R@1 / NMI)")
    dataset, data_ov = _data_overrides(data)
    cfgs = {p: apply_overrides(get_preset(p), data_ov + list(overrides)) for p in presets}
    for p in presets:
        own = get_preset(p).data.dataset
        if own != dataset and not (dataset == "folder" and own == "glyphs"):
            raise ConfigError(f"preset {p} is for data set {own!r}, not --data {data}; expected presets of "
                              f"{'the glyphs or a folder (lab_*)' if dataset == 'folder' else dataset}")
    steps = {p: c.train.steps for p, c in cfgs.items()}
    if len(set(steps.values())) > 1:
        raise ConfigError("the presets have different budgets (" + ", ".join(f"{p} {n}" for p, n in steps.items())
                          + " steps); every method needs the same budget: give train.steps=N")
    first = cfgs[presets[0]]
    val_cfg = apply_overrides(first, [f"data.val_classes={val_classes}"])
    n_tr, med_tr = _count(val_cfg, "train")
    n_val, _ = _count(val_cfg, "val")
    n_te, med_te = _count(first, "test")
    log(f"classes: {n_tr} train + {n_val} validation (data.val_classes={val_classes}: class-disjoint, the same for "
        f"every method) + {n_te} test; median images per class {med_tr} train, {med_te} test")
    problems = []
    if n_tr < MIN_TRAIN_CLASSES:
        problems.append(f"{n_tr} training classes after the validation split (needs >= {MIN_TRAIN_CLASSES})")
    if n_val < MIN_VAL_CLASSES:
        problems.append(f"{n_val} validation classes (needs >= {MIN_VAL_CLASSES}: raise data.val_classes)")
    if n_te < MIN_TEST_CLASSES:
        problems.append(f"{n_te} test classes (needs >= {MIN_TEST_CLASSES})")
    if min(med_tr, med_te) < MIN_IMAGES:
        problems.append(f"median {min(med_tr, med_te)} image(s) per class (needs >= {MIN_IMAGES})")
    if problems:
        raise ConfigError(f"--data {data} cannot support a comparison: " + "; ".join(problems))
    for p, given in (fixed or {}).items():
        if p not in presets or "lr" not in given or (_kind(cfgs[p]) == "hdml" and "alpha" not in given):
            raise ConfigError(f"fixed choices for {p} ({given}): expected a compared preset with its lr "
                              f"(and alpha for HDML)")
    specs, extras = [], {}
    for p in presets:
        c, extra = cfgs[p], []
        if c.data.sampler in BATCHED_SAMPLERS and c.data.batch_classes > n_tr:
            extra.append(f"data.batch_classes={n_tr}")
            log(f"batch rule: {p}: data.batch_classes {c.data.batch_classes} -> {n_tr} (classes per batch = "
                f"min(preset, training classes left after the validation split))")
        specs.append(Spec(p, p, tuple(extra), kind=_kind(c)))
        extras[p] = extra
    data_check(presets, cfgs, extras, data, val_classes, log=log)   # before any plan or --out (fault 23.5)
    start = start_values(presets, cfgs)
    claims = tuple((f"{presets[0]} > {b}", presets[0], b) for b in presets[1:])
    return Settings(specs=tuple(specs), runs=Path(runs) if runs else Path(out) / "runs", base=data_ov + list(overrides), steps=first.train.steps,
                    start=start, lrs=tuple(lrs), pull_targets=tuple(pull_targets), select_seeds=select_seeds,
                    seeds_key=seeds, max_seeds=max_seeds, seeds_rest=seeds, val_classes=val_classes, claims=claims,
                    headline_claims=len(claims), margin=margin / 100.0, fixed=dict(fixed or {}), parity=parity)


def start_values(presets: list[str], cfgs: dict) -> dict:
    """The start values of the selection (HDML's alpha and bn_stats during lr selection, HDC's
    fractions): for the lab's own presets the study's (keys.STARTS, so that a comparison on the
    glyphs can reuse the study's runs, ``--runs``), else each preset's own values."""
    from .keys import REGIMES, STARTS, method_key

    regimes = {p.split("_", 1)[0] for p in presets}
    if len(regimes) == 1 and next(iter(regimes)) in REGIMES:
        st = STARTS[next(iter(regimes))]
        alpha = {p: st["alpha"].get(method_key(p), float(cfgs[p].hdml.alpha)) for p in presets
                 if _kind(cfgs[p]) == "hdml"}
        return {"alpha": alpha, "bn_stats": st["bn_stats"], "fractions": tuple(st["fractions"])}
    return {"alpha": {p: float(c.hdml.alpha) for p, c in cfgs.items() if _kind(c) == "hdml"}, "bn_stats": None,
            "fractions": next((tuple(float(f) for f in c.hdc.fractions) for c in cfgs.values() if _kind(c) == "hdc"),
                              (1.0, 0.5, 0.2))}


def _identity(args: dict) -> dict:
    keys = ("presets", "data", "overrides", "seeds", "max_seeds", "margin", "lrs", "pull_targets", "select_seeds",
            "val_classes", "fixed", "parity")
    return {k: args[k] for k in keys if k in args}


def finished_runs(runs: Path) -> list[Path]:
    """The run folders under ``runs`` (``<stage>/<run>``) that finished: metrics.json, or the engine's
    failed.json of a run stopped by a non-finite loss."""
    from .engine import FAILED

    runs = Path(runs)
    return sorted(d for d in runs.glob("*/*") if (d / "metrics.json").is_file() or (d / FAILED).is_file())


def _drop_unfinished(runs: Path, log=print) -> None:
    """Remove the run folders of a comparison that finished none (a run of it still going is refused)."""
    import shutil

    from ..training.lock import out_dir_lock

    folders = [d for d in runs.glob("*/*") if d.is_dir()]
    for d in folders:
        with out_dir_lock(d, f"run folder {d} of the previous comparison", announce=lambda *_: None):
            pass
    shutil.rmtree(runs)
    if folders:
        log(f"removed {len(folders)} unfinished run folder(s) of the previous comparison in {runs}")


def claim_out(out: Path, ident: dict, runs: Path | None = None, log=print) -> None:
    """Refuse an out folder that holds another comparison with at least one finished run; one
    that has finished no run is replaced (its unfinished run folders in ``<out>/runs`` removed).
    Records this one's identity and runs folder."""
    path = out / "compare.json"
    runs = Path(runs) if runs is not None else out / "runs"
    if path.is_file():
        try:
            info = json.loads(path.read_text())
            prev = info.get("identity", {})
        except (ValueError, AttributeError):
            info, prev = {}, {"unreadable": True}
        if prev == ident:
            return
        diff = [k for k in ident if prev.get(k) != ident[k]] or ["its contents"]
        prev_runs = Path(info.get("runs") or out / "runs") if isinstance(info, dict) else out / "runs"
        done = finished_runs(prev_runs)
        if done:
            raise ConfigError(f"--out {out} holds another comparison (it differs in {', '.join(diff)}: "
                              + ", ".join(f"{k}={prev.get(k)!r}" for k in diff[:2])
                              + f"; {len(done)} of its runs finished, in {prev_runs}); expected a new folder, or "
                              f"the same command to resume that one")
        log(f"note: --out {out} held another comparison (it differed in {', '.join(diff)}) that had finished no "
            f"run: replaced by this one")
        if prev_runs.resolve() == (out / "runs").resolve() and prev_runs.is_dir():
            _drop_unfinished(prev_runs, log=log)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"identity": ident, "runs": str(runs)}, indent=1))


def design_lines(s: Settings) -> list[str]:
    """How this comparison's design differs from the lab study's (``python -m hdml_lite.study lab``,
    the replicate design): one line per difference, [] when there is none. ``compare`` selects once
    (one selection of lr and alpha for every seed, so its intervals hold the seeds' noise only) with
    its own grids; the study selects again in every replicate with one selection budget per method.
    Where the two give different verdicts on the same claim, these differences are the causes to
    name (and the choices themselves: a near-tied alpha or bn_stats can move a verdict)."""
    from .lab import make_settings

    st = make_settings("lab")
    diff = []
    if s.replicate != st.replicate:
        diff.append("selection: " + ("every replicate selects again" if s.replicate else
                                     "once for every seed (intervals hold the seeds' noise, not the selection's)")
                    + " here, " + ("every replicate selects again" if st.replicate else "once")
                    + " in the study")
    bud, bud_st = selection_budgets(s), selection_budgets(st)
    mine = dict(bud)
    theirs = {k: bud_st[k] for k in bud if k in bud_st}
    if mine != theirs:
        diff.append("selection runs per method: " + ", ".join(f"{k} {v}" for k, v in mine.items()) + " here; "
                    + (", ".join(f"{k} {v}" for k, v in theirs.items()) or "-") + " per replicate in the study")

    def norm(x):
        return tuple(float(v) for v in x) if isinstance(x, (list, tuple)) else x

    for name, a, b in (("lr grid", s.lrs, st.lrs), ("pull targets", s.pull_targets, st.pull_targets),
                       ("seeds per alpha", s.select_seeds, st.select_seeds)):
        if norm(a) != norm(b):
            diff.append(f"{name} {a} here, {b} in the study")
    if bool(s.bn_key) != bool(st.bn_key):
        def bn(x):
            return "selected" if x.bn_key else f"fixed at {x.start.get('bn_stats') or 'the preset value'}"
        diff.append(f"hdml.bn_stats {bn(s)} here, {bn(st)} in the study")

    if not diff:
        return []
    return ["design: this comparison differs from the lab study's (`python -m hdml_lite.study lab`): "
            + "; ".join(diff) + ". Where the two give different verdicts on the same claim, these differences "
            "(and the choices they lead to) are the cause to name, not the methods alone."]


def plan_lines(s: Settings) -> list[str]:
    counts = plan_counts(s)
    lines = [f"== comparison plan: {len(s.specs)} methods, {s.steps} steps per run, runs in {s.runs}"]
    lines += [f"   {st:<18}{counts[st]:>4} runs" for st in STAGES if counts[st]]
    lines.append(f"   {'total':<18}{sum(counts.values()):>4} runs at {s.seeds_key} seeds (up to "
                 f"{2 * len(s.claims) * (s.max_seeds - s.seeds_key)} more while a verdict is undecided)")
    bud = selection_budgets(s)
    lines.append("   selection runs per method: " + ", ".join(f"{k} {v}" for k, v in bud.items())
                 + ("" if len(set(bud.values())) <= 1 else "  (not all equal: printed beside the verdicts)"))
    lines.append("   first stage (every run; later stages wait for its choices):")
    lines += [f"     {r.stage}/{r.folder()}: {r.preset} " + " ".join(o for o in run_overrides(r, s)
                                                                     if not o.startswith("train.out_dir"))
              for r in plan_select_lr(s)]
    if all(sp.key.startswith("lab_") for sp in s.specs):
        lines += design_lines(s)
    return lines


def result_lines(s: Settings, table: list[dict], verdicts: list[dict], ch, noise: list[dict], wall: float) -> list[str]:
    import numpy as np

    given = f" ({', '.join(s.fixed)}: given, not selected here)" if s.fixed else ""
    lines = ["", f"chosen on the validation classes (MAP@R){given}: " + "; ".join(
        f"{k} lr {ch.lr[k]:g}" + (f", alpha {ch.alpha[k]:.3g}" if k in ch.alpha else "")
        + (f", fractions {ch.fractions[k]}" if k in ch.fractions else "") for k in ch.lr)]
    within = sum(r["within_noise"] for r in noise)
    lines.append(f"   {within} of {len(noise)} choices were within seed noise of the runner-up (selection_noise.csv)")
    lines.append("")
    head = f"{'method':<24} {'seeds':>5} " + " ".join(f"{k.upper():>13}" for k in ("r1", "map_r", "nmi"))
    lines += ["test classes, mean ± sd over seeds (%):", head, "-" * len(head)]
    for sp in s.specs:
        rows = [r for r in table if r["method"] == sp.key]
        cell = lambda k: (f"{100 * np.mean([r[k] for r in rows]):6.1f} ± {100 * np.std([r[k] for r in rows], ddof=1):4.1f}"  # noqa: E731
                          if len(rows) > 1 else "-")
        lines.append(f"{sp.key:<24} {len(rows):>5} " + " ".join(f"{cell(k):>13}" for k in ("r1", "map_r", "nmi")))
    lines += ["", "verdicts (paired seeds; A - B in points at the look that decided; interval at 1 - level; "
                  f"equivalent = the 1 - 2 level_tost interval inside ±{100 * s.margin:g} point; Holm over these "
                  "claims; P(A > B) over the paired seeds, bootstrap 95%; hdml_lite/study/sequential.py):"]
    for v in verdicts:
        ci = (f"[{100 * v['ci_low']:+.2f}, {100 * v['ci_high']:+.2f}]" if v["n_seeds"] > 1 else "[no interval]")
        pi = (f"P(A>B) {v['p_improve']:.2f} [{v['p_improve_low']:.2f}, {v['p_improve_high']:.2f}]"
              if v["n_seeds"] > 1 else "")
        lines.append(f"  {v['claim']:<40} {v['metric']:<4} n={int(v['look'])}/{int(v['n_seeds']):<2} level {v['level']:.3g} "
                     f"{100 * v['mean_diff']:+6.2f} {ci:<18} {verdict_text(v)}; Holm: {verdict_text(v, 'verdict_holm')}"
                     f"  {pi}" + (f"  (even {s.max_seeds} seeds are not enough)" if v["verdict"] == "undecided"
                                  and not v.get("reason") and v["n_seeds"] >= s.max_seeds else ""))
    if any("budget_a" in v for v in verdicts):
        lines.append("selection runs (A, B): " + "; ".join(
            f"{v['claim']} {int(v['budget_a'])}, {int(v['budget_b'])}" for v in verdicts if v["metric"] == "r1"))
    if all(sp.key.startswith("lab_") for sp in s.specs):
        lines += [""] + design_lines(s)
    lines.append(f"\ntime: {wall / 60:.1f} min wall for this invocation")
    return lines


def run_compare(presets: list[str], data: str, overrides: list[str], seeds: int = 5, margin: float = 1.0,
                out: str = "runs/compare", jobs: int = 2, plan: bool = False, max_seeds: int = 10,
                log=print, **kw) -> dict:
    """The whole comparison; returns {"table", "verdicts", "choices"} (also written to ``out``)."""
    import torch
    from tqdm.auto import tqdm

    if jobs < 0:
        raise ConfigError(f"--jobs {jobs}: expected 0 (in this process) or more parallel processes")
    out = Path(out)
    s = make_compare_settings(presets, data, overrides, seeds, margin, out, max_seeds, log=log, **kw)
    if plan:
        log("\n".join(plan_lines(s)))
        return {}
    ident = _identity({"presets": list(presets), "data": data, "overrides": list(overrides), "seeds": seeds,
                       "max_seeds": max_seeds, "margin": margin, "lrs": list(s.lrs),
                       "pull_targets": list(s.pull_targets), "select_seeds": s.select_seeds,
                       "val_classes": s.val_classes, **({"fixed": s.fixed} if s.fixed else {}),
                       **({"parity": True} if s.parity else {})})
    claim_out(out, ident, s.runs, log=log)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        with tqdm(total=sum(plan_counts(s).values()), desc="compare", unit="run") as bar:
            bar.update(sum(is_done(r, s) for r in plan_all(s, choices(s)[0])))
            timing = run_rounds(s, jobs, log=lambda *_: None, bar=bar)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    ch, sel = choices(s)
    final = [r for r in plan_final(s, ch) if is_done(r, s) and not is_failed(r, s)]
    table = table_rows(final, s)
    verdicts = verdict_rows(table, s)
    noise = selection_noise(sel)
    write_csv(out / "selection.csv", sel, SELECTION_COLUMNS)
    write_csv(out / "selection_noise.csv", noise, NOISE_COLUMNS)
    write_csv(out / "table.csv", table, COMPARE_TABLE_COLUMNS)
    write_csv(out / "verdicts.csv", verdicts, VERDICT_COLUMNS)
    from .export import engagement_row

    eng = [engagement_row(r.method, r.seed, r.alpha, read_run(run_dir(r, s))["history"]["train"])
           for r in final if s.spec(r.method).kind == "hdml"]
    if eng:
        write_csv(out / "engagement.csv", eng, ENGAGEMENT_COLUMNS)
    info = json.loads((out / "compare.json").read_text())
    info.update({"lr": ch.lr, "alpha": ch.alpha, "fractions": {k: list(v) for k, v in ch.fractions.items()},
                 "final_seeds": ch.seeds, "wall_s": info.get("wall_s", 0.0) + wall, "stage_s": timing["stage_s"],
                 "steps": s.steps, "select_metric": "map_r",
                 "design": "replicate" if s.replicate else "once", "selection_budgets": selection_budgets(s),
                 "bn_stats": s.start.get("bn_stats")})
    (out / "compare.json").write_text(json.dumps(info, indent=1))
    log("\n".join(result_lines(s, table, verdicts, ch, noise, wall)))
    return {"table": table, "verdicts": verdicts, "choices": ch}
