"""Multi-label metrics around notebook 03's F1 flavours, the grid of thresholds, and uncertainty.

Every model in the course outputs one probability per genre. Turning them into
labels needs a threshold; judging the labels needs F1 in its flavours:

* **micro-F1** pools every (movie, genre) decision: frequent genres dominate.
* **macro-F1** averages the per-genre F1: every genre counts the same.
* **samples-F1** averages the F1 of each movie's predicted genre set.

``apply_thresholds``, the F1 flavours (``f1_scores``) and the trivial baseline
(``MostFrequentBaseline``, ``top_k_predictions``) are written in notebook 03 and exported to
:mod:`utils.lessons.metrics`; this module imports them and adds :func:`evaluate` (every metric
the course reports), :func:`per_genre_report` and bootstrap intervals. Thresholds are always
chosen on the validation split and applied once to test; the searches themselves are taught in
notebooks 03 and 06 (:mod:`utils.lessons.thresholds`).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    hamming_loss,
    label_ranking_average_precision_score,
    precision_recall_fscore_support,
)

from utils.lessons.metrics import (  # noqa: F401  (notebook 03's code, imported from here by its callers)
    MostFrequentBaseline,
    apply_thresholds,
    f1_from_counts,
    f1_scores,
    top_k_predictions,
)

DEFAULT_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def _check(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(
            f"y_true and y_prob must be 2-D arrays of the same shape (movies x genres); "
            f"got {y_true.shape} and {y_score.shape}."
        )
    return y_true.astype(int), y_score


def evaluate(y_true, y_prob, thresholds=0.5) -> dict[str, float]:
    """All the course's metrics for probabilities cut at ``thresholds``.

    Returns micro/macro/samples F1, hamming loss, label ranking average precision
    (threshold-free) and the mean number of predicted and true genres per movie.
    """
    y_true, y_prob = _check(y_true, y_prob)
    y_pred = apply_thresholds(y_prob, thresholds)
    out = f1_scores(y_true, y_pred)
    out["hamming_loss"] = float(hamming_loss(y_true, y_pred))
    has_label = y_true.sum(axis=1) > 0
    out["lrap"] = (
        float(label_ranking_average_precision_score(y_true[has_label], y_prob[has_label]))
        if has_label.any()
        else float("nan")
    )
    out["pred_cardinality"] = float(y_pred.sum(axis=1).mean())
    out["true_cardinality"] = float(y_true.sum(axis=1).mean())
    return out


def per_genre_report(y_true, y_pred, genres):
    """Precision, recall, F1 and support of every genre, most frequent first."""
    import pandas as pd

    y_true, y_pred = _check(y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    table = pd.DataFrame({"genre": list(genres), "precision": p, "recall": r, "f1": f, "support": s})
    return table.sort_values("support", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- uncertainty

F1_KEYS = ("micro_f1", "macro_f1", "samples_f1")


def _bootstrap_f1(y_true, y_pred, weights) -> dict[str, np.ndarray]:
    """Micro/macro/samples F1 of every bootstrap replicate; ``weights[b, i]``: how often title i is drawn."""
    y_true, y_pred = _check(y_true, y_pred)
    t, p = y_true.astype(bool), y_pred.astype(bool)
    tp, fp, fn = (t & p).astype(float), (~t & p).astype(float), (t & ~p).astype(float)
    per_genre = [weights @ m for m in (tp, fp, fn)]                     # replicates x genres
    return {
        "micro_f1": f1_from_counts(*(c.sum(axis=1) for c in per_genre)),
        "macro_f1": f1_from_counts(*per_genre).mean(axis=1),
        "samples_f1": weights @ f1_from_counts(tp.sum(1), fp.sum(1), fn.sum(1)) / weights.sum(axis=1),
    }


def _replicate_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` bootstrap samples of ``n`` titles drawn with replacement, as counts per title."""
    if n < 2:
        raise ValueError(f"A bootstrap interval needs at least 2 test titles, not {n}.")
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def bootstrap_interval(y_true, y_pred, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """A percentile bootstrap interval over test titles for micro-, macro- and samples-F1.

    Titles (rows) are drawn with replacement ``n_boot`` times; each metric's interval is the middle
    ``level`` of its replicates. Returns ``{metric: [low, high]}``. The interval says how much a figure
    would move on another test set of the same size from the same source: two models whose
    difference lies inside it are tied (see :func:`paired_bootstrap_difference` for the exact test).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), not {level}.")
    reps = _bootstrap_f1(y_true, y_pred, _replicate_weights(len(np.asarray(y_true)), n_boot, seed))
    tail = (1 - level) / 2 * 100
    return {k: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] for k, v in reps.items()}


def kept_predictions(ids, y_true, y_pred) -> dict:
    """The test decisions a benchmark keeps beside its record (``<record>.test.npz``), so that two runs on the
    same test titles can later be compared pairwise (``python -m utils.benchmark --paired A.json B.json``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or len(ids) != len(y_true):
        raise ValueError(f"kept_predictions: {len(ids)} ids, labels {y_true.shape}, decisions {y_pred.shape}.")
    return {"test_ids": [str(i) for i in ids], "test_true": y_true.astype(np.uint8).tolist(),
            "test_pred": (y_pred > 0).astype(np.uint8).tolist()}


def paired_bootstrap_difference(y_true, y_pred_a, y_pred_b, n_boot: int = 1000, level: float = 0.95,
                                seed: int = 0) -> dict:
    """Interval of ``F1(a) - F1(b)`` over the same resampled test titles, for each F1 flavour.

    Returns ``{metric: {"difference", "low", "high", "tie"}}``; ``tie`` is True when the interval
    contains 0: on this test set, neither model is shown to be better.
    """
    weights = _replicate_weights(len(np.asarray(y_true)), n_boot, seed)
    a, b = _bootstrap_f1(y_true, y_pred_a, weights), _bootstrap_f1(y_true, y_pred_b, weights)
    point_a, point_b = f1_scores(y_true, y_pred_a), f1_scores(y_true, y_pred_b)
    tail = (1 - level) / 2 * 100
    out = {}
    for k in F1_KEYS:
        low, high = np.percentile(a[k] - b[k], [tail, 100 - tail])
        out[k] = {"difference": point_a[k] - point_b[k], "low": float(low), "high": float(high),
                  "tie": bool(low <= 0 <= high)}
    return out
