"""Self-checking exercises for the notebooks: ``check("02.1", answer, ...)`` prints "correct" or
"not yet" with a hint, and returns True or False (a check cell ends with ``;`` so that the
notebook does not echo it).

    from hdml_lite.exercises import check
    check("01.2", 0.2, j_avg=0.29)          # "01.2: not yet. Hint: ..."
    check("03.3", beta, j_gen=..., weight=...);

A multiple-choice exercise lists its ``options``; the notebook's exercise text shows the same
options, word for word (tests/test_selfchecks.py). ``evaluate_heads`` scores each HDC head
alone (exercise 05.2).

Offline, and nothing beyond the kit (numpy; torch for the checks that read gradients or neighbours).
Where the right answer is a number from the student's own run, the notebook passes the run's values
as keyword arguments (``given``), the check computes the answer from them, and it accepts the
tolerance stated in ``EXERCISES[key].tolerance``; it never reveals the answer, only the hint.
The worked solutions are in notebooks/solutions/ (each ends with ``assert check(...)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Exercise:
    """One check. ``expected(**given)`` is the right answer; ``accept(answer, expected)`` says whether
    ``answer`` counts (tolerance included); ``tolerance`` says it in words; ``hint`` is printed on "not yet";
    ``options`` (multiple choice): the texts of (a), (b), (c), shown after the question."""
    question: str
    expected: Callable
    accept: Callable
    hint: str
    tolerance: str = "exact"
    options: tuple = ()

    def full_question(self) -> str:
        """The question with its options: "... (a) pull it closer, (b) ..., or (c) ..."."""
        if not self.options:
            return self.question
        return f"{self.question} " + option_text(self.options)


def option_text(options) -> str:
    """"(a) first, (b) second, or (c) third": how the notebooks' markdown lists the options too."""
    items = [f"({chr(97 + i)}) {o}" for i, o in enumerate(options)]
    return ", ".join(items[:-1]) + f", or {items[-1]}" if len(items) > 1 else items[0]


def _number(answer) -> float | None:
    try:
        v = float(answer)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def within(abs_tol: float = 0.0, rel_tol: float = 0.0) -> Callable:
    """Accept a number within ``abs_tol`` or ``rel_tol`` x |expected| of the expected value."""
    def accept(answer, expected):
        v = _number(answer)
        return v is not None and abs(v - expected) <= max(abs_tol, rel_tol * abs(expected))
    return accept


def same_text(answer, expected) -> bool:
    """Case- and space-insensitive equality of a word or letter answer (True/False as text too)."""
    return answer is not None and str(answer).strip().lower() == str(expected).strip().lower()


def same_set(answer, expected) -> bool:
    try:
        return answer is not None and not isinstance(answer, str) and set(answer) == set(expected)
    except TypeError:
        return False


