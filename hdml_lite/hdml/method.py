"""HDMLMethod: one forward pass, three losses, three optimizers (METHOD §1.4).

    x --f--> y --g--> z --augment--> z^ --G--> y~ --g--> z~        (same g, train mode)
                      z ------------------G--> y'                   (reconstructions)

    J_metric = exp(-beta/J_gen) J_m + (1 - exp(-beta/J_gen)) J_syn  -> backbone + embedding ("metric")
    J_gen    = J_recon + J_soft                                      -> generator            ("generator")
    CE(real) = CE(W y, labels)                                       -> softmax classifier   ("softmax")

Gradient isolation without detaching anything: each loss is back-propagated with
``backward(inputs=<its own parameters>)``, so autograd accumulates gradients only
into that group. J_syn still reaches the backbone through z^ and z~ (the
generator and the classifier are traversed, but not updated by J_metric); J_gen
reaches the generator only; the classifier scores the synthetics (J_soft) but is
updated by CE on real features only. Summing the three into one backward would
leak gradients (METHOD §1.4).

Batches arrive in the sampler's order: N-pair = class-major pairs (anchors z[0::2],
positives z[1::2]); triplet = [a, p, n] repeated (z[0::3], z[1::3], z[2::3]).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..losses import npair_loss, triplet_loss
from ..models import build_metric_model
from ..training.method import (Method, check_finite, fused_kwargs, make_optimizer, metric_param_groups, read_floats,
                               register_method, weight_decay_loss)
from .augment import augment_npair, augment_triplet, pull_factor
from .diagnostics import accuracy, npair_hardness, triplet_hardness
from .generator import Generator, SoftmaxHead
from .objective import FORMS, generator_loss, metric_objective, npair_syn_loss, real_weight, synthetic_weight
from .tracking import LossTracker

LOSSES = ("npair", "triplet")
BN_STATS = ("official", "real")


def _adam(params: list, lr: float) -> torch.optim.Adam:
    groups = [{"params": params, "lr": lr, "base_lr": lr}]
    return torch.optim.Adam(groups, **fused_kwargs(groups))       # fused on CUDA (no GradScaler sync)


@register_method("hdml")
class HDMLMethod(Method):
    """HDML on top of an N-pair or triplet loss (``cfg.loss.name``).

    steps_per_epoch: only for ``hdml.j_avg_mode = "epoch"``: J_avg / J_gen are closed
    every ``steps_per_epoch`` training steps (pass ``len(train_set) // batch_size``).
    Without it, epoch mode falls back to ``hdml.block`` steps, with a warning.
    """

    name = "hdml"

    def __init__(self, cfg: Config, num_classes: int, in_channels: int, device: torch.device,
                 steps_per_epoch: int | None = None):
        super().__init__(cfg, num_classes, in_channels, device)
        h = cfg.hdml
        if cfg.loss.name not in LOSSES:
            raise ValueError(f"HDML supports loss.name in {LOSSES}, got {cfg.loss.name!r} "
                             f"(use train.method=baseline for the other losses)")
        if h.form not in FORMS:
            raise ValueError(f"hdml.form={h.form!r}; expected one of {', '.join(FORMS)}")
        if h.bn_stats not in BN_STATS:
            raise ValueError(f"hdml.bn_stats={h.bn_stats!r}; expected one of {', '.join(BN_STATS)}")
        if not (h.softmax or h.recon):
            raise ValueError("hdml.softmax=False and hdml.recon=False together leave the generator "
                             "without a loss; keep at least one")
        self.model = build_metric_model(cfg.model, in_channels).to(device)
        F_dim, E = self.model.feature_dim, cfg.model.embedding_size
        self.generator = Generator(E, F_dim, hidden=h.gen_hidden, bn_momentum=cfg.model.bn_momentum,
                                   bn_eps=cfg.model.bn_eps).to(device)   # METHOD §1.9
        self.classifier = SoftmaxHead(F_dim, num_classes).to(device)
        self.modules = {"model": self.model, "generator": self.generator, "softmax": self.classifier}
        self.optimizers = {
            "metric": make_optimizer(metric_param_groups(self.model, cfg.optim), cfg.optim),
            "generator": _adam(list(self.generator.parameters()), h.lr_gen),
            "softmax": _adam(list(self.classifier.parameters()), h.s_lr),
        }
        self.tracker = LossTracker(mode=h.j_avg_mode, block=h.block, j_init=h.j_init)
        if h.j_avg_mode == "epoch" and steps_per_epoch is None:
            warnings.warn(f"hdml.j_avg_mode='epoch' without steps_per_epoch: closing an 'epoch' every "
                          f"hdml.block={h.block} steps", stacklevel=2)
            steps_per_epoch = h.block
        self.steps_per_epoch = steps_per_epoch

    # ------------------------------------------------------------------ parameters
    def param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """The three disjoint parameter sets, keyed like ``self.optimizers``."""
        return {"metric": list(self.model.parameters()), "generator": list(self.generator.parameters()),
                "softmax": list(self.classifier.parameters())}

    def set_lr_scale(self, scale: float) -> None:
        """The trainer's schedule scales the metric lr only; lr_gen and s_lr stay constant (official)."""
        for g in self.optimizers["metric"].param_groups:
            g.setdefault("base_lr", g["lr"])
            g["lr"] = g["base_lr"] * scale

    # ------------------------------------------------------------------ forward
    def losses(self, x: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """One forward pass -> every loss term, in the graph (nothing detached, nothing stepped).

        x: (B, C, H, W), labels: (B,) in the sampler's order. Keys: j_metric, j_m, j_syn, j_gen,
        j_recon, j_soft, ce_real (scalars), z (B, E), z_hat (M, E) the generator's synthetic inputs,
        diagnostics (0-d tensors and floats), layout_ok (0-d bool: the batch is in the sampler's
        layout; ``train_step`` raises the layout error when it is not).
        """
        h, lc = self.cfg.hdml, self.cfg.loss
        npair = lc.name == "npair"
        layout_ok = _batch_layout_ok(lc.name, labels)             # 0-d bool tensor: read with the logs
        j_avg, j_gen_avg = self.tracker.j_avg, self.tracker.j_gen   # constants during the step
        with self.autocast():
            y = self.model.backbone(x)                              # (B, F)
        y = y.float()                                               # losses in float32
        z = self.model.head(y)                                      # (B, E)
        B, E = z.shape

        if npair:
            a, p = z[0::2], z[1::2]                                 # (N, E) each
            N = a.shape[0]
            j_m = npair_loss(a, p, l2_reg=lc.l2_reg)
            cand = augment_npair(a, p, h.alpha, j_avg)              # (N, N, E); [i, i] = p_i
            z_hat = torch.cat([a, cand.reshape(N * N, E)])          # (N + N*N, E), official order
            syn_labels = torch.cat([labels[0::2], labels[1::2].repeat(N)])  # cand[i, j] has p_j's label
        else:
            a, p, n = z[0::3], z[1::3], z[2::3]                     # (T, E) each
            T = a.shape[0]
            j_m = triplet_loss(a, p, n, margin=lc.margin, reduction=lc.reduction, squared=True)
            n_hat = augment_triplet(a, p, n, h.alpha, j_avg)        # (T, E)
            z_hat = torch.cat([a, p, n_hat])                        # (3T, E)
            syn_labels = torch.cat([labels[0::3], labels[1::3], labels[2::3]])
        j_m = j_m + weight_decay_loss([self.model], self.cfg.optim.wd_loss)

        y_all = self.generator(torch.cat([z, z_hat]))               # (B + M, F): one BN batch (official)
        y_recon, y_syn = y_all[:B], y_all[B:]                       # y' (B, F), y~ (M, F)
        z_syn = self.embed_synthetic(y_syn)                         # z~ (M, E): same g, train mode

        logits_syn = self.classifier(y_syn) if h.softmax else None  # (M, C): the classifier scores y~
        parts = []
        if npair:
            cand_syn = z_syn[N:].view(N, N, E)                      # (N, N, E) re-embedded candidates
            j_syn = npair_syn_loss(z_syn[:N], cand_syn, lc.l2_reg)
            if h.softmax:
                parts = [(logits_syn[N:], syn_labels[N:]), (logits_syn[:N], syn_labels[:N])]
        else:
            j_syn = triplet_loss(z_syn[:T], z_syn[T:2 * T], z_syn[2 * T:], margin=lc.margin,
                                 reduction=lc.reduction, squared=True)
            if h.softmax:
                parts = [(logits_syn, syn_labels)]
        j_gen, j_recon, j_soft = generator_loss(y_recon, y, parts, h.lambda_, h.softmax_factor, h.form,
                                                softmax=h.softmax, recon=h.recon)
        logits_real = self.classifier(y)                            # (B, C)
        ce_real = F.cross_entropy(logits_real, labels)
        j_metric = metric_objective(j_m, j_syn, h.beta, j_gen_avg)
        with torch.no_grad():                                       # diagnostics (METHOD §5)
            if logits_syn is None:                                  # softmax ablation: score them anyway
                logits_syn = self.classifier(y_syn)
            diag = {"acc_real": accuracy(logits_real, labels), "acc_syn": accuracy(logits_syn, syn_labels),
                    "pull_factor": pull_factor(h.alpha, j_avg)}
            if npair:
                diag.update(hard_real=npair_hardness(a, p), hard_aug=npair_hardness(a, cand),
                            hard_gen=npair_hardness(z_syn[:N], cand_syn))
            else:
                diag.update(hard_real=triplet_hardness(a, p, n), hard_aug=triplet_hardness(a, p, n_hat),
                            hard_gen=triplet_hardness(z_syn[:T], z_syn[T:2 * T], z_syn[2 * T:]))
        return {"j_metric": j_metric, "j_m": j_m, "j_syn": j_syn, "j_gen": j_gen, "j_recon": j_recon,
                "j_soft": j_soft, "ce_real": ce_real, "z": z, "z_hat": z_hat, "diagnostics": diag,
                "layout_ok": layout_ok}

    def embed_synthetic(self, y_syn: Tensor) -> Tensor:
        """z~ = g(y~) with the SAME embedding head g = BN + FC, BN in training mode (METHOD §1.3).

        y_syn: (M, F) -> (M, E). ``hdml.bn_stats``: "official" (the released code) lets this pass
        update the BN's running statistics, so test-time normalisation is partly made of
        synthetics; "real" normalises with the synthetic batch's own statistics but leaves the
        running statistics to the real features (METHOD §1.9).
        """
        head = self.model.head
        if self.cfg.hdml.bn_stats == "official" or not head.training:
            return head(y_syn)
        bn = head.bn
        y_norm = F.batch_norm(y_syn, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
        return head.fc(y_norm)

    # ------------------------------------------------------------------ backward + step
    def backward(self, terms: dict[str, Tensor]) -> None:
        """Accumulate each loss's gradient into its own parameter group only (METHOD §1.4).

        J_metric goes last: it is the only one that traverses the backbone, and without
        retain_graph it frees the backbone's saved activations as it goes (peak memory as
        in the baseline)."""
        groups = self.param_groups()
        order = [("j_gen", "generator"), ("ce_real", "softmax"), ("j_metric", "metric")]
        for k, (loss_name, group) in enumerate(order):
            loss = terms[loss_name]
            if loss.requires_grad:
                self.scaler.scale(loss).backward(inputs=groups[group], retain_graph=k < len(order) - 1)

    def train_step(self, x: Tensor, labels: Tensor, step: int) -> dict[str, float]:
        """Forward, check, three isolated backwards, three optimizer steps, tracker update.

        Returns floats: loss (= J_metric), j_m (real-sample loss + weight decay, unweighted), j_syn
        (unweighted), j_gen = j_recon + j_soft, ce_real, and the constants this step used: j_avg,
        j_gen_avg, weight_syn = 1 - exp(-beta / j_gen_avg); and the mechanism diagnostics
        (``hdml/diagnostics.py``, METHOD §5): acc_real, acc_syn, pull_factor = exp(-alpha / j_avg),
        hard_real, hard_aug, hard_gen (batch medians of d(a, n) / d(a, p)).

        All of them, and the batch-layout check, are read from the device in one transfer
        (``read_floats``), before the backward passes: one host synchronisation per step.
        """
        self.train()
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        j_avg, j_gen_avg = self.tracker.j_avg, self.tracker.j_gen
        t = self.losses(x, labels)
        names = ("j_metric", "j_m", "j_syn", "j_gen", "j_recon", "j_soft", "ce_real")
        # every float the step logs, and the batch-layout check, in ONE host synchronisation
        read = read_floats({**{k: t[k] for k in names}, **t["diagnostics"], "layout_ok": t["layout_ok"]})
        if not read.pop("layout_ok"):
            _check_batch(self.cfg.loss.name, labels)                # raises the message
        check_finite({k: read[k] for k in names}, step)             # before any update
        self.backward(t)
        for opt in self.optimizers.values():
            self.scaler.step(opt)
        self.scaler.update()

        out = {k: read[k] for k in names}
        out["loss"] = out.pop("j_metric")
        beta = self.cfg.hdml.beta
        # official: J_avg averages the already weighted J_m; paper: the plain J_m
        tracked = real_weight(beta, j_gen_avg) * out["j_m"] if self.cfg.hdml.form == "official" else out["j_m"]
        self.tracker.update(tracked, out["j_gen"])
        if self.tracker.mode == "epoch" and self.tracker.steps_in_period >= self.steps_per_epoch:
            self.tracker.end_epoch()
        out.update(j_avg=j_avg, j_gen_avg=j_gen_avg, weight_syn=synthetic_weight(beta, j_gen_avg))
        out.update({k: read[k] for k in t["diagnostics"]})
        return out

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """Evaluation embedding z (B, E), not normalised."""
        self.eval()
        with self.autocast():
            _, z = self.model(x)
        return z.float()

    def extra_state(self) -> dict:
        return {"tracker": self.tracker.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if "tracker" in state:
            self.tracker.load_state_dict(state["tracker"])


def _batch_layout_ok(loss_name: str, labels: Tensor) -> Tensor:
    """The check of ``_check_batch`` as a 0-d bool tensor on the labels' device (no host
    synchronisation); a batch whose size does not fit the layout raises at once."""
    B = labels.shape[0]
    if loss_name == "npair":
        if B % 2:
            _check_batch(loss_name, labels)
        anchors = labels[0::2].sort().values
        return (labels[0::2] == labels[1::2]).all() & (anchors[1:] != anchors[:-1]).all()
    if B % 3:
        _check_batch(loss_name, labels)
    return (labels[0::3] == labels[1::3]).all() & ~(labels[0::3] == labels[2::3]).any()


def _check_batch(loss_name: str, labels: Tensor) -> None:
    """The batch must be in the sampler's layout: N-pair class-major pairs, triplet [a, p, n]."""
    B = labels.shape[0]
    if loss_name == "npair":
        ok = B % 2 == 0 and bool((labels[0::2] == labels[1::2]).all()) and \
            labels[0::2].unique().numel() == B // 2
        if not ok:
            raise ValueError(f"HDML N-pair needs class-major pairs of distinct classes [c0, c0, c1, c1, ...] "
                             f"(NPairSampler); got labels {labels.tolist()}")
    elif B % 3 or not bool((labels[0::3] == labels[1::3]).all()) or bool((labels[0::3] == labels[2::3]).any()):
        raise ValueError(f"HDML triplet needs batches [a, p, n, a, p, n, ...] (TripletSampler); "
                         f"got labels {labels.tolist()}")
