"""Loading saved results for notebook 06 and the course runner.

Reads what notebooks 03-05 saved in ``results/<dataset>/`` (see :mod:`utils.evaluation.results`),
puts every model on the same test titles and the same genre columns, reads their saved
thresholds, says which models are missing and prints the comparison table for
``python -m utils.run_course``. The comparison itself (tables, threshold studies) is
written in notebook 06 and exported to :mod:`utils.lessons.comparison` and
:mod:`utils.lessons.thresholds`; its figures are drawn by :mod:`utils.evaluation.plots`.
Every function accepts any subset of models, including none.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from utils import config
from utils.evaluation.metrics import apply_thresholds, evaluate
from utils.evaluation.results import (MODEL_ORDER, available_models, load_results, prepared_split_identity,
                                      split_mismatches)

BASELINE = "trivial_baseline"
# which notebook (chapter prefix) saves which model
PRODUCERS = {"trivial_baseline": "03", "tfidf_logreg": "03", "bilstm_w2v": "04b", "bilstm_w2v_softf1": "04b",
             "bert_tfhub_frozen": "05a", "bert_tfhub_finetuned": "05a",
             "minilm_frozen": "05b", "minilm_finetuned": "05b"}


# ----------------------------------------------------------------------------- loading
def producer_notebook(model: str) -> str:
    """File name of the notebook that saves ``model`` (or its chapter prefix)."""
    prefix = PRODUCERS.get(model)
    if prefix is None:
        return "?"
    found = sorted(config.NOTEBOOKS_DIR.glob(f"{prefix}_*.ipynb"))
    return found[0].name if found else f"{prefix}_*.ipynb"


def missing_models(found, expected=MODEL_ORDER) -> dict[str, list[str]]:
    """``{notebook: [models it would save]}`` for the expected models that are not in ``found``."""
    out: dict[str, list[str]] = {}
    for model in expected:
        if model not in found:
            out.setdefault(producer_notebook(model), []).append(model)
    return out


def _spec(dataset: str) -> str:
    """What to pass to --dataset: the CSV's path for a csv-<hash> dataset."""
    source = config.csv_source(dataset) if dataset.startswith("csv-") else None
    return f"csv:{source}" if source else dataset


def missing_text(found, dataset: str | None = None) -> str:
    """Which models are missing and how to produce them, for people."""
    dataset = dataset or config.dataset_name()
    missing = missing_models(found)
    if not missing:
        return f"All {len(MODEL_ORDER)} course models have results for {dataset}."
    lines = [f"Missing for dataset {dataset}:"]
    for notebook, models in missing.items():
        prefix = notebook.split("_")[0]
        lines.append(f"  - {', '.join(models)}: run notebooks/{notebook} "
                     f"(or: python -m utils.run_course --dataset {_spec(dataset)} --only {prefix})")
    return "\n".join(lines)


QUICK_REBUILD = "03"   # the notebook whose FAST run gives notebook 06 real models to compare (a minute or two)


def rebuild_missing(results: dict, dataset: str | None = None, timeout: int = 1800) -> bool:
    """When ``results`` has no real model (a notebook opened alone on a fresh VM), run notebook
    :data:`QUICK_REBUILD` at FAST size in a fresh kernel, saying what, how long and that the
    numbers are from a quick run. True if it ran. Never starts a full-size training."""
    import subprocess
    import sys
    import tempfile
    import time

    dataset = dataset or config.dataset_name()
    if any(m != BASELINE for m in results):
        return False
    notebook = producer_notebook("tfidf_logreg")
    print(f"No model results for {dataset} in {config.results_dir(dataset)} (a notebook opened alone starts "
          f"on an empty machine). Rebuilding them with {notebook} at FAST size (the trivial baseline and "
          f"TF-IDF + logistic regression, preparing the data first if needed): about 1-3 minutes on a CPU. "
          f"Their numbers come from a quick run on a subset, not from a full-size course run.", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-m", "utils.run_course", "--fast", "--dataset", _spec(dataset),
                               "--only", QUICK_REBUILD, "--out", out], cwd=config.ROOT, timeout=timeout,
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Rebuilding with {notebook} failed; run that notebook yourself and come back.\n"
                           + (done.stdout + done.stderr)[-3000:])
    print(f"Rebuilt in {time.perf_counter() - start:.0f} s.", flush=True)
    return True


def load_all(dataset: str | None = None, models=None) -> dict[str, dict]:
    """Saved results of every available model, aligned on common test titles and genres.

    Each value is :func:`utils.evaluation.results.load_results`'s dictionary. Test arrays are
    restricted to the test ids every model has (in the same order) and genre columns
    follow the first model's order; a model with a different genre set is left out
    with a warning (it was trained on another preparation of the data).
    """
    dataset = dataset or config.dataset_name()
    names = models if models is not None else available_models(dataset)
    results = {m: load_results(m, dataset) for m in names}
    return align(same_split_only(results, prepared_split_identity(dataset)))


def same_split_only(results: dict[str, dict], reference: dict | None = None) -> dict[str, dict]:
    """Leave out, with a warning that says why and what to do, every result made on another split
    than ``reference`` (default: the first recorded one): results of different splits are never mixed."""
    odd = split_mismatches(results, reference)
    for name, why in odd.items():
        warnings.warn(f"{name} {why}; left out of the comparison.")
    return {name: res for name, res in results.items() if name not in odd}


