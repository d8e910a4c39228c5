"""Timing and scoring helpers shared by the neural models' benchmark runs, for Keras 3 and Keras 2 alike.

The head on frozen features itself is taught in notebook 05a (:mod:`utils.lessons.heads`).

Notebook 04 and 05b use Keras 3 (``keras``); notebook 05a uses Keras 2 (``tf_keras``),
because TF Hub layers are Keras 2 objects. The two have the same API for what is
here, so each function takes the Keras module to build with as its first argument.
"""
from __future__ import annotations

import time

import numpy as np

_TIMER_CLASSES: dict = {}


def epoch_timer(keras_module):
    """A callback recording seconds per epoch (``seconds``) and per training step (``step_seconds``)."""
    cls = _TIMER_CLASSES.get(keras_module.__name__)
    if cls is None:
        class EpochTimer(keras_module.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds, self.step_seconds = [], []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_begin(self, batch, logs=None):
                self._step = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.step_seconds.append(time.perf_counter() - self._step)

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        cls = _TIMER_CLASSES[keras_module.__name__] = EpochTimer
    return cls()


def steady_step_seconds(step_seconds) -> float:
    """Median time of a training step after the first (which traces the graph)."""
    steps = list(step_seconds)
    return float(np.median(steps[1:] if len(steps) > 1 else steps))


def measure_throughput(embed, texts, n: int = 256, warmup: int = 32) -> float:
    """Texts per second of ``embed(list_of_texts)`` on up to ``n`` texts, after a warm-up call
    on ``warmup`` texts (the first call traces the graph)."""
    texts = list(texts)[:n]
    embed(texts[:warmup])
    start = time.perf_counter()
    embed(texts)
    return len(texts) / (time.perf_counter() - start)


def score_head_on_embeddings(train_head_fn, emb: dict, ys: dict, genres, test_ids=None) -> tuple:
    """Train a head on frozen embeddings and score it on test with val-tuned thresholds.

    ``train_head_fn(x_train, y_train, x_val, y_val)`` is the model module's ``train_head``.
    Returns ``(head, figures)`` with the benchmark's ``test``, ``test_per_genre``,
    ``threshold``, ``train_seconds`` and ``head_epochs``; with ``test_ids``, also the test decisions the
    benchmark keeps (:func:`utils.evaluation.metrics.kept_predictions`).
    """
    from utils.evaluation.metrics import apply_thresholds, bootstrap_interval, evaluate, kept_predictions
    from utils.evaluation.results import choose_thresholds

    start = time.perf_counter()
    head, hist = train_head_fn(emb["train"], ys["train"], emb["val"], ys["val"])
    seconds = time.perf_counter() - start
    val_prob, test_prob = head.predict(emb["val"], verbose=0), head.predict(emb["test"], verbose=0)
    thresholds = choose_thresholds(ys["val"], val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    test_pred = apply_thresholds(test_prob, thresholds["global"])   # the headline's decisions
    kept = {} if test_ids is None else kept_predictions(test_ids, ys["test"], test_pred)
    return head, {
        **kept,
        "test": evaluate(ys["test"], test_prob, thresholds["global"]),
        "test_per_genre": evaluate(ys["test"], test_prob, per),
        "test_interval": bootstrap_interval(ys["test"], test_pred),
        "threshold": thresholds["global"],
        "train_seconds": round(seconds, 1),
        "head_epochs": len(hist["loss"]),
    }
