"""``python -m hdml_lite.study {lab,report,compare,collect,estimate}`` (see hdml_lite/study/__init__.py)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hdml_lite.study", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="the lab study: selection, final runs, CSV, figures, README")
    lab.add_argument("--out", default="results", help="where the CSV files, figures and README go")
    lab.add_argument("--runs", default="", help="run folders (default runs/study; --fast: <out>/runs)")
    lab.add_argument("--steps", type=int, default=200, help="training steps of EVERY run (same budget)")
    lab.add_argument("--seeds", type=int, default=3, help="seeds of the final runs")
    lab.add_argument("--jobs", type=int, default=2, help="parallel processes, 1 torch thread each (0: in-process)")
    lab.add_argument("--fast", action="store_true", help="tiny settings, 1 seed, in-process: seconds")
    lab.add_argument("--export", action="store_true", help="train nothing: CSV/figures/README from the finished runs")
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
    args = p.parse_args(argv)

    if args.command == "lab":
        from pathlib import Path

        from .lab import export, make_settings, run_study

        runs = args.runs or (str(Path(args.out) / "runs") if args.fast else "runs/study")
        if args.export:
            export(args.out, make_settings(runs, args.steps, args.seeds, args.fast))
            return 0
        run_study(args.out, runs, steps=args.steps, seeds=args.seeds, jobs=0 if args.fast else args.jobs,
                  fast=args.fast)
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
    elif args.command == "estimate":
        from .collect import estimate_markdown

        print(estimate_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
