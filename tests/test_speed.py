"""The speed work of issue 19: the evaluation-set cache, one host sync per step, the BN snapshot,
workers closed at the end of a run, the head's precision. Every check runs on the CPU."""
import numpy as np
import pytest
import torch

from hdml_lite.data.base import ArrayDataset
from hdml_lite.data.transforms import build_transforms
from hdml_lite.evaluation import compute_embeddings, eval_set, eval_tensors


def _glyph_like(n=40, seed=0, train=False, channels=1):
    g = np.random.default_rng(seed)
    images = g.integers(0, 256, (n, 12, 12), dtype=np.uint8)
    labels = np.repeat(np.arange(n // 4), 4)
    tf = build_transforms("small", train, 14, 12, channels)
    return ArrayDataset(images, labels, [str(c) for c in range(n // 4)], transform=tf)


@pytest.fixture(autouse=True)
def _empty_cache():
    eval_set.clear_cache()
    yield
    eval_set.clear_cache()


def test_eval_cache_is_the_per_image_transform_and_keyed_by_content():
    ds = _glyph_like()
    data = eval_tensors(ds)
    assert data is not None and len(data) == len(ds)
    for i in (0, 17, len(ds) - 1):
        assert torch.equal(data[i][0], ds[i][0]) and data[i][1] == ds[i][1]   # bit for bit
    assert eval_tensors(_glyph_like()) is data, "the same images in another object: the same entry"
    assert eval_tensors(_glyph_like(seed=1)) is not data, "other images: another entry"
    grey_as_rgb = eval_tensors(_glyph_like(channels=3))
    assert grey_as_rgb is not data and grey_as_rgb.x.shape[1] == 3
    assert eval_tensors(_glyph_like(train=True)) is None, "a random (training) transform is never frozen"


def test_eval_cache_respects_its_memory_budget(monkeypatch):
    ds = _glyph_like()
    one = len(ds) * 12 * 12 * 4
    monkeypatch.setattr(eval_set, "MAX_BYTES", one - 1)
    assert eval_tensors(ds) is None, "a set larger than the budget is streamed, not cached"
    monkeypatch.setattr(eval_set, "MAX_BYTES", one + one // 2)
    a = eval_tensors(ds)
    b = eval_tensors(_glyph_like(seed=2))
    assert a is not None and b is not None and list(eval_set._CACHE.values()) == [b], "LRU entry evicted"


def test_embeddings_identical_cached_streamed_and_with_workers():
    ds = _glyph_like(n=48)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 10 * 10, 6))
    ref, labels = compute_embeddings(net, ds, batch_size=16, cache=False)
    two, labels2 = compute_embeddings(net, ds, batch_size=16, cache=False, num_workers=2)
    cached, labels3 = compute_embeddings(net, ds, batch_size=16)
    assert torch.equal(ref, two) and torch.equal(ref, cached)
    assert labels.tolist() == labels2.tolist() == labels3.tolist() == ds.labels.tolist()
    assert not cached.is_inference(), "embeddings are ordinary tensors for the metrics that follow"
