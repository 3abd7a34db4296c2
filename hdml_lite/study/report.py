"""Figures and ``results/README.md`` from the study's CSV files (rerunnable: ``python -m hdml_lite.study report``).

Reads ``lab_table.csv``, ``verdicts.csv``, ``sweep.csv``, ``selection.csv``, ``mechanism.csv``,
``engagement.csv``, ``curves.csv`` and ``study.json`` in the results folder; writes
``lab_table.png``, ``sweep.png``, ``mechanism.png``, ``curves.png`` and ``README.md``. The
verdicts are computed by a fixed rule (``study/sequential.py``: the add-a-seed boundary, Holm within
families, P(A > B)), not written by hand; with ``verdicts_v2.csv`` (``python -m hdml_lite.study
reverdict``) the page gets the section "Verdicts under the new rules" (``reverdict_report.py``);
hand-written notes can be added in ``notes.md`` beside the CSV files and are included verbatim.
"""
from __future__ import annotations

import json
from pathlib import Path

from .collect import estimate_markdown
from .figures import plot_curves, plot_mechanism_from_rows, plot_sweep, plot_table, plot_tradeoff
from .files import VERDICT_COLUMNS, read_rows
from .paper import compare_markdown
from .reverdict_report import reverdict_section
from .tables import (engagement_table, findings_lines, hypotheses_section, label, main_table, noise_table, ordered,
                     paired_selection_lines, selection_table, sweep_table, timing_table, tradeoff_lines, verdict_table)

REGIME_TEXT = {"lab": "converged lab regime (pretrained small CNN fine-tuned to a plateau)",
               "scratch": "scratch regime (small CNN trained from scratch, short budget)"}


# ---------------------------------------------------------------- markdown
def _levels_text() -> str:
    """The boundary of the study's design, from sequential.levels: "per look, two-sided p <= ...". """
    from .sequential import DESIGN, levels

    lv, lt = levels(*DESIGN)
    return (f"at {DESIGN[0]}..{DESIGN[1]} seeds, per look: two-sided p <= {lv:.3g} and each one-sided TOST "
            f"p <= {lt:.3g}")


def _old_rule_note(verdicts: list[dict]) -> str:
    """A line for a verdicts.csv written by the first rule (no ``verdict_holm`` column), else ""."""
    if not verdicts or any("verdict_holm" in v for v in verdicts):
        return ""
    return ("\n**This study's verdicts below were made by the first rule** (`--design once`: every look at "
            "5%, 95% interval, 90% equivalence interval, no Holm), as the study ran. The section \"Verdicts "
            "under the new rules\" gives every claim again under the rule above, without re-training.\n")


def _curves_note(curves: list[dict]) -> str:
    """" R@1 along training; NMI and F1 ...": when the curves hold k-means metrics at the final step only."""
    if curves and any("nmi" not in r for r in curves):
        return (" R@1 along training; NMI and F1 (k-means) at the final evaluation only (intermediate "
                "evaluations compute the retrieval metrics only).")
    return ""


def _findings_note(verdicts: list[dict], out: Path) -> str:
    """Under first-rule findings: where the same claims stand after the re-verdict (``verdicts_v2.csv``)."""
    if any("verdict_holm" in v for v in verdicts) or not (out / "verdicts_v2.csv").is_file():
        return ""
    return ("\nThese are the first rule's verdicts, as the study ran (`--design once`). Under the current "
            "rules (boundary per look, Holm) they change: see \"Verdicts under the new rules\" below, which "
            "the prose of this page follows.\n")