def _second_half(rows, key) -> float:
    v = [float(r[key]) for r in rows if key in r and math.isfinite(float(r[key]))]
    return float(np.mean(v[len(v) // 2:])) if v else float("nan")


# ------------------------------------------------------------------ the expected answers, from the given values
def _closest_means(test_set) -> tuple:
    """The two test classes whose mean images are closest (Euclidean, pixels in [0, 1])."""
    x = np.asarray(test_set.images, dtype=np.float64).reshape(len(test_set.labels), -1) / 255.0
    labels = np.asarray(test_set.labels)
    classes = np.unique(labels)
    means = np.stack([x[labels == c].mean(0) for c in classes])
    sq = (means ** 2).sum(1)
    d = sq[:, None] + sq[None] - 2 * means @ means.T
    np.fill_diagonal(d, np.inf)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return (test_set.class_names[classes[i]], test_set.class_names[classes[j]])


def _triplet_layout_ok(labels) -> bool:
    lab = np.asarray(labels).ravel()
    if lab.size == 0 or lab.size % 3:
        return False
    a, p, n = lab[0::3], lab[1::3], lab[2::3]
    return bool((a == p).all() and (a != n).all())


def _chance_r1(test_set) -> float:
    """(n_c - 1) / (N - 1) averaged over the N queries: a random ranking's Recall@1."""
    labels = np.asarray(test_set.labels)
    counts = np.bincount(labels)
    return float(np.mean((counts[labels] - 1) / (len(labels) - 1)))


def _groups_reached(method, terms, loss: str = "j_gen") -> set:
    """The parameter groups of ``method.param_groups()`` that ``terms[loss]``'s gradient reaches."""
    import torch

    out = set()
    for name, params in method.param_groups().items():
        grads = torch.autograd.grad(terms[loss], params, retain_graph=True, allow_unused=True)
        if any(g is not None and float(g.abs().sum()) > 0 for g in grads):
            out.add(name)
    return out


def _most_mixed(z, labels, class_names) -> set:
    """Names of the classes tied for the lowest 1-NN accuracy of embeddings ``z`` (N, E)."""
    import torch

    from .evaluation import knn

    labels = np.asarray(labels)
    nn1 = knn(torch.as_tensor(np.asarray(z)), 1)[:, 0].numpy()
    acc = {int(c): float((labels[nn1[labels == c]] == c).mean()) for c in np.unique(labels)}
    low = min(acc.values())
    return {class_names[c] for c, v in acc.items() if v == low}


def _r1_diff(a, b) -> float:
    return 100 * (a.metrics["r1"] - b.metrics["r1"])


def _pull_near_half(answer, j_avg) -> bool:
    """alpha >= 0 whose pull factor exp(-alpha / J_avg) lies in [0.45, 0.55]."""
    a = _number(answer)
    return a is not None and a >= 0 and 0.45 <= math.exp(-a / j_avg) <= 0.55


EXERCISES: dict[str, Exercise] = {
    # 00 · set-up and data
    "00.1": Exercise("Which two test classes have the closest mean images? (two class names)",
                     lambda test_set: _closest_means(test_set), same_set,
                     "average the images of each class (test_set.images, test_set.labels) and compare every pair "
                     "of class means; the names are test_set.class_names[label]"),
    "00.2": Exercise("The labels of a triplet batch, in the sampler's order (make_sampler('triplet', ...)).",
                     lambda: True, lambda answer, _: answer is not None and _triplet_layout_ok(answer),
                     "pass train_set.labels[idx] for idx = sampler.batch(0) of a *triplet* sampler: every 3 rows are "
                     "[anchor, positive, negative]"),
    "00.3": Exercise("What does a horizontally flipped 'b' look like? (one character)",
                     lambda: "d", same_text, "draw a b and look at it in a mirror"),
    "00.4": Exercise("The chance level of Recall@1 for a random embedding of the test split (a fraction).",
                     lambda test_set: _chance_r1(test_set), within(rel_tol=0.01),
                     "a random ranking puts a random other image first: it has the query's class with probability "
                     "(images of that class - 1) / (all images - 1), not 1 / (number of classes); average over the "
                     "queries", "±1%"),
    # 01 · the formulation
    "01.1": Exercise("alpha = 2 with J_avg = 2 gives some synthetic negative. Which alpha gives the same one with "
                     "J_avg = 0.5?", lambda: 0.5, within(abs_tol=1e-3),
                     "the augmentation reads alpha and J_avg only through exp(-alpha / J_avg)", "±0.001"),
    "01.2": Exercise("Which alpha gives a pull factor of 0.5 at the J_avg given?",
                     lambda j_avg: j_avg * math.log(2), within(rel_tol=0.02),
                     "solve exp(-alpha / J_avg) = 0.5 for alpha (hdml_lite.study.stats.alpha_grid does it)", "±2%"),
    "01.3": Exercise("The smallest d(z, z^-) / d+ over many random tuples and settings, for the pulled negatives.",
                     lambda: 1.0, within(abs_tol=1e-6),
                     "use augment_triplet on random tuples, keep those with d- > d+, and try a very large alpha too",
                     "±1e-6"),
    "01.4": Exercise("HDML leaves an already hard negative (d- <= d+) where it is. If the formula "
                     "d+ + (d- - d+) exp(-alpha / J_avg) were applied to it anyway, what would it do? (a letter)",
                     lambda: "b", same_text,
                     "compute the target distance d+ + (d- - d+) exp(-alpha / J_avg) for d- = 0.6, d+ = 1",
                     options=("pull it closer to the anchor", "push it away toward d+, making it easier",
                              "leave it where it is")),
    "01.5": Exercise("Summed into one backward, which parameter groups (names of method.param_groups()) would "
                     "J_gen's gradient reach?", lambda method, terms: _groups_reached(method, terms), same_set,
                     "z^ is computed from z = g(f(x)) and is not detached; J_soft also uses the classifier W: try "
                     "torch.autograd.grad(terms['j_gen'], params, retain_graph=True, allow_unused=True) per group"),
    # 02 · training
    "02.1": Exercise("N-pair's test R@1 with train.seed=1 minus with seed 0, in points.",
                     lambda seed0, seed1: _r1_diff(seed1, seed0), within(abs_tol=0.1),
                     "100 * (runs_seed1.metrics['r1'] - runs_seed0.metrics['r1'])", "±0.1 points"),
    "02.2": Exercise("The weight of J_syn at the last step of the run with the paper's bookkeeping.",
                     lambda run: float(run.history["train"][-1]["weight_syn"]), within(abs_tol=0.01),
                     "run.history['train'][-1] holds the last step's logged values", "±0.01"),
    "02.3": Exercise("How many times HDML's training time is N-pair's (same steps)?",
                     lambda hdml, baseline: hdml.train_s / baseline.train_s, within(rel_tol=0.05),
                     "each run's train_s is its training time in seconds", "±5%"),
    "02.4": Exercise("For HDML's final model, which is lower: 'r1' or 'map_r'?",
                     lambda metrics: "map_r" if metrics["map_r"] < metrics["r1"] else "r1", same_text,
                     "compare run.metrics['r1'] and run.metrics['map_r']"),
    # 03 · ablations
    "03.1": Exercise("HDML at alpha = 0 (no pulling) minus the N-pair baseline, test R@1 in points.",
                     lambda alpha0, baseline: _r1_diff(alpha0, baseline), within(abs_tol=0.1),
                     "both runs are in the notebook: sweep_runs[0.0] and runs['N-pair']", "±0.1 points"),
    "03.2": Exercise("An alpha whose pull factor is about 0.5 at the J_avg given.",
                     lambda j_avg: j_avg, _pull_near_half,           # "expected" is J_avg: the test needs it
                     "solve exp(-alpha / J_avg) = 0.5 for alpha", "pull factor within 0.45-0.55"),
    "03.3": Exercise("The beta that gives HDML without J_soft the mean synthetic weight of full HDML.",
                     lambda j_gen, weight: -j_gen * math.log(1 - weight), within(rel_tol=0.1),
                     "the weight is 1 - exp(-beta / J_gen): solve for beta with J_gen of the run without J_soft "
                     "(its j_gen_avg) and the weight of full HDML", "±10%"),
    "03.4": Exercise("1 - exp(-beta / J_gen) for beta = 1e4 and J_gen = 10 (the paper form's scale).",
                     lambda: 1 - math.exp(-1e3), within(abs_tol=1e-6),
                     "beta / J_gen = 1000: what is exp(-1000)?", "±1e-6"),
    # 04 · t-SNE
    "04.1": Exercise("The most mixed test class: the one with the lowest 1-NN accuracy in the embedding (its name).",
                     lambda z, labels, class_names: _most_mixed(z, labels, class_names),
                     lambda answer, names: answer in names,
                     "for each image, is its nearest neighbour (hdml_lite.evaluation.knn(z, 1)) of its class? "
                     "Average per class and take the lowest; any class tied for the lowest counts"),
    "04.2": Exercise("Why can a placed point jump across the map while its distances (the bars) change smoothly? "
                     "(a letter)", lambda: "b", same_text,
                     "the map itself does not move (section 3); only the new points are placed",
                     options=("the generator is discontinuous",
                              "transform() starts each new point at its nearest real neighbours, so a small move can "
                              "change those neighbours and land it in another island",
                              "the map is refitted at every alpha")),
    "04.3": Exercise("Which model's map keeps more neighbours (higher 2-D Recall@1): 'N-pair' or 'HDML (N-pair)'?",
                     lambda map_r1: max(map_r1, key=map_r1.get), same_text,
                     "compute the 2-D Recall@1 of both maps (as in exercise 1) and compare"),
    "04.4": Exercise("What does t-SNE preserve? (a letter)", lambda: "b", same_text,
                     "compare distances in the map with those in the embedding (Spearman)",
                     options=("distances", "who is near whom", "the density of each class")),
    # 05 · mining or synthesis
    "05.1": Exercise("With hdc.routing=nested, is head 3's kept set always a subset of head 2's? (True or False)",
                     lambda: "true", same_text, "a pair reaches head 3 only if head 2 ..."),
    "05.2": Exercise("Which embedding has the highest test R@1: 'head 1', 'head 2', 'head 3' or 'concatenation'?",
                     lambda scores: max(scores, key=lambda k: scores[k]["r1"]), same_text,
                     "head_scores = evaluate_heads(hdc_run) (from hdml_lite.exercises) scores each head alone and "
                     "the concatenation: compare their R@1"),
    "05.3": Exercise("HDC's gain over its own baseline (contrastive at HDC's batch, lab_contrastive_hdcbatch), R@1 points.",
                     lambda hdc, baseline: _r1_diff(hdc, baseline), within(abs_tol=0.1),
                     "train notebook_config('lab_contrastive_hdcbatch', budget=budget) and subtract its R@1", "±0.1 points"),
    "05.4": Exercise("Kept negatives with zero loss, when the loss is averaged over the pairs with non-zero loss: "
                     "what do they do? (a letter)", lambda: "b", same_text,
                     "a pair with zero loss is not among the pairs with non-zero loss",
                     options=("they dilute the gradient", "they add nothing", "they push the negatives closer")),
}


def check(key: str, answer, **given) -> bool:
    """Print "<key>: correct" or "<key>: not yet" with the hint; return whether ``answer`` counts.

    given: the values of the student's run that the answer is computed from (see the notebook's
    check cell). An unknown key, or missing ``given`` values, is a ValueError naming what is expected.
    """
    if key not in EXERCISES:
        raise ValueError(f"no exercise {key!r}; the exercises are {', '.join(EXERCISES)}")
    ex = EXERCISES[key]
    if answer is None:                      # nothing to check yet (the run it needs may not exist either)
        print(f"{key}: not yet: replace None by your answer. {ex.full_question()}")
        return False
    try:
        expected = ex.expected(**given)
    except (TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"check({key!r}, ...): {exc!r}: pass the run's values as keyword arguments, as the "
                         "notebook's check cell does") from None
    ok = bool(ex.accept(answer, expected))
    tol = "" if ex.tolerance == "exact" else f" (tolerance {ex.tolerance})"
    print(f"{key}: correct{tol}" if ok else f"{key}: not yet{tol}. Hint: {ex.hint}")
    return ok


def evaluate_heads(run, test_set=None, device=None) -> dict:
    """Exercise 05.2: test metrics of each HDC head alone and of the concatenation.

    run: a trained HDC run (``train``'s or ``train_with_probes``' result; or its ``method``).
    test_set: default, the run's own test split. Returns {"head 1": metrics, "head 2": ...,
    "head 3": ..., "concatenation": ...}, each a dict with "r1", "nmi", ... The run's method is
    left as it was (``hdc.eval_head`` restored)."""
    from .config import apply_overrides
    from .data import load_dataset
    from .evaluation import evaluate, ks_for

    try:
        method = run.method if hasattr(type(run), "method") or hasattr(run, "method") else run
    except AttributeError as exc:           # a pinned run without its weights says how to get them
        raise ValueError(f"evaluate_heads: {exc}") from None
    cfg = getattr(method, "cfg", None)
    if cfg is None or cfg.train.method != "hdc":
        got = cfg.train.method if cfg is not None else type(method).__name__
        raise ValueError(f"evaluate_heads: expected a trained HDC run (train.method 'hdc'), got {got!r}")
    test_set = test_set if test_set is not None else load_dataset(cfg.data, "test")
    scores = {}
    try:
        for head in (1, 2, 3, -1):
            method.cfg = apply_overrides(cfg, [f"hdc.eval_head={head}"])       # embed() reads eval_head
            scores["concatenation" if head == -1 else f"head {head}"] = evaluate(
                method.embed, test_set, ks=ks_for(cfg.data.dataset), device=device)
    finally:
        method.cfg = cfg
    return scores
