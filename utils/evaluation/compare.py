"""Model comparison for notebook 06 and the course runner.

Reads what notebooks 03-05 saved in ``results/<dataset>/`` (see :mod:`utils.evaluation.results`),
puts every model on the same test titles and the same genre columns, and builds the
tables and figures of notebook 06: threshold curves, global vs per-genre thresholds,
the comparison table, the per-genre F1 matrix, label cardinality and disagreements.
Every function accepts any subset of models, including none.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from utils import config
from utils.evaluation.metrics import (
    DEFAULT_GRID,
    apply_thresholds,
    evaluate,
    f1_scores,
)
from utils.lessons.thresholds import tune_per_genre_thresholds
from utils.evaluation.results import MODEL_ORDER, available_models, load_results

BASELINE = "trivial_baseline"
# which notebook (chapter prefix) saves which model
PRODUCERS = {"trivial_baseline": "03", "tfidf_logreg": "03", "bilstm_w2v": "04", "bilstm_w2v_softf1": "04",
             "bert_tfhub_frozen": "05a", "bert_tfhub_finetuned": "05a",
             "minilm_frozen": "05b", "minilm_finetuned": "05b"}
TABLE_COLUMNS = ["micro_f1", "macro_f1", "samples_f1", "hamming_loss", "lrap",
                 "pred_cardinality", "true_cardinality"]


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
                     f"(or: python -m utils.run_course --dataset {dataset} --only {prefix})")
    return "\n".join(lines)


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
    return align(results)


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


def pick_focus(results: dict[str, dict]) -> str | None:
    """The best real model by validation micro-F1 (never chosen on test); None if there is none.

    The trivial baseline and results from a random-weight encoder are never picked.
    """
    scores = {m: evaluate(r["val_true"], r["val_prob"], threshold_vector(r))["micro_f1"]
              for m, r in results.items() if m != BASELINE and not is_random_encoder(r)}
    return max(scores, key=scores.get) if scores else None


# ----------------------------------------------------------------------------- tables
def comparison_table(results: dict[str, dict], which: str = "global") -> pd.DataFrame:
    """One row per model: every metric on the shared test titles with ``which`` thresholds."""
    rows = {}
    for name, res in results.items():
        row = evaluate(res["test_true"], res["test_prob"], threshold_vector(res, which))
        row["threshold"] = float(res["thresholds"]["global"]) if which == "global" else np.nan
        row["n_test"] = len(res["test_ids"])
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=TABLE_COLUMNS + ["threshold", "n_test"])
    if BASELINE in table.index:
        table["micro_f1_vs_baseline"] = table["micro_f1"] - table.loc[BASELINE, "micro_f1"]
    table.index.name = "model"
    return table


def comparison_text(dataset: str | None = None) -> str:
    """The comparison table as text (what the course runner prints at the end)."""
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


def threshold_curve(y_true, y_prob, grid=DEFAULT_GRID) -> pd.DataFrame:
    """Micro-, macro- and samples-F1 for every global threshold in ``grid`` (vectorised).

    Same numbers as :func:`utils.evaluation.metrics.f1_scores` at each threshold (``zero_division=0``).
    """
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(y_prob, dtype=float)
    grid = np.asarray(grid, dtype=float)
    rows = []
    for t in grid:  # one threshold at a time keeps memory at movies x genres
        pred = p >= t
        tp = (pred & y).sum(axis=0)
        fp = (pred & ~y).sum(axis=0)
        fn = (~pred & y).sum(axis=0)
        micro_den = 2 * tp.sum() + fp.sum() + fn.sum()
        genre_den = 2 * tp + fp + fn
        row_tp = (pred & y).sum(axis=1)
        row_den = pred.sum(axis=1) + y.sum(axis=1)
        rows.append({
            "threshold": float(t),
            "micro_f1": 2 * tp.sum() / micro_den if micro_den else 0.0,
            "macro_f1": float(np.mean(np.where(genre_den > 0, 2 * tp / np.maximum(genre_den, 1), 0.0))),
            "samples_f1": float(np.mean(np.where(row_den > 0, 2 * row_tp / np.maximum(row_den, 1), 0.0))),
        })
    return pd.DataFrame(rows)


def best_global_threshold(y_true, y_prob, metric: str = "micro_f1", grid=DEFAULT_GRID) -> float:
    """What :func:`utils.evaluation.metrics.tune_global_threshold` picks (ties: closest to 0.5), faster."""
    curve = threshold_curve(y_true, y_prob, grid)
    best = curve[metric].max()
    ties = curve.loc[curve[metric] == best, "threshold"].to_numpy()
    return float(ties[np.argmin(np.abs(ties - 0.5))])


def global_vs_per_genre(results: dict[str, dict]) -> pd.DataFrame:
    """Test micro/macro-F1 of each model with its global vs its per-genre thresholds."""
    rows = []
    for name, res in results.items():
        g = evaluate(res["test_true"], res["test_prob"], threshold_vector(res, "global"))
        p = evaluate(res["test_true"], res["test_prob"], threshold_vector(res, "per_genre"))
        rows.append({"model": name, "micro_global": g["micro_f1"], "micro_per_genre": p["micro_f1"],
                     "micro_gain": p["micro_f1"] - g["micro_f1"], "macro_global": g["macro_f1"],
                     "macro_per_genre": p["macro_f1"], "macro_gain": p["macro_f1"] - g["macro_f1"]})
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def per_genre_threshold_table(res: dict, thresholds=None) -> pd.DataFrame:
    """Each genre's threshold (default: the saved per-genre ones), how far it is from 0.5 and the global one."""
    per = threshold_vector(res, "per_genre") if thresholds is None else np.asarray(thresholds, dtype=float)
    table = pd.DataFrame({
        "genre": res["genres"],
        "val_positives": res["val_true"].sum(axis=0).astype(int),
        "test_positives": res["test_true"].sum(axis=0).astype(int),
        "threshold": per,
        "from_0.5": per - 0.5,
        "from_global": per - float(res["thresholds"]["global"]),
    })
    return table.sort_values("val_positives", ascending=False).reset_index(drop=True)


