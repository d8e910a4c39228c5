"""Text cleaning with NLTK, without any model download but the stopword list.

Steps (each optional where it makes sense): strip HTML/wiki markup, lowercase,
replace everything that is not a letter by a space, regex tokenization, drop
English stopwords (NLTK), Snowball stemming. Nothing here needs ``punkt``,
``punkt_tab`` or ``wordnet``.
"""
from __future__ import annotations

import html
import os
import re
import unicodedata
from functools import lru_cache

MAX_CHARS = 100_000  # about 15,000 words: far beyond any plot summary in the course

_TAGS = re.compile(r"<[^>]+>")
_WIKI = re.compile(r"\{\{[^{}]*\}\}|\[\[(?:[^|\]]*\|)?([^\]]*)\]\]")
_URL = re.compile(r"https?://\S+|www\.\S+")
_NON_LETTERS = re.compile(r"[^a-z\s]+")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SPACES = re.compile(r"\s+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


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


def strip_markup(text: str) -> str:
    """Unescape HTML entities and remove tags, wiki templates/links and URLs."""
    text = html.unescape(text)
    text = _TAGS.sub(" ", text)
    text = _WIKI.sub(lambda m: m.group(1) or " ", text)
    return _URL.sub(" ", text)


def _fold(match: re.Match) -> str:
    # accents and non-Latin letters vanish; dashes, quotes and other symbols separate words
    return "" if unicodedata.category(match.group())[0] in "LM" else " "


def normalize(text: str) -> str:
    """Markup stripped, accents folded to ASCII ("Pokémon" -> "pokemon"), lowercased.

    Non-ASCII punctuation separates words ("hero—a farmer" -> "hero a farmer").
    """
    text = unicodedata.normalize("NFKD", strip_markup(text))
    return _NON_ASCII.sub(_fold, text).lower()


def tokenize(text: str) -> list[str]:
    """Regex tokenization of normalized text: runs of letters (``don't`` stays one token)."""
    return _TOKEN.findall(normalize(text.replace("\u2019", "'")))


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
    """NLTK's English stopwords, normalized the same way as the text."""
    ensure_stopwords()
    from nltk.corpus import stopwords as sw

    return frozenset(normalize(w) for w in sw.words("english"))


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


def clean_tokens(text: str, remove_stopwords: bool = True, stem: bool = False,
                 min_length: int = 2) -> list[str]:
    """Tokens after markup stripping, lowercasing, stopword removal and optional stemming."""
    tokens = [t for t in tokenize(text) if len(t) >= min_length]
    if remove_stopwords:
        stop = stopwords()
        tokens = [t for t in tokens if t not in stop]
    if stem:
        stemmer = _stemmer()
        tokens = [stemmer.stem(t) for t in tokens]
    return tokens


def clean_text(text: str, remove_stopwords: bool = True, stem: bool = False) -> str:
    """:func:`clean_tokens` joined by spaces: the input of TF-IDF (notebook 03)."""
    return " ".join(clean_tokens(text, remove_stopwords=remove_stopwords, stem=stem))


def light_text(text: str) -> str:
    """Lowercased words with stopwords kept: the input of the neural models (notebooks 04a-04b)."""
    return " ".join(tokenize(text))
