"""``python -m hdml_lite.study {lab,report,compare,collect,estimate,hdc}`` (see hdml_lite/study/__init__.py)."""
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
    lab.add_argument("--out", default="", help="CSV files, figures, README (default: results; scratch: results/scratch)")
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
    lab.add_argument("--fast", action="store_true", help="tiny settings, in-process: seconds (the tests)")
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
    hdc.add_argument("--out", default="results")
    hdc.add_argument("--runs", default="runs/study")
    hdc.add_argument("--fast", action="store_true", help="tiny settings, 1 seed (the tests)")
    hyp = sub.add_parser("hypotheses", help="H1-H4 (headroom, in-batch negatives, length, labels kept): compare arms "
                         "-> hypotheses.csv")
    hyp.add_argument("--out", default="results")
    hyp.add_argument("--runs", default="runs/hypotheses")
    hyp.add_argument("--jobs", type=int, default=2, help="parallel processes, 1 torch thread each (0: in-process)")
    hyp.add_argument("--fast", action="store_true", help="tiny settings (the tests)")
    hyp.add_argument("--plan", action="store_true", help="print every arm's runs and stop")
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

        out = args.out or ("results" if args.regime == "lab" else "results/scratch")
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
            s = make_settings(args.regime, runs, args.steps, args.fast, stages=stages, **kw)
        except (ConfigError, ValueError) as exc:
            print(f"study settings: {exc}", file=sys.stderr)
            return 2
        jobs = 0 if args.fast else args.jobs
        try:
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
        from .report import write_report

        print(f"wrote {write_report(args.out)}")
    elif args.command == "compare":
        from .paper import compare_file

        print(compare_file(args.csv, args.dataset))
    elif args.command == "collect":
        from .collect import collect

        collect(args.roots, args.out)
    elif args.command == "hdc":
        from .hdc import run_hdc_study

        run_hdc_study(args.out, args.runs, seeds=1 if args.fast else 3, fast=args.fast)
    elif args.command == "hypotheses":
        from ..config import ConfigError
        from .hypotheses import run_hypotheses

        try:
            run_hypotheses(args.out, args.runs, jobs=args.jobs, fast=args.fast, plan=args.plan)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "estimate":
        from .collect import estimate_markdown

        print(estimate_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
