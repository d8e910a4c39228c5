"""Plumbing for notebook 08: the tuned models and the stacked ensemble, trained end to end.

The search spaces, the tuned settings, the head trainer and the whole ensemble recipe (its
members and how each learns from a slice of the training split, the cross-fitted stacker and the
shrunk thresholds) are written in notebooks/08_search_and_ensembles.ipynb
(:mod:`utils.lessons.search`, :mod:`utils.lessons.ensembles`). This module only runs them on a
corpus and adds plumbing: the FAST subset, the cached embeddings and what they cost, progress
lines, and the figures with their bootstrap intervals:

* :func:`embeddings`: frozen MiniLM embeddings of every split, through the disk cache;
* :func:`benchmark_tfidf_tuned`, :func:`benchmark_head_tuned`, :func:`benchmark_ensemble`:
  figures for ``python -m utils.benchmark --model tfidf_tuned | head_tuned | ensemble``.

Every figure uses thresholds tuned on validation and touches test once.
"""
from __future__ import annotations

import time

import numpy as np

FAST_SIZES = {"max_train": 2000, "max_eval": 500}   # as the other models


def _scores(y_val, val_prob, y_test, test_prob, genres, shrink: float | None = None, test_ids=None) -> dict:
    """Test metrics at the thresholds tuned on validation (global and per genre), plus val.

    ``shrink``: the headline ``test`` uses per-genre thresholds pulled that far towards the global
    one (notebook 06's shrinkage; genres with < 20 validation positives keep the global one), and
    ``test_global`` the global threshold. ``None``: the headline is the global threshold. With ``test_ids``,
    the headline's test decisions are kept too (:func:`utils.evaluation.metrics.kept_predictions`).
    """
    from utils.evaluation.metrics import apply_thresholds, bootstrap_interval, evaluate, kept_predictions
    from utils.evaluation.results import choose_thresholds
    from utils.lessons.ensembles import shrunk_thresholds

    thresholds = choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    headline = thresholds["global"]
    out = {"test": evaluate(y_test, test_prob, thresholds["global"]),
           "test_per_genre": evaluate(y_test, test_prob, per),
           "val": evaluate(y_val, val_prob, thresholds["global"]),
           "threshold": thresholds["global"]}
    if shrink is not None:
        headline = shrunk_thresholds(y_val, val_prob, shrink)
        out = {**out, "test_global": {"model": "one global threshold", "test": out["test"], "val": out["val"]},
               "test": evaluate(y_test, test_prob, headline), "val": evaluate(y_val, val_prob, headline),
               "thresholds_per_genre": {g: round(float(t), 3) for g, t in zip(genres, headline)}}
    test_pred = apply_thresholds(test_prob, headline)
    out["test_interval"] = bootstrap_interval(y_test, test_pred)
    if test_ids is not None:
        out.update(kept_predictions(test_ids, y_test, test_pred))
    return out


def _short(scores: dict, interval: dict | None = None) -> dict:
    out = {k: round(scores[k], 4) for k in ("micro_f1", "macro_f1", "samples_f1")}
    if interval:
        out["interval"] = {k: [round(v, 4) for v in pair] for k, pair in interval.items()}
    return out


def _prepare(corpus, fast: bool, seed: int):
    if fast:
        corpus = corpus.subset(**FAST_SIZES, seed=seed)
    texts, ys = corpus.by_split()
    return corpus, texts, ys


# --------------------------------------------------------------------------- members

STOP_NOTE = "early-stopped on a slice of the training split, never on validation"


def embeddings(texts: dict, dataset: str) -> tuple[dict, dict]:
    """Frozen MiniLM embeddings of every split (cached on disk) and what computing them costs.

    ``embed_seconds_uncached`` is the time all of them would take without the cache, from the
    encoder's measured throughput: it counts in the ensemble's training time either way.
    """
    from utils.modelfiles.minilm import load_encoder
    from utils.tools import keras_tools

    start = time.perf_counter()
    encoder = load_encoder()
    load_seconds = time.perf_counter() - start
    per_s = keras_tools.measure_throughput(encoder.embed, texts["train"], n=128, warmup=16)
    start = time.perf_counter()
    emb = {s: encoder.embed_cached(texts[s], dataset=dataset, progress=False)[0] for s in ("train", "val", "test")}
    n = sum(len(t) for t in texts.values())
    return emb, {"encoder": encoder, "texts_per_s": round(per_s, 1), "seconds": round(time.perf_counter() - start, 1),
                 "embed_seconds_uncached": round(n / per_s + load_seconds, 1)}


