"""Evaluation against oracles: naive loops over queries and pairs, pytorch-metric-learning's
AccuracyCalculator (the reference library), and closed-form cases (perfect embeddings)."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import normalized_mutual_info_score

from hdml_lite.evaluation import retrieval as retrieval_module
from hdml_lite.evaluation import (cluster_metrics, compute_embeddings, evaluate, evaluate_embeddings,
                                  kmeans_labels, knn, ks_for, map_at_r, pair_f1, r_precision,
                                  recall_at_k, retrieval_metrics)

try:
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
except ModuleNotFoundError:  # optional test dependency
    AccuracyCalculator = None
needs_pml = pytest.mark.skipif(AccuracyCalculator is None, reason="pytorch-metric-learning not installed")


def clustered(n=300, n_classes=20, dim=16, spread=1.0, seed=0, dtype=torch.float32):
    """Random embeddings loosely clustered by class (continuous values: no ties)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    centres = torch.randn(n_classes, dim, generator=g, dtype=dtype)
    emb = centres[labels] + spread * torch.randn(n, dim, generator=g, dtype=dtype)
    return emb, labels


def naive_ranking(emb, q):
    """Indices of all other items, most similar first (cosine), by a full sort."""
    e = F.normalize(emb.double(), dim=1)
    s = e @ e[q]
    order = torch.argsort(s, descending=True, stable=True)
    return order[order != q]


def naive_metrics(emb, labels, ks):
    """Recall@K, MAP@R, R-precision by a loop over queries, straight from the definitions."""
    hits = {k: [] for k in ks}
    maps, rps = [], []
    for q in range(len(labels)):
        rel = (labels[naive_ranking(emb, q)] == labels[q]).tolist()
        r = sum(rel)
        if r == 0:  # no other item of its class: left out
            continue
        for k in ks:
            hits[k].append(any(rel[:k]))
        top = rel[:r]
        maps.append(sum(sum(top[:i + 1]) / (i + 1) for i in range(r) if top[i]) / r)
        rps.append(sum(top) / r)
    out = {f"r{k}": float(np.mean(hits[k])) for k in ks}
    out.update(map_r=float(np.mean(maps)), r_precision=float(np.mean(rps)))
    return out


# ---------------------------------------------------------------- retrieval
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,n_classes,ks", [(300, 20, (1, 2, 4, 8)),      # R_max >= max K: top list
                                              (400, 120, (1, 3, 10, 50)),  # max K > R_max: counting
                                              (60, 45, (1, 2, 4, 8))])     # many lone queries
def test_retrieval_matches_naive_loop(dtype, n, n_classes, ks):
    emb, labels = clustered(n, n_classes, spread=1.5, seed=n, dtype=dtype)
    got = retrieval_metrics(emb, labels, ks, chunk=64)
    want = naive_metrics(emb, labels, ks)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    assert 0 < got["r1"] < got[f"r{ks[-1]}"] < 1  # non-trivial case


@needs_pml
def test_retrieval_matches_pytorch_metric_learning():
    emb, labels = clustered(300, 20, spread=1.0, seed=1)
    e = F.normalize(emb, dim=1)
    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
                              k="max_bin_count", device=torch.device("cpu"))
    ref = calc.get_accuracy(e, labels)
    got = retrieval_metrics(emb, labels, ks=(1,))
    assert got["r1"] == pytest.approx(ref["precision_at_1"], abs=1e-6)
    assert got["map_r"] == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-6)
    assert got["r_precision"] == pytest.approx(ref["r_precision"], abs=1e-6)
    assert 0.1 < got["map_r"] < 0.9


def test_chunk_size_and_data_order_do_not_change_results():
    emb, labels = clustered(257, 30, spread=1.5, seed=2)
    ks = (1, 5, 16, 100)  # 100 > R_max: exercises the counting path too
    ref = retrieval_metrics(emb, labels, ks, chunk=4096)
    for chunk in (5, 64, 100, 256):
        assert retrieval_metrics(emb, labels, ks, chunk=chunk) == pytest.approx(ref, abs=1e-12)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    assert retrieval_metrics(emb[perm], labels[perm], ks, chunk=50) == pytest.approx(ref, abs=1e-12)


