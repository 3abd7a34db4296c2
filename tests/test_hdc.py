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


# ---------------------------------------------------------------- released solver details
def _grads(loss_scale: str):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(12, 4, generator=g, dtype=torch.float64).mul(0.4).requires_grad_()
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    zn = nn.functional.normalize(z, dim=1)
    pos, neg, _, _ = pair_losses(zn, labels)
    pm, nm = torch.ones_like(pos, dtype=torch.bool), torch.ones_like(neg, dtype=torch.bool)
    loss = hdc_head_loss(pos, neg, pm, nm, loss_scale=loss_scale)
    loss.backward()
    return float(loss.detach()), z.grad.clone(), int((pos > 0).sum()), int((neg > 0).sum())


def test_released_loss_scale_keeps_the_value_and_rescales_the_gradient():
    v_auto, g_auto, n_pos, n_neg = _grads("autograd")
    v_rel, g_rel, _, _ = _grads("released")
    assert 0 < n_neg < 54 and n_pos == 12  # some negatives are outside the margin (zero loss, not counted)
    assert v_rel == pytest.approx(v_auto, rel=1e-12)
    ratio = 2 * (n_pos + 2 * n_neg) / (n_pos + n_neg)  # autograd / released, in [2, 4]
    assert 2 < ratio < 4
    assert torch.allclose(g_auto, ratio * g_rel, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="loss_scale"):
        hdc_head_loss(torch.ones(1), torch.ones(1), torch.ones(1, dtype=torch.bool),
                      torch.ones(1, dtype=torch.bool), loss_scale="caffe")


def test_released_loss_scale_matches_a_hand_written_released_gradient():
    # The released layer: for each kept pair with non-zero loss, grad wrt z_i of a positive is (z_i - z_j),
    # of a negative -neg_factor * (z_i - z_j) (no factor 2), divided by the count P+ + 2 Q+.
    z = _unit(7, 3, seed=3) * 0.7
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    zz = z.clone().requires_grad_()
    pos, neg, pos_idx, neg_idx = pair_losses(zz, labels)
    pm, nm = torch.ones_like(pos, dtype=torch.bool), torch.ones_like(neg, dtype=torch.bool)
    hdc_head_loss(pos, neg, pm, nm, loss_scale="released").backward()
    want = torch.zeros_like(z)
    n_pos, n_neg = int((pos > 0).sum()), int((neg > 0).sum())
    for (i, j), v in zip(pos_idx.T.tolist(), pos.tolist()):
        if v > 0:
            want[i] += z[i] - z[j]
            want[j] += z[j] - z[i]
    for (i, j), v in zip(neg_idx.T.tolist(), neg.tolist()):
        if v > 0:
            want[i] -= 10 * (z[i] - z[j])
            want[j] -= 10 * (z[j] - z[i])
    assert 0 < n_neg < neg.numel()
    assert torch.allclose(zz.grad, want / (n_pos + 2 * n_neg), atol=1e-12)


def test_released_parameter_groups_lrs_and_weight_decay():
    from hdml_lite.hdc import hdc_param_groups
    from hdml_lite.presets import get_preset

    cfg = get_preset("cars196_hdc")
    assert (cfg.hdc.param_groups, cfg.hdc.loss_scale, cfg.hdc.aux_init) == ("released", "released", True)
    model = CascadeModel("googlenet", head_dim=8, pretrained=False)
    groups = hdc_param_groups(model, cfg.optim, "released")
    lr, wd = cfg.optim.lr, cfg.optim.weight_decay
    assert lr == 0.01 and wd == 2e-4 and cfg.optim.head_lr_mult == 10
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    by_param = {id(p): g for g in groups for p in g["params"]}
    emb = model.embedding_layers()
    for layer in emb:  # prototxt: lr_mult 10 / decay 1 (weights), 20 / 0 (biases)
        assert by_param[id(layer.weight)]["lr"] == pytest.approx(10 * lr)
        assert by_param[id(layer.weight)]["weight_decay"] == wd
        assert by_param[id(layer.bias)]["lr"] == pytest.approx(20 * lr)
        assert by_param[id(layer.bias)]["weight_decay"] == 0
    for layer in (model.heads[0].conv, model.heads[1].fc1):  # aux-initialised: lr_mult 1 / 2
        assert by_param[id(layer.weight)]["lr"] == pytest.approx(lr)
        assert by_param[id(layer.bias)]["lr"] == pytest.approx(2 * lr)
        assert by_param[id(layer.bias)]["weight_decay"] == 0
    conv = model.trunk.net.conv1
    assert by_param[id(conv.conv.weight)]["lr"] == lr and by_param[id(conv.conv.weight)]["weight_decay"] == wd
    assert by_param[id(conv.bn.bias)]["lr"] == 2 * lr and by_param[id(conv.bn.bias)]["weight_decay"] == 0
    assert by_param[id(conv.bn.weight)]["lr"] == lr and by_param[id(conv.bn.weight)]["weight_decay"] == 0
    # the optimizer HDCMethod builds uses these groups (SGD reads each group's weight_decay)
    lab = _lab_cfg(param_groups="released")
    lab.optim.optimizer, lab.optim.weight_decay, lab.optim.head_lr_mult = "sgd", 1e-3, 10.0
    method = HDCMethod(lab, 4, 1, torch.device("cpu"))
    opt_groups = method.optimizers["metric"].param_groups
    got = {g["name"]: (g["lr"], g["weight_decay"]) for g in opt_groups}
    assert got == {"net_weight": (1e-3, 1e-3), "net_bias": (2e-3, 0.0), "net_norm": (1e-3, 0.0),
                   "embed_weight": (pytest.approx(1e-2), 1e-3), "embed_bias": (pytest.approx(2e-2), 0.0)}
    method.set_lr_scale(0.1)  # the trainer's schedule scales every group from its own base lr
    assert {g["name"]: g["lr"] for g in opt_groups}["embed_bias"] == pytest.approx(2e-3)
    plain = HDCMethod(_lab_cfg(), 4, 1, torch.device("cpu")).optimizers["metric"].param_groups
    assert len(plain) == 2  # the default: trunk / heads
    with pytest.raises(ValueError, match="param_groups"):
        HDCMethod(_lab_cfg(param_groups="caffe"), 4, 1, torch.device("cpu"))


