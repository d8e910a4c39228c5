"""Text cleaning: notebook 02's five steps with the course's settings, and the plumbing around them.

The steps (strip markup, normalize, tokenize, remove stopwords, stem) and the token pattern are
written in notebook 02 and exported to :mod:`utils.lessons.cleaning`; this module imports them.
What it adds is what a lesson does not need to show: :func:`check_text` (a clear error for a plot
that cannot be used) and its limit, finding or downloading NLTK's stopword list once
(:func:`ensure_stopwords`), caching the stopword set and the Snowball stemmer, and the course's
defaults (:func:`clean_tokens`, :func:`clean_text`). Nothing here needs ``punkt``, ``punkt_tab``
or ``wordnet``.
"""
from __future__ import annotations

import os
from functools import lru_cache

from utils.lessons import cleaning as lesson
from utils.lessons.cleaning import (  # noqa: F401  (the course's cleaning, imported from here by its callers)
    TOKEN_PATTERN,
    light_text,
    normalize,
    strip_markup,
    tokenize,
)

MAX_CHARS = 100_000  # about 15,000 words: far beyond any plot summary in the course


class TextError(ValueError):
    """A plot that cannot be used: not a string, empty or absurdly long."""


def check_text(text, max_chars: int = MAX_CHARS) -> str:
    """Return ``text`` if it is a usable plot, otherwise raise :class:`TextError`."""
    if not isinstance(text, str):
        raise TextError(f"A plot must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise TextError("The plot is empty: give at least one sentence describing the movie.")
    if len(text) > max_chars:
        raise TextError(f"The plot has {len(text):,} characters; the limit is {max_chars:,}. "
                        f"Pass a summary, not a whole screenplay.")
    return text


def ensure_stopwords() -> None:
    """Make sure NLTK's English stopword list can be loaded.

    Uses ``NLTK_DATA`` when set (offline CI), else tries ``nltk.download`` once, and
    otherwise raises an error saying how to fix it.
    """
    import nltk

    for resource in ("corpora/stopwords", "corpora/stopwords.zip"):
        try:
            nltk.data.find(resource)
            return
        except LookupError:
            pass
    if os.environ.get("NLTK_DATA"):
        raise LookupError(f"NLTK stopwords not found under NLTK_DATA={os.environ['NLTK_DATA']}. "
                          f"Put corpora/stopwords.zip there, or unset NLTK_DATA to download it.")
    ok = False
    try:
        ok = nltk.download("stopwords", quiet=True, raise_on_error=True)
    except Exception:
        ok = False
    if not ok:
        raise LookupError("Could not download the NLTK stopwords (offline?). Run "
                          "`python -m nltk.downloader stopwords` when online, or set NLTK_DATA "
                          "to a folder that has corpora/stopwords.zip.")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """NLTK's English stopwords, normalized the same way as the text (notebook 02's ``load_stopwords``), once."""
    ensure_stopwords()
    return lesson.load_stopwords()


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


def _settings(remove_stopwords: bool, stem: bool) -> tuple:
    """The stopword set and the stemmer that notebook 02's functions take, for the course's two switches."""
    return (stopwords() if remove_stopwords else frozenset()), (_stemmer() if stem else None)


def clean_tokens(text: str, remove_stopwords: bool = True, stem: bool = False,
                 min_length: int = 2) -> list[str]:
    """Notebook 02's ``clean_tokens`` with the course's stopword list and (``stem=True``) Snowball stemmer."""
    return lesson.clean_tokens(text, *_settings(remove_stopwords, stem), min_length=min_length)


def clean_text(text: str, remove_stopwords: bool = True, stem: bool = False) -> str:
    """Notebook 02's ``clean_text`` (tokens joined by spaces: the input of TF-IDF, notebook 03), same switches."""
    return lesson.clean_text(text, *_settings(remove_stopwords, stem))
