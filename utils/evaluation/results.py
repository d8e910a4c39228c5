"""The shared results format: what every model notebook saves for notebook 06.

``results/<dataset>/<model>/`` holds three files:

* ``probs.npz``: ``genres``, ``val_ids``, ``val_true``, ``val_prob``, ``test_ids``,
  ``test_true``, ``test_prob`` (probabilities in genre order).
* ``thresholds.json``: ``{"global": t, "per_genre": {genre: t, ...}, "default": "global"}``.
* ``metrics.json``: ``{"model": ..., "dataset": ..., "fast": ..., "notes": ..., "split": {...},
  "test": {"0.5": {...}, "global": {...}, "per_genre": {...}}}`` from :func:`utils.evaluation.metrics.evaluate`.

``split`` is the identity of the split the model was trained and tested on
(:func:`utils.data.splits.split_identity`: its seed and a hash of its test ids); it is checked when
results are read (:func:`load_results`, :func:`split_mismatches`), so results of different splits
are never compared as if they were one.

Files are written to a temporary name and renamed, so a crash never leaves half a result.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from utils import config
from utils.files import atomic_write_bytes, atomic_write_json  # noqa: F401  (used by callers too)
from utils.evaluation.metrics import evaluate
from utils.lessons.thresholds import tune_global_threshold, tune_per_genre_thresholds

MODEL_ORDER = ["trivial_baseline", "tfidf_logreg", "bilstm_w2v", "bilstm_w2v_softf1",
               "bert_tfhub_frozen", "bert_tfhub_finetuned", "minilm_frozen", "minilm_finetuned"]


def _atomic_savez(path: Path, **arrays) -> Path:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def choose_thresholds(y_val, val_prob, genres, min_positives: int = 20) -> dict:
    """Global threshold (max micro-F1) and per-genre thresholds, both tuned on validation.

    Genres with fewer than ``min_positives`` validation positives keep the global
    threshold. The course's default is the global threshold: with a few hundred
    validation titles per-genre thresholds over-fit (see notebook 06).
    """
    best, _ = tune_global_threshold(y_val, val_prob)
    per = tune_per_genre_thresholds(y_val, val_prob, min_positives=min_positives, fallback=best)
    return {"global": float(best), "per_genre": dict(zip(genres, map(float, per))), "default": "global"}


def prepared_split_identity(dataset: str | None = None) -> dict | None:
    """The identity of ``data/processed/<dataset>/split.csv`` (seed from ``genres.json``); ``None`` if absent."""
    from utils.data.splits import load_split, split_identity

    folder = config.processed_dir(dataset)
    try:
        split = load_split(folder / "split.csv")
        seed = (json.loads((folder / "genres.json").read_text()).get("settings") or {}).get("seed")
    except (OSError, ValueError):
        return None
    return split_identity(split.index[split == "test"], seed if isinstance(seed, int) else None)


def save_results(model: str, genres, val_ids, y_val, val_prob, test_ids, y_test, test_prob,
                 thresholds: dict | None = None, dataset: str | None = None,
                 notes: str = "", extra: dict | None = None, split: dict | None = None) -> dict:
    """Tune thresholds on validation (unless given), evaluate on test and save everything.

    ``split``: the identity of the split these titles come from (default: the prepared split of
    ``dataset``, whose test titles must include ``test_ids``). Returns the dictionary written to ``metrics.json``.
    """
    dataset = dataset or config.dataset_name()
    split = split if split is not None else prepared_split_identity(dataset)
    genres = [str(g) for g in genres]
    val_prob = np.asarray(val_prob, dtype=np.float32)
    test_prob = np.asarray(test_prob, dtype=np.float32)
    if val_prob.shape[1] != len(genres) or test_prob.shape[1] != len(genres):
        raise ValueError(f"probabilities have {val_prob.shape[1]}/{test_prob.shape[1]} columns "
                         f"but there are {len(genres)} genres.")
    thresholds = thresholds or choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    metrics = {
        "model": model,
        "dataset": dataset,
        "fast": config.fast_mode(),
        "notes": notes,
        "n_val": int(len(val_ids)),
        "n_test": int(len(test_ids)),
        "split": split,
        "test": {
            "0.5": evaluate(y_test, test_prob, 0.5),
            "global": evaluate(y_test, test_prob, thresholds["global"]),
            "per_genre": evaluate(y_test, test_prob, per),
        },
        "val": {"global": evaluate(y_val, val_prob, thresholds["global"])},
    }
    if extra:
        metrics.update(extra)
    out = config.results_dir(dataset) / model
    _atomic_savez(out / "probs.npz", genres=np.array(genres), val_ids=np.asarray(val_ids).astype(str),
                  val_true=np.asarray(y_val, dtype=np.int8), val_prob=val_prob,
                  test_ids=np.asarray(test_ids).astype(str), test_true=np.asarray(y_test, dtype=np.int8),
                  test_prob=test_prob)
    atomic_write_json(out / "thresholds.json", thresholds)
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def load_results(model: str, dataset: str | None = None) -> dict:
    """One model's saved results: arrays from ``probs.npz`` plus thresholds and metrics."""
    folder = config.results_dir(dataset) / model
    if not (folder / "metrics.json").exists():
        raise FileNotFoundError(f"No results for model {model!r} in {folder}: run its notebook first.")
    with np.load(folder / "probs.npz", allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["genres"] = [str(g) for g in out["genres"]]
    out["thresholds"] = json.loads((folder / "thresholds.json").read_text())
    out["metrics"] = json.loads((folder / "metrics.json").read_text())
    out["split"] = out["metrics"].get("split")
    return out


def split_mismatches(results: dict, reference: dict | None = None) -> dict[str, str]:
    """Which of ``results`` (name -> :func:`load_results`) were not made on the ``reference`` split.

    ``reference`` defaults to the split of the first result that records one. Returns ``{name: why}``
    for every result to leave out: another split (other test titles, so its training titles may be
    another's test titles), or no recorded split while others record one (an older result: re-run it).
    """
    from utils.data.splits import same_split

    known = [r["split"] for r in results.values() if r.get("split")]
    reference = reference or (known[0] if known else None)
    if reference is None:
        return {}
    out = {}
    for name, res in results.items():
        split = res.get("split")
        if not split:
            out[name] = "records no split (saved before splits were recorded): re-run its notebook"
        elif not same_split(split, reference):
            out[name] = (f"was made on another split (split seed {split.get('split_seed')}, test ids "
                         f"{split.get('test_ids_sha256')}; expected {reference.get('split_seed')}, "
                         f"{reference.get('test_ids_sha256')}): re-run its notebook on the current data")
    return out


def available_models(dataset: str | None = None) -> list[str]:
    """Models with saved results for ``dataset``, in the course's order."""
    folder = config.results_dir(dataset)
    found = [p.parent.name for p in folder.glob("*/metrics.json")] if folder.exists() else []
    order = {m: i for i, m in enumerate(MODEL_ORDER)}
    return sorted(found, key=lambda m: (order.get(m, len(order)), m))
