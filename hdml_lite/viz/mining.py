"""Which samples a method learns from: HDC's selected pairs against HDML's synthetic negatives.

    run = train_with_probes(cfg, hdc_probe, probe_steps=[0, 50, 100])   # the trainer's run, probed
    run.probes[-1]["heads"][2]["neg_kept"]                              # pairs head 3 kept at that step

``train_with_probes`` is ``hdml_lite.training.trainer.train`` itself (same seeds, batches
and updates: tests check the final weights against a plain ``train``), with a
``callback`` that calls ``probe(method, x, labels)`` on the batch of each probed step,
right AFTER that step's update (the trainer calls its callback after every step). The
run goes to ``<train.out_dir>__probed`` and always starts from scratch (a finished run
would be reloaded without calling back). Probes run in training mode (what the method
sees) under ``torch.no_grad``, with BatchNorm running statistics frozen and the RNG
state restored afterwards, so probing does not change the training.

- ``hdc_probe``: per head, squared distances of every positive and negative pair and
  the masks of the pairs the head keeps (``hdml_lite.hdc.route``).
- ``hdml_probe``: per anchor i and other class j, d+ = d(a_i, p_i), the real negative's
  d(a_i, p_j), the synthetic one's d(a_i, z^_ij) and the re-embedded generator output's
  d(a_i, z~_ij) (N-pair HDML only).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..config import Config, apply_overrides
from ..hdc.loss import pair_losses, route
from ..hdml.augment import pull_factor
from ..hdml.objective import synthetic_weight
from ..training.trainer import train
from .palette import FIG_MAX_W, HDC_HEAD_COLORS, LEGEND_PT, ROLE_COLORS


@contextlib.contextmanager
def frozen_batchnorm(modules):
    """Training mode, but BatchNorm running statistics (and their counters) left untouched."""
    bns = [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in bns]
    try:
        for m in bns:
            m.momentum = 0.0          # running = (1 - 0) * running + 0 * batch: unchanged
        yield
    finally:
        for m, (mom, nbt) in zip(bns, saved):
            m.momentum = mom
            if nbt is not None:
                m.num_batches_tracked.copy_(nbt)


@dataclass
class ProbeRun:
    method: object
    probes: list = field(default_factory=list)     # one dict per probed step, with "step"
    metrics: dict | None = None                    # final test metrics (when evaluated)
    history: dict | None = None                    # the trainer's history (train rows, evaluations)


def train_with_probes(cfg: Config, probe, probe_steps, evaluate_at_end: bool = True, test_set=None) -> ProbeRun:
    """``train(cfg)`` with ``probe(method, x, labels) -> dict`` called after each step in ``probe_steps``.

    The run is written to ``<cfg.train.out_dir>__probed`` without intermediate evaluations
    and from scratch (``resume=False``). evaluate_at_end: score the final model on the test
    classes (``test_set`` when given, else the config's test split); else ``metrics`` is None.
    """
    probe_steps = set(int(s) for s in probe_steps)
    cfg = apply_overrides(cfg, [f"train.out_dir={str(cfg.train.out_dir).rstrip('/')}__probed", "train.eval_every=0",
                                "train.ckpt_every=0"])
    records = []

    def callback(step, method, x, labels, logs):
        if step not in probe_steps:
            return
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        was_training = {k: m.training for k, m in method.modules.items()}
        method.train()
        with frozen_batchnorm(method.modules.values()), torch.no_grad():
            rec = probe(method, x, labels)
        for k, m in method.modules.items():
            m.train(was_training[k])
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        records.append({"step": step, **rec})

    if not evaluate_at_end:
        eval_sets = {}
    elif test_set is not None:
        eval_sets = {"test": test_set}
    else:
        eval_sets = None                                  # the trainer's own: the test (and val) split
    result = train(cfg, resume=False, eval_sets=eval_sets, callback=callback)
    return ProbeRun(result.method, records, result.metrics if evaluate_at_end else None, result.history)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def hdc_probe(method, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Per head k: pos_d2 (P,), neg_d2 (Q,) squared distances of the normalised embeddings,
    pos_kept (P,), neg_kept (Q,) the pairs head k keeps, and the pairs' (i, j) rows."""
    h = method.cfg.hdc
    zs = [z.float() for z in method.model(x)]                       # 3 x (B, D), normalised
    per = [pair_losses(z, labels, h.neg_factor) for z in zs]
    pos_masks = route([p[0] for p in per], h.fractions, h.routing)
    neg_masks = route([p[1] for p in per], h.fractions, h.routing)
    heads = []
    for z, (pos_loss, neg_loss, pos_idx, neg_idx), pm, nm in zip(zs, per, pos_masks, neg_masks):
        neg_d2 = (z[neg_idx[0]] - z[neg_idx[1]]).pow(2).sum(1)       # (Q,) the negatives' d^2
        heads.append({"pos_d2": _np(pos_loss), "neg_d2": _np(neg_d2), "pos_kept": _np(pm).astype(bool),
                      "neg_kept": _np(nm).astype(bool), "neg_loss": _np(neg_loss),
                      "neg_pairs": neg_idx.cpu().numpy(), "pos_pairs": pos_idx.cpu().numpy()})
    return {"heads": heads, "labels": labels.cpu().numpy()}


def hdml_probe(method, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """N-pair HDML: for anchors i and other classes j (i != j), flattened (N*(N-1),):
    d_pos (d(a_i, p_i) repeated), d_neg = d(a_i, p_j), d_syn = d(a_i, z^_ij), d_gen = d(a_i, z~_ij);
    plus j_avg, the pull factor and the synthetic-loss weight the step uses."""
    if method.cfg.loss.name != "npair":
        raise ValueError("hdml_probe supports N-pair HDML (loss.name=npair)")
    t = method.losses(x, labels)                                    # the method's own forward pass
    z, z_hat = t["z"], t["z_hat"]                                   # (B, E), (N + N*N, E)
    B, E = z.shape
    N = B // 2
    a, p = z[0::2], z[1::2]                                         # (N, E)
    cand = z_hat[N:].view(N, N, E)                                  # z^_ij
    y_syn = method.generator(torch.cat([z, z_hat]))[B:]            # as in HDMLMethod.losses: one BN batch
    z_gen = method.model.head(y_syn)[N:].view(N, N, E)              # z~_ij = g(G(z^_ij))
    off = ~torch.eye(N, dtype=torch.bool, device=z.device)

    def d(u):                                                       # (N, N, E) -> (N*(N-1),) d(a_i, u_ij)
        return _np((u - a[:, None]).norm(dim=2)[off])

    h = method.cfg.hdml
    tr = method.tracker
    return {"d_pos": _np((a - p).norm(dim=1)[:, None].expand(N, N)[off]),
            "d_neg": d(p[None].expand(N, N, E)), "d_syn": d(cand), "d_gen": d(z_gen),
            "j_avg": tr.j_avg, "factor": pull_factor(h.alpha, tr.j_avg),
            "weight_syn": synthetic_weight(h.beta, tr.j_gen)}


# ------------------------------------------------------------------------------------- plots
def plot_hdc_selection(rec: dict, title: str | None = None):
    """Per head (columns): squared distances of the negative pairs (top row) and positive pairs
    (bottom row), all pairs against the pairs the head keeps. Kept negatives with zero loss
    (beyond d^2 = 1) are drawn apart: they add nothing to the head's loss (docs/METHOD.md §2)."""
    heads = rec["heads"]
    fig, axes = plt.subplots(2, len(heads), figsize=(min(FIG_MAX_W, 3.2 * len(heads)), 6.4), squeeze=False)
    bins = np.linspace(0, 4, 41)
    for k, hd in enumerate(heads):
        ax = axes[0][k]
        kept, active = hd["neg_kept"], hd["neg_loss"] > 0
        ax.hist(hd["neg_d2"], bins=bins, color="0.8", label=f"all negatives ({len(kept)})")
        ax.hist([hd["neg_d2"][kept & active], hd["neg_d2"][kept & ~active]], bins=bins, stacked=True,
                color=[HDC_HEAD_COLORS[k], "0.45"],
                label=[f"kept, loss > 0 ({int((kept & active).sum())})", f"kept, loss 0 ({int((kept & ~active).sum())})"])
        ax.axvline(1.0, color="black", ls="--", lw=1, label="d^2 = 1: loss 0 beyond")
        ax.set_xlabel("d^2 of a negative pair (unit sphere)")
        ax.set_ylabel("pairs")
        ax.set_title(f"head {k + 1}: negatives, keeps {100 * kept.mean():.0f}%", fontsize=10)
        ax.legend(fontsize=LEGEND_PT)
        ax = axes[1][k]
        ax.hist(hd["pos_d2"], bins=bins, color="0.8", label=f"all positives ({len(hd['pos_d2'])})")
        ax.hist(hd["pos_d2"][hd["pos_kept"]], bins=bins, color=HDC_HEAD_COLORS[k],
                label=f"kept ({int(hd['pos_kept'].sum())}): the farthest")
        ax.set_xlabel("d^2 of a positive pair (unit sphere)")
        ax.set_ylabel("pairs")
        ax.set_title(f"head {k + 1}: positives", fontsize=10)
        ax.legend(fontsize=LEGEND_PT)
    fig.suptitle(title or f"HDC at step {rec['step']}: which pairs each head learns from")
    fig.tight_layout()
    return fig


def plot_hdml_synthesis(rec: dict, title: str | None = None):
    """Histogram of distance / d+ for real negatives, synthetic z^ and generated z~ (1 = as close as the positive)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ratios = {"real negatives d(a, p_j)": rec["d_neg"] / rec["d_pos"],
              "synthetic z^ (augment)": rec["d_syn"] / rec["d_pos"],
              "generated z~ = g(G(z^))": rec["d_gen"] / rec["d_pos"]}
    hi = float(np.percentile(np.concatenate(list(ratios.values())), 99))
    bins = np.linspace(0, max(hi, 1.5), 41)
    for i, (name, r) in enumerate(ratios.items()):
        ax.hist(r, bins=bins, histtype="step", lw=2, color=ROLE_COLORS[("negative", "synthetic", "generated")[i]],
                label=name)
    ax.axvline(1.0, color="black", ls="--", lw=1, label="1: as close as the positive (d+)")
    ax.set_xlabel("distance to the anchor / d+")
    ax.set_ylabel("(anchor, negative) pairs")
    ax.set_title(title or f"HDML at step {rec['step']}: exp(-alpha/J_avg) = {rec['factor']:.2f}, "
                          f"weight of J_syn = {rec['weight_syn']:.2f}", fontsize=10)
    ax.legend(fontsize=LEGEND_PT)
    fig.tight_layout()
    return fig


def hardness_over_steps(hdc_probes: list, hdml_probes: list) -> dict:
    """Per probed step. HDC, per head k: ``hdc_active_neg`` fraction of negative pairs with non-zero
    loss (the same pairs for every head's ranking: its own), ``hdc_kept_pos_hK`` / ``hdc_all_pos``
    mean d^2 of the kept / all positive pairs, ``hdc_kept_neg_hK`` mean d^2 of the kept negatives
    with non-zero loss (NaN when none). HDML: median distance / d+ of real, synthetic and generated
    negatives (``hdml_d_neg``, ``hdml_d_syn``, ``hdml_d_gen``)."""
    out = {"hdc_steps": np.array([r["step"] for r in hdc_probes]),
           "hdml_steps": np.array([r["step"] for r in hdml_probes])}
    for k in range(len(hdc_probes[0]["heads"]) if hdc_probes else 0):
        hs = [r["heads"][k] for r in hdc_probes]
        out[f"hdc_active_neg_h{k + 1}"] = np.array([(h["neg_loss"] > 0).mean() for h in hs])
        out[f"hdc_kept_pos_h{k + 1}"] = np.array([h["pos_d2"][h["pos_kept"]].mean() for h in hs])
        out[f"hdc_kept_neg_h{k + 1}"] = np.array([h["neg_d2"][h["neg_kept"] & (h["neg_loss"] > 0)].mean()
                                                  if (h["neg_kept"] & (h["neg_loss"] > 0)).any() else np.nan
                                                  for h in hs])
        out[f"hdc_all_pos_h{k + 1}"] = np.array([h["pos_d2"].mean() for h in hs])
    for key in ("d_neg", "d_syn", "d_gen"):
        out[f"hdml_{key}"] = np.array([np.median(r[key] / r["d_pos"]) for r in hdml_probes])
    return out


def plot_hardness_over_steps(hdc_probes: list, hdml_probes: list):
    """Three panels over the probed steps: HDC's share of negatives that still have a loss, HDC's
    kept positives (the farthest), and HDML's median distance / d+ of real, synthetic, generated
    negatives (lower = harder)."""
    h = hardness_over_steps(hdc_probes, hdml_probes)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(FIG_MAX_W, 4.0))
    if len(h["hdc_steps"]):
        for k in range(3):
            a1.plot(h["hdc_steps"], 100 * h[f"hdc_active_neg_h{k + 1}"], color=HDC_HEAD_COLORS[k], marker="o",
                    label=f"head {k + 1}")
            a2.plot(h["hdc_steps"], h[f"hdc_kept_pos_h{k + 1}"], color=HDC_HEAD_COLORS[k], marker="o",
                    label=f"kept by head {k + 1} ({100 * hdc_probes[0]['heads'][k]['pos_kept'].mean():.0f}%)")
        a2.plot(h["hdc_steps"], h["hdc_all_pos_h3"], color="0.5", ls=":", marker="o", label="all positives (head 3)")
    a1.axhline(20, color="0.4", ls="--", lw=1, label="head 3's share (20%)")
    a1.set_xlabel("training step")
    a1.set_ylabel("negative pairs with loss > 0 (%)")
    a1.set_title("HDC: how many negatives\nare still hard", fontsize=10)
    a1.legend(fontsize=LEGEND_PT)
    a1.grid(alpha=0.3)
    a2.set_xlabel("training step")
    a2.set_ylabel("mean d^2 of positive pairs")
    a2.set_title("HDC: deeper heads keep\nthe farthest positives", fontsize=10)
    a2.legend(fontsize=LEGEND_PT)
    a2.grid(alpha=0.3)
    names = {"hdml_d_neg": "real negatives", "hdml_d_syn": "synthetic z^", "hdml_d_gen": "generated z~"}
    for i, (k, n) in enumerate(names.items()):
        a3.plot(h["hdml_steps"], h[k], color=ROLE_COLORS[("negative", "synthetic", "generated")[i]], marker="o",
                label=n)
    a3.axhline(1.0, color="black", ls="--", lw=1, label="d+")
    a3.set_xlabel("training step")
    a3.set_ylabel("median distance to anchor / d+")
    a3.set_title("HDML: synthetic negatives\npulled toward d+", fontsize=10)
    a3.legend(fontsize=LEGEND_PT)
    a3.grid(alpha=0.3)
    fig.tight_layout()
    return fig
