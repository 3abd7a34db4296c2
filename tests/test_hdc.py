"""HDC (METHOD §2): pair losses vs naive loops, hard selection vs a sort, routing,
NaN guards, gradient routing through the cascade, weighted concat, GoogLeNet shapes, a short run."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hdml_lite.config import Config
from hdml_lite.hdc import (HEAD_WEIGHTS, CascadeModel, HDCMethod, cascade_loss, concat_heads, hdc_head_loss,
                           num_kept, pair_losses, route, select_hard)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small convs on a shared CPU: one thread is fastest
    yield
    torch.set_num_threads(n)


def _unit(b: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return nn.functional.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1)


# ---------------------------------------------------------------- pair losses
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pair_losses_match_naive_double_loop(dtype):
    z = _unit(9, 3, seed=0, dtype=dtype) * 0.6  # low dim and scaled: some negatives inside the margin
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2, 3])
    pos, neg, pos_idx, neg_idx = pair_losses(z, labels, neg_factor=10.0)
    want_pos, want_neg = {}, {}
    for i in range(len(z)):
        for j in range(i + 1, len(z)):
            d2 = sum((float(z[i, k]) - float(z[j, k])) ** 2 for k in range(z.shape[1]))
            if labels[i] == labels[j]:
                want_pos[(i, j)] = d2
            else:
                want_neg[(i, j)] = 10.0 * max(0.0, 1.0 - d2)
    got_pos = {(int(i), int(j)): float(v) for (i, j), v in zip(pos_idx.T, pos)}
    got_neg = {(int(i), int(j)): float(v) for (i, j), v in zip(neg_idx.T, neg)}
    assert got_pos.keys() == want_pos.keys() and got_neg.keys() == want_neg.keys()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for k in want_pos:
        assert got_pos[k] == pytest.approx(want_pos[k], abs=tol)
    for k in want_neg:
        assert got_neg[k] == pytest.approx(want_neg[k], abs=tol)
    assert any(v > 0 for v in want_neg.values()) and any(v == 0 for v in want_neg.values())


# ---------------------------------------------------------------- hard selection
def _naive_top(losses: torch.Tensor, k: int) -> set[int]:
    order = sorted(range(len(losses)), key=lambda i: -float(losses[i]))
    return set(order[:k])


@pytest.mark.parametrize("n,fraction,k", [(100, 0.2, 20), (100, 0.5, 50), (7, 0.5, 4), (10, 0.01, 1),
                                          (10, 1.0, 10), (7, 0.3, 3), (5, 0.5, 3),
                                          (0, 0.5, 0), (5, 0.0, 0)])
def test_select_hard_keeps_exactly_the_top_fraction(n, fraction, k):
    assert num_kept(fraction, n) == k  # ceil(fraction * n), at least 1 when n > 0 and fraction > 0
    losses = torch.randperm(n).double() if n else torch.zeros(0)  # distinct losses: a unique answer
    mask = select_hard(losses, fraction)
    assert mask.dtype == torch.bool and mask.shape == (n,)
    assert set(torch.nonzero(mask).flatten().tolist()) == _naive_top(losses, k)


def test_cascade_ranks_positives_and_negatives_separately():
    z = [_unit(12, 2, seed=s) * 0.5 for s in (1, 2, 3)]  # small distances: negatives have large losses
    labels = torch.arange(4).repeat_interleave(3)
    fractions = (1.0, 0.5, 0.2)
    total, per_head = cascade_loss(z, labels, fractions, routing="top")
    for zk, f, got in zip(z, fractions, per_head):
        pos, neg, _, _ = pair_losses(zk, labels)
        kept = [float(pos[i]) for i in _naive_top(pos, math.ceil(f * len(pos)))]
        kept += [float(neg[i]) for i in _naive_top(neg, math.ceil(f * len(neg)))]
        want = sum(kept) / sum(1 for v in kept if v > 0)
        assert float(got) == pytest.approx(want, rel=1e-10)
    assert float(total) == pytest.approx(sum(float(j) for j in per_head), rel=1e-12)


def test_nested_routing_passes_on_only_what_the_previous_head_kept():
    g = torch.Generator().manual_seed(0)
    losses = [torch.rand(200, generator=g) for _ in range(3)]  # three heads disagree on hardness
    fractions = (1.0, 0.5, 0.2)
    nested = route(losses, fractions, "nested")
    top = route(losses, fractions, "top")
    for masks in (nested, top):
        assert [int(m.sum()) for m in masks] == [200, 100, 40]  # fractions of ALL pairs
    assert bool((nested[2] <= nested[1]).all()) and bool((nested[1] <= nested[0]).all())  # subsets
    # head 3 keeps, among head 2's set, the hardest by its OWN loss
    allowed = torch.nonzero(nested[1]).flatten().tolist()
    order = sorted(allowed, key=lambda i: -float(losses[2][i]))[:40]
    assert set(torch.nonzero(nested[2]).flatten().tolist()) == set(order)
    # the released code's routing does not nest: head 3 picks pairs head 2 dropped
    assert not bool((top[2] <= top[1]).all())
    with pytest.raises(ValueError, match="routing"):
        route(losses, fractions, "cascade")


def test_nested_cascade_loss_differs_from_top_only_through_routing():
    z = [_unit(12, 4, seed=s) * 0.6 for s in (4, 5, 6)]
    labels = torch.arange(3).repeat_interleave(4)
    _, top = cascade_loss(z, labels, (1.0, 0.5, 0.2), routing="top")
    _, nested = cascade_loss(z, labels, (1.0, 0.5, 0.2), routing="nested")
    # head 1 keeps everything and head 2 chooses among everything in both modes
    assert float(top[0]) == pytest.approx(float(nested[0])) and float(top[1]) == pytest.approx(float(nested[1]))
    assert float(top[2]) != pytest.approx(float(nested[2]))


# ---------------------------------------------------------------- NaN guards
def _finite_grad(z: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, z, allow_unused=False)
    return g


def test_no_nan_when_nothing_is_selected_or_all_losses_are_zero():
    # identical embeddings of one class: every positive has d^2 = 0, there are no negatives
    z = torch.ones(5, 4, requires_grad=True)
    labels = torch.zeros(5, dtype=torch.long)
    total, per_head = cascade_loss([nn.functional.normalize(z, dim=1)] * 3, labels)
    assert total.item() == 0.0 and total.requires_grad
    g = _finite_grad(z, total)
    assert torch.isfinite(g).all() and float(g.abs().sum()) == 0.0

    # negatives beyond the margin (d^2 = 2): all zero losses
    z = torch.eye(4, requires_grad=True)
    total, _ = cascade_loss([z] * 3, torch.arange(4))
    assert total.item() == 0.0 and torch.isfinite(_finite_grad(z, total)).all()

    # non-zero losses but nothing selected: an exact zero that keeps the graph
    z = _unit(6, 3, seed=7).requires_grad_()
    pos, neg, _, _ = pair_losses(z, torch.tensor([0, 0, 1, 1, 2, 2]))
    loss = hdc_head_loss(pos, neg, torch.zeros_like(pos, dtype=torch.bool), torch.zeros_like(neg, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    g = _finite_grad(z, loss)
    assert torch.isfinite(g).all() and float(g.abs().sum()) == 0.0

    # one sample: no pairs at all
    z = _unit(1, 3, seed=8).requires_grad_()
    total, _ = cascade_loss([z] * 3, torch.tensor([0]))
    assert total.item() == 0.0 and torch.isfinite(_finite_grad(z, total)).all()


def test_head_loss_divides_by_non_zero_selected_pairs_only():
    pos = torch.tensor([0.0, 0.4, 0.2])
    neg = torch.tensor([0.0, 0.0, 3.0, 1.0])
    all_pos, all_neg = torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool)
    assert float(hdc_head_loss(pos, neg, all_pos, all_neg)) == pytest.approx(4.6 / 4)
    keep_neg = torch.tensor([True, True, False, True])
    assert float(hdc_head_loss(pos, neg, all_pos, keep_neg)) == pytest.approx(1.6 / 3)


# ---------------------------------------------------------------- gradients through the cascade
def _grad_norm(params) -> float:
    return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)


def test_each_head_trains_the_trunk_and_only_its_own_layers():
    torch.manual_seed(0)
    model = CascadeModel("small_cnn", in_channels=1, head_dim=8, width=4).eval()  # eval: no dropout
    x = torch.randn(8, 1, 32, 32)
    labels = torch.arange(4).repeat_interleave(2)
    trunk = model.trunk
    for k in range(3):
        model.zero_grad(set_to_none=True)
        _, per_head = cascade_loss(model(x), labels)
        assert per_head[k].item() > 0
        per_head[k].backward()
        assert _grad_norm(trunk.stage1.parameters()) > 0 and _grad_norm(trunk.stage2.parameters()) > 0
        assert _grad_norm(model.heads[k].parameters()) > 0
        for other in set(range(3)) - {k}:
            assert _grad_norm(model.heads[other].parameters()) == 0.0
        # head k taps stage k+2: stages deeper than its tap get nothing from its loss
        for deeper in trunk.stages()[k + 2:]:
            assert _grad_norm(deeper.parameters()) == 0.0
    assert {id(p) for p in model.new_layers()} == {id(p) for p in model.heads.parameters()}


def test_selection_carries_no_gradient_of_its_own():
    z = _unit(8, 4, seed=9).requires_grad_()
    pos, neg, _, _ = pair_losses(z, torch.arange(4).repeat_interleave(2))
    mask = select_hard(neg, 0.5)
    assert not mask.requires_grad and mask.dtype == torch.bool


# ---------------------------------------------------------------- test-time embedding
def test_concat_heads_applies_weights_and_normalisation():
    z1 = torch.tensor([[3.0, 4.0]])
    z2 = torch.tensor([[0.0, -2.0]])
    z3 = torch.tensor([[1.0, 1.0]])
    got = concat_heads([z1, z2, z3], HEAD_WEIGHTS["cars196"])
    r = 1 / math.sqrt(2)
    want = torch.tensor([[0.6, 0.8, 0.0, -2.0, 3 * r, 3 * r]])
    assert torch.allclose(got, want, atol=1e-6)
    assert HEAD_WEIGHTS == {"cars196": [1, 2, 3], "cub": [1, 1, 2], "sop": [1, 1, 1]}
    with pytest.raises(ValueError, match="head_weights"):
        concat_heads([z1, z2, z3], [1.0, 1.0])


# ---------------------------------------------------------------- models
def test_googlenet_cascade_taps_runs_the_trunk_once_and_embeds():
    torch.manual_seed(0)
    model = CascadeModel("googlenet", in_channels=3, head_dim=16, pretrained=False).eval()
    assert model.heads[0].fc1.in_features == 128 * 4 * 4  # 5x5/3 pool of 14x14 at a 224 crop is 4x4
    calls = []
    model.trunk.net.inception4a.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        feats = model.tap_features(torch.randn(1, 3, 224, 224))
        assert [tuple(f.shape[1:]) for f in feats] == [(512, 14, 14), (528, 14, 14), (1024, 7, 7)]
        calls.clear()
        for size in (224, 128):
            zs = model(torch.randn(1, 3, size, size))
            assert len(zs) == 3 and all(z.shape == (1, 16) for z in zs)
            assert all(torch.allclose(z.norm(dim=1), torch.ones(1), atol=1e-5) for z in zs)
    assert len(calls) == 2  # one trunk pass per forward
    assert len(model.trunk.net.inception4a._forward_hooks) == 1  # the tap hooks are removed after each pass


def test_small_cnn_cascade_on_32x32_images():
    model = CascadeModel("small_cnn", in_channels=1, head_dim=8, width=4)
    zs = model(torch.randn(3, 1, 32, 32))
    assert [tuple(z.shape) for z in zs] == [(3, 8)] * 3
    assert all(torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5) for z in zs)


# ---------------------------------------------------------------- the method
def _lab_cfg(**hdc) -> Config:
    cfg = Config()
    cfg.train.method = "hdc"
    cfg.model.backbone, cfg.model.width = "small_cnn", 8
    cfg.optim.optimizer, cfg.optim.lr, cfg.optim.head_lr_mult = "adam", 1e-3, 1.0
    cfg.hdc.head_dim = 16
    for k, v in hdc.items():
        setattr(cfg.hdc, k, v)
    return cfg


def _class_batch(protos, g, n_classes, m):
    labels = torch.randperm(len(protos), generator=g)[:n_classes].repeat_interleave(m)  # m per class
    return protos[labels] + 0.5 * torch.randn(len(labels), *protos.shape[1:], generator=g), labels


@pytest.mark.parametrize("routing", ["top", "nested"])
def test_hdc_method_short_run_lowers_the_loss(routing):
    torch.manual_seed(0)
    protos = torch.randn(8, 1, 32, 32)
    method = HDCMethod(_lab_cfg(routing=routing), num_classes=8, in_channels=1, device=torch.device("cpu"))
    x_val, y_val = _class_batch(protos, torch.Generator().manual_seed(99), 8, 4)

    def all_pairs_loss() -> float:  # batch-stat BN, no dropout, every pair
        method.train()
        for mod in method.model.modules():
            if isinstance(mod, nn.Dropout):
                mod.eval()
        with torch.no_grad():
            return float(cascade_loss(method.model(x_val), y_val, (1.0, 1.0, 1.0))[0])

    before = all_pairs_loss()
    g = torch.Generator().manual_seed(1)
    logs = [method.train_step(*_class_batch(protos, g, 4, 6), step=s) for s in range(30)]
    after = all_pairs_loss()
    assert set(logs[0]) == {"loss", "loss_h1", "loss_h2", "loss_h3"}
    assert all(math.isfinite(v) for d in logs for v in d.values())
    assert after < 0.5 * before, (before, after)
    emb = method.embed(x_val)
    assert emb.shape == (32, 48) and torch.isfinite(emb).all()
    # each block is a normalised head times its weight (1, 1, 1 by default)
    assert torch.allclose(emb.view(32, 3, 16).norm(dim=2), torch.ones(32, 3), atol=1e-5)


def test_hdc_method_eval_head_and_config_checks():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 32, 32)
    method = HDCMethod(_lab_cfg(eval_head=2, head_weights=[1.0, 2.0, 3.0]), 4, 1, torch.device("cpu"))
    method.eval()
    with torch.no_grad():
        want = method.model(x)[1]
    assert torch.allclose(method.embed(x), want)
    method.cfg.hdc.eval_head = -1
    assert torch.allclose(method.embed(x).view(4, 3, 16).norm(dim=2), torch.tensor([1.0, 2.0, 3.0]).expand(4, 3),
                          atol=1e-5)
    for bad in (dict(routing="cascade"), dict(fractions=[1.0, 0.5]), dict(eval_head=0), dict(head_weights=[1.0])):
        with pytest.raises(ValueError):
            HDCMethod(_lab_cfg(**bad), 4, 1, torch.device("cpu"))
