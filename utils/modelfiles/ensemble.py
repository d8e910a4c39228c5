"""Plumbing for notebook 08: the tuned models and the stacked ensemble, trained end to end.

The search spaces, the tuned settings, the head trainer and the cross-fitted stacker are
written in notebooks/08_search_and_ensembles.ipynb (:mod:`utils.lessons.search`,
:mod:`utils.lessons.ensembles`); this module only runs them on a corpus:

* :func:`train_members`: every member of the ensemble on the training split, each with its
  own wall time (TF-IDF with notebook 03's settings, several tuned MiniLM heads on frozen
  features averaged, k nearest neighbours on the same features, MiniLM fine-tuned end to end
  with several seeds averaged; optionally TF-IDF with the tuned settings and the BiLSTM of
  notebook 04b);
* :func:`benchmark_tfidf_tuned`, :func:`benchmark_head_tuned`, :func:`benchmark_ensemble`:
  figures for ``python -m utils.benchmark --model tfidf_tuned | head_tuned | ensemble``.

Every figure uses thresholds tuned on validation and touches test once.
"""
from __future__ import annotations

import time

import numpy as np

FAST_SIZES = {"max_train": 2000, "max_eval": 500}   # as the other models
FAST_FINETUNE = {"max_train": 256, "epochs": 1}
MEMBER_NAMES = ("tfidf", "tfidf_tuned", "minilm_heads", "knn", "minilm_finetuned", "bilstm")   # what can be trained


def _scores(y_val, val_prob, y_test, test_prob, genres, shrink: float | None = None) -> dict:
    """Test metrics at the thresholds tuned on validation (global and per genre), plus val.

    ``shrink``: the headline ``test`` uses per-genre thresholds pulled that far towards the global
    one (notebook 06's shrinkage; genres with < 20 validation positives keep the global one), and
    ``test_global`` the global threshold. ``None``: the headline is the global threshold.
    """
    from utils.evaluation.metrics import evaluate
    from utils.evaluation.results import choose_thresholds
    from utils.lessons.ensembles import shrunk_thresholds

    thresholds = choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    out = {"test": evaluate(y_test, test_prob, thresholds["global"]),
           "test_per_genre": evaluate(y_test, test_prob, per),
           "val": evaluate(y_val, val_prob, thresholds["global"]),
           "threshold": thresholds["global"]}
    if shrink is not None:
        shrunk = shrunk_thresholds(y_val, val_prob, shrink)
        out = {**out, "test_global": {"model": "one global threshold", "test": out["test"], "val": out["val"]},
               "test": evaluate(y_test, test_prob, shrunk), "val": evaluate(y_val, val_prob, shrunk),
               "thresholds_per_genre": {g: round(float(t), 3) for g, t in zip(genres, shrunk)}}
    return out


def _short(scores: dict) -> dict:
    return {k: round(scores[k], 4) for k in ("micro_f1", "macro_f1", "samples_f1")}


def _prepare(corpus, fast: bool, seed: int):
    if fast:
        corpus = corpus.subset(**FAST_SIZES, seed=seed)
    texts, ys = corpus.by_split()
    return corpus, texts, ys


# --------------------------------------------------------------------------- members


def tfidf_member(corpus, settings: dict, seed: int = 0) -> dict:
    """TF-IDF + logistic regression (:func:`utils.lessons.search.build_tfidf`) on cleaned text."""
    from utils.lessons.search import build_tfidf

    x = {s: corpus.texts(s, kind="clean") for s in ("train", "val", "test")}
    start = time.perf_counter()
    model = build_tfidf(**settings, seed=seed).fit(x["train"], corpus.y("train"))
    seconds = time.perf_counter() - start
    return {"val": model.predict_proba(x["val"]), "test": model.predict_proba(x["test"]),
            "train_seconds": round(seconds, 2)}


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


def head_member(emb: dict, ys: dict, settings: dict, seeds) -> dict:
    """The mean of tuned heads (one per seed) on frozen embeddings."""
    from utils.lessons.search import train_head_with

    start = time.perf_counter()
    val, test = [], []
    for s in seeds:
        head = train_head_with(settings, emb["train"], ys["train"], emb["val"], ys["val"], seed=s)
        val.append(head.predict(emb["val"], verbose=0))
        test.append(head.predict(emb["test"], verbose=0))
    return {"val": np.mean(val, axis=0), "test": np.mean(test, axis=0), "heads": len(val),
            "train_seconds": round(time.perf_counter() - start, 2)}


