"""Figure styling for notebook 06: every function takes numbers the notebook computed and draws them.

Nothing here computes a score, a threshold or a curve: titles, axes, legends and
layout only, so the notebook's cells stay about the numbers. Every function accepts
empty input (no saved results yet) and then draws a figure that says so.
"""
from __future__ import annotations

import pandas as pd

from utils.evaluation.compare import BASELINE
NO_RESULTS = "No saved results yet: run notebooks 03-05 first."


def empty_figure(message: str = NO_RESULTS):
    """A small figure with one line of text instead of axes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return fig


def _finish(fig, ax, title: str, xlabel: str, ylabel: str):
    """Title and axis labels of a one-panel figure, then a tight layout."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def plot_threshold_curves(curves: dict, chosen: dict, split: str = "val"):
    """Micro- and macro-F1 against one global threshold, the chosen point marked.

    ``curves``: ``{model: DataFrame indexed by threshold with micro_f1 and macro_f1}``;
    ``chosen``: ``{model: its saved global threshold}``.
    """
    import matplotlib.pyplot as plt

    if not curves:
        return empty_figure()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for name, curve in curves.items():
        for ax, metric in zip(axes, ["micro_f1", "macro_f1"]):
            line, = ax.plot(curve.index, curve[metric], label=name)
            at = curve.index[abs(curve.index - chosen[name]).argmin()]
            ax.plot([at], [curve.loc[at, metric]], "o", color=line.get_color())
    for ax, metric in zip(axes, ["micro-F1", "macro-F1"]):
        ax.set_title(f"{metric} vs one global threshold ({split}); dot = chosen threshold")
        ax.set_xlabel("global threshold")
        ax.set_ylabel(f"{metric} on {split}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pr_curves(curves: dict, model: str = ""):
    """Precision-recall curves of a few genres with their threshold points.

    ``curves``: ``{genre: {"recall", "precision": arrays (empty: no positives), "positives": int,
    "share": always-yes precision, "points": {label: (recall, precision) or None when it predicts none}}}``.
    """
    import matplotlib.pyplot as plt

    if not curves:
        return empty_figure("No genres to plot.")
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.6), sharey=True, squeeze=False)
    for ax, (genre, c) in zip(axes[0], curves.items()):
        if not c["positives"]:
            ax.set_title(f"{genre}\n(no test positives)")
            continue
        ax.plot(c["recall"], c["precision"])
        for (label, point), marker in zip(c["points"].items(), "os^v"):
            if point is None:
                ax.plot([], [], marker, label=f"{label}: predicts none")
            else:
                ax.plot([point[0]], [point[1]], marker, label=label)
        ax.axhline(c["share"], ls=":", color="grey")
        ax.set_title(f"{genre}\n{c['positives']} test positives", fontsize=10)
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
        return empty_figure()
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(table)), 4.5))
    table[list(metrics)].plot.bar(ax=ax, rot=30)
    if BASELINE in table.index:
        ax.axhline(table.loc[BASELINE, "micro_f1"], ls="--", color="grey", label="baseline micro-F1")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _finish(fig, ax, "All models on the same test titles (global threshold tuned on validation)",
                   "model", "F1")