def test_block_size_adapts_to_n():
    assert retrieval_module.block_size(100) == 100  # one block
    assert retrieval_module.block_size(6050) == 1009  # 6 equal blocks of about 1,024 rows
    assert retrieval_module.block_size(60502) == 1026
    for n in (1, 700, 1600, 5000, 123457):
        c = retrieval_module.block_size(n)
        assert 0 < c <= max(n, 1) and -(-n // c) == max(1, round(n / 1024))


def test_passing_entries_match_a_full_comparison():
    g = torch.Generator().manual_seed(12)
    b = torch.randn(40, 30, generator=g)
    for scale in (3.0, 1.5, 0.0):  # few rows/columns hot, some, all
        for dim, n in ((1, 40), (0, 30)):
            thr = scale + 0.3 * torch.randn(n, generator=g)
            thr[::7] = float("inf")  # queries without a positive
            r, c = retrieval_module._passing(b, thr, dim)
            want = (b >= (thr[:, None] if dim == 1 else thr[None, :])).nonzero(as_tuple=True)
            assert sorted(zip(r.tolist(), c.tolist())) == sorted(zip(want[0].tolist(), want[1].tolist()))


def test_bad_embeddings_many_negatives_above_the_last_positive(monkeypatch):
    # Noisy embeddings: most negatives rank above some positive (many entries pass the threshold),
    # small classes and large ones mixed; blocks of several sizes, all exact.
    g = torch.Generator().manual_seed(11)
    labels = torch.cat([torch.arange(40).repeat_interleave(2), torch.arange(40, 45).repeat_interleave(30)])
    emb = torch.randn(len(labels), 6, generator=g) + 0.3 * torch.randn(45, 6, generator=g)[labels]
    ks = (1, 4, 32, 200)
    want = naive_metrics(emb, labels, ks)
    for chunk in (None, 7, 64, 1000):
        assert retrieval_metrics(emb, labels, ks, chunk=chunk) == pytest.approx(want, abs=1e-12)
    monkeypatch.setattr(retrieval_module, "COUNT_BUDGET", 100)  # the counting in small pieces
    assert retrieval_metrics(emb, labels, ks, chunk=64) == pytest.approx(want, abs=1e-12)


def test_retrieval_many_small_classes_in_wide_blocks_matches_naive_loop():
    # Classes of 3 (R = 2) and 256-wide blocks.
    g = torch.Generator().manual_seed(8)
    labels = torch.arange(200).repeat_interleave(3)[torch.randperm(600, generator=g)]
    emb = torch.randn(200, 8, generator=g)[labels] + 1.2 * torch.randn(600, 8, generator=g)
    ks = (1, 2, 10, 100)
    got = retrieval_metrics(emb, labels, ks, chunk=256)
    assert got == pytest.approx(naive_metrics(emb, labels, ks), abs=1e-12)


def test_wrappers_and_scale_invariance():
    emb, labels = clustered(200, 15, spread=1.5, seed=3)
    full = retrieval_metrics(emb, labels, (1, 2, 4, 8))
    assert recall_at_k(emb, labels, (1, 2, 4, 8)) == {k: full[f"r{k}"] for k in (1, 2, 4, 8)}
    assert map_at_r(emb, labels) == full["map_r"]
    assert r_precision(emb, labels) == full["r_precision"]
    scaled = emb * torch.rand(len(emb), 1) * 10 + 0.0  # normalised inside: norms do not matter
    assert retrieval_metrics(scaled.numpy(), labels.numpy()) == pytest.approx(full, abs=1e-6)


def test_perfect_and_collapsed_embeddings():
    labels = torch.arange(12).repeat_interleave(5)
    onehot = F.one_hot(labels, 12).float()
    perfect = retrieval_metrics(onehot, labels, (1, 2, 4, 8))
    assert all(v == 1.0 for v in perfect.values())
    # Ties count against the query: a collapsed model scores 0, not a random value.
    collapsed = retrieval_metrics(torch.ones(60, 4), labels, (1, 2, 4, 8))
    assert all(v == 0.0 for v in collapsed.values())
    # One class per item: no query has a positive.
    lone = retrieval_metrics(torch.randn(5, 3), torch.arange(5), (1,))
    assert all(np.isnan(v) for v in lone.values())


def test_ties_count_against_the_query():
    # Query 0's positive (1) and a negative (2) are equally similar to it: the negative ranks first.
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    got = retrieval_metrics(emb, labels, (1, 2))
    assert got == pytest.approx(naive_metrics_pessimistic(emb, labels, (1, 2)))
    assert got["r1"] == 0.0 and got["r2"] == 0.5  # queries 0 and 3 find their positive at rank 2


def naive_metrics_pessimistic(emb, labels, ks):
    """Like naive_metrics, but among equal similarities negatives come first."""
    e = F.normalize(emb.double(), dim=1)
    hits, maps, rps = {k: [] for k in ks}, [], []
    for q in range(len(labels)):
        others = [j for j in range(len(labels)) if j != q]
        others.sort(key=lambda j: (-(e[q] @ e[j]).item(), bool(labels[j] == labels[q])))
        rel = [bool(labels[j] == labels[q]) for j in others]
        r = sum(rel)
        if r == 0:
            continue
        for k in ks:
            hits[k].append(any(rel[:k]))
        top = rel[:r]
        maps.append(sum(sum(top[:i + 1]) / (i + 1) for i in range(r) if top[i]) / r)
        rps.append(sum(top) / r)
    out = {f"r{k}": float(np.mean(hits[k])) for k in ks}
    out.update(map_r=float(np.mean(maps)), r_precision=float(np.mean(rps)))
    return out


def test_knn_matches_full_sort_and_breaks_ties_by_index():
    emb, _ = clustered(150, 10, seed=4)
    want = torch.stack([naive_ranking(emb, q)[:7] for q in range(150)])
    for chunk in (1, 16, 4096):
        assert torch.equal(knn(emb, 7, chunk=chunk), want)
    # Exact ties: rows 1..4 are the same vector; row 0's neighbours 1..4 tie, smaller index first.
    e = torch.tensor([[1.0, 0.1]] + [[1.0, 0.0]] * 4 + [[0.0, 1.0]])
    nn = knn(e, 3, chunk=2)
    assert nn[0].tolist() == [1, 2, 3]
    assert nn[2].tolist() == [1, 3, 4]
    with pytest.raises(ValueError):
        knn(e, 6)


# ---------------------------------------------------------------- clustering
def naive_pair_f1(y_true, y_pred):
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(y_true)), 2):
        same_t, same_p = y_true[i] == y_true[j], y_pred[i] == y_pred[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    return 2 * tp / (2 * tp + fp + fn)


def test_pair_f1_matches_all_pairs_loop():
    rng = np.random.default_rng(0)
    for n, kt, kp in [(60, 5, 7), (80, 12, 3), (40, 2, 20)]:
        y_true, y_pred = rng.integers(0, kt, n), rng.integers(0, kp, n)
        assert pair_f1(y_true, y_pred) == pytest.approx(naive_pair_f1(y_true, y_pred), abs=1e-12)
    y = rng.integers(0, 6, 50)
    assert pair_f1(y, y) == 1.0
    assert pair_f1(y, 100 + y) == 1.0  # cluster ids are arbitrary
    assert pair_f1(np.arange(10), np.zeros(10)) == 0.0  # no true pair recovered
    assert pair_f1(np.arange(5), np.arange(5)) == 1.0  # all singletons on both sides: they agree


def test_cluster_metrics_uses_one_cluster_per_class():
    emb, labels = clustered(240, 12, dim=8, spread=1.0, seed=5)
    pred = kmeans_labels(emb, 12, seed=0)
    assert len(np.unique(pred)) == 12
    got = cluster_metrics(emb, labels, seed=0)  # k defaults to the 12 classes
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(labels.numpy(), pred))
    assert got["f1"] == pytest.approx(naive_pair_f1(labels.tolist(), pred.tolist()))
    assert 0.2 < got["f1"] < got["nmi"] < 1
    other = cluster_metrics(emb, labels, n_clusters=3, seed=0)
    assert other["nmi"] != pytest.approx(got["nmi"])


