"""Paper protocol on a GPU: collect finished runs into the study's CSV format, and estimate run times.

    python -m hdml_lite.study collect /content/drive/MyDrive/hdml_runs --out results/paper_runs.csv
    python -m hdml_lite.study estimate                      # the Colab T4 time estimate per paper preset

``collect`` walks the given folders for ``metrics.json`` (written when a run finishes) and
writes one row per run: ``method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s`` (+ ``r10,r100,r1000``
for SOP), scores as fractions, like ``results/lab_table.csv``. Unfinished runs (a
checkpoint but no metrics) are listed so they can be resumed.

The time estimate is arithmetic, not a measurement (no GPU was available where the kit was
written): see ``estimate_hours`` for every assumption.
"""
from __future__ import annotations

import json
from pathlib import Path

from .files import TABLE_COLUMNS, write_csv

SOP_EXTRA = ("r10", "r100", "r1000")

# --- assumptions of the estimate (all stated in results/README.md) --------------------
GOOGLENET_GMACS_224 = 1.5      # GoogLeNet forward, multiply-adds per 224x224 image (torchvision: 1.50 GMACs)
TRAIN_FACTOR = 3.0             # forward + backward ~ 3x the forward cost
T4_EFFECTIVE_TFLOPS = 8.0      # T4: 65 TFLOPS fp16 tensor peak; ~12% reached by a small-batch CNN with AMP
COLAB_DECODE_IMG_S = 300.0     # JPEG decode + resize + crop on Colab's 2 vCPUs (2 DataLoader workers)
TEST_IMAGES = {"cub": 5924, "cars196": 8131, "sop": 60502}


def find_runs(roots) -> tuple[list[Path], list[Path]]:
    """(finished run folders, unfinished ones) under ``roots``."""
    done, pending = [], []
    for root in roots:
        root = Path(root)
        for ck in sorted(set(root.rglob("metrics.json")) | set(root.rglob("checkpoint.pt"))):
            d = ck.parent
            if (d / "metrics.json").is_file():
                done.append(d)
            elif d not in pending:
                pending.append(d)
    return sorted(set(done)), [d for d in pending if d not in done]


def run_row(path: Path) -> dict:
    m = json.loads((Path(path) / "metrics.json").read_text())
    test = m.get("test") or {}
    return {"method": m.get("name", Path(path).name), "seed": m.get("seed", 0), "train_s": m.get("train_s"),
            **{k: v for k, v in test.items() if k in TABLE_COLUMNS or k in SOP_EXTRA}}


def collect(roots, out: str | Path) -> list[dict]:
    """Write ``out`` (CSV) from the finished runs under ``roots``; returns the rows."""
    done, pending = find_runs(roots)
    rows = [run_row(d) for d in done]
    cols = list(TABLE_COLUMNS) + [k for k in SOP_EXTRA if any(k in r for r in rows)]
    write_csv(Path(out), rows, cols)
    print(f"{len(rows)} finished run(s) -> {out}")
    for d in pending:
        print(f"unfinished (rerun its train command to resume): {d}")
    return rows


def estimate_hours(preset: str) -> dict:
    """Colab T4 time estimate for one run of a paper preset (an ESTIMATE, see the constants).

    GPU time = images seen x GoogLeNet training FLOPs / T4 effective throughput; input time
    = images / decode rate; a step waits for the slower of the two. Evaluation = (test images
    x evaluations) forward passes, also bounded by decoding.
    """
    from ..presets import get_preset

    cfg = get_preset(preset)
    d = cfg.data
    batch = d.batch_classes * (3 if d.sampler == "triplet" else d.images_per_class)   # triplet: a, p, n
    images = batch * cfg.train.steps
    gflop_img = 2 * GOOGLENET_GMACS_224 * (d.image_size / 224) ** 2       # forward FLOPs per image
    gpu_s = images * gflop_img * TRAIN_FACTOR / (T4_EFFECTIVE_TFLOPS * 1e3)
    input_s = images / COLAB_DECODE_IMG_S
    n_eval = (cfg.train.steps // cfg.train.eval_every if cfg.train.eval_every else 0) or 1
    test = TEST_IMAGES[d.dataset]
    eval_s = n_eval * test * max(gflop_img / (T4_EFFECTIVE_TFLOPS * 1e3), 1 / COLAB_DECODE_IMG_S)
    total = max(gpu_s, input_s) + eval_s
    return {"preset": preset, "steps": cfg.train.steps, "batch": batch, "images": images,
            "gpu_h": gpu_s / 3600, "input_h": input_s / 3600, "evals": n_eval, "eval_h": eval_s / 3600,
            "total_h": total / 3600}


def estimate_markdown(presets=None) -> str:
    from ..presets import list_presets

    presets = presets or [p for p in list_presets() if not p.startswith(("lab_", "scratch_"))]
    lines = ["| preset | steps | batch | images seen | GPU compute (h) | JPEG decoding (h) | evaluations | "
             "evaluation (h) | estimated total (h) |", "|---|---|---|---|---|---|---|---|---|"]
    for p in presets:
        e = estimate_hours(p)
        lines.append(f"| `{p}` | {e['steps']} | {e['batch']} | {e['images'] / 1e6:.2f} M | {e['gpu_h']:.2f} | "
                     f"{e['input_h']:.2f} | {e['evals']} | {e['eval_h']:.2f} | **{e['total_h']:.1f}** |")
    return "\n".join(lines) + "\n"

