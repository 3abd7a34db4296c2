"""hdml/augment.py: closed-form checks of the hardness-aware augmentation (METHOD §1.1)."""
import math

import pytest
import torch

from hdml_lite.hdml.augment import augment_npair, augment_triplet, pull_factor


def _far_triplets(T=5, D=4, seed=0):
    """Triplets with d- > d+ (negatives far away), float64."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(T, D, generator=g, dtype=torch.float64)
    p = a + 0.1 * torch.randn(T, D, generator=g, dtype=torch.float64)
    n = a + 3.0 + torch.randn(T, D, generator=g, dtype=torch.float64)
    return a, p, n


def test_pull_factor_values():
    assert pull_factor(90.0, 1e6) == pytest.approx(math.exp(-90.0 / 1e6))
    assert pull_factor(0.0, 5.0) == 1.0
    assert pull_factor(7.0, 0.0) == 0.0
    assert pull_factor(7.0, 1.0) < pull_factor(7.0, 10.0) < 1.0  # smaller J_avg: harder


@pytest.mark.parametrize("alpha, j_avg", [(7.0, 1.0), (90.0, 30.0), (1.0, 100.0)])
def test_triplet_on_segment_at_closed_form_distance(alpha, j_avg):
    a, p, n = _far_triplets()
    n_hat = augment_triplet(a, p, n, alpha, j_avg)
    d_p, d_n = (a - p).norm(dim=1), (a - n).norm(dim=1)
    assert (d_n > d_p).all()
    expected = d_p + (d_n - d_p) * math.exp(-alpha / j_avg)
    torch.testing.assert_close((n_hat - a).norm(dim=1), expected)
    # on the segment a -> n: n_hat - a = t (n - a) with t in [0, 1]
    t = expected / d_n
    torch.testing.assert_close(n_hat, a + t.unsqueeze(1) * (n - a))
    assert ((t > 0) & (t <= 1)).all()


def test_triplet_unchanged_when_already_hard():
    a, p, n = _far_triplets()
    p_far = a + 100.0 * (p - a) / (p - a).norm(dim=1, keepdim=True)  # d+ = 100 > d-
    n_hat = augment_triplet(a, p_far, n, 7.0, 0.5)
    assert torch.equal(n_hat, n)
    # d- == d+ exactly is also the "else" branch
    assert torch.equal(augment_triplet(a, n, n, 7.0, 0.5), n)


def test_alpha_zero_returns_inputs_exactly():
    a, p, n = _far_triplets()
    assert torch.equal(augment_triplet(a, p, n, 0.0, 0.5), n)
    cand = augment_npair(a, p, 0.0, 0.5)
    assert torch.equal(cand, p.unsqueeze(0).expand(5, 5, 4))


def test_factor_zero_gives_distance_d_plus():
    a, p, n = _far_triplets()
    n_hat = augment_triplet(a, p, n, 90.0, 1e-3)  # exp(-9e4) == 0
    torch.testing.assert_close((n_hat - a).norm(dim=1), (a - p).norm(dim=1))


@pytest.mark.parametrize("case", ["a_eq_n", "a_eq_p", "all_equal"])
def test_coincident_points_finite_values_and_gradients(case):
    a, p, n = (t.float() for t in _far_triplets())
    if case in ("a_eq_n", "all_equal"):
        n = a.clone()
    if case in ("a_eq_p", "all_equal"):
        p = a.clone()
    a, p, n = (t.requires_grad_() for t in (a, p, n))
    out = augment_triplet(a, p, n, 7.0, 1.0)
    cand = augment_npair(a, p, 7.0, 1.0)
    assert torch.isfinite(out).all() and torch.isfinite(cand).all()
    (out.pow(2).sum() + cand.pow(2).sum()).backward()
    for t in (a, p, n):
        assert torch.isfinite(t.grad).all()


def test_gradients_flow_through_interpolation():
    a, p, n = (t.clone().requires_grad_() for t in _far_triplets())
    augment_triplet(a, p, n, 7.0, 1.0).sum().backward()
    # the synthetic negative depends on the anchor, the positive (through d+) and the negative
    for t in (a, p, n):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_npair_diagonal_is_exact_copy():
    g = torch.Generator().manual_seed(1)
    a, p = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    cand = augment_npair(a, p, 90.0, 0.5)
    assert cand.shape == (7, 7, 5)
    for i in range(7):
        assert torch.equal(cand[i, i], p[i])
    # and the off-diagonal entries really were pulled (this input has d- > d+ somewhere)
    assert not torch.equal(cand, p.unsqueeze(0).expand(7, 7, 5))


def test_npair_matches_naive_loop_of_triplets():
    g = torch.Generator().manual_seed(2)
    N, D = 6, 3
    a = torch.randn(N, D, generator=g, dtype=torch.float64)
    p = a + 0.8 * torch.randn(N, D, generator=g, dtype=torch.float64)
    cand = augment_npair(a, p, 7.0, 2.0)
    for i in range(N):
        for j in range(N):
            ref = augment_triplet(a[i:i + 1], p[i:i + 1], p[j:j + 1], 7.0, 2.0)[0]
            torch.testing.assert_close(cand[i, j], ref)
