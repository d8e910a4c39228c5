"""Small pieces shared by the neural models, for Keras 3 and Keras 2 alike.

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


def build_head(keras_module, input_dim: int, n_genres: int, hidden: int, dropout: float):
    """Embedding -> dense ReLU -> dropout -> one sigmoid per genre (``hidden=0``: linear)."""
    k = keras_module
    layers = [k.Input((input_dim,), name="embedding")]
    if hidden:
        layers += [k.layers.Dense(hidden, activation="relu", name="hidden"),
                   k.layers.Dropout(dropout, name="dropout")]
    layers.append(k.layers.Dense(n_genres, activation="sigmoid", name="genres"))
    return k.Sequential(layers, name="head")


def train_head(keras_module, x_train, y_train, x_val, y_val, hidden: int, dropout: float, lr: float,
               epochs: int, batch_size: int, patience: int, verbose: int = 0):
    """Train :func:`build_head` on embeddings, early stopping on the validation loss (best weights kept).

    Returns ``(head, history)`` with per-epoch ``loss``, ``val_loss`` and ``seconds``.
    """
    k = keras_module
    x_train, x_val = np.asarray(x_train, np.float32), np.asarray(x_val, np.float32)
    y_train, y_val = np.asarray(y_train, np.float32), np.asarray(y_val, np.float32)
    head = build_head(k, x_train.shape[1], y_train.shape[1], hidden, dropout)
    head.compile(optimizer=k.optimizers.Adam(lr), loss="binary_crossentropy")
    timer = epoch_timer(k)
    stop = k.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    fit = head.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
                   callbacks=[stop, timer], verbose=verbose)
    history = {key: [float(v) for v in vals] for key, vals in fit.history.items()}
    history["seconds"] = timer.seconds
    return head, history


def score_head_on_embeddings(train_head_fn, emb: dict, ys: dict, genres) -> tuple:
    """Train a head on frozen embeddings and score it on test with val-tuned thresholds.

    ``train_head_fn(x_train, y_train, x_val, y_val)`` is the model module's ``train_head``.
    Returns ``(head, figures)`` with the benchmark's ``test``, ``test_per_genre``,
    ``threshold``, ``train_seconds`` and ``head_epochs``.
    """
    from utils.evaluation.metrics import evaluate
    from utils.evaluation.results import choose_thresholds

    start = time.perf_counter()
    head, hist = train_head_fn(emb["train"], ys["train"], emb["val"], ys["val"])
    seconds = time.perf_counter() - start
    val_prob, test_prob = head.predict(emb["val"], verbose=0), head.predict(emb["test"], verbose=0)
    thresholds = choose_thresholds(ys["val"], val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    return head, {
        "test": evaluate(ys["test"], test_prob, thresholds["global"]),
        "test_per_genre": evaluate(ys["test"], test_prob, per),
        "threshold": thresholds["global"],
        "train_seconds": round(seconds, 1),
        "head_epochs": len(hist["loss"]),
    }
