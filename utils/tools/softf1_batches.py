"""Does soft-F1 depend on how the batches are made? Length-bucketed vs shuffled batches, several seeds.

    python -m utils.tools.softf1_batches --dataset netflix --seeds 1,2,3
    python -m utils.tools.softf1_batches --dataset netflix --seeds 1 --fast      # a quick check

Notebook 04b's BiLSTM is trained with the soft-F1 loss twice per seed: once with batches bucketed
by plot length (the recipe's ``bucket_by_length=True``) and once with plain shuffled batches
(``False``); everything else (word2vec vectors, vocabulary, initial weights) is the same within a
seed. For each run it prints the global threshold tuned on validation, test micro- and macro-F1 at
that threshold and at 0.5, the epochs run, how many genres had no positive title in an average
training batch (their soft-F1 term and its gradient are 0 in that batch), and the mean predicted
probability on test against the mean label frequency. The load average is printed before and
after. ``--out FILE`` also writes the records as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def batch_stats(x, y, batch_size, seed, bucket):
    """Genres with no positive per training batch (mean), and the batches' label mix (mean |batch freq - freq|)."""
    from utils.lessons.bilstm import make_dataset

    freq = np.asarray(y, float).mean(axis=0)
    empty, drift = [], []
    for _, labels in make_dataset(x, y, batch_size, seed=seed, bucket=bucket):
        labels = labels.numpy()
        empty.append(int((labels.sum(axis=0) == 0).sum()))
        drift.append(float(np.abs(labels.mean(axis=0) - freq).mean()))
    return float(np.mean(empty)), float(np.mean(drift))


def run(dataset: str, seeds, fast: bool = False) -> list[dict]:
    from utils.data.corpus import load_corpus
    from utils.data.pipeline import ensure_prepared
    from utils.evaluation.metrics import evaluate
    from utils.evaluation.results import choose_thresholds
    from utils.lessons.bilstm import FAST_SETTINGS, SETTINGS, summarize
    from utils.lessons.word2vec import train_word2vec
    from utils.modelfiles import bilstm as mf

    ensure_prepared(dataset)
    records = []
    for seed in seeds:
        corpus = load_corpus(dataset, require_clean=True)
        params = {}
        if fast:
            corpus = corpus.subset(**mf.FAST_SIZES, seed=seed)
            params = dict(FAST_SETTINGS)
        genres = list(corpus.genres)
        x_train, x_val, x_test = (mf.prepare_texts(corpus.texts(s, kind="raw")) for s in ("train", "val", "test"))
        y_train, y_val, y_test = (corpus.y(s) for s in ("train", "val", "test"))
        wv = train_word2vec([t.split() for t in x_train], seed=seed)
        for bucket in (True, False):
            start = time.perf_counter()
            trained = mf.fit(x_train, y_train, x_val, y_val, loss="soft_f1", seed=seed, wv=wv,
                             bucket_by_length=bucket, **params)
            seconds = time.perf_counter() - start
            val_prob, test_prob = trained.predict_proba(x_val), trained.predict_proba(x_test)
            t = choose_thresholds(y_val, val_prob, genres)["global"]
            xt = mf.vectorize(trained.vectorizer(), x_train)
            empty, drift = batch_stats(xt, y_train, SETTINGS["batch_size"], seed, bucket)
            tuned, half = evaluate(y_test, test_prob, t), evaluate(y_test, test_prob, 0.5)
            rec = {"dataset": dataset, "mode": "fast" if fast else "full", "seed": seed,
                   "batches": "bucketed" if bucket else "shuffled", "threshold": round(t, 2),
                   "test_micro_f1": round(tuned["micro_f1"], 4), "test_macro_f1": round(tuned["macro_f1"], 4),
                   "test_micro_f1_at_0.5": round(half["micro_f1"], 4),
                   "epochs": summarize(trained.history)["epochs"],
                   "empty_genres_per_batch": round(empty, 2), "batch_label_drift": round(drift, 4),
                   "mean_prob_test": round(float(test_prob.mean()), 4),
                   "label_freq_test": round(float(np.asarray(y_test).mean()), 4),
                   "n_genres": len(genres), "seconds": round(seconds, 1), "load_avg": _load()}
            records.append(rec)
            print(json.dumps(rec), flush=True)
    return records


def summarize_records(records) -> str:
    import pandas as pd

    df = pd.DataFrame(records)
    cols = ["threshold", "test_micro_f1", "test_macro_f1", "test_micro_f1_at_0.5", "epochs",
            "empty_genres_per_batch", "mean_prob_test"]
    agg = df.groupby("batches")[cols].agg(["mean", "min", "max"]).round(3)
    return agg.T.to_string()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="netflix")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated training seeds (default 1,2,3)")
    parser.add_argument("--fast", action="store_true", help="FAST subset and epochs (a quick check)")
    parser.add_argument("--out", help="also write the records to this JSON file")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: give integers separated by commas, e.g. 1,2,3")
    from utils.tools.quiet_tf import import_tensorflow

    import_tensorflow(report=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average before: {_load()}", flush=True)
    records = run(args.dataset, seeds, fast=args.fast)
    print(summarize_records(records))
    print(f"load average after: {_load()}")
    if args.out:
        from pathlib import Path

        from utils.files import atomic_write_bytes

        atomic_write_bytes(Path(args.out), json.dumps(records, indent=1).encode("utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
