"""hdml/diagnostics.py and the mechanism logging of HDMLMethod (METHOD §5), hdml.bn_stats (§1.9)."""
import math

import pytest
import torch

from hdml_lite.hdml.augment import augment_npair, augment_triplet
from hdml_lite.hdml.diagnostics import engagement, engagement_lines, npair_hardness, triplet_hardness
from hdml_lite.training.method import BaselineMethod
from test_hdml_method import CPU, NUM_CLASSES, _batch, _cfg, _method

DIAG_KEYS = ("acc_real", "acc_syn", "pull_factor", "hard_real", "hard_aug", "hard_gen", "weight_syn", "ce_real")


def test_npair_hardness_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    a, p = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    ratios = [torch.dist(a[i], p[j]) / torch.dist(a[i], p[i]) for i in range(5) for j in range(5) if i != j]
    assert npair_hardness(a, p) == pytest.approx(float(torch.stack(ratios).median()), rel=1e-6)
    # the same layout given as (N, N, D) candidates
    assert npair_hardness(a, p.unsqueeze(0).expand(5, 5, 3)) == pytest.approx(npair_hardness(a, p))


def test_full_pull_gives_hardness_one():
    """The augmentor with pull factor ~0 puts every easy negative at d+: ratio 1 (or below, for
    negatives that were already harder than the positive)."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 4, generator=g)
    p = a + 0.3 * torch.randn(6, 4, generator=g)                     # positives near their anchors
    cand = augment_npair(a, p, alpha=1e3, j_avg=1.0)
    assert npair_hardness(a, cand) <= 1.0 + 1e-5
    assert npair_hardness(a, cand) < npair_hardness(a, p)
    n = torch.randn(6, 4, generator=g) * 5
    n_hat = augment_triplet(a, p, n, alpha=1e3, j_avg=1.0)
    assert triplet_hardness(a, p, n_hat) == pytest.approx(1.0, abs=1e-4)
    assert triplet_hardness(a, p, n) > 1.0


@pytest.mark.parametrize("loss", ["npair", "triplet"])
def test_train_step_logs_the_diagnostics(loss):
    m = _method(loss)
    x, y = _batch(loss)
    logs = m.train_step(x, y, 0)
    for k in DIAG_KEYS:
        assert k in logs and math.isfinite(logs[k]), k
    assert 0.0 <= logs["acc_real"] <= 1.0 and 0.0 <= logs["acc_syn"] <= 1.0
    assert logs["pull_factor"] == pytest.approx(math.exp(-m.cfg.hdml.alpha / 2.0))   # J_avg = 2 (fixture)
    assert logs["hard_aug"] <= logs["hard_real"] + 1e-6       # pulling never makes a negative easier


def _rows(n=40, acc=0.8, w=0.5, pull=0.4, real=1.3, aug=1.1, gen=1.15, acc_syn=0.7):
    return [dict(acc_real=acc, acc_syn=acc_syn, weight_syn=w, pull_factor=pull, hard_real=real, hard_aug=aug,
                 hard_gen=gen) for _ in range(n)]


def test_engagement_conditions_v2():
    ok = engagement(_rows())
    assert ok["engaged"] and all(ok[k]["ok"] for k in ("classifier", "labels", "weight", "pull", "hardness"))
    assert ok["v1"]["engaged"]
    assert not engagement(_rows(acc=0.3))["classifier"]["ok"]
    assert not engagement(_rows(acc_syn=0.32))["labels"]["ok"]      # two thirds of the synthetics lose their label
    assert not engagement(_rows(w=0.1))["weight"]["ok"]
    assert not engagement(_rows(w=1.0))["weight"]["ok"]             # the real loss drops out
    assert not engagement(_rows(pull=0.034))["pull"]["ok"]          # z^ at 1.03 d+: all pulled
    assert not engagement(_rows(pull=0.97))["pull"]["ok"]           # nothing pulled
    assert not engagement(_rows(gen=1.5))["hardness"]["ok"]          # easier than the real negatives
    assert not engagement(_rows(real=1.15))["hardness"]["ok"]        # v2 needs strictly harder
    assert not engagement(_rows(real=3.0, aug=1.0, gen=1.5))["hardness"]["ok"]   # 50% off the asked hardness
    assert not engagement(_rows(acc=0.3))["engaged"]
    lines = engagement_lines(ok)
    assert len(lines) == 6 and "v1" in lines[-1]
    assert engagement([{"loss": 1.0}])["engaged"] is False
    assert engagement([{"loss": 1.0}])["v1"]["engaged"] is False


def test_engagement_v1_passes_what_v2_rejects():
    """The landed study's numbers: pull 0.034, acc_syn 0.32, hard_real 1.95 vs hard_aug 1.04 and
    hard_gen 1.20: v1 says engaged, v2 does not (labels and pull fail)."""
    rows = _rows(acc=0.7, w=0.36, pull=0.034, real=1.95, aug=1.04, gen=1.2, acc_syn=0.32)
    e = engagement(rows)
    assert e["v1"]["engaged"] and not e["engaged"]
    assert [k for k in ("classifier", "labels", "weight", "pull", "hardness") if not e[k]["ok"]] == ["labels", "pull"]
    assert e["numbers"]["pull_factor"] == pytest.approx(0.034)


def _bn_buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


def test_bn_stats_real_leaves_running_stats_to_real_features():
    """With hdml.bn_stats=real, the BN running statistics after an HDML step equal those of a
    baseline step on the same batch (same weights); with official they do not."""
    x, y = _batch("npair")
    base_cfg = _cfg("npair")
    torch.manual_seed(0)
    base = BaselineMethod(base_cfg, NUM_CLASSES, 1, CPU)
    for mode, equal in (("real", True), ("official", False)):
        m = _method("npair", bn_stats=mode)
        m.model.load_state_dict(base.model.state_dict())
        ref = BaselineMethod(base_cfg, NUM_CLASSES, 1, CPU)
        ref.model.load_state_dict(base.model.state_dict())
        m.train_step(x, y, 0)
        ref.train_step(x, y, 0)
        got, want = _bn_buffers(m.model), _bn_buffers(ref.model)
        same = all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)
        assert same == equal, mode
        head_same = torch.allclose(got["head.bn.running_var"], want["head.bn.running_var"], atol=1e-6)
        assert head_same == equal


def test_bn_stats_rejects_unknown_value():
    with pytest.raises(ValueError, match="bn_stats"):
        _method("npair", bn_stats="both")
