"""``python -m hdml_lite.study {lab,report,compare,collect,estimate,hdc,hypotheses,notebooks,
error-rates,reverdict}`` (see hdml_lite/study/__init__.py)."""
from __future__ import annotations

import argparse
import signal
import sys

from .keys import REGIMES
from .plan import STAGES


def _floats(text: str) -> tuple:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _fractions(text: str) -> tuple:
    return tuple(_floats(part) for part in text.split(";") if part.strip())


def _terminate(signum, frame):
    """SIGTERM (``kill <pid>``): exit through the ``finally`` blocks, so that the worker pool is
    stopped with this process instead of training on, orphaned, in folders it still locks."""
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    old = signal.getsignal(signal.SIGTERM)
    if old is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    except Exception as exc:
        from ..training.lock import OutDirLockedError

        if not isinstance(exc, OutDirLockedError):
            raise
        print(f"error: {exc}", file=sys.stderr)      # another study or run holds a run folder
        return 2
    finally:
        signal.signal(signal.SIGTERM, old)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hdml_lite.study", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="the study: selection on validation classes, final runs, CSV, figures, README")
    lab.add_argument("--regime", choices=REGIMES, default="lab",
                     help="preset family: lab (converged, pretrained start) or scratch (200 steps from scratch)")
    lab.add_argument("--out", default="", help="CSV files, figures, README (default: results; scratch: results/scratch; "
                     "a fast or partial study (--fast, --steps, --stages, a grid option): runs/trial/<regime>, "
                     "never results/)")
    lab.add_argument("--runs", default="", help="run folders (default runs/study; --fast: <out>/runs)")
    lab.add_argument("--steps", type=int, default=0, help="override every preset's step budget (0: the presets')")
    lab.add_argument("--jobs", type=int, default=2, help="parallel processes, 1 torch thread each (0: in-process)")
    lab.add_argument("--stages", default=",".join(STAGES),
                     help=f"comma-separated stages to train (others are only read): {','.join(STAGES)}")
    lab.add_argument("--lrs", type=_floats, default=None, help="lr grid, e.g. 3e-4,1e-3,3e-3")
    lab.add_argument("--pull-targets", type=_floats, default=None, help="pull factors, e.g. 1,0.9,0.7,0.5,0.3,0.1,0.01")
    lab.add_argument("--hdc-fractions", type=_fractions, default=None, help="HDC grid, e.g. '1,0.5,0.2;1,1,1'")
    lab.add_argument("--select-seeds", type=int, default=None, help="seeds of the alpha/bn/fraction selections")
    lab.add_argument("--seeds-key", type=int, default=None, help="final seeds: N-pair, triplet and their HDML")
    lab.add_argument("--seeds-rest", type=int, default=None, help="final seeds of the other methods")
    lab.add_argument("--fast", action="store_true", help="tiny settings, in-process: seconds (the tests); writes to "
                     "runs/trial/<regime> unless --out says otherwise, never to results/")
    lab.add_argument("--design", choices=("replicate", "once"), default="replicate",
                     help="replicate: every final seed repeats the whole selection with its own seeds (the interval "
                     "holds the selection's noise), one selection budget for every method; once: one selection for "
                     "every seed (the committed first study)")
    lab.add_argument("--plan", action="store_true", help="print the runs per stage and stop")
    lab.add_argument("--export", action="store_true", help="train nothing: CSV/figures/README from the finished runs")
    lab.add_argument("--fingerprint", action="store_true", help="with --plan: print the plan's fingerprint")
    lab.add_argument("--force", action="store_true",
                     help="let a partial export replace a folder that holds a complete study")
    rep = sub.add_parser("report", help="rewrite the figures and README from the CSV files in --out")
    rep.add_argument("--out", default="results")
    cmp_ = sub.add_parser("compare", help="a results CSV beside the paper's numbers (markdown)")
    cmp_.add_argument("csv")
    cmp_.add_argument("--dataset", default=None, help="paper dataset for lab rows: cub | cars | sop")
    col = sub.add_parser("collect", help="finished runs (metrics.json) under folders -> one CSV")
    col.add_argument("roots", nargs="+")
    col.add_argument("--out", default="results/paper_runs.csv")
    sub.add_parser("estimate", help="Colab T4 time estimate of each paper preset (an estimate)")
    hdc = sub.add_parser("hdc", help="HDC: both routing modes and each head alone, 3 seeds -> hdc_table.csv")
    hdc.add_argument("--out", default="", help="default: results; --fast: runs/trial/hdc (never results/)")
    hdc.add_argument("--runs", default="runs/study")
    hdc.add_argument("--fast", action="store_true", help="tiny settings, 1 seed (the tests); writes to "
                     "runs/trial/hdc unless --out says otherwise, never to results/")
    hyp = sub.add_parser("hypotheses", help="H1-H4 (headroom, in-batch negatives, length, labels kept): compare arms "
                         "-> hypotheses.csv")
    hyp.add_argument("--out", default="", help="default: results; --fast: runs/trial/hypotheses (never results/)")
    hyp.add_argument("--runs", default="", help="compare folders (default runs/hypotheses; --fast: <out>/runs)")
    hyp.add_argument("--jobs", type=int, default=2, help="parallel processes, 1 torch thread each (0: in-process)")
    hyp.add_argument("--fast", action="store_true", help="tiny settings (the tests); writes to runs/trial/hypotheses "
                     "unless --out says otherwise, never to results/")
    hyp.add_argument("--plan", action="store_true", help="print every arm's runs and stop")
    hyp.add_argument("--study", default="", help="the study whose study.json and tradeoff.csv H3 and H4 use "
                     "(default: results; --fast: <out>)")
    nbk = sub.add_parser("notebooks", help="train the notebooks' CPU-budget runs and write their pinned copy "
                         "(hdml_lite/pinned/data, what the notebooks load)")
    nbk.add_argument("--runs", default="runs/pinned", help="where the runs are trained (reloaded when finished)")
    nbk.add_argument("--out", default="", help="the pinned copy (default: the package's hdml_lite/pinned/data)")
    nbk.add_argument("--export", action="store_true", help="train nothing: write the pinned copy from finished runs")
    err = sub.add_parser("error-rates", help="the add-a-seed rule's error rates, by simulating the kit's own decision "
                         "function at paired-difference sds of 0.5, 1, 2, 3 points: a table and one JSON line")
    err.add_argument("--reps", type=int, default=100_000, help="simulated comparisons per sd (default 100000)")
    rev = sub.add_parser("reverdict", help="every committed verdict again under the sequential rule, Holm and "
                         "P(A > B), from the committed per-seed tables (nothing trained) -> verdicts_v2.csv")
    rev.add_argument("--results", default="results", help="the committed results folder to read")
    rev.add_argument("--out", default="", help="where verdicts_v2.csv and verdicts_per_seed.csv go (default: --results)")
    args = p.parse_args(argv)
    if getattr(args, "jobs", 0) < 0:   # documented: 0 = in-process, N >= 1 processes; nothing else
        print(f"--jobs={args.jobs}: expected 0 (in-process) or a number of parallel processes >= 1",
              file=sys.stderr)
        return 2

    if args.command == "lab":
        from pathlib import Path

        from ..config import ConfigError
        from .export import export
        from .lab import make_settings, plan_summary, run_study
        from .trial import refuse_committed, study_changes, trial_out, where_line

        out = args.out or (str(trial_out(args.regime)) if args.fast else
                           "results" if args.regime == "lab" else "results/scratch")
        runs = args.runs or (str(Path(out) / "runs") if args.fast else "runs/study")
        stages = tuple(x.strip() for x in args.stages.split(",") if x.strip())
        bad = [x for x in stages if x not in STAGES]
        if bad:
            print(f"--stages: unknown stage {bad[0]!r}; expected some of {', '.join(STAGES)}", file=sys.stderr)
            return 2
        kw = {k: v for k, v in dict(lrs=args.lrs, pull_targets=args.pull_targets, hdc_fractions=args.hdc_fractions,
                                    select_seeds=args.select_seeds, seeds_key=args.seeds_key,
                                    seeds_rest=args.seeds_rest).items() if v is not None}
        try:
            s = make_settings(args.regime, runs, args.steps, args.fast, design=args.design, stages=stages, **kw)
        except (ConfigError, ValueError) as exc:
            print(f"study settings: {exc}", file=sys.stderr)
            return 2
        jobs = 0 if args.fast else args.jobs
        full = make_settings(args.regime, runs, design=args.design)    # the full study of this design
        changes = study_changes(s, full)    # fast or partial: never into results/ (trial.py)
        if changes and not args.out:
            out = str(trial_out(args.regime))
        try:
            if changes and not args.plan:
                refuse_committed(out, changes, default=args.regime)
                print(where_line(out, changes))
            if args.plan:
                print(plan_summary(s, jobs, fingerprint=args.fingerprint))
            elif args.export:
                export(out, s, force=args.force)
            else:
                run_study(out, s, jobs=jobs, force=args.force)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "report":
        from pathlib import Path

        from .cost import study_cost_lines
        from .report import write_report

        cost = study_cost_lines(results=args.out) if (Path(args.out) / "verdicts_v2.csv").is_file() else None
        print(f"wrote {write_report(args.out, cost)}")
    elif args.command == "compare":
        from .paper import compare_file

        print(compare_file(args.csv, args.dataset))
    elif args.command == "collect":
        from .collect import collect

        collect(args.roots, args.out)
    elif args.command == "hdc":
        from ..config import ConfigError
        from .hdc import run_hdc_study
        from .trial import refuse_committed, trial_out, where_line

        out = args.out or (str(trial_out("hdc")) if args.fast else "results")
        try:
            if args.fast:
                refuse_committed(out, ["--fast"], "HDC study", "hdc")
                print(where_line(out, ["--fast"], "HDC study"))
            run_hdc_study(out, args.runs, seeds=1 if args.fast else 3, fast=args.fast)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "hypotheses":
        from pathlib import Path

        from ..config import ConfigError
        from .hypotheses import run_hypotheses
        from .trial import refuse_committed, trial_out, where_line

        out = args.out or (str(trial_out("hypotheses")) if args.fast else "results")
        runs = args.runs or (str(Path(out) / "runs") if args.fast else "runs/hypotheses")
        try:
            if args.fast and not args.plan:
                refuse_committed(out, ["--fast"], "hypotheses run", "hypotheses")
                print(where_line(out, ["--fast"], "hypotheses run"))
            run_hypotheses(out, runs, jobs=args.jobs, fast=args.fast, plan=args.plan,
                           study=args.study or (out if args.fast else "results"))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "notebooks":
        from ..pinned.generate import PinnedError
        from ..pinned.generate import main as pin_main

        try:
            return pin_main(args.runs, args.out, train_runs=not args.export)
        except PinnedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "error-rates":
        from .sequential import error_rates, error_rates_lines

        if args.reps < 100:
            print(f"--reps {args.reps}: expected at least 100 simulated comparisons", file=sys.stderr)
            return 2
        print("\n".join(error_rates_lines(error_rates(reps=args.reps))))
    elif args.command == "reverdict":
        from .reverdict import write_reverdict

        try:
            lines = write_reverdict(args.results, args.out or None)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        print("\n".join(lines))
        print(f"wrote {args.out or args.results}/verdicts_v2.csv and verdicts_per_seed.csv")
        from ..results_data import sync_if_repo_results

        sync_if_repo_results(args.out or args.results)      # the copy an installed kit (Colab) reads
    elif args.command == "estimate":
        from .collect import estimate_markdown
        from .cost import study_cost_lines

        print(estimate_markdown())
        print("\n".join(study_cost_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