def test_cluster_metrics_perfect_embeddings():
    labels = np.repeat(np.arange(8), 6)
    onehot = F.one_hot(torch.as_tensor(labels), 8).float()
    assert cluster_metrics(onehot, labels) == {"nmi": pytest.approx(1.0), "f1": pytest.approx(1.0)}


# ---------------------------------------------------------------- evaluate
def test_evaluate_embeddings_flat_keys():
    emb, labels = clustered(200, 10, spread=1.5, seed=6)
    out = evaluate_embeddings(emb, labels.numpy(), ks=(1, 10))
    assert list(out) == ["r1", "r10", "map_r", "r_precision", "nmi", "f1"]
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in out.values())
    assert list(evaluate_embeddings(emb, labels, cluster=False)) == ["r1", "r2", "r4", "r8", "map_r",
                                                                      "r_precision"]


def test_ks_for():
    assert ks_for("sop") == (1, 10, 100, 1000) == ks_for(11316)
    assert ks_for("cub") == (1, 2, 4, 8) == ks_for(100) == ks_for("cars196")


class Toy(torch.utils.data.Dataset):
    def __init__(self, n=70, n_classes=7):
        g = torch.Generator().manual_seed(0)
        self.labels = torch.arange(n) % n_classes
        self.x = torch.randn(n, 3, 4, 4, generator=g) + self.labels[:, None, None, None].float()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i])