def align(results: dict[str, dict]) -> dict[str, dict]:
    """Restrict every model to the common test ids and the first model's genre order."""
    if not results:
        return {}
    first = next(iter(results.values()))
    genres = list(first["genres"])
    kept = {}
    for name, res in results.items():
        if sorted(res["genres"]) != sorted(genres):
            warnings.warn(f"{name} has other genres than {next(iter(results))}: left out of the comparison.")
            continue
        order = [list(res["genres"]).index(g) for g in genres]
        res = dict(res)
        for split in ("val", "test"):
            res[f"{split}_prob"] = np.asarray(res[f"{split}_prob"])[:, order]
            res[f"{split}_true"] = np.asarray(res[f"{split}_true"])[:, order]
        res["genres"] = genres
        kept[name] = res
    common = set.intersection(*(set(map(str, r["test_ids"])) for r in kept.values())) if kept else set()
    ref = [str(i) for i in next(iter(kept.values()))["test_ids"] if str(i) in common] if kept else []
    if kept and any(len(r["test_ids"]) != len(ref) for r in kept.values()):
        warnings.warn(f"The models were tested on different titles: comparing on the {len(ref)} they share.")
    for res in kept.values():
        pos = {str(i): k for k, i in enumerate(res["test_ids"])}
        idx = np.array([pos[i] for i in ref], dtype=int)
        res["test_ids"] = np.array(ref)
        res["test_prob"] = res["test_prob"][idx]
        res["test_true"] = res["test_true"][idx]
    return kept


def threshold_vector(res: dict, which: str = "global") -> np.ndarray:
    """The saved thresholds of one model as one value per genre (``0.5``, ``global``, ``per_genre``)."""
    n = len(res["genres"])
    if which == "0.5":
        return np.full(n, 0.5)
    if which == "global":
        return np.full(n, float(res["thresholds"]["global"]))
    if which == "per_genre":
        per = res["thresholds"]["per_genre"]
        return np.array([float(per[g]) for g in res["genres"]])
    raise ValueError(f"which must be '0.5', 'global' or 'per_genre', not {which!r}.")


def predict(res: dict, which: str = "global", split: str = "test") -> np.ndarray:
    """0/1 predictions of one model on ``split`` with its saved thresholds."""
    return apply_thresholds(res[f"{split}_prob"], threshold_vector(res, which))


def is_random_encoder(res: dict) -> bool:
    """True for results that their notebook marked as coming from an encoder with random weights."""
    return "random weights" in str(res.get("metrics", {}).get("notes", "")).lower()


def random_weight_models(results: dict[str, dict]) -> list[str]:
    """The models among ``results`` whose scores come from an encoder with random weights (never results).

    A result counts when its notebook marked it (:func:`is_random_encoder`); every TF Hub BERT result
    counts too while the environment says that the TF Hub encoder is the offline copy with random
    weights (:func:`utils.modelfiles.bert_tfhub.offline_random_encoder`).
    """
    from utils.modelfiles.bert_tfhub import offline_random_encoder

    offline = offline_random_encoder()
    return [m for m, r in results.items() if is_random_encoder(r) or (offline and m.startswith("bert_tfhub"))]


def pick_focus(results: dict[str, dict]) -> str | None:
    """The best real model by validation micro-F1 (never chosen on test); None if there is none.

    The trivial baseline and results from a random-weight encoder are never picked.
    """
    scores = {m: evaluate(r["val_true"], r["val_prob"], threshold_vector(r))["micro_f1"]
              for m, r in results.items() if m != BASELINE and not is_random_encoder(r)}
    return max(scores, key=scores.get) if scores else None


# ----------------------------------------------------------------------------- report
def comparison_text(dataset: str | None = None) -> str:
    """The comparison table as text (what the course runner prints at the end)."""
    from utils.lessons.comparison import comparison_table   # written in notebook 06

    dataset = dataset or config.dataset_name()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = load_all(dataset)
    if not results:
        return (f"No model results in {config.results_dir(dataset)} yet.\n"
                + missing_text([], dataset))
    table = comparison_table(results)
    fast = {r["metrics"].get("fast") for r in results.values()}
    mode = "FAST" if fast == {True} else "full" if fast == {False} else "mixed FAST/full"
    cols = ["micro_f1", "macro_f1", "samples_f1", "hamming_loss", "lrap", "pred_cardinality", "threshold"]
    lines = [f"Model comparison on the test split ({dataset}, {mode} mode, {int(table['n_test'].iloc[0])} "
             f"titles, global threshold tuned on validation):",
             table[cols].to_string(float_format=lambda v: f"{v:.3f}")]
    lines += [f"note: {w.message}" for w in caught]
    flagged = [m for m, r in results.items() if is_random_encoder(r)]
    if flagged:
        lines.append(f"note: {', '.join(flagged)} used an encoder with RANDOM weights (offline test copy): "
                     f"their scores are not results.")
    missing = missing_models(results)
    if missing:
        lines.append(missing_text(results, dataset))
    return "\n".join(lines)


def titles_and_texts(dataset: str | None = None) -> pd.DataFrame | None:
    """Title and text of every prepared title (index: id as text); None when the data is not prepared."""
    try:
        from utils.data.corpus import load_corpus

        df = load_corpus(dataset).df
    except Exception:  # no prepared data: show ids only
        return None
    return df.assign(id=df["id"].astype(str)).set_index("id")[["title", "text"]]