def test_heads_start_from_googlenet_aux_classifiers(tmp_path):
    import torchvision.models as tvm

    torch.manual_seed(0)
    ref = tvm.googlenet(weights=None, aux_logits=True, init_weights=False)
    for aux in (ref.aux1, ref.aux2):  # non-trivial BN of the aux conv
        aux.conv.bn.running_mean.uniform_(-0.3, 0.3)
        aux.conv.bn.running_var.uniform_(0.5, 2.0)
        aux.conv.bn.weight.data.uniform_(0.5, 1.5)
        aux.conv.bn.bias.data.uniform_(-0.2, 0.2)
    path = tmp_path / "googlenet.pth"
    torch.save(ref.state_dict(), path)
    model = CascadeModel("googlenet", head_dim=8, pretrained=True, weights_path=str(path)).eval()
    assert model.aux_initialised == ["aux1", "aux2"]
    ref.eval()
    t = torch.randn(2, 512, 4, 4)  # an already pooled 4x4 map: the aux conv+BN+ReLU and fc1 act on it
    for head, aux, ch in ((model.heads[0], ref.aux1, 512), (model.heads[1], ref.aux2, 528)):
        t = torch.randn(2, ch, 4, 4)
        with torch.no_grad():
            got = torch.relu(head.fc1(torch.relu(head.conv(t)).flatten(1)))
            want = torch.relu(aux.fc1(aux.conv(t).flatten(1)))
        assert torch.allclose(got, want, atol=1e-5)
        assert torch.equal(head.fc1.weight, aux.fc1.weight)
    fresh = CascadeModel("googlenet", head_dim=8, pretrained=True, weights_path=str(path), aux_init=False)
    assert fresh.aux_initialised == [] and not torch.equal(fresh.heads[0].fc1.weight, ref.aux1.fc1.weight)
    # without aux keys in the file nothing is copied
    torch.save({k: v for k, v in ref.state_dict().items() if not k.startswith("aux")}, path)
    assert CascadeModel("googlenet", head_dim=8, pretrained=True, weights_path=str(path)).aux_initialised == []


def test_hdc_paper_presets_follow_the_released_solver():
    from hdml_lite.presets import get_preset

    cars, cub, sop = get_preset("cars196_hdc"), get_preset("cub_hdc"), get_preset("sop_hdc")
    assert cars.train.steps == 20000 and cars.optim.milestones == [10000] and cars.optim.gamma == 0.1
    assert cars.optim.lr == 0.01 and cars.optim.momentum == 0.9 and cars.optim.weight_decay == 2e-4
    for cfg in (cars, cub, sop):
        assert cfg.optim.optimizer == "sgd" and cfg.optim.head_lr_mult == 10.0
        assert (cfg.hdc.param_groups, cfg.hdc.loss_scale, cfg.hdc.aux_init) == ("released", "released", True)
        assert cfg.data.batch_classes == 10 and cfg.data.images_per_class == 10 and cfg.data.image_size == 224
    lab = get_preset("lab_hdc")
    assert (lab.hdc.param_groups, lab.hdc.loss_scale) == ("plain", "autograd")
