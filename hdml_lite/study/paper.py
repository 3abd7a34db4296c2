"""The papers' numbers as data (METHOD §1.8 and §2) and a table that sets any results CSV beside them.

    python -m hdml_lite.study compare results/paper_runs.csv          # runs named cub_*, cars196_*, sop_*
    python -m hdml_lite.study compare results/lab_table.csv --dataset cars   # lab runs vs the paper's Cars rows

A results CSV has one row per run (``method,seed,nmi,f1,r1,...``, scores as fractions);
``method`` is the preset name (``cub_hdml_npair``, ``lab_npair``, ...). Rows of the same
method are averaged over seeds. The paper's numbers are percentages.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .files import read_rows

# METHOD §1.8 (HDML, CVPR 2019, tables 1-3), in %. SOP reports R@1, R@10, R@100.
PAPER = {
    "cub": {
        "triplet": dict(nmi=49.8, f1=15.0, r1=35.9, r2=47.7, r4=59.1, r8=70.0),
        "hdml_triplet": dict(nmi=55.1, f1=21.9, r1=43.6, r2=55.8, r4=67.7, r8=78.3),
        "npair": dict(nmi=60.2, f1=28.2, r1=51.9, r2=64.3, r4=74.9, r8=83.2),
        "hdml_npair": dict(nmi=62.6, f1=31.6, r1=53.7, r2=65.7, r4=76.7, r8=85.7),
        "hdc": dict(r1=60.7),                 # HDC paper (ICCV 2017), METHOD §2
    },
    "cars196": {
        "triplet": dict(nmi=52.9, f1=17.9, r1=45.1, r2=57.4, r4=69.7, r8=79.2),
        "hdml_triplet": dict(nmi=59.4, f1=27.2, r1=61.0, r2=72.6, r4=80.7, r8=88.5),
        "npair": dict(nmi=62.7, f1=31.8, r1=68.9, r2=78.9, r4=85.8, r8=90.9),
        "hdml_npair": dict(nmi=69.7, f1=41.6, r1=79.1, r2=87.1, r4=92.1, r8=95.5),
        "hdc": dict(r1=83.8),
    },
    "sop": {
        "triplet": dict(nmi=86.3, f1=20.2, r1=53.9, r10=72.1, r100=85.7),
        "hdml_triplet": dict(nmi=87.2, f1=22.5, r1=58.5, r10=75.5, r100=88.3),
        "npair": dict(nmi=87.9, f1=27.1, r1=66.4, r10=82.9, r100=92.1),
        "hdml_npair": dict(nmi=89.3, f1=32.2, r1=68.7, r10=83.2, r100=92.4),
        "hdc": dict(r1=70.1),
    },
}
DISPLAY = {"triplet": "Triplet", "hdml_triplet": "HDML (Triplet)", "npair": "N-pair", "hdml_npair": "HDML (N-pair)",
           "hdc": "HDC", "contrastive": "Contrastive", "semihard": "Semi-hard triplet", "lifted": "Lifted structure",
           "angular": "Angular", "hdml_npair_nosoftmax": "HDML (N-pair) w/o softmax",
           "hdml_npair_norecon": "HDML (N-pair) w/o reconstruction",
           "hdml_npair_nosoftmax_wmatch": "HDML (N-pair) w/o softmax, weight matched",
           "contrastive_hdcbatch": "Contrastive (HDC's batch)"}
DATASETS = {"cub": "CUB-200-2011", "cars196": "Cars196", "sop": "Stanford Online Products"}
ALIASES = {"cars": "cars196", "car": "cars196", "cub200": "cub", "cub-200-2011": "cub", "sop": "sop"}
SMALL_METRICS = ("nmi", "f1", "r1", "r2", "r4", "r8")
SOP_METRICS = ("nmi", "f1", "r1", "r10", "r100")
NAMES = {"nmi": "NMI", "f1": "F1", "r1": "R@1", "r2": "R@2", "r4": "R@4", "r8": "R@8", "r10": "R@10",
         "r100": "R@100", "r1000": "R@1000", "map_r": "MAP@R"}


def dataset_key(name: str) -> str:
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in PAPER:
        raise ValueError(f"dataset {name!r}; expected one of {', '.join(PAPER)} (or cars)")
    return key


def split_name(run_name: str) -> tuple[str | None, str, bool]:
    """``cub_hdml_npair_official`` -> ("cub", "hdml_npair", True); ``lab_npair`` (or ``scratch_npair``)
    -> (None, "npair", False)."""
    official = run_name.endswith("_official")
    base = run_name[: -len("_official")] if official else run_name
    for ds in PAPER:
        if base.startswith(ds + "_"):
            return ds, base[len(ds) + 1:], official
    lab = base.startswith(("lab_", "scratch_"))
    return None, base.split("_", 1)[1] if lab else base, official


def summarise(rows: list[dict], metrics) -> dict:
    """{method: {metric: (mean %, std %, n)}} over seeds (population std; 0 with one seed)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for m in metrics:
            v = r.get(m)
            if isinstance(v, float) and math.isfinite(v):
                acc[r["method"]][m].append(100.0 * v)
    out = {}
    for meth, ms in acc.items():
        out[meth] = {}
        for m, v in ms.items():
            mean = sum(v) / len(v)
            out[meth][m] = (mean, math.sqrt(sum((x - mean) ** 2 for x in v) / len(v)), len(v))
    return out


def _cell(x) -> str:
    if x is None:
        return "-"
    mean, std, n = x
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def compare_markdown(rows: list[dict], dataset: str | None = None) -> str:
    """Markdown: for each method of ``rows``, our mean ± std, the paper's number and the gap (ours -
    paper, points). Runs named ``<dataset>_...`` are compared with that dataset's rows; other runs
    (the lab's) with ``dataset``'s rows, flagged as a different dataset."""
    groups: dict = defaultdict(list)
    for r in rows:
        ds, _, _ = split_name(str(r["method"]))
        groups[ds or (dataset_key(dataset) if dataset else None)].append(r)
    parts = []
    for ds, rs in groups.items():
        metrics = SOP_METRICS if ds == "sop" else SMALL_METRICS
        summ = summarise(rs, metrics)
        lab = any(split_name(str(r["method"]))[0] is None for r in rs)
        title = DATASETS.get(ds, "no paper dataset")
        if lab and ds:
            title = f"lab runs (glyphs) beside the paper's {title} numbers: a DIFFERENT dataset, compare trends only"
        parts.append(f"### {title}\n")
        head = "| method | seeds | row | " + " | ".join(NAMES[m] for m in metrics) + " |"
        parts += [head, "|" + "---|" * (len(metrics) + 3)]
        for meth, ms in summ.items():
            _, key, official = split_name(meth)
            n = max(v[2] for v in ms.values())
            label = DISPLAY.get(key, key) + (" [official settings]" if official else "")
            parts.append(f"| {label} (`{meth}`) | {n} | ours | " + " | ".join(_cell(ms.get(m)) for m in metrics) + " |")
            ref = PAPER.get(ds, {}).get(key) if ds else None
            if ref:
                parts.append("| | | paper | " + " | ".join(f"{ref[m]:.1f}" if m in ref else "-" for m in metrics) + " |")
                gaps = [f"{ms[m][0] - ref[m]:+.1f}" if (m in ref and m in ms) else "-" for m in metrics]
                parts.append("| | | gap | " + " | ".join(gaps) + " |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def compare_file(path, dataset: str | None = None) -> str:
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return compare_markdown(rows, dataset)


__all__ = ["PAPER", "DISPLAY", "compare_markdown", "compare_file", "summarise", "read_rows", "split_name"]


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(compare_file(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
