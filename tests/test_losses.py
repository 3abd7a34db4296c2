"""Losses against naive Python loops over hand-listed tuples, and against
pytorch-metric-learning (PML) where it has the same loss (the reference oracle)."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from hdml_lite.config import LossConfig
from hdml_lite.losses import (LOSSES, angular_loss, batch_layout, contrastive_loss,
                              lifted_structure_loss, metric_loss, npair_ce, npair_loss,
                              pairwise_dist, pairwise_sq_dist, random_negatives,
                              semihard_triplet_loss, triplet_loss)

try:
    from pytorch_metric_learning import distances as pml_dist
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import reducers as pml_reducers
except ModuleNotFoundError:  # optional test dependency
    pml_losses = None
needs_pml = pytest.mark.skipif(pml_losses is None, reason="pytorch-metric-learning not installed")

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    """Tolerances for torch.testing.assert_close."""
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)


def approx(want, dtype):
    t = tol(dtype)
    return pytest.approx(want, rel=t["rtol"], abs=t["atol"])


def batch(dtype, n_classes=3, m=3, dim=4, scale=1.0, seed=0):
    """m images per class, class-major; labels (B,)."""
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n_classes * m, dim, generator=g, dtype=torch.float64) * scale).to(dtype)
    labels = torch.arange(n_classes).repeat_interleave(m)
    return z, labels


def dist(u, v):
    return math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(u, v)))


def l2(u, v):
    return dist(u, v) ** 2


# ---------------------------------------------------------------- distances
@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_distances_match_loops(dtype):
    x, _ = batch(dtype, seed=1)
    y, _ = batch(dtype, n_classes=2, seed=2)
    sq, d = pairwise_sq_dist(x, y), pairwise_dist(x, y)
    assert sq.shape == (len(x), len(y))
    for i, j in itertools.product(range(len(x)), range(len(y))):
        assert sq[i, j].item() == pytest.approx(l2(x[i], y[j]), rel=1e-4)
        assert d[i, j].item() == pytest.approx(dist(x[i], y[j]), rel=1e-4)
    assert (pairwise_sq_dist(x, x) >= 0).all()


def test_pairwise_dist_gradient_at_zero():
    # half-integers: the expansion is exact, so coinciding rows give exactly 0
    x = torch.tensor([[0.5, 1.5], [0.5, 1.5], [-1.0, 2.0]], requires_grad=True)
    d = pairwise_dist(x, x)
    assert d[0, 1].item() == pytest.approx(1e-6) and d[0, 2].item() == pytest.approx(math.sqrt(2.5))
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- contrastive
def contrastive_naive(z, labels, pos_margin, neg_margin):
    pos, neg = [], []
    for i, j in itertools.combinations(range(len(z)), 2):
        d = dist(z[i], z[j])
        if labels[i] == labels[j]:
            pos.append(max(d - pos_margin, 0.0))
        else:
            neg.append(max(neg_margin - d, 0.0))
    avg = lambda xs: (sum(x for x in xs if x > 0) / max(1, sum(x > 0 for x in xs)))
    return avg(pos) + avg(neg)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_margin,neg_margin", [(0.0, 1.0), (0.3, 1.2)])
def test_contrastive_naive(dtype, pos_margin, neg_margin):
    z, labels = batch(dtype, scale=0.5)
    got = contrastive_loss(z, labels, pos_margin, neg_margin)
    want = contrastive_naive(z, labels, pos_margin, neg_margin)
    assert got.item() == approx(want, dtype)
    # some but not all negatives active, so the average-non-zero rule matters
    d_neg = pairwise_dist(z, z)[labels[:, None] != labels[None, :]]
    assert (d_neg < neg_margin).any() and (d_neg > neg_margin).any()


@needs_pml
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_margin,neg_margin", [(0.0, 1.0), (0.3, 1.2)])
def test_contrastive_pml(dtype, pos_margin, neg_margin):
    z, labels = batch(dtype, scale=0.5)
    ref = pml_losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin,
                                     distance=pml_dist.LpDistance(normalize_embeddings=False))
    torch.testing.assert_close(contrastive_loss(z, labels, pos_margin, neg_margin),
                               ref(z, labels), **tol(dtype))


# ---------------------------------------------------------------- triplet
def triplets(dtype, T=5, dim=4, seed=3):
    g = torch.Generator().manual_seed(seed)
    a, p, n = (torch.randn(T, dim, generator=g, dtype=torch.float64).to(dtype) * 0.6
               for _ in range(3))
    return a, p, n


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("squared", [True, False])
def test_triplet_naive(dtype, reduction, squared):
    a, p, n = triplets(dtype)
    f, margin = (l2, 1.0) if squared else (dist, 0.3)
    terms = [max(f(a[t], p[t]) - f(a[t], n[t]) + margin, 0.0) for t in range(len(a))]
    assert 0 < sum(t > 0 for t in terms) < len(terms)
    want = sum(terms) if reduction == "sum" else sum(terms) / len(terms)
    got = triplet_loss(a, p, n, margin=margin, reduction=reduction, squared=squared)
    assert got.item() == approx(want, dtype)


@needs_pml
@pytest.mark.parametrize("dtype", DTYPES)
def test_triplet_pml(dtype):
    a, p, n = triplets(dtype)
    T = len(a)
    ref = pml_losses.TripletMarginLoss(
        margin=1.0, distance=pml_dist.LpDistance(power=2, normalize_embeddings=False),
        reducer=pml_reducers.SumReducer())
    idx = torch.arange(T)
    want = ref(torch.cat([a, p, n]), indices_tuple=(idx, idx + T, idx + 2 * T))
    torch.testing.assert_close(triplet_loss(a, p, n, margin=1.0), want, **tol(dtype))


def test_triplet_bad_reduction():
    a, p, n = triplets(torch.float32)
    with pytest.raises(ValueError, match="reduction"):
        triplet_loss(a, p, n, reduction="max")


def test_random_negatives_other_label():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3])
    g = torch.Generator().manual_seed(0)
    picked = set()
    for _ in range(50):
        idx = random_negatives(labels, generator=g)
        assert idx.shape == labels.shape and idx.dtype == torch.int64
        assert (labels[idx] != labels).all()
        picked.update(idx[:2].tolist())
    assert picked == set(range(2, 8))  # every other-class sample can be drawn
    same = random_negatives(labels, torch.Generator().manual_seed(1))
    assert torch.equal(same, random_negatives(labels, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="two classes"):
        random_negatives(torch.tensor([4, 4, 4]))


# ---------------------------------------------------------------- semi-hard (TF semantics)
def semihard_naive(z, labels, margin):
    terms = []
    B = len(z)
    for a, p in itertools.permutations(range(B), 2):
        if labels[a] != labels[p]:
            continue
        negs = [dist(z[a], z[n]) for n in range(B) if labels[n] != labels[a]]
        d_ap = dist(z[a], z[p])
        farther = [d for d in negs if d > d_ap]
        d_an = min(farther) if farther else max(negs)
        terms.append(max(d_ap - d_an + margin, 0.0))
    return sum(terms) / len(terms), terms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_semihard_naive(dtype, margin):
    z, labels = batch(dtype, n_classes=3, m=3, scale=0.7, seed=5)
    want, terms = semihard_naive(z, labels, margin)
    assert any(t > 0 for t in terms)
    got = semihard_triplet_loss(z, labels, margin=margin)
    assert got.item() == approx(want, dtype)


def test_semihard_fallback_to_farthest_negative():
    # a0=(0,0), p1=(3,0) (d_ap = 3); negatives n2=(0,1), n3=(0,2.5) are both closer than p1
    z = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 2.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # (0,1): no negative farther than 3 -> farthest one, 2.5: 3 - 2.5 + 0.2 = 0.7
    #        (the closest negative would give 2.2, the hardest-in-the-margin rule 0)
    # (1,0): closest negative farther than 3 is n2 at sqrt(10): 3.2 - sqrt(10)
    # (2,3), (3,2): d_ap = 1.5, semi-hard negatives at sqrt(10) and 2.5 -> 0
    want = (0.7 + 3.2 - math.sqrt(10)) / 4
    assert semihard_triplet_loss(z, labels, margin=0.2).item() == pytest.approx(want, rel=1e-5)
    assert semihard_naive(z, labels, 0.2)[0] == pytest.approx(want, rel=1e-9)


# ---------------------------------------------------------------- lifted
def lifted_naive(z, labels, margin):
    B, total, P = len(z), 0.0, 0
    for i, j in itertools.combinations(range(B), 2):
        if labels[i] != labels[j]:
            continue
        s = sum(math.exp(margin - dist(z[i], z[k])) for k in range(B) if labels[k] != labels[i])
        s += sum(math.exp(margin - dist(z[j], z[l])) for l in range(B) if labels[l] != labels[j])
        J = math.log(s) + dist(z[i], z[j])
        total += max(J, 0.0) ** 2
        P += 1
    return total / (2 * P)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_lifted_naive(dtype, margin):
    z, labels = batch(dtype, scale=1.5, seed=7)
    got = lifted_structure_loss(z, labels, margin=margin)
    assert got.item() == approx(lifted_naive(z, labels, margin), dtype)


@needs_pml
@pytest.mark.parametrize("dtype", DTYPES)
def test_lifted_pml(dtype):
    # PML averages relu(J)^2 / 2 over ordered positive pairs: same value as 1/(2|P|) sum over i<j
    z, labels = batch(dtype, scale=1.5, seed=7)
    ref = pml_losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0,
                                         distance=pml_dist.LpDistance(normalize_embeddings=False))
    torch.testing.assert_close(lifted_structure_loss(z, labels, 1.0), ref(z, labels), **tol(dtype))


def test_lifted_large_margin_is_stable():
    z, labels = batch(torch.float32, seed=8)
    loss = lifted_structure_loss(z, labels, margin=200.0)  # exp(200) overflows float32
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(lifted_naive(z.double(), labels, 200.0), rel=1e-4)


# ---------------------------------------------------------------- N-pair
def npair_pairs(dtype, N=4, dim=5, seed=9):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(N, dim, generator=g, dtype=torch.float64).to(dtype)
    p = torch.randn(N, dim, generator=g, dtype=torch.float64).to(dtype)
    return a, p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l2_reg", [0.0, 3e-3, 0.5])
def test_npair_naive(dtype, l2_reg):
    a, p = npair_pairs(dtype)
    N = len(a)
    ce = 0.0
    for i in range(N):
        logits = [float(a[i] @ p[j]) for j in range(N)]
        ce += -logits[i] + math.log(sum(math.exp(x) for x in logits))
    reg = sum(float(a[i] @ a[i]) for i in range(N)) / N + sum(float(p[i] @ p[i]) for i in range(N)) / N
    want = ce / N + 0.25 * l2_reg * reg
    assert npair_loss(a, p, l2_reg).item() == approx(want, dtype)


@needs_pml
@pytest.mark.parametrize("dtype", DTYPES)
def test_npair_pml(dtype):
    a, p = npair_pairs(dtype)
    N = len(a)
    z = torch.stack([a, p], dim=1).reshape(2 * N, -1)  # class-major pairs [a0, p0, a1, p1, ...]
    labels = torch.arange(N).repeat_interleave(2)
    ref = pml_losses.NPairsLoss(distance=pml_dist.DotProductSimilarity(normalize_embeddings=False))
    torch.testing.assert_close(npair_loss(a, p, l2_reg=0.0), ref(z, labels), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_npair_ce_naive_and_reduces_to_npair(dtype):
    a, p = npair_pairs(dtype)
    N = len(a)
    g = torch.Generator().manual_seed(10)
    cands = torch.randn(N, N, a.shape[1], generator=g, dtype=torch.float64).to(dtype)
    want = 0.0
    for i in range(N):
        logits = [float(a[i] @ cands[i, j]) for j in range(N)]
        want += -logits[i] + math.log(sum(math.exp(x) for x in logits))
    assert npair_ce(a, cands).item() == approx(want / N, dtype)
    shared = p.unsqueeze(0).expand(N, N, -1)  # every anchor sees the same candidates p_j
    torch.testing.assert_close(npair_ce(a, shared), npair_loss(a, p, l2_reg=0.0))


# ---------------------------------------------------------------- angular
def angular_naive(a, p, angle_deg):
    a, p = F.normalize(a, dim=1), F.normalize(p, dim=1)
    t2 = math.tan(math.radians(angle_deg)) ** 2
    N, total = len(a), 0.0
    for i in range(N):
        s = 1.0
        for n in range(N):
            if n != i:
                f = 4 * t2 * float((a[i] + p[i]) @ p[n]) - 2 * (1 + t2) * float(a[i] @ p[i])
                s += math.exp(f)
        total += math.log(s)
    return total / N


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("angle", [36.0, 45.0])
def test_angular_naive(dtype, angle):
    a, p = npair_pairs(dtype)
    a = a * 3.0  # not unit norm: the loss normalises every vector
    got = angular_loss(a, p, angle_deg=angle)
    assert got.item() == approx(angular_naive(a, p, angle), dtype)


@needs_pml
@pytest.mark.parametrize("dtype", DTYPES)
def test_angular_pml(dtype):
    # PML leaves the negatives (ref_emb) unnormalised, so compare on unit vectors.
    # Anchors vs ref_emb = positives: the negatives of pair i are the other positives.
    a, p = (F.normalize(x, dim=1) for x in npair_pairs(dtype))
    labels = torch.arange(len(a))
    want = pml_losses.AngularLoss(alpha=45)(a, labels, ref_emb=p, ref_labels=labels.clone())
    torch.testing.assert_close(angular_loss(a, p, 45.0), want, **tol(dtype))


# ---------------------------------------------------------------- dispatch, layouts, gradients
def test_batch_layout_and_unknown_names():
    assert {n: batch_layout(n) for n in LOSSES} == {
        "contrastive": "m_per_class", "triplet": "triplet", "semihard": "m_per_class",
        "lifted": "m_per_class", "npair": "npair", "angular": "npair"}
    for bad in (lambda: batch_layout("arcface"),
                lambda: metric_loss(LossConfig(name="arcface"), *batch(torch.float32))):
        with pytest.raises(ValueError, match="contrastive, triplet, semihard, lifted, npair, angular"):
            bad()


def test_metric_loss_dispatch():
    g = torch.Generator().manual_seed(11)
    z = torch.randn(12, 4, generator=g)
    pair_labels = torch.arange(6).repeat_interleave(2)            # [0,0,1,1,...]
    trip_labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 0, 3, 3, 1])
    mpc_labels = torch.arange(4).repeat_interleave(3)             # [0,0,0,1,1,1,...]
    cfg = lambda **kw: LossConfig(**kw)
    checks = {
        "npair": (pair_labels, npair_loss(z[0::2], z[1::2], l2_reg=0.01), dict(l2_reg=0.01)),
        "angular": (pair_labels, angular_loss(z[0::2], z[1::2], 40.0), dict(angle_deg=40.0)),
        "triplet": (trip_labels, triplet_loss(z[0::3], z[1::3], z[2::3], 0.7, "mean"),
                    dict(margin=0.7, reduction="mean")),
        "contrastive": (mpc_labels, contrastive_loss(z, mpc_labels, 0.1, 2.0),
                        dict(pos_margin=0.1, neg_margin=2.0)),
        "semihard": (mpc_labels, semihard_triplet_loss(z, mpc_labels, 0.3), dict(margin=0.3)),
        "lifted": (mpc_labels, lifted_structure_loss(z, mpc_labels, 0.8), dict(margin=0.8)),
    }
    assert set(checks) == set(LOSSES)
    for name, (labels, want, kw) in checks.items():
        torch.testing.assert_close(metric_loss(cfg(name=name, **kw), z, labels), want)
    # a batch in the wrong layout is refused, not silently mis-sliced
    with pytest.raises(ValueError, match="N-pair"):
        metric_loss(cfg(name="npair"), z, mpc_labels)
    with pytest.raises(ValueError, match="triplet"):
        metric_loss(cfg(name="triplet"), z, pair_labels)


@pytest.mark.parametrize("name", LOSSES)
def test_finite_gradients_with_coinciding_embeddings(name):
    labels = {"npair": torch.arange(3).repeat_interleave(2),
              "angular": torch.arange(3).repeat_interleave(2),
              "triplet": torch.tensor([0, 0, 1, 1, 1, 0])}.get(name, torch.tensor([0, 0, 0, 1, 1, 1]))
    # half-integers keep the distance expansion exact: coinciding rows are at exactly 0
    z = torch.randint(-3, 3, (6, 3), generator=torch.Generator().manual_seed(12)) + 0.5
    z[1] = z[0]      # anchor == positive
    z[3] = z[0]      # == a sample of another class (the negative of the first triplet)
    z[2] = z[4]
    z.requires_grad_(True)
    loss = metric_loss(LossConfig(name=name), z, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("squared", [True, False])
def test_triplet_finite_gradient_when_anchor_equals_positive(squared):
    a = torch.tensor([[0.5, 1.0], [2.0, -1.0]], requires_grad=True)
    n = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    loss = triplet_loss(a, a, n, margin=1.0, squared=squared)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(a.grad).all()


def test_semihard_and_lifted_single_class_batch():
    z = torch.randn(4, 3, requires_grad=True)
    labels = torch.zeros(4, dtype=torch.long)
    for fn in (semihard_triplet_loss, lifted_structure_loss):
        loss = fn(z, labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name,labels,ok", [
    ("triplet", [0, 0, 1, 2, 2, 3], True),
    ("triplet", [0, 1, 1, 2, 2, 3], False),     # anchor and positive differ
    ("triplet", [0, 0, 0, 2, 2, 3], False),     # the negative has the anchor's label
    ("triplet", [0, 0, 1, 2], False),           # not a multiple of 3
    ("npair", [0, 0, 1, 1], True),
    ("npair", [0, 1, 1, 1], False),
])
def test_batch_layout_check_refuses_a_wrong_order(name, labels, ok):
    z = torch.randn(len(labels), 4)
    call = lambda: metric_loss(LossConfig(name=name), z, torch.tensor(labels))  # noqa: E731
    if ok:
        assert torch.isfinite(call())
    else:
        with pytest.raises(ValueError, match="batches"):
            call()