def train_members(corpus, fast: bool, seed: int, members=None, builders: dict | None = None) -> tuple[dict, dict]:
    """Notebook 08's :func:`utils.lessons.ensembles.train_members` on ``corpus``, with the plumbing around it.

    The members (default: ``ENSEMBLE["members"]``), how each learns from the training split only, and the
    check that none saw validation are the notebook's; this adds the cached embeddings (and what they
    would cost uncached) and progress lines. Returns ``({name: member}, embedding info)``.
    ``builders``: extra or replacement members (tests).
    """
    from utils.lessons.ensembles import NEEDS_EMBEDDINGS, member_context
    from utils.lessons.ensembles import train_members as train
    from utils.lessons.search import ENSEMBLE
    from utils.tools.progress import stage

    members = tuple(ENSEMBLE["members"] if members is None else members)
    info, emb, encoder = {}, None, None
    if NEEDS_EMBEDDINGS & set(members):
        emb, info = embeddings({s: corpus.texts(s, kind="raw") for s in ("train", "val", "test")}, corpus.dataset)
        encoder = info.pop("encoder")
    ctx = member_context(corpus, seed, fast, ENSEMBLE["stop_fraction"], emb=emb, encoder=encoder, progress=stage)
    return train(ctx, members, builders=builders), info


# --------------------------------------------------------------------------- benchmarks


def benchmark_tfidf_tuned(corpus, fast: bool = False) -> dict:
    """The TF-IDF model with notebook 08's searched settings, beside notebook 03's defaults."""
    from utils import config
    from utils.lessons.ensembles import member_context, tfidf_member
    from utils.lessons.search import TFIDF_DEFAULTS, TUNED_TFIDF

    seed = config.seed()
    corpus, _, ys = _prepare(corpus, fast, seed)
    genres = list(corpus.genres)
    ctx = member_context(corpus, seed, fast, stop_fraction=0.1)   # TF-IDF fits the whole training split
    tuned = tfidf_member(ctx, TUNED_TFIDF)
    default = tfidf_member(ctx, TFIDF_DEFAULTS)
    figures = _scores(ys["val"], tuned["val"], ys["test"], tuned["test"], genres, test_ids=corpus.ids("test"))
    base = _scores(ys["val"], default["val"], ys["test"], default["test"], genres)
    return {"model": "tfidf_tuned", "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
            **figures, "train_seconds": tuned["train_seconds"],
            "defaults": {"model": "notebook 03's settings", "test": base["test"], "val": base["val"],
                         "test_interval": base["test_interval"]},
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in TUNED_TFIDF.items()},
            "notes": "TF-IDF + logistic regression with the settings notebook 08's random search chose "
                     "(Netflix, full mode); global threshold tuned on val"}


def _val_stopped_head(emb: dict, ys: dict, settings: dict, seed: int) -> dict:
    """One head early-stopped on validation, as notebook 05b trains it (a single model, not a member)."""
    from utils.lessons.search import train_head_with

    start = time.perf_counter()
    head = train_head_with(settings, emb["train"], ys["train"], emb["val"], ys["val"], seed=seed)
    return {"val": head.predict(emb["val"], verbose=0), "test": head.predict(emb["test"], verbose=0),
            "train_seconds": round(time.perf_counter() - start, 2)}