def finetuned_member(encoder, texts: dict, ys: dict, emb: dict, head_settings: dict, seed: int,
                     max_train: int | None, epochs: int) -> dict:
    """MiniLM fine-tuned end to end (notebook 05b's ``finetune``), starting from a tuned head."""
    from utils.lessons.minilm import finetune
    from utils.lessons.search import train_head_with
    from utils.modelfiles.minilm import predict_proba

    start = time.perf_counter()
    head = train_head_with(head_settings, emb["train"], ys["train"], emb["val"], ys["val"], seed=seed)
    n = len(texts["train"]) if max_train is None else min(max_train, len(texts["train"]))
    pick = np.random.default_rng(seed).permutation(len(texts["train"]))[:n]
    model, hist = finetune(encoder, [texts["train"][i] for i in pick], ys["train"][pick], texts["val"], ys["val"],
                           head=head, hidden=head_settings["hidden"], dropout=head_settings["dropout"],
                           epochs=epochs, patience=epochs, seed=seed, verbose=0)
    seconds = time.perf_counter() - start
    return {"val": predict_proba(model, encoder, texts["val"]), "test": predict_proba(model, encoder, texts["test"]),
            "train_seconds": round(seconds, 2), "n_train_used": int(n), "epochs": len(hist["loss"]),
            "val_loss": [round(v, 4) for v in hist.get("val_loss", [])]}   # none in a 1-epoch fit


def bilstm_member(corpus, seed: int, fast: bool) -> dict:
    """Notebook 04b's BiLSTM on word2vec (BCE), trained with ``seed``."""
    from utils.lessons.bilstm import FAST_SETTINGS
    from utils.modelfiles.bilstm import fit, prepare_texts

    x = {s: prepare_texts(corpus.texts(s, kind="raw")) for s in ("train", "val", "test")}
    start = time.perf_counter()
    trained = fit(x["train"], corpus.y("train"), x["val"], corpus.y("val"), seed=seed,
                  **(FAST_SETTINGS if fast else {}))
    seconds = time.perf_counter() - start
    return {"val": trained.predict_proba(x["val"]), "test": trained.predict_proba(x["test"]),
            "train_seconds": round(seconds, 2)}


def train_members(corpus, fast: bool, seed: int, members=None) -> tuple[dict, dict]:
    """Train the ensemble's members (default: notebook 08's ``ENSEMBLE["members"]``).

    Returns ``({name: member}, embedding info)``; a member is ``{"val", "test", "train_seconds", ...}``.
    The fine-tuned member is the mean of ``ENSEMBLE["finetune_runs"]`` runs with different seeds
    (FAST mode: one short run); each run's own scores and time are kept under ``"runs"``.
    """
    import keras

    from utils.lessons.ensembles import average, knn_proba
    from utils.lessons.search import ENSEMBLE, TFIDF_DEFAULTS, TUNED_HEAD, TUNED_TFIDF

    members = tuple(ENSEMBLE["members"] if members is None else members)
    unknown = set(members) - set(MEMBER_NAMES)
    if unknown:
        raise ValueError(f"Unknown members {sorted(unknown)}; choose from {MEMBER_NAMES}.")
    from utils.tools.progress import stage

    _, texts, ys = _prepare(corpus, False, seed)   # corpus is already the FAST subset when fast
    out, info = {}, {}
    order = iter(range(1, len(members) + 1))
    if "tfidf" in members:
        stage("member tfidf", next(order), len(members))
        out["tfidf"] = tfidf_member(corpus, TFIDF_DEFAULTS, seed)
    if "tfidf_tuned" in members:
        stage("member tfidf_tuned", next(order), len(members))
        out["tfidf_tuned"] = tfidf_member(corpus, TUNED_TFIDF, seed)
    if {"minilm_heads", "knn", "minilm_finetuned"} & set(members):
        stage("MiniLM embeddings (cached after the first run)")
        emb, info = embeddings(texts, corpus.dataset)
        if "minilm_heads" in members:
            seeds = [seed * 100 + i for i in range(ENSEMBLE["heads"])]
            stage("member minilm_heads", next(order), len(members))
            out["minilm_heads"] = head_member(emb, ys, TUNED_HEAD, seeds)
        if "knn" in members:
            stage("member knn", next(order), len(members))
            start = time.perf_counter()
            val, test = (knn_proba(emb["train"], ys["train"], emb[s], k=ENSEMBLE["knn"]) for s in ("val", "test"))
            out["knn"] = {"val": val, "test": test, "train_seconds": round(time.perf_counter() - start, 2)}
        if "minilm_finetuned" in members:
            ft = FAST_FINETUNE if fast else {"max_train": None, "epochs": ENSEMBLE["finetune_epochs"]}
            runs = []
            stage("member minilm_finetuned", next(order), len(members))
            for run in range(n_runs := 1 if fast else ENSEMBLE["finetune_runs"]):
                stage("fine-tuning run", run + 1, n_runs)
                run_seed = seed if run == 0 else seed * 100 + run
                keras.utils.set_random_seed(run_seed)
                runs.append(finetuned_member(info["encoder"], texts, ys, emb, TUNED_HEAD, run_seed,
                                             ft["max_train"], ft["epochs"]))
            out["minilm_finetuned"] = {"val": average([r["val"] for r in runs]),
                                       "test": average([r["test"] for r in runs]),
                                       "train_seconds": round(sum(r["train_seconds"] for r in runs), 2),
                                       "runs": runs}
    if "bilstm" in members:
        stage("member bilstm", next(order), len(members))
        out["bilstm"] = bilstm_member(corpus, seed, fast)
    info.pop("encoder", None)
    return out, info


