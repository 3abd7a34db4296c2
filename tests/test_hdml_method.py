"""hdml/method.py: gradient isolation (METHOD §1.4), ablations, forms, bookkeeping, a short run.

A tiny model (SmallCNN width 4, 1x16x16 inputs, embedding 8) keeps everything on CPU in seconds.
"""
import copy
import math

import pytest
import torch

from hdml_lite.config import Config
from hdml_lite.hdml import HDMLMethod, real_weight
from hdml_lite.training.method import NonFiniteLossError

CPU = torch.device("cpu")
NUM_CLASSES = 10


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: threads only add contention on a shared CPU (10x slower under load)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(loss="npair", **hdml):
    cfg = Config()
    cfg.model.backbone, cfg.model.width, cfg.model.embedding_size, cfg.model.pretrained = "small_cnn", 4, 8, False
    cfg.loss.name = loss
    cfg.optim.lr = 1e-3
    cfg.train.amp = False
    cfg.hdml.gen_hidden = 16
    cfg.hdml.form, cfg.hdml.j_avg_mode, cfg.hdml.block = "official", "block", 64
    for k, v in hdml.items():
        setattr(cfg.hdml, k, v)
    return cfg


def _method(loss="npair", seed=0, steps_per_epoch=None, hard=True, **hdml):
    """A tiny HDMLMethod. hard=True sets J_avg = 2, J_gen = 1e4 so that the pulling and the
    synthetic weight (1 - e^-1 with beta 1e4) are far from their start values."""
    torch.manual_seed(seed)
    m = HDMLMethod(_cfg(loss, **hdml), NUM_CLASSES, 1, CPU, steps_per_epoch=steps_per_epoch)
    if hard:
        st = m.tracker.state_dict()
        st.update(j_avg=2.0, j_gen=1e4)
        m.tracker.load_state_dict(st)
    return m


def _batch(loss="npair", seed=0):
    g = torch.Generator().manual_seed(seed)
    if loss == "npair":
        labels = torch.randperm(NUM_CLASSES, generator=g)[:6].repeat_interleave(2)   # [c0, c0, c1, c1, ...]
    else:
        c = torch.randperm(NUM_CLASSES, generator=g)[:5]
        labels = torch.stack([c[:4], c[:4], c[1:]], dim=1).flatten()                 # [a, p, n] x 4
    x = torch.randn(labels.shape[0], 1, 16, 16, generator=g) + labels.view(-1, 1, 1, 1).float() / 3
    return x, labels


def _grads(loss, params):
    gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def _norm(gs):
    return math.sqrt(sum(float(g.pow(2).sum()) for g in gs))


# ---------------------------------------------------------------- gradient isolation
@pytest.mark.parametrize("form", ["official", "paper"])
@pytest.mark.parametrize("loss", ["npair", "triplet"])
def test_each_group_gets_only_its_own_loss_gradient(loss, form):
    m = _method(loss, form=form)
    x, labels = _batch(loss)
    m.train()
    t = m.losses(x, labels)
    groups = m.param_groups()
    expected = {"metric": _grads(t["j_metric"], groups["metric"]),
                "generator": _grads(t["j_gen"], groups["generator"]),
                "softmax": _grads(t["ce_real"], groups["softmax"])}
    # the other losses DO depend on each group, so a leak would show in the comparison below
    assert _norm(_grads(t["j_gen"], groups["metric"])) > 0          # J_gen reaches the backbone through z
    assert _norm(_grads(t["j_metric"], groups["generator"])) > 0    # J_syn goes through G
    assert _norm(_grads(t["j_soft"], groups["softmax"])) > 0        # the classifier scores synthetics
    m.backward(t)
    for name, exp in expected.items():
        for p, e in zip(groups[name], exp):
            got = torch.zeros_like(p) if p.grad is None else p.grad
            torch.testing.assert_close(got, e, msg=f"group {name!r} got gradient from another loss")


