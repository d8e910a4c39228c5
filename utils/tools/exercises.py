"""Self-checking exercises: the checks a student runs in the notebook, and the grader's report.

An exercise is three cells at the end of a chapter, all in the committed notebook (the one source):

- a markdown cell that states it (tag ``exercise``);
- a code cell tagged ``exercise`` whose solution sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` lines (nbgrader's markers); the student edition replaces that region
  with a blank (``...  # YOUR CODE HERE``), see :mod:`utils.tools.editions`;
- a code cell tagged ``check`` that runs ``check("<id>", <answer>)``.

A check runs the student's answer on cases the student does not see (shapes, numbers within a
tolerance, a function's behaviour on edge cases) and prints either "passed" or a hint. It never
prints the expected value. The reference behaviour comes from a library (scikit-learn, NumPy)
or from properties, not from a copy of the solution.

Grading (:mod:`utils.tools.grade`) appends one cell to a submission that calls :func:`report`,
which runs every check again and prints one JSON line the grader reads.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

REPORT_MARK = "COURSE-GRADE-REPORT "


class CheckFailed(Exception):
    """A check did not pass; the message is the hint shown to the student."""


@dataclass(frozen=True)
class Exercise:
    id: str
    name: str  # the name the answer has in the notebook
    run: Callable[[Any], None]  # raises CheckFailed(hint)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _call(fn, *args):
    """Call the student's function; a blank, a non-function or an exception becomes a hint."""
    if fn is Ellipsis or fn is None:
        raise CheckFailed("not answered yet: fill in the cell above and run it")
    if not callable(fn):
        raise CheckFailed(f"expected a function, got {type(fn).__name__}")
    try:
        out = fn(*args)
    except Exception as exc:  # the student's code may raise anything
        raise CheckFailed(f"your function raised {type(exc).__name__}: {exc}") from None
    if out is Ellipsis or out is None:
        raise CheckFailed("your function returns nothing yet: fill in its body")
    return out


def _array(out, shape, what):
    try:
        arr = np.asarray(out, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should be numbers (an array), got {type(out).__name__}") from None
    if arr.shape != tuple(shape):
        raise CheckFailed(f"{what} should have shape {tuple(shape)}, got {arr.shape}")
    return arr


def _close(got, want, hint, tol=1e-6):
    if not np.allclose(got, want, atol=tol, rtol=tol, equal_nan=False) or not np.all(np.isfinite(got)):
        raise CheckFailed(hint)


def _scalar(out, what="the result"):
    try:
        return float(out)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should be one number, got {type(out).__name__}") from None


def _labels(rng, n, g, rate=0.3):
    y = (rng.random((n, g)) < rate).astype(int)
    return y


# ---------------------------------------------------------------- the checks, one per chapter

def _check_lift(fn):
    rng = _rng(1)
    for n, g in [(50, 4), (200, 7)]:
        y = _labels(rng, n, g, 0.4)
        y[:, 0] = 1  # a genre every movie has: its lift with anything is 1
        out = _array(_call(fn, y.copy()), (g, g), "the lift matrix")
        if np.any(np.diag(out) != 0):
            raise CheckFailed("set the diagonal to 0 (a genre paired with itself is not a pair)")
        if not np.allclose(out, out.T):
            raise CheckFailed("lift(A, B) and lift(B, A) should be equal: is your matrix symmetric?")
        if not np.allclose(out[0, 1:], 1):
            raise CheckFailed("a genre every movie has should have lift 1 with every other genre: "
                              "use probabilities (fractions of movies), not counts")
        p = y.mean(axis=0)
        for a, b in [(1, 2), (2, 3)]:
            both = np.mean(y[:, a] * y[:, b])
            _close(out[a, b], both / (p[a] * p[b]),
                   "lift is P(A and B) / (P(A) P(B)), every probability a fraction of the movies")


def _check_keep_last(fn):
    tokens = [f"w{i}" for i in range(12)]
    cases = [(tokens, 5), (tokens, 12), (tokens, 20), (tokens[:3], 1), ([], 4)]
    for toks, n in cases:
        out = _call(fn, list(toks), n)
        if list(out) != toks[max(len(toks) - n, 0):]:
            raise CheckFailed(f"wrong tokens for a plot of {len(toks)} tokens and n={n}: keep the last n, "
                              "in their original order, and all of them when the plot is shorter")
    out = _call(fn, list(tokens), 0)
    if list(out) != []:
        raise CheckFailed("n=0 should keep nothing: what does tokens[-0:] give in Python?")


def _check_micro_macro(fn):
    from sklearn.metrics import f1_score
    rng = _rng(3)
    y = _labels(rng, 40, 5)
    pred = _labels(rng, 40, 5)
    y[:, 4] = 0
    pred[:, 4] = 0  # a genre nobody has and nobody predicts: its F1 counts as 0
    out = _call(fn, y.copy(), pred.copy())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed("return a pair: (micro_f1, macro_f1)")
    micro, macro = _scalar(out[0], "micro-F1"), _scalar(out[1], "macro-F1")
    _close(micro, f1_score(y, pred, average="micro", zero_division=0),
           "micro-F1 pools the true positives, false positives and false negatives of ALL genres first, "
           "then computes one F1")
    if math.isnan(macro):
        raise CheckFailed("macro-F1 is nan: a genre with no true and no predicted positive has F1 = 0 here "
                          "(scikit-learn's zero_division=0)")
    _close(macro, f1_score(y, pred, average="macro", zero_division=0),
           "macro-F1 is the plain mean of the per-genre F1 scores (a genre with nothing to find counts 0)")


def _check_cosine(fn):
    rng = _rng(4)
    u, v = rng.normal(size=100), rng.normal(size=100)
    ref = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    _close(_scalar(_call(fn, u, v)), ref, "cosine = u·v / (|u| |v|)")
    _close(_scalar(_call(fn, 3 * u, 0.5 * v)), ref, "the cosine must not change when a vector is scaled")
    _close(_scalar(_call(fn, u, u)), 1.0, "a vector's cosine with itself is 1")
    out = _scalar(_call(fn, u, np.zeros(100)))
    if not np.isfinite(out) or out != 0:
        raise CheckFailed("with a zero vector return 0.0 (and no division by zero)")


def _check_pad_right(fn):
    seqs = [[5, 3, 9], [7], [], [1, 2, 3, 4, 5, 6]]
    out = _call(fn, [list(s) for s in seqs], 4)
    arr = _array(out, (4, 4), "the padded ids")
    for row, s in zip(arr, seqs):
        if list(row[:len(s[:4])]) != s[:4]:
            raise CheckFailed("real tokens come first, in order; a long plot keeps its BEGINNING")
        if np.any(row[len(s[:4]):] != 0):
            raise CheckFailed("pad on the right with 0 (the id Keras masks)")
    if not np.issubdtype(np.asarray(out).dtype, np.integer):
        raise CheckFailed("token ids should be integers")


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _check_attention(fn):
    rng = _rng(5)
    n, d = 6, 4
    q, k, v = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, d))
    mask = np.array([1, 1, 1, 1, 0, 0])
    out = _call(fn, q, k, v, mask)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed("return a pair: (outputs, weights)")
    outputs = _array(out[0], (n, d), "the outputs")
    weights = _array(out[1], (n, n), "the weights")
    if not np.allclose(weights.sum(axis=1), 1):
        raise CheckFailed("every row of weights should sum to 1 (a softmax over the keys)")
    if np.abs(weights[:, mask == 0]).max() > 1e-6:
        raise CheckFailed("padding keys should get weight 0: set their scores to a large negative number "
                          "before the softmax")
    real = mask == 1
    w_real = _softmax(q @ k[real].T / np.sqrt(d))
    _close(weights[:, real], w_real, "scores are Q K^T / sqrt(d), the dimension of the keys")
    _close(outputs, w_real @ v[real], "outputs are the weights times V")


