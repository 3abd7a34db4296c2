import numpy as np
import pytest

from hdml_lite.data.samplers import BatchRequestError, MPerClassSampler, NPairSampler, TripletSampler, make_sampler
from hdml_lite.training.schedule import lr_scale

LABELS = np.repeat(np.arange(10), 5)


def test_npair_layout_and_determinism():
    s = NPairSampler(LABELS, 4, seed=3)
    b = s.batch(7)
    lab = LABELS[b]
    assert len(b) == 8 and (lab[0::2] == lab[1::2]).all() and len(set(lab[0::2])) == 4
    assert all(b[i] != b[i + 1] for i in range(0, 8, 2)), "anchor and positive must be different images"
    assert s.batch(7) == b and NPairSampler(LABELS, 4, seed=3).batch(7) == b
    assert s.batch(8) != b


def test_triplet_layout():
    b = TripletSampler(LABELS, 6, seed=0).batch(0)
    lab = LABELS[b]
    assert len(b) == 18
    assert (lab[0::3] == lab[1::3]).all() and (lab[0::3] != lab[2::3]).all()


def test_m_per_class_layout():
    b = MPerClassSampler(LABELS, 3, 4, seed=0).batch(0)
    lab = LABELS[b].reshape(3, 4)
    assert (lab == lab[:, :1]).all() and len(set(lab[:, 0])) == 3


def test_too_many_classes_is_a_clear_error():
    with pytest.raises(BatchRequestError, match="asks for 11 classes.*only 10"):
        NPairSampler(LABELS, 11)


def test_singleton_classes_excluded_and_reported():
    labels = np.array([0, 0, 1, 2, 2, 3])
    with pytest.warns(UserWarning, match="2 class"):
        s = NPairSampler(labels, 2)
    assert s.excluded == [1, 3]
    for step in range(20):
        assert set(labels[s.batch(step)]) <= {0, 2}


def test_lr_schedule():
    assert lr_scale(0, [5632, 6848], 0.5) == 1.0
    assert lr_scale(5632, [5632, 6848], 0.5) == 0.5
    assert lr_scale(7000, [5632, 6848], 0.5) == 0.25


def test_singleton_classes_named_by_class_name_or_silenced():
    import warnings

    labels = np.array([0, 0, 1, 2, 2, 3])
    names = ["001.Albatross", "002.Lone_bird", "003.Crow", "004.Other_lone"]
    with pytest.warns(UserWarning, match=r"excluded from positive sampling: 002\.Lone_bird, 004\.Other_lone$"):
        make_sampler("npair", labels, 2, class_names=names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # the trainer reports them itself (data/preflight.py)
        s = make_sampler("m_per_class", labels, 2, images_per_class=2, warn=False)
    assert s.excluded == [1, 3]


@pytest.mark.parametrize("kind,n", [("npair", 1), ("m_per_class", 1)])
def test_a_batch_without_negatives_is_refused(kind, n):
    with pytest.raises(BatchRequestError, match=r"batch of 1 class \(.*\) has no negatives"):
        make_sampler(kind, LABELS, n, images_per_class=2)


def test_triplets_need_two_classes_and_may_outnumber_them():
    with pytest.raises(BatchRequestError, match="needs at least 2 training classes"):
        TripletSampler(np.zeros(6, dtype=int), 4)
    s = TripletSampler(np.array([0, 0, 1, 1, 2, 2]), 22)      # 22 triplets from 3 classes: allowed
    assert len(s.batch(0)) == 66