def write_report(out: str | Path, cost_lines: list[str] | None = None) -> Path:
    """Figures + README.md in ``out`` from the CSV files there. Returns the README path.
    ``cost_lines``: the re-run's cost for the re-verdict section (``cost.study_cost_lines``; the
    ``report`` command passes them; not imported here: cost -> hypotheses -> compare -> export ->
    report would be an import circle)."""
    out = Path(out)
    study = json.loads((out / "study.json").read_text()) if (out / "study.json").is_file() else {}
    regime = study.get("regime", "lab")
    load = lambda n: read_rows(out / n) if (out / n).is_file() else []  # noqa: E731
    data = {n: load(f"{n}.csv") for n in ("lab_table", "curves", "sweep", "selection", "verdicts", "mechanism", "selection_noise", "tradeoff",
                                         "engagement", "hypotheses")}
    data["hypotheses_info"] = (json.loads((out / "hypotheses.json").read_text())
                               if (out / "hypotheses.json").is_file() else {})
    data["lab_table"] = ordered(data["lab_table"])
    if data["lab_table"]:
        plot_table(data["lab_table"], out / "lab_table.png", regime)
    if data["curves"]:
        plot_curves(data["curves"], out / "curves.png", regime)
    if data["tradeoff"]:
        plot_tradeoff(data["tradeoff"], out / "tradeoff.png", regime)
    if data["sweep"]:
        plot_sweep(data["sweep"], out / "sweep.png", regime, study.get("sweep_reference"), study.get("alpha"))
    if data["mechanism"]:
        plot_mechanism_from_rows(data["mechanism"], out / "mechanism.png", regime)
    path = out / "README.md"
    data["cost_lines"] = cost_lines
    path.write_text(render(study, data, out))
    return path


RUNBOOK = """\
## Paper protocol on a GPU (runbook)

The lab study above runs on a CPU with a tiny CNN. The paper's protocol (GoogLeNet
pretrained on ImageNet, 227x227 crops, batch 128/120, 8000 steps) needs a GPU.
`notebooks/06_paper_protocol.ipynb` runs it cell by cell on Colab (download, the uint8 cache,
N-pair and HDML(N-pair) over paired seeds with resume, the table beside the paper's numbers,
the t-SNE map); `python bench/gpu_check.py` measures a GPU first. The same from a shell, on Colab:

```python
# Colab cell 1 (run it again after every disconnect): install, mount Drive. The runs live on
# Drive, so a disconnect loses at most the steps since the last checkpoint.
!pip install -q git+https://github.com/hdml-lite/hdml_lite
from google.colab import drive
drive.mount('/content/drive')
%env HDML_DATA=/content/data
%env RUNS=/content/drive/MyDrive/hdml_runs
```

```bash
# cell 2: the data (md5-checked; /content is wiped by a disconnect, so rerun this cell too;
# Cars196 has no public host any more: see the main README for the manual files)
!python -m hdml_lite download cub

# cell 3: train, one command per run. After a disconnect, rerun cells 1-2 and the SAME
# command: it resumes from $RUNS/<run>/checkpoint.pt (written atomically every 500 steps).
!python -m hdml_lite train --preset cub_npair      train.out_dir=$RUNS/cub_npair_s0
!python -m hdml_lite train --preset cub_hdml_npair train.out_dir=$RUNS/cub_hdml_npair_s0
# more seeds: train.seed=1 train.out_dir=$RUNS/cub_hdml_npair_s1
# the official code's settings: --preset cub_hdml_npair_official; triplet: cub_triplet, cub_hdml_triplet

# cell 4 (optional): score a checkpoint again; train already scores the final model on the test classes
!python -m hdml_lite eval --checkpoint $RUNS/cub_hdml_npair_s0/checkpoint.pt

# cell 5: every finished run -> the study's CSV format, then the table beside the paper's numbers
!python -m hdml_lite.study collect $RUNS --out $RUNS/paper_runs.csv
!python -m hdml_lite.study compare $RUNS/paper_runs.csv
```

`collect` lists unfinished runs (a checkpoint, no `metrics.json`): rerun their train
command. A run resumed from a checkpoint ends with the same weights as an uninterrupted
one (the trainer seeds every step from `(seed, step)`); only the data order of the
DataLoader workers is not part of that guarantee on GPU, and cuDNN is not deterministic.
The reported model is the final one (no selection on the test classes, docs/METHOD.md §4).

### How long a run takes on a Colab T4: an ESTIMATE, not a measurement

No GPU was available where this kit was written, so the times below are arithmetic,
from stated assumptions (``hdml_lite/study/collect.py``, ``python -m hdml_lite.study estimate``):

- GoogLeNet: 1.5 GMACs = 3.0 GFLOPs per 224x224 forward pass, x (227/224)^2 for 227 crops
  (HDC: 224); training (forward + backward) ~ 3x the forward pass.
- T4: 65 TFLOPS fp16 tensor-core peak; a small-batch CNN with mixed precision reaches
  perhaps 12% of it: 8 TFLOPS effective.
- Input: JPEG decoding + resize + crop on Colab's 2 vCPUs: ~300 images/s, the table's
  assumption: ~1 M training images per 8000-step run take ~0.9 h of decoding against ~0.3 h
  of GPU compute. With the pre-resized uint8 cache (`data.cache`, built once; notebook 06
  and `bench/gpu_check.py` use it) the pipeline feeds ~2,320 images/s on 2 CPU cores
  (`bench/data_pipeline.py`, one quiet run), ~0.1 h per run, so the GPU sets the pace: about
  0.4 h per CUB or Cars196 run of 8000 steps, evaluation included (still an estimate).
- Evaluation: every `train.eval_every` = 500 steps, the whole test set (SOP: 60,502
  images, which is why SOP runs are longer; raise `train.eval_every` there if needed).

{estimates}
So, decoding JPEGs in every step, one HDML or baseline run of the paper's protocol is roughly
1-2 hours on a T4 (CUB and Cars196 about 1 h, SOP about 2 h; with the cache, see above), and the HDC presets (30k-60k steps) 3-12 hours:
more than one Colab session, which is what the checkpoint-and-rerun workflow is for.
Colab's free sessions end after a few hours of use or ~90 minutes idle; each rerun of the
same command loses at most `train.ckpt_every` steps.
"""