def benchmark_head_tuned(corpus, fast: bool = False) -> dict:
    """The MiniLM head with notebook 08's searched settings (one seed), beside notebook 05b's defaults."""
    from utils import config
    from utils.lessons.search import HEAD_DEFAULTS, TUNED_HEAD
    from utils.tools.quiet_tf import import_tensorflow

    import_tensorflow()
    seed = config.seed()
    corpus, texts, ys = _prepare(corpus, fast, seed)
    genres = list(corpus.genres)
    emb, info = embeddings(texts, corpus.dataset)
    tuned = _val_stopped_head(emb, ys, TUNED_HEAD, seed)
    default = _val_stopped_head(emb, ys, HEAD_DEFAULTS, seed)
    figures = _scores(ys["val"], tuned["val"], ys["test"], tuned["test"], genres, test_ids=corpus.ids("test"))
    base = _scores(ys["val"], default["val"], ys["test"], default["test"], genres)
    return {"model": "head_tuned", "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
            **figures, "train_seconds": tuned["train_seconds"],
            "embedding_seconds_uncached": info["embed_seconds_uncached"],
            "defaults": {"model": "notebook 05b's head", "test": base["test"], "val": base["val"],
                         "test_interval": base["test_interval"]},
            "params": TUNED_HEAD,
            "notes": "MiniLM frozen features + the head settings notebook 08's KerasTuner search chose; "
                     "head training only (embeddings cached); global threshold tuned on val"}


def benchmark_ensemble(corpus, fast: bool = False, members=None, builders: dict | None = None) -> dict:
    """Notebook 08's recipe end to end: train every member, stack them, score test once.

    Members learn from the training split only (fitted on it, early-stopped on a slice of it:
    :func:`train_members`); validation is for the stacker and the thresholds
    (:func:`utils.lessons.ensembles.stack_members`). The headline uses per-genre thresholds shrunk
    towards the global one (``ENSEMBLE["shrink"]``); the global threshold's figures are reported
    beside it (``test_global``).
    """
    from utils import config
    from utils.lessons.ensembles import average, stack_members
    from utils.lessons.search import ENSEMBLE
    from utils.tools.quiet_tf import import_tensorflow

    import_tensorflow()
    seed = config.seed()
    start = time.perf_counter()
    corpus, _, ys = _prepare(corpus, fast, seed)
    genres = list(corpus.genres)
    members, info = train_members(corpus, fast, seed, members=members, builders=builders)
    names = list(members)
    stack_start = time.perf_counter()
    val_stacked, test_stacked, _ = stack_members(members, ys["val"], seed=seed)   # notebook 08: the recipe's stacker
    stack_seconds = time.perf_counter() - stack_start
    wall = time.perf_counter() - start
    figures = _scores(ys["val"], val_stacked, ys["test"], test_stacked, genres, shrink=ENSEMBLE["shrink"],
                      test_ids=corpus.ids("test"))
    mean = _scores(ys["val"], average([members[m]["val"] for m in names]), ys["test"],
                   average([members[m]["test"] for m in names]), genres)

    def summary(member):
        scores = _scores(ys["val"], member["val"], ys["test"], member["test"], genres)
        row = _short(scores["test"], scores["test_interval"])
        extra = {k: v for k, v in member.items() if k not in ("val", "test", "runs", "fit_ids", "stop_ids")}
        if "fit_ids" in member:
            extra |= {"n_fit": len(member["fit_ids"]), "n_stop": len(member["stop_ids"])}
        if "runs" in member:
            extra["runs"] = [summary(r) for r in member["runs"]]
        return {**row, **extra}

    train_seconds = sum(m["train_seconds"] for m in members.values()) + stack_seconds \
        + info.get("embed_seconds_uncached", 0.0)
    runs = len(members.get("minilm_finetuned", {}).get("runs", []))
    return {
        "model": "ensemble",
        "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
        **figures,
        "mean_of_members": {"model": "plain mean of the members, global threshold", "test": mean["test"],
                            "val": mean["val"]},
        "members": {m: summary(members[m]) for m in names},
        "train_seconds": round(train_seconds, 1),
        "stack_seconds": round(stack_seconds, 2),
        "embedding": {k: v for k, v in info.items()},
        "ensemble_wall_seconds": round(wall, 1),
        "seed": seed,
        "split": corpus.split_identity(),
        "stop_fraction": ENSEMBLE["stop_fraction"],
        "notes": f"{' + '.join(names)} ({runs} fine-tuning run(s) averaged; members fitted on train, "
                 f"{STOP_NOTE}) stacked by one logistic regression "
                 f"per genre, {ENSEMBLE['folds']}-fold cross-fitted on val; per-genre thresholds tuned on the "
                 f"out-of-fold val probabilities, shrunk {ENSEMBLE['shrink']:.0%} to the global one; train s "
                 f"counts every member and the embeddings as if uncached",
    }
