"""FAST-size models for a fresh machine (notebook 09 opened alone, the load test, a Docker image).

Each function trains the notebook's model with the notebook's code (:mod:`utils.lessons`) on the
FAST subset, saves its results (``results/<dataset>/<model>/``, so the export carries test scores)
and its model folder (``models/<dataset>/<model>/``), and returns that folder. Minutes on a CPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from utils import config

TRAINABLE = ("tfidf_logreg", "bilstm_w2v", "minilm_frozen")
# what the commands that take --train-if-missing say when a model is missing and the option was not given
MISSING_HINT = (f"hint: add --train-if-missing to train {', '.join(TRAINABLE[:-1])} or {TRAINABLE[-1]} at FAST "
                f"size first (seconds to minutes on a CPU).")


def _corpus(dataset: str, sizes: dict):
    from utils.data.corpus import load_corpus
    from utils.data.pipeline import ensure_prepared

    ensure_prepared(dataset, verbose=False)
    return load_corpus(dataset, require_clean=True).subset(**sizes, seed=config.seed())


def _save(name, corpus, genres, val_prob, test_prob, notes, dataset):
    from utils.evaluation.results import choose_thresholds, save_results

    thresholds = choose_thresholds(corpus.y("val"), val_prob, genres)
    save_results(name, genres, corpus.ids("val"), corpus.y("val"), val_prob, corpus.ids("test"), corpus.y("test"),
                 test_prob, thresholds=thresholds, dataset=dataset, notes=notes + " (FAST size, trained for serving)",
                 extra={"fast": True})
    return thresholds


def train_tfidf(dataset: str) -> Path:
    """Notebook 03's TF-IDF + logistic regression on the FAST subset (seconds)."""
    from utils.lessons.tfidf import fit, predict_proba
    from utils.modelfiles import tfidf as files

    corpus = _corpus(dataset, files.FAST_SIZES)
    x = {s: corpus.texts(s, kind="clean") for s in ("train", "val", "test")}
    pipeline = fit(x["train"], corpus.y("train"))
    thresholds = _save(files.MODEL_NAME, corpus, corpus.genres, predict_proba(pipeline, x["val"]),
                       predict_proba(pipeline, x["test"]), "notebook 03's TF-IDF + logistic regression", dataset)
    return files.save_model(pipeline, config.models_dir(dataset) / files.MODEL_NAME, corpus.genres, thresholds,
                            dataset, fast=True)


def train_bilstm(dataset: str) -> Path:
    """Notebook 04b's BiLSTM on word2vec on the FAST subset with its FAST settings (a few minutes)."""
    from utils.lessons.bilstm import FAST_SETTINGS
    from utils.modelfiles import bilstm as files

    corpus = _corpus(dataset, files.FAST_SIZES)
    x = {s: files.prepare_texts(corpus.texts(s, kind="raw")) for s in ("train", "val", "test")}
    trained = files.fit(x["train"], corpus.y("train"), x["val"], corpus.y("val"), seed=config.seed(), **FAST_SETTINGS)
    thresholds = _save(files.MODEL_NAME, corpus, corpus.genres, trained.predict_proba(x["val"]),
                       trained.predict_proba(x["test"]), "notebook 04b's BiLSTM on word2vec", dataset)
    return files.save_model(config.models_dir(dataset) / files.MODEL_NAME, trained.model, trained.vocabulary,
                            trained.sequence_length, corpus.genres, thresholds, dataset, fast=True)


def train_minilm_frozen(dataset: str) -> Path:
    """Notebook 05b's classifier: frozen MiniLM, mean pooling, the head trained on cached embeddings."""
    import keras

    from utils.lessons.heads import train_head
    from utils.lessons.minilm import HEAD, build_classifier
    from utils.modelfiles import minilm

    corpus = _corpus(dataset, minilm.FAST_SIZES)
    texts, ys = corpus.by_split()
    keras.utils.set_random_seed(config.seed())
    encoder = minilm.load_encoder()
    emb = {s: encoder.embed_cached(texts[s], dataset=dataset, progress=False)[0] for s in texts}
    head, _ = train_head(keras, emb["train"], ys["train"], emb["val"], ys["val"], **HEAD)
    model = build_classifier(encoder.backbone, head)
    val_prob, test_prob = (minilm.predict_proba(model, encoder, texts[s]) for s in ("val", "test"))
    thresholds = _save(minilm.FROZEN_NAME, corpus, corpus.genres, val_prob, test_prob,
                       "notebook 05b's frozen MiniLM + head", dataset)
    return minilm.save_model(model, encoder, config.models_dir(dataset) / minilm.FROZEN_NAME, corpus.genres,
                             thresholds, dataset, fast=True)


TRAINERS = {"tfidf_logreg": train_tfidf, "bilstm_w2v": train_bilstm, "minilm_frozen": train_minilm_frozen}


def ensure_model(name: str, dataset: str | None = None, verbose: bool = True) -> Path:
    """``models/<dataset>/<name>/``; trained here at FAST size (with a printed note) when missing."""
    from utils.modelfiles.predictor import MANIFEST

    dataset = dataset or config.dataset_name()
    folder = config.models_dir(dataset) / name
    if (folder / MANIFEST).is_file():
        return folder
    if name not in TRAINERS:
        raise FileNotFoundError(f"No model in {folder}, and only {sorted(TRAINERS)} can be trained here: "
                                f"run the notebook that trains {name}.")
    if verbose:
        print(f"Note: no saved {name} for {dataset} (its notebook has not run on this machine): "
              f"training it now at FAST size, a few minutes on a CPU. Its scores are FAST-mode scores.")
    np.random.seed(config.seed())
    return TRAINERS[name](dataset)


def model_or_trained(name: str, dataset: str | None = None) -> str:
    """``name`` as given, unless it is one of :data:`TRAINABLE`: then its model folder, trained here when missing
    (``--train-if-missing`` of ``utils.serve`` and ``utils.loadtest``)."""
    return str(ensure_model(name, dataset)) if name in TRAINERS else name
