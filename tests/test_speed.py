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


# ---------------------------------------------------------------- one host synchronisation per step
class SyncCounter:
    """Counts the calls that read a tensor's value back to the host (item, tolist, float(), int(),
    bool(), numpy) made by the kit's own code (a caller frame in hdml_lite); on a GPU each one
    waits for the queued kernels. torch's own CPU-side reads (e.g. Adam's CPU step counters)
    are not device synchronisations and are not counted."""
    NAMES = ("item", "tolist", "__float__", "__int__", "__bool__", "numpy")

    def __init__(self, monkeypatch):
        import sys

        self.calls = []
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)

            def counted(t, *a, _original=original, _name=name, **k):
                caller = sys._getframe(1).f_globals.get("__name__", "")
                if caller.startswith("hdml_lite"):
                    self.calls.append((_name, caller, sys._getframe(1).f_lineno))
                return _original(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, counted)


@pytest.mark.parametrize("loss", ["npair", "triplet"])
def test_hdml_step_reads_the_device_once(monkeypatch, loss):
    from test_hdml_method import _batch, _method

    m = _method(loss)
    x, y = _batch(loss)
    m.train_step(x, y, 0)
    counter = SyncCounter(monkeypatch)
    logs = m.train_step(x, y, 1)
    assert len(counter.calls) == 1, counter.calls
    assert counter.calls[0][0] == "tolist"
    assert all(isinstance(v, float) for v in logs.values())
    for k in ("acc_real", "acc_syn", "hard_real", "hard_aug", "hard_gen"):
        assert k in logs and logs[k] == logs[k], k        # the diagnostics came through that one read


def test_hdc_step_reads_the_device_once(monkeypatch):
    from hdml_lite.presets import get_preset
    from hdml_lite.training.trainer import build_method

    cfg = get_preset("lab_hdc")
    cfg.model.pretrained, cfg.model.width, cfg.hdc.head_dim = False, 4, 8
    m = build_method(cfg, 20, 1, torch.device("cpu"))
    x, y = torch.randn(24, 1, 32, 32), torch.arange(4).repeat_interleave(6)
    m.train_step(x, y, 0)
    counter = SyncCounter(monkeypatch)
    logs = m.train_step(x, y, 1)
    assert [c[0] for c in counter.calls] == ["tolist"], counter.calls
    assert set(logs) == {"loss", "loss_h1", "loss_h2", "loss_h3"} and all(isinstance(v, float) for v in logs.values())


def test_bad_layout_and_non_finite_still_raise_before_any_update(monkeypatch):
    from hdml_lite.training.method import NonFiniteLossError
    from test_hdml_method import _batch, _method

    m = _method("npair")
    x, y = _batch("npair")
    before = [p.detach().clone() for p in m.model.parameters()]
    with pytest.raises(ValueError, match="class-major"):
        m.train_step(x, torch.cat([y[:2], y[:-2]]), 0)    # pairs repeat a class: caught after the forward
    x_bad = x.clone()
    x_bad[0] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss term 'j_metric' = nan at step 4"):
        m.train_step(x_bad, y, 4)
    assert all(torch.equal(a, b) for a, b in zip(before, m.model.parameters()))