def plot_f1_heatmap(matrix: pd.DataFrame, support=None):
    """Models x genres heatmap of test F1 (columns in the order given, ``support`` in brackets)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if matrix.empty:
        return empty_figure()
    labels = matrix.columns if support is None else [f"{g} ({int(support[g])})" for g in matrix.columns]
    annotate = matrix.shape[1] <= 30
    fig, ax = plt.subplots(figsize=(max(8, (0.55 if annotate else 0.32) * matrix.shape[1] + 3),
                                    2.8 + 0.45 * len(matrix)))
    sns.heatmap(matrix.set_axis(labels, axis=1), vmin=0, vmax=1, cmap="viridis", ax=ax,
                annot=annotate, fmt=".2f", annot_kws={"fontsize": 7}, cbar_kws={"label": "test F1"})
    return _finish(fig, ax, "Per-genre test F1 (genres by test frequency, count in brackets)", "genre", "model")


def plot_cardinality(shares: pd.DataFrame):
    """Bars of the share of test titles per number of genres (rows), true and per model (columns)."""
    import matplotlib.pyplot as plt

    if shares.empty:
        return empty_figure()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    shares.plot.bar(ax=ax, rot=0, width=0.85)
    ax.legend(fontsize=8)
    return _finish(fig, ax, "Genres per test title: predicted (global threshold) vs true",
                   "number of genres", "share of test titles")


def plot_per_genre_thresholds(table: pd.DataFrame, global_threshold: float, model: str = ""):
    """Tuned threshold of every genre (``threshold``) against its validation positives (``val_positives``)."""
    import matplotlib.pyplot as plt

    if table.empty:
        return empty_figure("No model to show.")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.scatter(table["val_positives"].clip(lower=1), table["threshold"])
    for _, row in table.iterrows():
        ax.annotate(row["genre"], (max(row["val_positives"], 1), row["threshold"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.5, ls=":", color="grey", label="0.5")
    ax.axhline(global_threshold, ls="--", color="C1", label=f"global {global_threshold:.2f}")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    return _finish(fig, ax, f"Per-genre thresholds tuned on validation{' - ' + model if model else ''}",
                   "validation titles with the genre (log scale)", "threshold that maximises the genre's F1")


def plot_per_genre_gains(gains: pd.DataFrame, model: str = ""):
    """Bars of the per-genre F1 gain on validation (``val_gain``) vs on test (``test_gain``)."""
    import matplotlib.pyplot as plt

    if gains.empty:
        return empty_figure("No model to show.")
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(gains) + 2), 4.5))
    labels = [f"{g} ({n})" for g, n in zip(gains["genre"], gains["val_positives"])]
    bars = gains.set_axis(labels)[["val_gain", "test_gain"]].set_axis(
        ["validation (where they were tuned)", "test"], axis=1)
    bars.plot.bar(ax=ax, rot=75, width=0.8)
    ax.axhline(0, color="black", lw=0.8)
    return _finish(fig, ax, f"F1 gained by per-genre over the global threshold{' - ' + model if model else ''}",
                   "genre (validation positives), most frequent first", "change in the genre's F1")


def plot_gains(table: pd.DataFrame):
    """Test micro- and macro-F1 change (``micro_gain``, ``macro_gain``) from global to per-genre, per model."""
    import matplotlib.pyplot as plt

    if table.empty:
        return empty_figure()
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(table)), 4))
    table[["micro_gain", "macro_gain"]].set_axis(["micro-F1", "macro-F1"], axis=1).plot.bar(ax=ax, rot=30)
    ax.axhline(0, color="black", lw=0.8)
    return _finish(fig, ax, "Per-genre minus global threshold, on test", "model", "change in F1")


def plot_threshold_vs_best_f1(points: dict):
    """Per-genre best threshold against the genre's best F1, one colour per model, with the line threshold = F1 / 2.

    ``points``: ``{model: DataFrame with best_f1 and threshold, one row per genre}``.
    """
    import matplotlib.pyplot as plt

    if not points:
        return empty_figure("No model to show.")
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for name, table in points.items():
        ax.scatter(table["best_f1"], table["threshold"], label=name, alpha=0.75)
    ax.plot([0, 1], [0, 0.5], "k--", label="threshold = F1 / 2 (calibrated model)")
    ax.axhline(0.5, ls=":", color="grey", label="0.5")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper right")
    return _finish(fig, ax, "Per-genre F1-optimal threshold vs best F1 (validation)",
                   "the genre's best F1 on validation", "threshold that reaches it")


def plot_reliability(curves: dict, split: str = "test", title: str = ""):
    """Reliability diagram: observed frequency against mean predicted probability, one line per entry.

    ``curves``: ``{label: DataFrame with confidence, frequency and count, one row per bin}``; empty bins are skipped.
    """
    import matplotlib.pyplot as plt

    if not curves:
        return empty_figure()
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for label, bins in curves.items():
        used = bins[bins["count"] > 0]
        ax.plot(used["confidence"], used["frequency"], "o-", label=label, alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    return _finish(fig, ax, title or f"Reliability diagram, every (movie, genre) pair of {split} pooled, 10 bins",
                   "mean predicted probability in the bin", f"share of the bin's pairs that are true ({split})")


# ----------------------------------------------------------------------------- notebook 07 (error analysis)
def plot_confusion_pairs(matrix: pd.DataFrame, model: str = "", label: str = "test movies"):
    """Heatmap: rows = genre wrongly predicted, columns = a true genre of those movies (``label``: what a cell holds)."""
    import matplotlib.pyplot as plt

    if matrix is None or matrix.empty:
        return empty_figure()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * n + 2), max(5, 0.4 * n + 1.5)))
    im = ax.imshow(matrix.to_numpy(), cmap="Reds", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=90)
    ax.set_yticks(range(n), matrix.index)
    fig.colorbar(im, ax=ax, label=label)
    return _finish(fig, ax, f"Which genre is predicted wrongly, given a true genre ({model})",
                   "true genre B (the movie has it)", "predicted genre A (the movie does not have it)")


def plot_f1_vs_support(table: pd.DataFrame):
    """One point per genre per model: test F1 against training examples (log x). Columns: model, genre, n_train, f1."""
    import matplotlib.pyplot as plt

    if table is None or table.empty:
        return empty_figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, rows in table.groupby("model", sort=False):
        ax.scatter(rows["n_train"], rows["f1"], label=model, alpha=0.75)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    return _finish(fig, ax, "Per-genre test F1 against the number of training examples",
                   "training movies with the genre (log scale)", "test F1 (global threshold)")


def plot_word_contributions(contributions: dict, n: int = 8):
    """Bar charts, one per genre: ``{genre: [(word, contribution), ...]}`` (green pushes up, red down)."""
    import matplotlib.pyplot as plt

    if not contributions:
        return empty_figure("No genre to explain.")
    fig, axes = plt.subplots(1, len(contributions), figsize=(4.2 * len(contributions), 3.6), squeeze=False)
    for ax, (genre, pairs) in zip(axes[0], contributions.items()):
        pairs = sorted(pairs, key=lambda p: abs(p[1]), reverse=True)[:n][::-1]
        words, values = [p[0] for p in pairs], [p[1] for p in pairs]
        ax.barh(words, values, color=["tab:green" if v > 0 else "tab:red" for v in values])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(genre)
        ax.set_xlabel("contribution to the logit")
    axes[0][0].set_ylabel("word or word pair")
    fig.suptitle("Which words pushed each predicted genre up (green) or down (red)")
    fig.tight_layout()
    return fig


def plot_length_curve(curves: dict, dataset: str = "",
                      xlabel: str = "words kept per plot (log 2; the last point keeps every word)"):
    """Test micro-F1 against words kept per plot: ``{label: {n_words: score}}``, log-2 x axis."""
    import matplotlib.pyplot as plt

    if not curves:
        return empty_figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in curves.items():
        xs = sorted(curve)
        ax.plot(xs, [curve[x] for x in xs], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.legend()
    return _finish(fig, ax, f"How much text is needed ({dataset})", xlabel, "test micro-F1")