def _check_masked_mean(fn):
    rng = _rng(6)
    x = rng.normal(size=(3, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    out = _array(_call(fn, x.copy(), mask.copy()), (3, 4), "the plot vectors")
    if not np.all(np.isfinite(out)):
        raise CheckFailed("a plot with no real token gives nan: guard the division (return zeros)")
    _close(out[1], x[1].mean(axis=0), "with no padding the result is the plain mean over tokens")
    _close(out[0], x[0, :3].mean(axis=0), "average the REAL tokens only: divide by their number, not by "
                                          "the padded length")
    _close(out[2], np.zeros(4), "a plot with no real token should give a zero vector")


def _check_top_k(fn):
    rng = _rng(7)
    p = rng.random((30, 6))
    for k in (1, 2, 3):
        out = _array(_call(fn, p.copy(), k), p.shape, "the predictions")
        if not np.isin(out, (0, 1)).all():
            raise CheckFailed("predictions are 0/1 labels, not probabilities")
        if not np.all(out.sum(axis=1) == k):
            raise CheckFailed(f"every movie should get exactly k={k} genres")
        kth = np.sort(p, axis=1)[:, -k][:, None]
        if not np.all((out == 1) == (p >= kth)):
            raise CheckFailed("the k genres of a movie are its k most probable ones")


def _check_confident_fp(fn):
    rng = _rng(8)
    y = _labels(rng, 20, 4)
    p = rng.random((20, 4))
    out = _call(fn, y.copy(), p.copy(), 5)
    try:
        pairs = [tuple(int(i) for i in pair) for pair in out]
    except (TypeError, ValueError):
        raise CheckFailed("return a list of (movie, genre) index pairs") from None
    if len(pairs) != 5:
        raise CheckFailed("return exactly n pairs")
    if any(y[i, j] == 1 for i, j in pairs):
        raise CheckFailed("a false positive is a genre the movie does NOT have (y_true == 0)")
    probs = [p[i, j] for i, j in pairs]
    if probs != sorted(probs, reverse=True):
        raise CheckFailed("sort the pairs by probability, most confident first")
    top = np.sort(np.where(y == 0, p, -1).ravel())[::-1][:5]
    _close(np.array(probs), top, "these are not the most confident false positives: look at every "
                                 "(movie, genre) cell, not one genre per movie")


def _check_ensemble(fn):
    rng = _rng(9)
    probs = [rng.random((10, 3)) for _ in range(3)]
    out = _array(_call(fn, [q.copy() for q in probs], [1, 1, 1]), (10, 3), "the ensemble's probabilities")
    _close(out, np.mean(probs, axis=0), "equal weights should give the plain mean")
    out = _array(_call(fn, [q.copy() for q in probs], [2, 1, 1]), (10, 3), "the ensemble's probabilities")
    _close(out, (2 * probs[0] + probs[1] + probs[2]) / 4,
           "divide by the sum of the weights, so that weights 2, 1, 1 still give probabilities")


def _check_batches(fn):
    items = list(range(10))
    for size in (1, 3, 4, 10, 25):
        out = _call(fn, list(items), size)
        try:
            batches = [list(b) for b in out]
        except TypeError:
            raise CheckFailed("return a list of batches (lists)") from None
        if [x for b in batches for x in b] != items:
            raise CheckFailed("every request must appear once, in order, across the batches")
        if any(len(b) > size for b in batches) or any(len(b) == 0 for b in batches):
            raise CheckFailed("no batch may be empty or larger than the maximum size")
        if len(batches) != math.ceil(len(items) / size):
            raise CheckFailed("use as few batches as possible: only the last one may be short")
    if list(_call(fn, [], 4)) != []:
        raise CheckFailed("no requests should give no batches")


def _check_prevalence(fn):
    rng = _rng(10)
    scores = rng.random(200)
    for share in (0.1, 0.25, 0.5, 1.0):
        t = _scalar(_call(fn, scores.copy(), share), "the threshold")
        if not np.isclose((scores >= t).mean(), round(share * 200) / 200):
            raise CheckFailed("the share of scores >= your threshold must be the share asked for: count from "
                              "the highest score down")
    t = _scalar(_call(fn, scores.copy(), 0.0), "the threshold")
    if (scores >= t).any():
        raise CheckFailed("with share 0 no score may reach the threshold (a threshold above the highest score)")
    grid = rng.random((20, 10))
    t = _scalar(_call(fn, grid.copy(), 0.3), "the threshold")
    if not np.isclose((grid >= t).mean(), 0.3):
        raise CheckFailed("a matrix of scores counts every cell, not one row or column")


EXERCISES = {e.id: e for e in [
    Exercise("01.lift", "lift_matrix", _check_lift),
    Exercise("02.keep_last", "keep_last", _check_keep_last),
    Exercise("03.micro_macro", "micro_macro_f1", _check_micro_macro),
    Exercise("04a.cosine", "cosine", _check_cosine),
    Exercise("04b.pad_right", "pad_right", _check_pad_right),
    Exercise("05a.attention", "masked_attention", _check_attention),
    Exercise("05b.masked_mean", "masked_mean", _check_masked_mean),
    Exercise("06.top_k", "top_k_labels", _check_top_k),
    Exercise("07.confident_fp", "confident_false_positives", _check_confident_fp),
    Exercise("08.ensemble", "weighted_ensemble", _check_ensemble),
    Exercise("09.batches", "make_batches", _check_batches),
    Exercise("10.prevalence", "prevalence_threshold", _check_prevalence),
]}


def result(exercise_id: str, answer) -> tuple[bool, str]:
    """(passed, message) for one answer; never raises for a wrong answer."""
    if exercise_id not in EXERCISES:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}")
    try:
        EXERCISES[exercise_id].run(answer)
    except CheckFailed as exc:
        return False, str(exc)
    except Exception as exc:  # an answer of an unexpected type or shape breaks the check itself
        return False, f"the check could not use your answer ({type(exc).__name__}: {exc}): check what it returns"
    return True, "passed"


def check(exercise_id: str, answer) -> bool:
    """What the student runs: prints "passed" or a hint (never the answer); returns whether it passed."""
    ok, message = result(exercise_id, answer)
    print(f"{'✅' if ok else '❌'} exercise {exercise_id}: {message}")
    return ok


def report(namespace: dict, ids) -> dict:
    """The grader's last cell: check every exercise against the names in the notebook's namespace."""
    rows = {}
    for exercise_id in ids:
        ex = EXERCISES.get(exercise_id)
        if ex is None:
            rows[exercise_id] = [0, "unknown exercise"]
        elif ex.name not in namespace:
            rows[exercise_id] = [0, f"{ex.name} is not defined (cell deleted or not run?)"]
        else:
            ok, message = result(exercise_id, namespace[ex.name])
            rows[exercise_id] = [int(ok), "" if ok else message]
    print(REPORT_MARK + json.dumps(rows))
    return rows