def _commands(regime: str) -> str:
    out = "results" if regime == "lab" else "results/scratch"
    flag = "" if regime == "lab" else " --regime scratch"
    return f"""```bash
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1      # one thread per process; the study runs --jobs 2 processes
python -m hdml_lite.study lab{flag} --plan       # the runs per stage (nothing trained)
python -m hdml_lite.study lab{flag}              # everything: selection, final runs, CSV, figures, this page
python -m hdml_lite.study lab{flag} --stages select_lr,select_alpha   # or a stage at a time (others only read)
python -m hdml_lite.study lab{flag} --export     # CSV + figures + README from the runs finished so far
python -m hdml_lite.study report --out {out}     # figures + README from the CSV files (seconds)
```
Runs live in `runs/study/{regime}/` (git-ignored). Rerunning a command continues the study:
finished runs (with `metrics.json`) are skipped, an interrupted run resumes from its checkpoint."""


def render(study: dict, data: dict, out: Path) -> str:
    regime = study.get("regime", "lab")
    table, sweep, selection = data["lab_table"], data["sweep"], data["selection"]
    R = f"{regime} regime"
    done, total = study.get("runs_done"), study.get("runs_total")
    notes = (out / "notes.md").read_text() if (out / "notes.md").is_file() else ""
    other = ("\nThe other regime: [scratch regime](scratch/README.md)." if (out / "scratch" / "README.md").is_file()
             else "\nThe other regime: [converged lab regime](../README.md)." if regime == "scratch" else "")
    verdict_cols = "`" + ",".join(VERDICT_COLUMNS) + "`"
    verdict_old = ("" if any("verdict_holm" in v for v in data["verdicts"]) else
                   "; this study's file was written by the first rule and holds `claim,metric,n_seeds,mean_diff,"
                   "ci_low,ci_high,tost_low,tost_high,margin,verdict` only")
    parts = [f"""# Reproduction study: {REGIME_TEXT.get(regime, regime)}

{'**FAST MODE: tiny data and 6 steps; the numbers below mean nothing, only the code path is real.**' if study.get('fast') else ''}
{f'**PARTIAL: {done} of {total} runs had finished when this page was written. Rerun the study command below (it skips finished runs) to complete it.**' if done is not None and total and done < total else ''}

A lab analogue of the HDML paper's tables 1-3 and figures 4-7 (and HDC's cascade) on the
kit's embedded glyph dataset (zero-shot: the test classes are never seen in training and
never used for a choice). Every number on this page is measured by the commands below; the
verdicts come from a fixed rule. **A result that contradicts the paper is a finding, reported
as such**, not an error to tune away: this is a small dataset and a small CNN, so a
contradiction says the effect does not show up in this setting, and a support does not
confirm the paper's numbers on CUB, Cars196 or SOP.{other}

## Commands that regenerate everything

{_commands(regime)}

| file | what |
|---|---|
| `verdicts.csv` | one row per claim and metric: {verdict_cols} (fractions){verdict_old} |
| `verdicts_v2.csv` | every committed verdict again under the current rules, nothing re-trained (`python -m hdml_lite.study reverdict`): the same columns plus `source`, `old_verdict`, `old_n_seeds`, `data` |
| `verdicts_per_seed.csv` | the paired per-seed scores behind `verdicts_v2.csv`: `source,claim,metric,seed,a,b,score_a,score_b,diff` |
| `lab_table.csv` | final runs, test classes: `method,seed,nmi,f1,r1,r2,r4,r8,map_r,train_s` |
| `sweep.csv` | alpha sweep: `alpha,pull_target,seed,split,r1,nmi,f1,pull_factor_median,method` |
| `selection.csv` | every selection run on the validation classes, `chosen` = 1 on the chosen value |
| `mechanism.csv` | HDML's per-step diagnostics of the final HDML runs (every k-th step) |
| `engagement.csv` | the engagement conditions v2 (and v1's verdict) of each final HDML run |
| `tradeoff.csv` | the hardness-label trade-off over the alpha grid (validation classes) |
| `selection_noise.csv` | per selection stage (and replicate): the chosen value's lead over the runner-up, against seed noise |
| `choice_counts.csv`, `budgets.csv` | replicate design only: how often each value was chosen across replicates; every method's selection runs per replicate |
| `curves.csv` | learning curves of N-pair, HDML(N-pair) and its ablations on the test classes |
| `study.json` | settings, chosen values, run counts, durations |
| `hypotheses.csv` | why no gain: H1-H4, HDML - baseline per arm and loss (`python -m hdml_lite.study hypotheses`) |
| `hypotheses.json` | the hypotheses' grid, seeds, runs and cost |
"""]
    if data["verdicts"]:
        found = "\n".join(findings_lines(data["verdicts"], data["engagement"]))
        parts.append(f"""
## Findings ({R}; every number computed from the CSV files below)

{found}
{_findings_note(data['verdicts'], out)}""")
        parts.append(f"""
## The paper's claims: verdicts ({R})

Paired seeds (seed i of A against seed i of B), differences A - B in points of %. **supported**:
the interval of the mean lies above 0 (the paper's direction); **contradicted**: it lies below 0;
**equivalent**: both one-sided tests (TOST) place the mean inside ± the margin
({100 * study.get('margin', 0.01):.3g} point of R@1 / NMI); **undecided**: none of these, or fewer than 3 paired seeds, or
differences without spread (the reason is printed). The headline claims (the first two) start at
{study.get('seeds_key', '?')} paired seeds and add one at a time, up to {study.get('max_seeds', '?')}, while undecided; every look uses the
boundary of `hdml_lite/study/sequential.py` ({_levels_text()}), so over
the whole procedure a false supported/contradicted and a false equivalent each stay at most 5%
(`python -m hdml_lite.study error-rates`); the other claims are tested once, at 5%. Every row
records the look that decided and its level. Holm within each family (the headline claims; the
other claims) gives the adjusted verdict (`verdict_holm`), which the prose uses; P(A > B) is how
often A beats B over the paired seeds, with a bootstrap 95% interval. docs/METHOD.md §6.
{_old_rule_note(data['verdicts'])}
{verdict_table(data['verdicts'], table, regime)}
""")
    v2 = reverdict_section(out, data.get("cost_lines")) if (out / "verdicts_v2.csv").is_file() else []
    if v2:
        parts.append("\n" + "\n".join(v2) + "\n")
    if table:
        parts.append(f"""
## Tables 1-3 analogue: final models on the test classes ({R}), mean ± std over seeds (%)

{main_table(table)}

std: sample standard deviation over seeds. train s: seconds in the training loop per run
(evaluations excluded), measured while 2 runs shared the cores: compare orders of magnitude.
"Contrastive (HDC's batch)" is the contrastive loss at HDC's batch (classes x images per
class of the HDC preset), HDC's fair baseline. The "w/o" rows are the ablations of paper
figure 5 (`hdml.softmax=false`, `hdml.recon=false`).

![final models](lab_table.png)
""")
    if sweep:
        js = ", ".join(f"{label(k)}: {v:.3g}" for k, v in (study.get("j_avg") or {}).items())
        parts.append(f"""
## Figures 6-7 analogue: the pull factor ({R})

The grid spans the pull factor: alpha = -J_avg ln(p) for p in {study.get('pull_targets')},
with J_avg the median of the tracker's `j_avg` over the second half of each HDML method's
lr-selection run at the chosen lr ({js}). {study.get('select_seeds', '?')} seeds per value, on the
validation classes (which chose alpha; test classes shown, never used). x: the measured
median pull factor of each run (mean over seeds); band: min-max over seeds; dashed: the base
loss at its chosen lr (seed 0, validation classes).

{sweep_table(sweep)}

![alpha sweep](sweep.png)
""")
    if data["engagement"] or data["mechanism"]:
        parts.append(f"""
## Is HDML's mechanism switched on? ({R})

The engagement conditions v2 (docs/METHOD.md §5.3; `hdml_lite.hdml.diagnostics.engagement`) of
every final HDML run: a. classifier accuracy at the end >= 0.5; b. labels kept, median acc_syn
>= 0.5; c. mean weight_syn in [0.3, 0.9]; d. median pull factor in [0.05, 0.95]; e. median
hard_gen below hard_real and within 25% of hard_aug. The last column is the first, looser
version's verdict. A run where a condition fails does not test the paper's mechanism, whatever
its score.

{engagement_table(ordered(data['engagement'])) if data['engagement'] else 'no engagement rows'}

![mechanism](mechanism.png)
""")
    if data["curves"]:
        parts.append(f"""
## Figures 4-5 analogue: learning curves ({R})

N-pair, HDML (N-pair) and its two ablations, evaluated on the test classes during training
(for the curves only: the reported model is always the final one).{_curves_note(data['curves'])}

![learning curves](curves.png)
""")
    if data["tradeoff"]:
        trade = "\n".join(tradeoff_lines(data["tradeoff"]))
        parts.append(f"""
## The hardness-label trade-off ({R}, validation classes)

The paper's premise: synthetics that are hard **and** keep their label, by an amount that adapts.
Over the alpha grid (pull targets {study.get('pull_targets')} at the J_avg the tracker reaches,
{study.get('select_seeds', '?')} seeds each), the second-half medians of each run; the table takes the median over
seeds. Columns b, d, e are the engagement conditions v2.

{trade}

![trade-off](tradeoff.png)
""")
    if data.get("hypotheses"):
        parts.append("\n" + "\n".join(hypotheses_section(data["hypotheses"], data.get("hypotheses_info") or {})) + "\n")
    lr, alpha = study.get("lr", {}), study.get("alpha", {})
    parts.append(f"""
## Protocol ({R})

- Every run of a method family has the same budget: **{study.get('steps', '?')} training steps**
  (the {regime} presets' budget), batches of ~64 images.
- Selection on a **validation split of the train classes** (`data.val_classes=0.2`), never on
  the test classes; the highest mean **validation MAP@R** wins (ties: R@1, then the smaller
  value). MAP@R, not R@1: R@1 on the validation classes saturates near 94% for every method,
  MAP@R does not (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020).
  - lr: every method has its own, from {study.get('lrs')}, {study.get('lr_seeds', 1)} seed(s). HDML (N-pair) and HDML
    (triplet) get their own lr selection too (at the study's own start alpha,
    {(study.get('start') or {}).get('alpha')}); their ablations use HDML (N-pair)'s lr, alpha and bn_stats.
  - alpha: see the pull-factor section; HDML (N-pair) and HDML (triplet) separately.
  - `hdml.bn_stats` (official | real): HDML (N-pair) at its chosen alpha, {study.get('select_seeds', '?')}
    paired seeds; the choice applies to HDML (N-pair) and its ablations (HDML (triplet) keeps
    the start value, {(study.get('start') or {}).get('bn_stats')}).
  - the weight-matched ablation: without J_soft, beta set so that the synthetic weight equals
    full HDML (N-pair)'s (beta = -J_gen ln(1 - w) from the seed-0 final runs): {study.get('beta')}.
  - HDC fractions from {study.get('hdc_fractions')}, {study.get('select_seeds', '?')} seeds, at HDC's chosen lr.
- Final runs: trained on **all** train classes, the final model scored on the test classes;
  {study.get('seeds_key', '?')} seeds (up to {study.get('max_seeds', '?')} while a headline verdict is undecided) for
  N-pair, HDML (N-pair), triplet, HDML (triplet), {study.get('seeds_rest', '?')} for the others; seeds used:
  {study.get('final_seeds')}.
- The plan's fingerprint (every run's name and full resolved config): `{study.get('plan_fingerprint', 'not recorded')}`;
  `python -m hdml_lite.study lab --plan --fingerprint` prints the one at HEAD.

Chosen values: """ + "; ".join([", ".join(f"{label(k)} lr {v:g}" for k, v in lr.items()),
                                 ", ".join(f"{label(k)} alpha {v:.4g}" for k, v in alpha.items()),
                                 f"bn_stats {study.get('bn_stats')}", f"HDC fractions {study.get('fractions')}"]) + ".\n")
    if selection:
        paired_lines = "\n".join(paired_selection_lines(selection))
        noise = noise_table(data["selection_noise"]) if data.get("selection_noise") else ""
        parts.append(f"""
## Selection runs ({R}, validation classes)

How sharp each choice was: the chosen value's validation MAP@R, the runner-up's, and whether the gap
is within seed noise (below 2 standard errors of a difference, seed sd pooled over the groups with
>= 2 seeds).

{noise}

{paired_lines}

{selection_table(selection)}
""")
    wall = study.get("wall_s")
    cpu = study.get("cpu_s_per_run")
    parts.append(f"""
## Timings ({R})

Whole study: **{(wall or 0) / 60:.1f} min** wall-clock over {study.get('invocations', '?')} invocation(s),
with {study.get('jobs', '?')} parallel process(es)""" + (f"; {cpu:.0f} CPU-seconds per run on average"
                                                          if cpu else "") + f""".

{timing_table(study)}
""")
    if notes:
        parts.append("\n" + notes.strip() + "\n")
    if table:
        parts.append(f"""
## Beside the paper's numbers ({R})

`python -m hdml_lite.study compare {out.as_posix()}/lab_table.csv --dataset cars` sets the lab rows
beside the paper's Cars196 rows (docs/METHOD.md §1.8). Different datasets: compare the
ordering of methods only.

{compare_markdown(table, 'cars')}""")
    parts.append("\n" + RUNBOOK.replace("{estimates}", estimate_markdown()))
    return "\n".join(p.rstrip() + "\n" for p in parts)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(write_report(sys.argv[1] if len(sys.argv) > 1 else "results"))
