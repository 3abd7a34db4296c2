"""Batch samplers: which images go into the batch at each training step.

Each sampler is a pure function of the step: ``batch(step) -> list[int]`` uses a
generator seeded by (seed, step), so a resumed run sees exactly the same batches.

- ``NPairSampler``: N classes x 2 images, class-major ``[c0a, c0b, c1a, c1b, ...]``,
  so anchors are ``z[0::2]`` and positives ``z[1::2]`` (METHOD §1.1).
- ``TripletSampler``: T triplets ``[a, p, n]`` repeated: ``z[0::3], z[1::3], z[2::3]``.
- ``MPerClassSampler``: C classes x m images (HDC: 10 x 10), class-major.
Classes with fewer than 2 images cannot give a positive pair: they are excluded
from anchor/positive sampling and reported in ``excluded``.

``batch_problem`` says, before any sampler is built, why a batch request cannot be met
(too few training classes, or a batch with no negatives: N-pair or m-per-class with
fewer than 2 classes, triplets on fewer than 2 classes); the samplers raise the same text.
"""
from __future__ import annotations

import warnings

import numpy as np


class BatchRequestError(ValueError):
    """The data cannot satisfy the requested batch (e.g. more classes per batch than exist)."""


WHAT = {"npair": "N-pair sampler", "triplet": "triplet sampler", "m_per_class": "m-per-class sampler"}


def batch_problem(kind: str, labels, batch_classes: int, min_images: int = 2) -> str:
    """Why ``kind``'s batch of ``batch_classes`` cannot be drawn from ``labels`` (N,), or "".

    npair / m_per_class: ``batch_classes`` distinct classes, each with >= ``min_images`` images,
    at least 2 of them (one class gives the loss no negative). triplet: ``batch_classes``
    triplets; anchor classes need >= 2 images and negatives another class, so >= 2 classes."""
    what = WHAT.get(kind, kind)
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    eligible = int((counts >= min_images).sum())
    if batch_classes < 1:
        return f"data.batch_classes={batch_classes}: expected at least 1"
    if kind == "triplet":
        if len(classes) < 2 or eligible < 1:
            return (f"the {what} needs at least 2 training classes (negatives come from another class) and one "
                    f"with >= 2 images; the training split has {len(classes)} class(es), {eligible} with >= 2 images")
        return ""
    if batch_classes < 2:
        return (f"data.batch_classes={batch_classes}: a batch of 1 class ({what}) has no negatives, so the loss "
                f"trains on nothing; expected data.batch_classes >= 2")
    if batch_classes > eligible and eligible < 2:    # no batch size helps: say what the data lacks
        return (f"the {what} needs at least 2 training classes with >= {min_images} images (an anchor and its "
                f"positive, negatives from another class), but {eligible} of the {len(classes)} training classes "
                f"have >= {min_images} images: metric learning needs at least {min_images} images per class")
    if batch_classes > eligible:
        return (f"the {what} asks for {batch_classes} classes per batch (data.batch_classes) but only {eligible} "
                f"training classes have >= {min_images} images; lower data.batch_classes")
    return ""


class _ClassSampler:
    def __init__(self, labels, n_classes: int, seed: int = 0, min_images: int = 2, kind: str = "npair",
                 class_names=None, warn: bool = True):
        labels = np.asarray(labels)
        self.seed = seed
        classes, counts = np.unique(labels, return_counts=True)
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in classes}
        self.eligible = [int(c) for c, n in zip(classes, counts) if n >= min_images]
        self.excluded = [int(c) for c, n in zip(classes, counts) if n < min_images]
        if self.excluded and warn:
            names = ([str(class_names[c]) for c in self.excluded] if class_names is not None
                     else [f"label {c}" for c in self.excluded])
            warnings.warn(f"{len(self.excluded)} class(es) have fewer than {min_images} images and are excluded "
                          f"from positive sampling: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}",
                          stacklevel=3)
        problem = batch_problem(kind, labels, n_classes, min_images)
        if problem:
            raise BatchRequestError(problem)
        self.n_classes = n_classes

    def rng(self, step: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, step])

    def _pick(self, rng, c: int, m: int) -> np.ndarray:
        idx = self.by_class[c]
        return rng.choice(idx, size=m, replace=len(idx) < m)


class NPairSampler(_ClassSampler):
    def __init__(self, labels, n_classes: int, seed: int = 0, **report):
        super().__init__(labels, n_classes, seed, kind="npair", **report)

    def batch(self, step: int) -> list[int]:
        rng = self.rng(step)
        classes = rng.choice(self.eligible, size=self.n_classes, replace=False)
        return [int(i) for c in classes for i in self._pick(rng, int(c), 2)]


class MPerClassSampler(_ClassSampler):
    def __init__(self, labels, n_classes: int, m: int, seed: int = 0, **report):
        super().__init__(labels, n_classes, seed, kind="m_per_class", **report)
        if m < 2:
            raise BatchRequestError(f"data.images_per_class={m}: expected at least 2 for positive pairs")
        self.m = m

    def batch(self, step: int) -> list[int]:
        rng = self.rng(step)
        classes = rng.choice(self.eligible, size=self.n_classes, replace=False)
        return [int(i) for c in classes for i in self._pick(rng, int(c), self.m)]


class TripletSampler(_ClassSampler):
    """``n_triplets`` triplets; the anchor classes are distinct when possible."""

    def __init__(self, labels, n_triplets: int, seed: int = 0, **report):
        super().__init__(labels, n_triplets, seed, kind="triplet", **report)
        self.all_classes = list(self.by_class)
        self.n_triplets = n_triplets

    def batch(self, step: int) -> list[int]:
        rng = self.rng(step)
        replace = self.n_triplets > len(self.eligible)
        anchors = rng.choice(self.eligible, size=self.n_triplets, replace=replace)
        out = []
        for c in anchors:
            a, p = self._pick(rng, int(c), 2)
            neg_c = int(rng.choice([k for k in self.all_classes if k != c]))
            n = int(rng.choice(self.by_class[neg_c]))
            out += [int(a), int(p), n]
        return out


def make_sampler(kind: str, labels, batch_classes: int, images_per_class: int = 2, seed: int = 0,
                 class_names=None, warn: bool = True):
    """Build a sampler by name: npair | triplet | m_per_class (see module docstring).

    class_names: name the excluded single-image classes in the warning (else their labels);
    warn=False: no warning (the trainer reports them itself, see data/preflight.py)."""
    report = {"class_names": class_names, "warn": warn}
    if kind == "npair":
        return NPairSampler(labels, batch_classes, seed, **report)
    if kind == "triplet":
        return TripletSampler(labels, batch_classes, seed, **report)
    if kind == "m_per_class":
        return MPerClassSampler(labels, batch_classes, images_per_class, seed, **report)
    raise ValueError(f"data.sampler={kind!r}; expected npair, triplet or m_per_class")
