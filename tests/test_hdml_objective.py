"""hdml/objective.py and hdml/tracking.py: loss terms against hand computations, J_avg bookkeeping."""
import math

import pytest
import torch

from hdml_lite.hdml.objective import (generator_loss, metric_objective, npair_syn_loss, real_weight, recon_loss,
                                      soft_loss, synthetic_weight)
from hdml_lite.hdml.tracking import LossTracker


def _ce(logits, label):
    """Cross-entropy of one row, by hand."""
    return -(logits[label] - torch.log(torch.exp(logits).sum()))


# ---------------------------------------------------------------- weights
def test_weights():
    assert synthetic_weight(1e4, 1e6) == pytest.approx(1 - math.exp(-0.01))  # ~0.01 at start (METHOD §1.5)
    assert synthetic_weight(1e4, 1e6) == pytest.approx(0.00995, abs=1e-5)
    assert real_weight(1e4, 50.0) + synthetic_weight(1e4, 50.0) == pytest.approx(1.0)
    assert real_weight(1e4, 0.0) == 0.0 and synthetic_weight(1e4, 0.0) == 1.0
    j_m, j_syn = torch.tensor(2.0), torch.tensor(5.0)
    w = math.exp(-3.0 / 4.0)
    assert float(metric_objective(j_m, j_syn, 3.0, 4.0)) == pytest.approx(w * 2 + (1 - w) * 5)


# ---------------------------------------------------------------- J_recon, J_soft, J_gen
def test_recon_forms():
    y = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    y_rec = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 2.0]])
    sq = [4.0, 2.0, 9.0]
    assert float(recon_loss(y_rec, y, 0.5, "official")) == pytest.approx(0.5 * sum(sq))
    assert float(recon_loss(y_rec, y, 0.5, "paper")) == pytest.approx(sum(sq) / 3)
    with pytest.raises(ValueError, match="form"):
        recon_loss(y_rec, y, 0.5, "tf")


def test_soft_forms_against_hand_ce():
    g = torch.Generator().manual_seed(0)
    l1, l2 = torch.randn(6, 4, generator=g), torch.randn(2, 4, generator=g)
    y1, y2 = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([2, 3])
    ce1 = sum(_ce(l1[k], y1[k]) for k in range(6)) / 6
    ce2 = sum(_ce(l2[k], y2[k]) for k in range(2)) / 2
    official = soft_loss([(l1, y1), (l2, y2)], lambda_=0.5, softmax_factor=1e4, form="official")
    torch.testing.assert_close(official, 1e4 * 0.5 * (ce1 + ce2))
    paper = soft_loss([(l1, y1), (l2, y2)], lambda_=0.5, softmax_factor=1e4, form="paper")
    all_rows = sum(_ce(l1[k], y1[k]) for k in range(6)) + sum(_ce(l2[k], y2[k]) for k in range(2))
    torch.testing.assert_close(paper, 0.5 * all_rows / 8)


def test_generator_loss_ablations():
    g = torch.Generator().manual_seed(1)
    y, y_rec = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    logits = torch.randn(5, 2, generator=g, requires_grad=True)
    parts = [(logits, torch.tensor([0, 1, 0, 1, 1]))]
    for form in ("official", "paper"):
        j_gen, j_recon, j_soft = generator_loss(y_rec, y, parts, 0.5, 1e4, form)
        assert j_gen.item() == pytest.approx((j_recon + j_soft).item())
        assert j_recon.item() > 0 and j_soft.item() > 0
        j_gen, j_recon, j_soft = generator_loss(y_rec, y, parts, 0.5, 1e4, form, softmax=False)
        assert j_soft.item() == 0 and j_gen.item() == pytest.approx(recon_loss(y_rec, y, 0.5, form).item())
        assert not j_gen.requires_grad  # nothing reaches the logits: no gradient from J_soft
        j_gen, j_recon, j_soft = generator_loss(y_rec, y, parts, 0.5, 1e4, form, recon=False)
        assert j_recon.item() == 0 and j_gen.item() == pytest.approx(soft_loss(parts, 0.5, 1e4, form).item())


def test_npair_syn_loss_naive():
    g = torch.Generator().manual_seed(2)
    N, D, l2 = 4, 3, 0.1
    a, c = torch.randn(N, D, generator=g), torch.randn(N, N, D, generator=g)
    ce = sum(_ce(torch.stack([a[i] @ c[i, j] for j in range(N)]), i) for i in range(N)) / N
    reg = sum(a[i] @ a[i] for i in range(N)) / N + sum(c[i, j] @ c[i, j] for i in range(N) for j in range(N)) / N**2
    torch.testing.assert_close(npair_syn_loss(a, c, l2), ce + 0.25 * l2 * reg)


# ---------------------------------------------------------------- LossTracker
def test_tracker_block_means_held_until_next_block():
    t = LossTracker("block", block=3, j_init=1e6)
    assert t.j_avg == 1e6 and t.j_gen == 1e6
    t.update(1.0, 10.0)
    t.update(2.0, 20.0)
    assert t.j_avg == 1e6 and t.j_gen == 1e6          # block not complete yet
    t.update(3.0, 30.0)
    assert t.j_avg == pytest.approx(2.0) and t.j_gen == pytest.approx(20.0)
    t.update(100.0, 100.0)
    t.update(200.0, 200.0)
    assert t.j_avg == pytest.approx(2.0)              # held fixed
    t.update(300.0, 300.0)
    assert t.j_avg == pytest.approx(200.0) and t.j_gen == pytest.approx(200.0)


def test_tracker_skips_nan():
    t = LossTracker("block", block=3)
    t.update(1.0, float("nan"))
    t.update(float("nan"), 4.0)
    t.update(3.0, 8.0)
    assert t.j_avg == pytest.approx(2.0) and t.j_gen == pytest.approx(6.0)
    for _ in range(3):                                # an all-NaN block keeps the previous means
        t.update(float("nan"), float("inf"))
    assert t.j_avg == pytest.approx(2.0) and t.j_gen == pytest.approx(6.0)


def test_tracker_epoch_mode():
    t = LossTracker("epoch", j_init=5.0)
    for v in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0):
        t.update(v, 10 * v)
    assert t.j_avg == 5.0                             # no block closing in epoch mode
    t.end_epoch()
    assert t.j_avg == pytest.approx(4.0) and t.j_gen == pytest.approx(40.0)
    with pytest.raises(RuntimeError):
        LossTracker("block").end_epoch()
    with pytest.raises(ValueError, match="j_avg_mode"):
        LossTracker("epochs")


def test_tracker_state_round_trip():
    seq = [(float(k), float(2 * k)) for k in range(1, 12)]
    ref = LossTracker("block", block=4)
    for v in seq[:6]:
        ref.update(*v)
    resumed = LossTracker("block", block=4)
    resumed.load_state_dict(ref.state_dict())
    for v in seq[6:]:
        ref.update(*v)
        resumed.update(*v)
        assert (resumed.j_avg, resumed.j_gen) == (ref.j_avg, ref.j_gen)
    assert resumed.state_dict() == ref.state_dict()
    assert ref.j_avg == pytest.approx(sum(range(5, 9)) / 4)   # the second block: steps 5..8