# ---------------------------------------------------------------- trainer: BN snapshot, workers
def test_bn_snapshot_holds_only_bn_buffers_in_tensors_allocated_once():
    from hdml_lite.training.trainer import BufferSnapshot
    from test_hdml_method import _method

    m = _method("npair")
    bns = [mod for net in m.modules.values() for mod in net.modules()
           if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
    snap = BufferSnapshot(m)
    assert len(snap.live) == 3 * len(bns) > 0          # running_mean, running_var, num_batches_tracked
    ids = [id(t) for t in snap.saved]
    snap.save()
    want = [b.clone() for b in snap.live]
    for bn in bns:
        bn.running_mean.add_(1.0)
        bn.num_batches_tracked.add_(5)
    snap.save()
    snap.restore()
    assert [id(t) for t in snap.saved] == ids
    assert not all(torch.equal(a, b) for a, b in zip(snap.live, want)), "the second save took the new values"
    for bn in bns:
        bn.running_mean.sub_(1.0)
        bn.num_batches_tracked.sub_(5)
    snap.save()
    for bn in bns:
        bn.running_var.mul_(3.0)
    snap.restore()
    assert all(torch.equal(a, b) for a, b in zip(snap.live, want))


def test_workers_are_closed_at_the_end_of_train_also_when_it_fails(tiny_overrides, monkeypatch):
    import multiprocessing as mp

    from hdml_lite.config import apply_overrides
    from hdml_lite.presets import get_preset
    from hdml_lite.training.method import NonFiniteLossError
    from hdml_lite.training.trainer import train

    from conftest import make_flaky_metric_loss

    seen = []
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["data.num_workers=2", "train.steps=3",
                                                                    "train.eval_every=0"])
    train(cfg, resume=False, callback=lambda *a: seen.append(len(mp.active_children())))
    assert max(seen) >= 2, "the run had its workers"
    assert mp.active_children() == [], "... and they are gone when train returns"
    make_flaky_metric_loss(monkeypatch, at_call=2, factor=float("nan"))
    with pytest.raises(NonFiniteLossError) as err:      # kept, as a notebook keeps its last traceback
        train(cfg, resume=False)
    assert err.value.__traceback__ is not None and mp.active_children() == [], "closed, not left to the GC"


def test_embedding_head_runs_in_float32_under_autocast():
    """The head g has one precision in training and evaluation (CPU autocast stands in for CUDA's)."""
    from hdml_lite.models.embedding import EmbeddingHead, MetricModel

    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8))
    backbone.feature_dim = 8
    model = MetricModel(backbone, 4).eval()
    x = torch.randn(5, 1, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, z = model(x)
        z_head = model.head(y)
    assert y.dtype == torch.bfloat16, "the backbone does run under autocast"
    assert z.dtype == z_head.dtype == torch.float32
    assert torch.equal(z, model.head(y.float())), "the same numbers as the head outside autocast"
    assert isinstance(model.head, EmbeddingHead)


# ---------------------------------------------------------------- bench/lab_speed.py
def test_lab_speed_prints_its_figures_on_a_tiny_run(capsys):
    import importlib.util
    import json
    from pathlib import Path

    from conftest import TINY

    path = Path(__file__).resolve().parents[1] / "bench" / "lab_speed.py"
    spec = importlib.util.spec_from_file_location("lab_speed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tiny = [o for o in TINY if not o.startswith(("train.steps", "train.progress", "train.device"))]
    result = mod.main(["--presets", "lab_hdml_npair", "--steps", "4", "--set", *tiny])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(result))
    assert last["threads"] == 1 and len(last["load_avg"]) == 3 and last["gflops_matmul"] > 0
    for name, r in last["runs"].items():
        assert r["steps"] == 4 and r["evaluations"] == 2, name            # eval_every=3: steps 3 and 4
        assert r["run_cpu_s"] > r["eval_cpu_s"] > r["eval_metrics_cpu_s"] > 0 and r["bare_cpu_s"] > 0
        assert r["eval_embed_cpu_s"] == pytest.approx(r["eval_cpu_s"] - r["eval_metrics_cpu_s"], abs=1e-3)
        assert r["overhead"] == pytest.approx(r["run_cpu_s"] / r["bare_cpu_s"], rel=1e-2)   # 4-decimal rounding
        assert 0 < r["eval_frac"] < 1 and r["gflops_bare"] > 0 and r["step_gflop"] > 0


def test_optimizers_fuse_only_on_cuda():
    """Fused optimizers take the GradScaler's inf check on the GPU (no read-back per optimizer); on a
    CPU the optimizers stay torch's default implementation (bit-identical to before)."""
    from hdml_lite.training.method import fused_kwargs
    from test_hdml_method import _method

    m = _method("npair")
    assert all(not o.defaults.get("fused") for o in m.optimizers.values())
    assert fused_kwargs([{"params": [torch.nn.Parameter(torch.zeros(2))]}]) == {}
    meta = torch.nn.Parameter(torch.zeros(2, device="meta"))
    assert fused_kwargs([{"params": [meta]}]) == {}, "only CUDA parameters are fused"
    assert fused_kwargs([]) == {}