def test_compute_embeddings_order_eval_mode_and_tuple_output():
    data = Toy()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(48), torch.nn.Linear(48, 5))
    net.train()
    emb, labels = compute_embeddings(net, data, batch_size=16)
    assert emb.shape == (70, 5) and emb.dtype == torch.float32 and not emb.requires_grad
    assert labels.dtype == np.int64 and labels.tolist() == data.labels.tolist()  # no shuffling
    net.eval()
    assert torch.allclose(emb, net(data.x))  # computed in eval mode (BN running stats) ...
    net.train()
    compute_embeddings(net, data)
    assert net.training  # ... and the mode is restored
    emb2, _ = compute_embeddings(lambda x: (x.flatten(1), x.flatten(1)[:, :2]), data, batch_size=32)
    assert torch.equal(emb2, data.x.flatten(1)[:, :2])  # (y, z) output: the last is the embedding


def test_evaluate_end_to_end():
    data = Toy()
    out = evaluate(lambda x: x.flatten(1), data, cluster=True)
    assert set(out) == {"r1", "r2", "r4", "r8", "map_r", "r_precision", "nmi", "f1"}
    emb = data.x.flatten(1)
    assert out == pytest.approx(evaluate_embeddings(emb, data.labels, ks=(1, 2, 4, 8)))


# ---------------------------------------------------------------- k-means restarts
class _RecordingKMeans:
    """Stands in for scikit-learn's KMeans in clustering.py and records its settings."""
    calls: list = []

    def __init__(self, **kw):
        from sklearn.cluster import KMeans
        type(self).calls.append(kw)
        self._km = KMeans(**kw)

    def fit_predict(self, x):
        return self._km.fit_predict(x)


def test_kmeans_restarts_and_seed_reach_kmeans(monkeypatch):
    from hdml_lite.evaluation import clustering, kmeans_args
    from hdml_lite.presets import get_preset

    monkeypatch.setattr(clustering, "KMeans", _RecordingKMeans)
    _RecordingKMeans.calls = []
    data = Toy()
    evaluate(lambda x: x.flatten(1), data, kmeans_restarts=3, seed=1)
    evaluate(lambda x: x.flatten(1), data)
    assert [(c["n_init"], c["random_state"]) for c in _RecordingKMeans.calls] == [(3, 1), (1, 0)]
    # presets: the released evaluation (10 restarts, random_state 1) in paper presets, auto (0) in the lab
    assert kmeans_args(get_preset("cub_hdml_npair")) == {"seed": 1, "kmeans_restarts": 10}
    assert kmeans_args(get_preset("cars196_hdc"))["kmeans_restarts"] == 10
    assert kmeans_args(get_preset("lab_npair"))["kmeans_restarts"] == 0
    _RecordingKMeans.calls = []
    evaluate(lambda x: x.flatten(1), data, kmeans_restarts=0)      # auto: few clusters -> 10 starts
    assert [c["n_init"] for c in _RecordingKMeans.calls] == [10]


def test_trainer_passes_kmeans_restarts(monkeypatch, tiny_overrides):
    from hdml_lite.config import apply_overrides
    from hdml_lite.evaluation import clustering
    from hdml_lite.presets import get_preset
    from hdml_lite.training.trainer import train

    monkeypatch.setattr(clustering, "KMeans", _RecordingKMeans)
    _RecordingKMeans.calls = []
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["model.pretrained=false", "train.kmeans_restarts=2",
                                                                     "train.kmeans_seed=5", "train.eval_every=0"])
    train(cfg)
    assert _RecordingKMeans.calls and all((c["n_init"], c["random_state"]) == (2, 5) for c in _RecordingKMeans.calls)


def test_kmeans_auto_restarts_shrink_nmi_spread_on_few_classes():
    """5 overlapping classes: one k-means start moves NMI by many points between seeds; auto
    (10 starts at k <= 200) keeps it within about a point."""
    from hdml_lite.evaluation.clustering import kmeans_n_init

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 40)
    emb = rng.normal(size=(5, 16))[labels] + rng.normal(size=(200, 16))
    one = [cluster_metrics(emb, labels, seed=s, n_init=1)["nmi"] for s in range(8)]
    auto = [cluster_metrics(emb, labels, seed=s, n_init=0)["nmi"] for s in range(8)]
    assert np.ptp(one) > 0.1 and np.ptp(auto) < 0.02 and np.ptp(auto) < np.ptp(one) / 5
    assert (kmeans_n_init(5), kmeans_n_init(200), kmeans_n_init(201), kmeans_n_init(11316, 3)) == (10, 10, 1, 3)