@pytest.mark.parametrize("loss", ["npair", "triplet"])
def test_j_syn_reaches_the_backbone(loss):
    m = _method(loss)
    x, labels = _batch(loss)
    m.train()
    t = m.losses(x, labels)
    backbone = list(m.model.backbone.parameters())
    assert _norm(_grads(t["j_syn"], backbone)) > 0
    # through the synthetic path itself (not only via BatchNorm batch statistics): J_syn depends
    # on z_hat, and z_hat on the backbone (METHOD §1.4: no detach of z, z_hat or y~)
    assert float(torch.autograd.grad(t["j_syn"], t["z_hat"], retain_graph=True)[0].abs().sum()) > 0
    assert _norm(_grads(t["z_hat"].pow(2).sum(), backbone)) > 0
    # and J_metric's backbone gradient is not just the real part's
    w = real_weight(m.cfg.hdml.beta, m.tracker.j_gen)
    g_metric, g_real = _grads(t["j_metric"], backbone), _grads(w * t["j_m"], backbone)
    assert _norm([a - b for a, b in zip(g_metric, g_real)]) > 1e-3 * _norm(g_real)


@pytest.mark.parametrize("loss", ["npair", "triplet"])
def test_one_step_equals_three_separate_updates(loss):
    """train_step == three optimizers each stepped with its own loss's gradient only."""
    a = _method(loss)
    b = copy.deepcopy(a)
    x, labels = _batch(loss)
    before = [p.detach().clone() for p in a.model.parameters()]
    a.train_step(x, labels, 0)
    b.train()
    t = b.losses(x, labels)
    groups = b.param_groups()
    for loss_name, group in [("j_metric", "metric"), ("j_gen", "generator"), ("ce_real", "softmax")]:
        for p, g in zip(groups[group], _grads(t[loss_name], groups[group])):
            p.grad = g
        b.optimizers[group].step()
    for name in ("metric", "generator", "softmax"):
        for pa, pb in zip(a.param_groups()[name], groups[name]):
            torch.testing.assert_close(pa, pb)
    assert any(not torch.equal(p0, p1) for p0, p1 in zip(before, a.model.parameters()))


# ---------------------------------------------------------------- ablations, alpha, forms
@pytest.mark.parametrize("loss", ["npair", "triplet"])
def test_ablation_switches(loss):
    x, labels = _batch(loss)
    full, nosoft, norecon = _method(loss), _method(loss, softmax=False), _method(loss, recon=False)
    grads = {}
    for name, m in [("full", full), ("nosoft", nosoft), ("norecon", norecon)]:
        m.train()
        t = m.losses(x, labels)
        grads[name] = (t, _grads(t["j_gen"], m.param_groups()["generator"]))
        if name == "nosoft":
            assert t["j_soft"].item() == 0 and t["j_gen"].item() == pytest.approx(t["j_recon"].item())
            # the generator's gradient is exactly J_recon's: nothing from J_soft
            for g, r in zip(grads[name][1], _grads(t["j_recon"], m.param_groups()["generator"])):
                torch.testing.assert_close(g, r)
        if name == "norecon":
            assert t["j_recon"].item() == 0 and t["j_gen"].item() == pytest.approx(t["j_soft"].item())
    t_full = grads["full"][0]
    assert t_full["j_gen"].item() == pytest.approx(t_full["j_recon"].item() + t_full["j_soft"].item())
    assert t_full["j_soft"].item() > 0 and t_full["j_recon"].item() > 0
    for other in ("nosoft", "norecon"):
        assert grads[other][0]["j_gen"].item() != pytest.approx(t_full["j_gen"].item())
        assert _norm([a - b for a, b in zip(grads["full"][1], grads[other][1])]) > 0
    with pytest.raises(ValueError, match="generator"):
        _method(loss, softmax=False, recon=False)


def test_alpha_zero_leaves_candidates_unchanged():
    m = _method("npair", alpha=0.0)
    x, labels = _batch("npair")
    m.train()
    t = m.losses(x, labels)
    z, z_hat = t["z"], t["z_hat"]
    N = z.shape[0] // 2
    assert torch.equal(z_hat[:N], z[0::2])
    assert torch.equal(z_hat[N:], z[1::2].repeat(N, 1))                        # [i, j] = p_j
    pulled = _method("npair").losses(x, labels)["z_hat"]
    assert not torch.equal(pulled[N:], z[1::2].repeat(N, 1))


