"""The prepared corpus that notebooks 03-06 and the benchmark train on.

``load_corpus()`` reads ``data/processed/<dataset>/`` (written by notebooks 01-02
or :func:`utils.data.pipeline.prepare`) and gives texts, labels and ids per split::

    corpus = load_corpus()
    X_train, y_train = corpus.texts("train", kind="clean"), corpus.y("train")

A model reads the plot alone (the default) or the title and the plot:
``load_corpus(text="title+plot")`` (or ``corpus.with_text("title+plot")``) gives every text, raw and
cleaned, as :func:`utils.data.text_setting.compose` builds it, the one way the command line and the
API build a model's input too. Save the setting with the model (``save_model(..., text=corpus.text)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from utils import config
from utils.data.splits import SPLITS, binarize, load_split, make_split, split_identity

TEXT_KINDS = {"raw": "text", "clean": "clean_text", "light": "light_text"}


class CorpusNotPrepared(FileNotFoundError):
    """The processed files are missing: run notebooks 01 and 02 (or ``prepare``)."""


@dataclass
class Corpus:
    dataset: str
    genres: list[str]
    df: pd.DataFrame  # id, title, text, genres, split, [clean_text, light_text], metadata
    split_seed: int | None = None   # the seed that drew the split (None: unknown, e.g. an older prepared folder)
    text: str = "plot"              # what the texts hold: "plot" or "title+plot" (utils.data.text_setting)

    def _rows(self, split: str | None) -> pd.DataFrame:
        if split is None:
            return self.df
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}.")
        return self.df[self.df["split"] == split]

    def ids(self, split: str | None = None) -> np.ndarray:
        return self._rows(split)["id"].to_numpy(dtype=str)

    def texts(self, split: str | None = None, kind: str = "raw") -> list[str]:
        """Plots of a split: ``raw`` text, ``clean`` (no stopwords) or ``light`` (lowercased words)."""
        if kind not in TEXT_KINDS:
            raise ValueError(f"kind must be one of {sorted(TEXT_KINDS)}, not {kind!r}.")
        column = TEXT_KINDS[kind]
        if column not in self.df:
            raise CorpusNotPrepared(f"No {column} column: run notebook 02 (text cleaning) first, "
                                    f"or utils.data.pipeline.prepare({self.dataset!r}).")
        return self._rows(split)[column].tolist()

    def y(self, split: str | None = None) -> np.ndarray:
        """0/1 label matrix (movies x genres) of a split."""
        return binarize(self._rows(split)["genres"].tolist(), self.genres)

    def by_split(self, kind: str = "raw") -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
        """``({split: texts}, {split: labels})`` for train, val and test."""
        return ({s: self.texts(s, kind=kind) for s in SPLITS}, {s: self.y(s) for s in SPLITS})

    def sizes(self) -> dict[str, int]:
        return {s: int((self.df["split"] == s).sum()) for s in SPLITS}

    def subset(self, max_train: int = 2000, max_eval: int = 500, seed: int | None = None) -> "Corpus":
        """A smaller corpus (at most ``max_train`` train and ``max_eval`` val/test movies) for FAST mode."""
        seed = config.seed() if seed is None else seed
        limits = {"train": max_train, "val": max_eval, "test": max_eval}
        parts = []
        for split, limit in limits.items():
            rows = self._rows(split)
            parts.append(rows.sample(n=min(limit, len(rows)), random_state=seed) if len(rows) > limit else rows)
        return Corpus(self.dataset, self.genres, pd.concat(parts).reset_index(drop=True), self.split_seed, self.text)

    def resplit(self, seed: int) -> "Corpus":
        """The same titles and genres split anew with ``seed`` (iterative stratification, as notebook 01).

        The training seed (``COURSE_SEED``) stays what it is: a split seed changes which titles are
        tested, a training seed only how models start and shuffle.
        """
        seed = int(seed)
        if seed == self.split_seed:
            return self
        split = make_split(self.df["id"], self.y(), seed=seed)
        df = self.df.assign(split=self.df["id"].astype(str).map(split).to_numpy())
        return Corpus(self.dataset, self.genres, df, seed, self.text)

    def with_text(self, setting: str | None) -> "Corpus":
        """The same titles, whose texts (raw, ``clean`` and ``light``) are ``setting``'s input:
        the plot alone, or ``"Title. Plot"`` (:func:`utils.data.text_setting.compose`), cleaned anew."""
        from utils.data.text import clean_text, light_text
        from utils.data.text_setting import check_setting, compose

        setting = check_setting(setting)
        if setting == self.text:
            return self
        df = self.df.copy()
        if "plot" not in df:
            df["plot"] = df["text"]        # the plot alone, kept to go back to it
        titles = df["title"].fillna("").astype(str) if "title" in df else pd.Series("", index=df.index)
        df["text"] = [compose(p, t, setting) for p, t in zip(df["plot"], titles)]
        if "clean_text" in df:
            df["clean_text"] = df["text"].map(clean_text)
        if "light_text" in df:
            df["light_text"] = df["text"].map(light_text)
        return Corpus(self.dataset, self.genres, df, self.split_seed, setting)

    def split_identity(self) -> dict:
        """``{"split_seed", "test_ids_sha256"}``: recorded in every result, checked when results are read."""
        return split_identity(self.ids("test"), self.split_seed)

    def for_mode(self, fast: bool | None = None, **limits) -> "Corpus":
        """``subset(**limits)`` in FAST mode, the whole corpus otherwise."""
        fast = config.fast_mode() if fast is None else fast
        return self.subset(**limits) if fast else self


def load_corpus(dataset: str | None = None, require_clean: bool = False, text: str | None = None) -> Corpus:
    """Read the processed files of ``dataset`` (default ``COURSE_DATASET``); ``text="title+plot"``: the
    texts are the titles joined to the plots (:meth:`Corpus.with_text`), ``None`` or ``"plot"``: plots."""
    from utils.data.text_setting import check_setting

    check_setting(text)                      # a wrong setting fails before any file is read
    from utils.data.pipeline import CLEAN_FILES, LABELLED_FILES, file_problems, read_genres_file

    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    folder = config.processed_dir(dataset)
    problems = file_problems(folder, LABELLED_FILES)
    if problems:
        missing = [f for f, p in problems.items() if p == "missing"]
        what = "; ".join([f"lacks {missing}"] * bool(missing) +
                         [f"its {f} is {p}" for f, p in problems.items() if p != "missing"])
        raise CorpusNotPrepared(
            f"{folder}: {what}. Prepare it again: run notebook 01 (metadata exploration) with "
            f"COURSE_DATASET={dataset}, or: python -c \"from utils.data.pipeline import prepare; prepare('{dataset}', force=True)\"")
    df = pd.read_parquet(folder / "movies.parquet")
    df["genres"] = df["genres"].map(list)
    split = load_split(folder / "split.csv")
    df["split"] = df["id"].map(split)
    if df["split"].isna().any():
        raise CorpusNotPrepared(f"{folder}/split.csv does not cover every movie: re-run notebook 01.")
    clean_path = folder / "clean.parquet"
    clean_problem = file_problems(folder, CLEAN_FILES).get("clean.parquet")   # notebook 01's files were checked above
    if clean_problem is None:
        df = df.merge(pd.read_parquet(clean_path), on="id", how="left")
    elif require_clean and clean_problem == "missing":
        raise CorpusNotPrepared(f"{clean_path} is missing: run notebook 02 (text cleaning) first.")
    elif require_clean:
        raise CorpusNotPrepared(f"{clean_path} is {clean_problem}. Run notebook 02 (text cleaning) again, or: "
                                f"python -c \"from utils.data.pipeline import prepare; prepare('{dataset}', force=True)\"")
    info = read_genres_file(dataset)
    seed = (info.get("settings") or {}).get("seed")
    return Corpus(dataset, info["genres"], df, seed if isinstance(seed, int) else None).with_text(text)
