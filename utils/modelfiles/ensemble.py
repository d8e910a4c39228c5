"""Plumbing for notebook 08: the tuned models and the stacked ensemble, trained end to end.

The search spaces, the tuned settings, the head trainer and the cross-fitted stacker are
written in notebooks/08_search_and_ensembles.ipynb (:mod:`utils.lessons.search`,
:mod:`utils.lessons.ensembles`); this module only runs them on a corpus:

* :func:`train_members`: every member of the ensemble on the training split, each with its
  own wall time (TF-IDF with notebook 03's settings, several tuned MiniLM heads on frozen
  features averaged, k nearest neighbours on the same features, MiniLM fine-tuned end to end
  with several seeds averaged; optionally TF-IDF with the tuned settings and the BiLSTM of
  notebook 04b). Members that stop early stop on a slice of the training split, never on
  validation, which is kept for the stacker and the thresholds (notebook 08, section 5);
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
    from utils.evaluation.metrics import apply_thresholds, bootstrap_interval, evaluate
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
    out["test_interval"] = bootstrap_interval(y_test, apply_thresholds(test_prob, headline))
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


def _ids(rows, ctx) -> list[str]:
    return [ctx["ids"]["train"][i] for i in rows]


def tfidf_member(ctx: dict, settings: dict) -> dict:
    """TF-IDF + logistic regression (:func:`utils.lessons.search.build_tfidf`) on cleaned text, whole training split."""
    from utils.lessons.search import build_tfidf

    x = ctx["clean"]
    start = time.perf_counter()
    model = build_tfidf(**settings, seed=ctx["seed"]).fit(x["train"], ctx["y_train"])
    seconds = time.perf_counter() - start
    return {"val": model.predict_proba(x["val"]), "test": model.predict_proba(x["test"]),
            "fit_ids": ctx["ids"]["train"], "stop_ids": [], "train_seconds": round(seconds, 2)}


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


def _stopped_head(settings: dict, ctx: dict, seed: int):
    """A tuned head trained on the fit rows of the training split, early-stopped on its stop rows."""
    from utils.lessons.search import train_head_with

    x, y, fit, stop = ctx["emb"]["train"], ctx["y_train"], ctx["fit"], ctx["stop"]
    return train_head_with(settings, x[fit], y[fit], x[stop], y[stop], seed=seed)


def head_member(ctx: dict, settings: dict, seeds) -> dict:
    """The mean of tuned heads (one per seed) on frozen embeddings, each early-stopped on the stop rows."""
    start = time.perf_counter()
    val, test = [], []
    for s in seeds:
        head = _stopped_head(settings, ctx, s)
        val.append(head.predict(ctx["emb"]["val"], verbose=0))
        test.append(head.predict(ctx["emb"]["test"], verbose=0))
    return {"val": np.mean(val, axis=0), "test": np.mean(test, axis=0), "heads": len(val),
            "fit_ids": _ids(ctx["fit"], ctx), "stop_ids": _ids(ctx["stop"], ctx),
            "train_seconds": round(time.perf_counter() - start, 2)}


def knn_member(ctx: dict, k: int) -> dict:
    """k nearest training plots in the embedding space (no training, nothing to stop)."""
    from utils.lessons.ensembles import knn_proba

    start = time.perf_counter()
    emb = ctx["emb"]
    val, test = (knn_proba(emb["train"], ctx["y_train"], emb[s], k=k) for s in ("val", "test"))
    return {"val": val, "test": test, "fit_ids": ctx["ids"]["train"], "stop_ids": [],
            "train_seconds": round(time.perf_counter() - start, 2)}


def finetuned_member(ctx: dict, head_settings: dict, seed: int, max_train: int | None, epochs: int) -> dict:
    """MiniLM fine-tuned end to end (notebook 05b's ``finetune``), starting from a tuned head.

    The starting head early-stops on the stop rows; fine-tuning itself runs a fixed number of
    epochs (1 on a CPU) with the stop rows as its validation data, so validation stays unseen.
    """
    from utils.lessons.minilm import finetune
    from utils.modelfiles.minilm import predict_proba

    texts, y_train, stop = ctx["texts"], ctx["y_train"], ctx["stop"]
    start = time.perf_counter()
    head = _stopped_head(head_settings, ctx, seed)
    n = len(texts["train"]) if max_train is None else min(max_train, len(texts["train"]))
    pick = np.sort(np.random.default_rng(seed).permutation(len(texts["train"]))[:n])
    model, hist = finetune(ctx["encoder"], [texts["train"][i] for i in pick], y_train[pick],
                           [texts["train"][i] for i in stop], y_train[stop],
                           head=head, hidden=head_settings["hidden"], dropout=head_settings["dropout"],
                           epochs=epochs, patience=epochs, seed=seed, verbose=0)
    seconds = time.perf_counter() - start
    encoder = ctx["encoder"]
    return {"val": predict_proba(model, encoder, texts["val"]), "test": predict_proba(model, encoder, texts["test"]),
            "fit_ids": _ids(pick, ctx), "stop_ids": _ids(stop, ctx),
            "train_seconds": round(seconds, 2), "n_train_used": int(n), "epochs": len(hist["loss"]),
            "val_loss": [round(v, 4) for v in hist.get("val_loss", [])]}   # on the stop rows; none in a 1-epoch fit


def finetuned_runs(ctx: dict) -> dict:
    """``ENSEMBLE["finetune_runs"]`` fine-tuning runs with different seeds, averaged (FAST: one short run)."""
    import keras

    from utils.lessons.ensembles import average
    from utils.lessons.search import ENSEMBLE, TUNED_HEAD

    seed, fast = ctx["seed"], ctx["fast"]
    ft = FAST_FINETUNE if fast else {"max_train": None, "epochs": ENSEMBLE["finetune_epochs"]}
    from utils.tools.progress import stage

    runs = []
    for run in range(n_runs := 1 if fast else ENSEMBLE["finetune_runs"]):
        stage("fine-tuning run", run + 1, n_runs)
        run_seed = seed if run == 0 else seed * 100 + run
        keras.utils.set_random_seed(run_seed)
        runs.append(finetuned_member(ctx, TUNED_HEAD, run_seed, ft["max_train"], ft["epochs"]))
    return {"val": average([r["val"] for r in runs]), "test": average([r["test"] for r in runs]),
            "fit_ids": sorted({i for r in runs for i in r["fit_ids"]}),
            "stop_ids": sorted({i for r in runs for i in r["stop_ids"]}),
            "train_seconds": round(sum(r["train_seconds"] for r in runs), 2),
            "runs": [{k: v for k, v in r.items() if k not in ("fit_ids", "stop_ids")} for r in runs]}


def bilstm_member(ctx: dict) -> dict:
    """Notebook 04b's BiLSTM on word2vec (BCE), early-stopped on the stop rows."""
    from utils.lessons.bilstm import FAST_SETTINGS
    from utils.modelfiles.bilstm import fit, prepare_texts

    x = {s: prepare_texts(ctx["texts"][s]) for s in ("train", "val", "test")}
    y, fit_rows, stop = ctx["y_train"], ctx["fit"], ctx["stop"]
    start = time.perf_counter()
    trained = fit([x["train"][i] for i in fit_rows], y[fit_rows], [x["train"][i] for i in stop], y[stop],
                  seed=ctx["seed"], **(FAST_SETTINGS if ctx["fast"] else {}))
    seconds = time.perf_counter() - start
    return {"val": trained.predict_proba(x["val"]), "test": trained.predict_proba(x["test"]),
            "fit_ids": _ids(fit_rows, ctx), "stop_ids": _ids(stop, ctx), "train_seconds": round(seconds, 2)}


def _builders() -> dict:
    """What each member name trains: ``name -> fn(ctx) -> {"val", "test", "fit_ids", "stop_ids", ...}``."""
    from utils.lessons.search import ENSEMBLE, TFIDF_DEFAULTS, TUNED_HEAD, TUNED_TFIDF

    return {
        "tfidf": lambda ctx: tfidf_member(ctx, TFIDF_DEFAULTS),
        "tfidf_tuned": lambda ctx: tfidf_member(ctx, TUNED_TFIDF),
        "minilm_heads": lambda ctx: head_member(ctx, TUNED_HEAD,
                                                [ctx["seed"] * 100 + i for i in range(ENSEMBLE["heads"])]),
        "knn": lambda ctx: knn_member(ctx, ENSEMBLE["knn"]),
        "minilm_finetuned": finetuned_runs,
        "bilstm": bilstm_member,
    }


NEEDS_EMBEDDINGS = {"minilm_heads", "knn", "minilm_finetuned"}


def member_context(corpus, seed: int, fast: bool, stop_fraction: float) -> dict:
    """What a member may learn from: the training split's texts and labels, cut into fit and stop rows,
    and the texts of validation and test **without their labels**. A member cannot early-stop on
    validation because it never receives validation labels."""
    from utils.lessons.ensembles import stopping_rows

    y_train = corpus.y("train")
    fit, stop = stopping_rows(len(y_train), stop_fraction, seed)
    texts = {s: corpus.texts(s, kind="raw") for s in ("train", "val", "test")}
    clean = {s: corpus.texts(s, kind="clean") for s in ("train", "val", "test")}
    return {"ids": {s: [str(i) for i in corpus.ids(s)] for s in ("train", "val", "test")},
            "y_train": y_train, "fit": fit, "stop": stop, "texts": texts, "clean": clean,
            "seed": seed, "fast": fast, "dataset": corpus.dataset}


def train_members(corpus, fast: bool, seed: int, members=None, builders: dict | None = None) -> tuple[dict, dict]:
    """Train the ensemble's members (default: notebook 08's ``ENSEMBLE["members"]``).

    Every member learns from the training split only: it is fitted on it and, when it stops early,
    early-stopped on a slice of it (``ENSEMBLE["stop_fraction"]``, :func:`utils.lessons.ensembles.stopping_rows`).
    Validation is kept for the stacker and the thresholds. Returns ``({name: member}, embedding info)``;
    a member is ``{"val", "test", "fit_ids", "stop_ids", "train_seconds", ...}``. The fine-tuned member is
    the mean of ``ENSEMBLE["finetune_runs"]`` runs with different seeds (FAST mode: one short run); each
    run's own scores and time are kept under ``"runs"``. ``builders``: extra or replacement members (tests).
    """
    from utils.lessons.ensembles import check_unseen
    from utils.lessons.search import ENSEMBLE

    builders = {**_builders(), **(builders or {})}
    members = tuple(ENSEMBLE["members"] if members is None else members)
    unknown = set(members) - set(builders)
    if unknown:
        raise ValueError(f"Unknown members {sorted(unknown)}; choose from {sorted(builders)}.")
    ctx = member_context(corpus, seed, fast, ENSEMBLE["stop_fraction"])
    info = {}
    if NEEDS_EMBEDDINGS & set(members):
        ctx["emb"], info = embeddings(ctx["texts"], corpus.dataset)
        ctx["encoder"] = info.pop("encoder")
    from utils.tools.progress import stage

    out = {}
    for k, name in enumerate(members, 1):
        stage(f"member {name}", k, len(members))
        out[name] = builders[name](ctx)
    check_unseen(out, ctx["ids"]["val"])
    return out, info


# --------------------------------------------------------------------------- benchmarks


def benchmark_tfidf_tuned(corpus, fast: bool = False) -> dict:
    """The TF-IDF model with notebook 08's searched settings, beside notebook 03's defaults."""
    from utils import config
    from utils.lessons.search import TFIDF_DEFAULTS, TUNED_TFIDF

    seed = config.seed()
    corpus, _, ys = _prepare(corpus, fast, seed)
    genres = list(corpus.genres)
    ctx = member_context(corpus, seed, fast, stop_fraction=0.1)   # TF-IDF fits the whole training split
    tuned = tfidf_member(ctx, TUNED_TFIDF)
    default = tfidf_member(ctx, TFIDF_DEFAULTS)
    figures = _scores(ys["val"], tuned["val"], ys["test"], tuned["test"], genres)
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
    figures = _scores(ys["val"], tuned["val"], ys["test"], tuned["test"], genres)
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
    """Train every member, stack them per genre with cross-fitting on validation, score test once.

    Members learn from the training split only (fitted on it, early-stopped on a slice of it:
    :func:`train_members`); validation is for the stacker and the thresholds. The headline uses per-genre thresholds shrunk towards the global one (``ENSEMBLE["shrink"]``);
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
    members, info = train_members(corpus, fast, seed, members=members, builders=builders)
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