def per_genre_gains(res: dict, thresholds) -> pd.DataFrame:
    """Per genre: F1 gained by ``thresholds`` over the global threshold, on validation and on test.

    On validation the gain is never negative (the thresholds were tuned there);
    the test column shows how much of it was real.
    """
    from sklearn.metrics import f1_score

    per = np.asarray(thresholds, dtype=float)
    glob = threshold_vector(res, "global")
    out = {"genre": res["genres"], "val_positives": res["val_true"].sum(axis=0).astype(int)}
    for split in ("val", "test"):
        y, p = res[f"{split}_true"], res[f"{split}_prob"]
        f_per = f1_score(y, apply_thresholds(p, per), average=None, zero_division=0)
        f_glob = f1_score(y, apply_thresholds(p, glob), average=None, zero_division=0)
        out[f"{split}_gain"] = f_per - f_glob
    return pd.DataFrame(out).sort_values("val_positives", ascending=False).reset_index(drop=True)


TUNING_SETTINGS = {
    # name: (min_positives, shrink); min_positives=None means "no per-genre tuning"
    "global": (None, 0.0),
    "per-genre, every genre": (1, 0.0),
    "per-genre, >=20 val positives": (20, 0.0),
    "per-genre, >=50 val positives": (50, 0.0),
    "per-genre, shrunk 50% to global": (1, 0.5),
}


def _tune(y, p, min_positives, shrink) -> np.ndarray:
    best = best_global_threshold(y, p)
    if min_positives is None:
        return np.full(y.shape[1], best)
    return tune_per_genre_thresholds(y, p, min_positives=min_positives, fallback=best, shrink=shrink)