# --------------------------------------------------------------------------- benchmarks


def benchmark_tfidf_tuned(corpus, fast: bool = False) -> dict:
    """The TF-IDF model with notebook 08's searched settings, beside notebook 03's defaults."""
    from utils import config
    from utils.lessons.search import TFIDF_DEFAULTS, TUNED_TFIDF

    seed = config.seed()
    corpus, _, ys = _prepare(corpus, fast, seed)
    genres = list(corpus.genres)
    tuned = tfidf_member(corpus, TUNED_TFIDF, seed)
    default = tfidf_member(corpus, TFIDF_DEFAULTS, seed)
    figures = _scores(ys["val"], tuned["val"], ys["test"], tuned["test"], genres)
    base = _scores(ys["val"], default["val"], ys["test"], default["test"], genres)
    return {"model": "tfidf_tuned", "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
            **figures, "train_seconds": tuned["train_seconds"],
            "defaults": {"model": "notebook 03's settings", "test": base["test"], "val": base["val"]},
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in TUNED_TFIDF.items()},
            "notes": "TF-IDF + logistic regression with the settings notebook 08's random search chose "
                     "(Netflix, full mode); global threshold tuned on val"}


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
    tuned = head_member(emb, ys, TUNED_HEAD, [seed])
    default = head_member(emb, ys, HEAD_DEFAULTS, [seed])
    figures = _scores(ys["val"], tuned["val"], ys["test"], tuned["test"], genres)
    base = _scores(ys["val"], default["val"], ys["test"], default["test"], genres)
    return {"model": "head_tuned", "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
            **figures, "train_seconds": tuned["train_seconds"],
            "embedding_seconds_uncached": info["embed_seconds_uncached"],
            "defaults": {"model": "notebook 05b's head", "test": base["test"], "val": base["val"]},
            "params": TUNED_HEAD,
            "notes": "MiniLM frozen features + the head settings notebook 08's KerasTuner search chose; "
                     "head training only (embeddings cached); global threshold tuned on val"}


def benchmark_ensemble(corpus, fast: bool = False) -> dict:
    """Train every member, stack them per genre with cross-fitting on validation, score test once.

    The headline uses per-genre thresholds shrunk towards the global one (``ENSEMBLE["shrink"]``);
    the global threshold's figures are reported beside it (``test_global``).
    """
    from utils import config
    from utils.lessons.ensembles import average, cross_fit_stack
    from utils.lessons.search import ENSEMBLE
    from utils.tools.quiet_tf import import_tensorflow

    import_tensorflow()
    seed = config.seed()
    start = time.perf_counter()
    corpus, _, ys = _prepare(corpus, fast, seed)
    genres = list(corpus.genres)
    members, info = train_members(corpus, fast, seed)
    names = list(members)
    stack_start = time.perf_counter()
    val_stacked, test_stacked = cross_fit_stack([members[m]["val"] for m in names], ys["val"],
                                                [members[m]["test"] for m in names], folds=ENSEMBLE["folds"],
                                                seed=seed, C=ENSEMBLE["C"])
    stack_seconds = time.perf_counter() - stack_start
    wall = time.perf_counter() - start
    figures = _scores(ys["val"], val_stacked, ys["test"], test_stacked, genres, shrink=ENSEMBLE["shrink"])
    mean = _scores(ys["val"], average([members[m]["val"] for m in names]), ys["test"],
                   average([members[m]["test"] for m in names]), genres)

    def summary(member):
        row = _short(_scores(ys["val"], member["val"], ys["test"], member["test"], genres)["test"])
        extra = {k: v for k, v in member.items() if k not in ("val", "test", "runs")}
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
        "notes": f"{' + '.join(names)} ({runs} fine-tuning run(s) averaged) stacked by one logistic regression "
                 f"per genre, {ENSEMBLE['folds']}-fold cross-fitted on val; per-genre thresholds tuned on the "
                 f"out-of-fold val probabilities, shrunk {ENSEMBLE['shrink']:.0%} to the global one; train s "
                 f"counts every member and the embeddings as if uncached",
    }