@pytest.mark.parametrize("form", ["official", "paper"])
def test_tracker_averages_weighted_j_m_in_official_form(form):
    m = _method("npair", hard=False, form=form, block=1)
    x, labels = _batch("npair")
    out = m.train_step(x, labels, 0)
    assert out["j_avg"] == 1e6 and out["weight_syn"] == pytest.approx(1 - math.exp(-1e4 / 1e6))
    w = real_weight(1e4, 1e6) if form == "official" else 1.0
    assert m.tracker.j_avg == pytest.approx(w * out["j_m"])
    assert m.tracker.j_gen == pytest.approx(out["j_gen"])
    official, paper = _method("npair", form="official"), _method("npair", form="paper")
    j_off, j_pap = official.losses(x, labels)["j_gen"].item(), paper.losses(x, labels)["j_gen"].item()
    assert j_off > 100 * j_pap                                                  # sums and the 1e4 factor


def test_epoch_mode_closes_every_steps_per_epoch():
    m = _method("npair", hard=False, j_avg_mode="epoch", steps_per_epoch=2)
    x, labels = _batch("npair")
    o1 = m.train_step(x, labels, 0)
    assert m.tracker.j_avg == 1e6
    o2 = m.train_step(x, labels, 1)
    w = real_weight(1e4, 1e6)
    assert m.tracker.j_avg == pytest.approx(w * (o1["j_m"] + o2["j_m"]) / 2)
    with pytest.warns(UserWarning, match="steps_per_epoch"):
        _method("npair", j_avg_mode="epoch")


# ---------------------------------------------------------------- contract details
def test_train_step_outputs_and_checkpoint_resume():
    a = _method("npair", hard=False, block=2)
    x, labels = _batch("npair")
    out = a.train_step(x, labels, 0)
    keys = {"loss", "j_m", "j_syn", "j_gen", "j_recon", "j_soft", "ce_real", "j_avg", "weight_syn"}
    assert keys <= set(out) and all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    state = copy.deepcopy(a.state_dict())
    b = _method("npair", seed=1, hard=False, block=2)
    b.load_state_dict(state)
    assert b.tracker.state_dict() == a.tracker.state_dict()
    for step in (1, 2):                            # crosses a block boundary
        oa, ob = a.train_step(x, labels, step), b.train_step(x, labels, step)
        assert oa == ob
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_lr_schedule_scales_the_metric_optimizer_only():
    m = _method("npair")
    m.set_lr_scale(0.5)
    assert [g["lr"] for g in m.optimizers["metric"].param_groups] == [5e-4, 5e-3]
    assert m.optimizers["generator"].param_groups[0]["lr"] == m.cfg.hdml.lr_gen
    assert m.optimizers["softmax"].param_groups[0]["lr"] == m.cfg.hdml.s_lr


def test_errors():
    with pytest.raises(ValueError, match="npair"):
        HDMLMethod(_cfg("contrastive"), NUM_CLASSES, 1, CPU)
    m = _method("npair")
    x, labels = _batch("npair")
    with pytest.raises(ValueError, match="class-major"):
        m.train_step(x, labels.flip(0).roll(1), 0)
    with pytest.raises(ValueError, match="triplet"):
        _method("triplet").train_step(x, labels, 0)
    before = [p.detach().clone() for p in m.model.parameters()]
    x_bad = x.clone()
    x_bad[0] = float("nan")
    with pytest.raises(NonFiniteLossError):
        m.train_step(x_bad, labels, 0)
    assert all(torch.equal(p0, p1) for p0, p1 in zip(before, m.model.parameters()))


# ---------------------------------------------------------------- a short run
def test_short_training_run_lowers_the_loss():
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(NUM_CLASSES, 1, 16, 16, generator=g)
    m = _method("npair", hard=False, block=5, alpha=7.0)
    j_m, j_avgs = [], []
    for step in range(30):
        classes = torch.randperm(NUM_CLASSES, generator=g)[:6]
        labels = classes.repeat_interleave(2)
        x = protos[labels] + 0.5 * torch.randn(12, 1, 16, 16, generator=g)
        out = m.train_step(x, labels, step)
        j_m.append(out["j_m"])
        j_avgs.append(out["j_avg"])
    assert sum(j_m[-5:]) / 5 < 0.7 * sum(j_m[:5]) / 5
    assert j_avgs[0] == 1e6 and j_avgs[-1] < 1e6                             # blocks closed
    z = m.embed(protos)
    assert z.shape == (NUM_CLASSES, 8) and torch.isfinite(z).all()