def tuning_study(res: dict, settings=None, repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Compare threshold strategies without touching test, then on test.

    ``heldout_*``: tune on a random half of validation, score on the other half (both
    ways, ``repeats`` times): an honest estimate that uses validation only, so it can
    pick the default. ``test_*``: tune on all of validation, score once on test.
    """
    settings = settings or TUNING_SETTINGS
    yv, pv, yt, pt = res["val_true"], res["val_prob"], res["test_true"], res["test_prob"]
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(repeats):
        order = rng.permutation(len(yv))
        a, b = order[: len(order) // 2], order[len(order) // 2:]
        halves += [(a, b), (b, a)]
    rows = []
    for name, (min_pos, shrink) in settings.items():
        held = [f1_scores(yv[b], apply_thresholds(pv[b], _tune(yv[a], pv[a], min_pos, shrink))) for a, b in halves]
        test = f1_scores(yt, apply_thresholds(pt, _tune(yv, pv, min_pos, shrink)))
        rows.append({"strategy": name,
                     "heldout_micro": np.mean([h["micro_f1"] for h in held]),
                     "heldout_macro": np.mean([h["macro_f1"] for h in held]),
                     "test_micro": test["micro_f1"], "test_macro": test["macro_f1"]})
    return pd.DataFrame(rows).set_index("strategy")


def per_genre_f1_matrix(results: dict[str, dict], which: str = "global") -> pd.DataFrame:
    """Test F1 of every (model, genre); columns are genres, most frequent first."""
    from sklearn.metrics import f1_score

    if not results:
        return pd.DataFrame()
    first = next(iter(results.values()))
    order = np.argsort(-first["test_true"].sum(axis=0), kind="stable")
    genres = [first["genres"][j] for j in order]
    rows = {name: f1_score(res["test_true"], predict(res, which), average=None, zero_division=0)[order]
            for name, res in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=genres)


def cardinality_table(results: dict[str, dict], which: str = "global") -> pd.DataFrame:
    """Predicted vs true genres per test title, per model."""
    rows = {}
    for name, res in results.items():
        n_pred, n_true = predict(res, which).sum(axis=1), res["test_true"].sum(axis=1)
        rows[name] = {"true_mean": n_true.mean(), "pred_mean": n_pred.mean(),
                      "share_none_predicted": (n_pred == 0).mean(),
                      "share_exact_count": (n_pred == n_true).mean()}
    return pd.DataFrame.from_dict(rows, orient="index")


def _titles_and_texts(dataset: str | None = None) -> pd.DataFrame | None:
    try:
        from utils.data.corpus import load_corpus

        df = load_corpus().df
    except Exception:  # no prepared data: show ids only
        return None
    return df.assign(id=df["id"].astype(str)).set_index("id")[["title", "text"]]


def disagreements(results: dict[str, dict], n: int = 5, which: str = "global",
                  texts: pd.DataFrame | None = None, max_chars: int = 300) -> pd.DataFrame:
    """Test titles on which the real models disagree most, with the true genres.

    Disagreement = mean pairwise Jaccard distance between the models' predicted sets.
    ``texts`` (index id, columns title and text) defaults to the prepared corpus.
    """
    models = [m for m in results if m != BASELINE]
    if len(models) < 2:
        return pd.DataFrame()
    first = results[models[0]]
    genres = np.array(first["genres"])
    preds = {m: predict(results[m], which).astype(bool) for m in models}
    score = np.zeros(len(first["test_ids"]))
    pairs = 0
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            inter = (preds[a] & preds[b]).sum(axis=1)
            union = (preds[a] | preds[b]).sum(axis=1)
            score += 1 - np.where(union > 0, inter / np.maximum(union, 1), 1.0)
            pairs += 1
    score /= pairs
    top = np.argsort(-score, kind="stable")[:n]
    texts = _titles_and_texts() if texts is None else texts
    rows = []
    for k in top:
        tid = str(first["test_ids"][k])
        row = {"id": tid, "disagreement": round(float(score[k]), 2)}
        if texts is not None and tid in texts.index:
            text = str(texts.loc[tid, "text"])
            row["title"] = texts.loc[tid, "title"]
            row["plot"] = text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " ..."
        row["true"] = ", ".join(genres[first["test_true"][k].astype(bool)]) or "(none)"
        for m in models:
            row[m] = ", ".join(genres[preds[m][k]]) or "(none)"
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- figures
def _empty_figure(message: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return fig


def plot_threshold_curves(results: dict[str, dict], split: str = "val"):
    """Micro- and macro-F1 against one global threshold, the chosen point marked."""
    import matplotlib.pyplot as plt

    if not results:
        return _empty_figure("No saved results yet: run notebooks 03-05 first.")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for name, res in results.items():
        curve = threshold_curve(res[f"{split}_true"], res[f"{split}_prob"])
        chosen = float(res["thresholds"]["global"])
        for ax, metric in zip(axes, ["micro_f1", "macro_f1"]):
            line, = ax.plot(curve["threshold"], curve[metric], label=name)
            at = curve.iloc[(curve["threshold"] - chosen).abs().argmin()]
            ax.plot([at["threshold"]], [at[metric]], "o", color=line.get_color())
    for ax, metric in zip(axes, ["micro-F1", "macro-F1"]):
        ax.set_title(f"{metric} vs one global threshold ({split}); dot = chosen threshold")
        ax.set_xlabel("global threshold")
        ax.set_ylabel(f"{metric} on {split}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pr_curves(res: dict, genres, model: str = ""):
    """Precision-recall curves on test for a few genres, with the global and per-genre thresholds."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    genres = list(genres)
    if not genres:
        return _empty_figure("No genres to plot.")
    fig, axes = plt.subplots(1, len(genres), figsize=(3.6 * len(genres), 3.6), sharey=True, squeeze=False)
    for ax, genre in zip(axes[0], genres):
        j = res["genres"].index(genre)
        y, p = res["test_true"][:, j], res["test_prob"][:, j]
        if y.sum() == 0:
            ax.set_title(f"{genre}\n(no test positives)")
            continue
        prec, rec, thr = precision_recall_curve(y, p)
        ax.plot(rec, prec)
        for label, t, marker in [("global", float(res["thresholds"]["global"]), "o"),
                                 ("per-genre", float(res["thresholds"]["per_genre"][genre]), "s")]:
            pred = p >= t
            tp = (pred & (y == 1)).sum()
            if pred.sum() == 0:  # precision undefined: say so instead of drawing a point
                ax.plot([], [], marker, label=f"{label} {t:.2f}: predicts none")
                continue
            ax.plot([tp / y.sum()], [tp / pred.sum()], marker, label=f"{label} {t:.2f}")
        ax.axhline(y.mean(), ls=":", color="grey")
        ax.set_title(f"{genre}\n{int(y.sum())} test positives", fontsize=10)
        ax.set_xlabel("recall")
        ax.legend(fontsize=7, loc="upper right")
    axes[0][0].set_ylabel("precision")
    fig.suptitle(f"Precision-recall on test{' - ' + model if model else ''} (dotted: always-yes precision)")
    fig.tight_layout()
    return fig


def plot_comparison(table: pd.DataFrame, metrics=("micro_f1", "macro_f1", "samples_f1")):
    """Grouped bars of the comparison table, the trivial baseline's micro-F1 as a line."""
    import matplotlib.pyplot as plt

    if table.empty:
        return _empty_figure("No saved results yet: run notebooks 03-05 first.")
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(table)), 4.5))
    table[list(metrics)].plot.bar(ax=ax, rot=30)
    if BASELINE in table.index:
        ax.axhline(table.loc[BASELINE, "micro_f1"], ls="--", color="grey", label="baseline micro-F1")
    ax.set_title("All models on the same test titles (global threshold tuned on validation)")
    ax.set_xlabel("model")
    ax.set_ylabel("F1")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def plot_f1_heatmap(matrix: pd.DataFrame, support=None):
    """Models x genres heatmap of test F1 (genres most frequent first)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if matrix.empty:
        return _empty_figure("No saved results yet: run notebooks 03-05 first.")
    labels = matrix.columns if support is None else [f"{g} ({int(support[g])})" for g in matrix.columns]
    annotate = matrix.shape[1] <= 30
    fig, ax = plt.subplots(figsize=(max(8, (0.55 if annotate else 0.32) * matrix.shape[1] + 3),
                                    2.8 + 0.45 * len(matrix)))
    sns.heatmap(matrix.set_axis(labels, axis=1), vmin=0, vmax=1, cmap="viridis", ax=ax,
                annot=annotate, fmt=".2f", annot_kws={"fontsize": 7}, cbar_kws={"label": "test F1"})
    ax.set_title("Per-genre test F1 (genres by test frequency, count in brackets)")
    ax.set_xlabel("genre")
    ax.set_ylabel("model")
    fig.tight_layout()
    return fig


def plot_cardinality(results: dict[str, dict], which: str = "global", max_count: int = 8):
    """How many genres each model predicts per title, against the truth."""
    import matplotlib.pyplot as plt

    if not results:
        return _empty_figure("No saved results yet: run notebooks 03-05 first.")
    first = next(iter(results.values()))
    bins = np.arange(max_count + 2)
    counts = {"true genres": np.bincount(np.minimum(first["test_true"].sum(axis=1), max_count), minlength=max_count + 1)}
    for name, res in results.items():
        counts[name] = np.bincount(np.minimum(predict(res, which).sum(axis=1), max_count), minlength=max_count + 1)
    frame = pd.DataFrame(counts, index=[str(b) if b < max_count else f"{max_count}+" for b in bins[:-1]])
    frame = frame / frame.sum()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    frame.plot.bar(ax=ax, rot=0, width=0.85)
    ax.set_title("Genres per test title: predicted (global threshold) vs true")
    ax.set_xlabel("number of genres")
    ax.set_ylabel("share of test titles")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_per_genre_thresholds(table: pd.DataFrame, global_threshold: float, model: str = ""):
    """Tuned threshold of every genre against its number of validation positives."""
    import matplotlib.pyplot as plt

    if table.empty:
        return _empty_figure("No model to show.")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.scatter(table["val_positives"].clip(lower=1), table["threshold"])
    for _, row in table.iterrows():
        ax.annotate(row["genre"], (max(row["val_positives"], 1), row["threshold"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.5, ls=":", color="grey", label="0.5")
    ax.axhline(global_threshold, ls="--", color="C1", label=f"global {global_threshold:.2f}")
    ax.set_xscale("log")
    ax.set_title(f"Per-genre thresholds tuned on validation{' - ' + model if model else ''}")
    ax.set_xlabel("validation titles with the genre (log scale)")
    ax.set_ylabel("threshold that maximises the genre's F1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_per_genre_gains(gains: pd.DataFrame, model: str = ""):
    """Bars of the per-genre F1 gain on validation vs on test, frequent genres first."""
    import matplotlib.pyplot as plt

    if gains.empty:
        return _empty_figure("No model to show.")
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(gains) + 2), 4.5))
    labels = [f"{g} ({n})" for g, n in zip(gains["genre"], gains["val_positives"])]
    bars = gains.set_axis(labels)[["val_gain", "test_gain"]].set_axis(
        ["validation (where they were tuned)", "test"], axis=1)
    bars.plot.bar(ax=ax, rot=75, width=0.8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title(f"F1 gained by per-genre over the global threshold{' - ' + model if model else ''}")
    ax.set_xlabel("genre (validation positives), most frequent first")
    ax.set_ylabel("change in the genre's F1")
    fig.tight_layout()
    return fig


def plot_gains(table: pd.DataFrame):
    """Test micro- and macro-F1 change from global to per-genre thresholds, per model."""
    import matplotlib.pyplot as plt

    if table.empty:
        return _empty_figure("No saved results yet: run notebooks 03-05 first.")
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(table)), 4))
    table[["micro_gain", "macro_gain"]].set_axis(["micro-F1", "macro-F1"], axis=1).plot.bar(ax=ax, rot=30)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title("Per-genre minus global threshold, on test")
    ax.set_xlabel("model")
    ax.set_ylabel("change in F1")
    fig.tight_layout()
    return fig
