"""utils.data.text: markup, accents, tokens, stopwords (offline NLTK data), stemming, checks."""
from __future__ import annotations

import pytest

from utils.data import text
from utils.data.text import (
    MAX_CHARS,
    TextError,
    check_text,
    clean_text,
    clean_tokens,
    light_text,
    normalize,
    strip_markup,
    tokenize,
)


def test_strip_markup_removes_tags_wiki_and_urls():
    raw = ("<p>The <b>hero</b> &amp; his dog{{cite web|url=x}} visit [[Paris|the capital]] and "
           "[[London]]; see https://example.com/page?x=1 or www.example.org.</p>")
    out = strip_markup(raw)
    for gone in ("<", ">", "&amp;", "{{", "}}", "[[", "]]", "http", "www", "cite"):
        assert gone not in out
    assert "hero" in out and "& his dog" in out and "the capital" in out and "London" in out
    assert "Paris" not in out  # the link target is dropped, its label kept


def test_normalize_folds_accents_and_lowercases():
    assert normalize("Pokémon CAFÉ Ångström naïve") == "pokemon cafe angstrom naive"
    assert normalize("Straße Bjørn") == "strae bjrn"  # no ASCII decomposition: the letter is dropped


def test_unicode_punctuation_separates_words():
    # Wikipedia writes em dashes unspaced: the words around them must stay apart
    assert tokenize("The hero—a farmer—leaves in 1939–1945 for “Paris”…") == [
        "the", "hero", "a", "farmer", "leaves", "in", "for", "paris"]
    assert light_text("rock\u00a0and\u2009roll") == "rock and roll"


def test_tokenize_keeps_apostrophes_and_drops_digits_and_punctuation():
    assert tokenize("Don’t STOP—it's 2001: a space-odyssey!") == ["don't", "stop", "it's", "a", "space", "odyssey"]
    assert tokenize("<i>Amélie</i> 42") == ["amelie"]
    assert tokenize("   ") == []


def test_light_text_keeps_stopwords():
    assert light_text("The Hero, and HIS dog!") == "the hero and his dog"


def test_clean_text_removes_stopwords(nltk_data):
    assert clean_text("The cat is on the mat, and it is not happy.") == "cat mat happy"
    # stopwords are matched after normalization, so curly apostrophes do not sneak through
    assert clean_text("She doesn’t know what you’re doing") == "know"
    assert "the" in text.stopwords() and "don't" in text.stopwords() and "cat" not in text.stopwords()


def test_clean_text_stemming_and_min_length(nltk_data):
    assert clean_text("Running runners ran quickly", stem=True) == "run runner ran quick"
    assert clean_text("Running runners", stem=False) == "running runners"
    assert clean_tokens("a b cc ddd", remove_stopwords=False) == ["cc", "ddd"]
    assert clean_tokens("a b cc ddd", remove_stopwords=False, min_length=1) == ["a", "b", "cc", "ddd"]
    assert clean_text("The and of", remove_stopwords=False) == "the and of"


@pytest.mark.parametrize("bad, message", [
    (None, "must be a string, got NoneType"),
    (42, "must be a string, got int"),
    (["a plot"], "must be a string, got list"),
    ("", "The plot is empty"),
    ("  \n\t ", "The plot is empty"),
])
def test_check_text_errors(bad, message):
    with pytest.raises(TextError, match=message):
        check_text(bad)


def test_check_text_length_limit():
    assert check_text("x" * MAX_CHARS) == "x" * MAX_CHARS
    with pytest.raises(TextError, match=f"{MAX_CHARS + 1:,} characters; the limit is {MAX_CHARS:,}"):
        check_text("x" * (MAX_CHARS + 1))
    with pytest.raises(TextError, match="limit is 10"):
        check_text("a plot that is too long", max_chars=10)
    assert issubclass(TextError, ValueError)


def test_missing_stopwords_say_how_to_fix(tmp_path, monkeypatch):
    import nltk

    empty = tmp_path / "nltk_empty"
    empty.mkdir()
    monkeypatch.setenv("NLTK_DATA", str(empty))
    monkeypatch.setattr(nltk.data, "path", [str(empty)])
    text.stopwords.cache_clear()
    try:
        with pytest.raises(LookupError) as err:
            text.stopwords()
        message = str(err.value)
        assert f"NLTK_DATA={empty}" in message and "corpora/stopwords.zip" in message
        with pytest.raises(LookupError):
            clean_text("The cat sat.")
        assert light_text("The cat sat.") == "the cat sat"  # needs no NLTK data
    finally:
        text.stopwords.cache_clear()


def test_offline_download_failure_says_how_to_fix(tmp_path, monkeypatch):
    import nltk

    monkeypatch.delenv("NLTK_DATA", raising=False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setattr(nltk, "download", lambda *a, **k: False)  # what nltk does offline
    text.stopwords.cache_clear()
    try:
        with pytest.raises(LookupError, match="python -m nltk.downloader stopwords"):
            text.ensure_stopwords()
    finally:
        text.stopwords.cache_clear()


def test_the_steps_are_notebook_02s(nltk_data):
    """utils.data.text hands out notebook 02's steps (#@save cleaning) and binds its settings to them."""
    from nltk.stem.snowball import SnowballStemmer

    from utils.lessons import cleaning

    for name in ("strip_markup", "normalize", "tokenize", "light_text", "TOKEN_PATTERN"):
        assert getattr(text, name) is getattr(cleaning, name), name
    assert cleaning.TOKEN_PATTERN.findall("don't stop at 42") == ["don't", "stop", "at"]
    assert cleaning.remove_stopwords(["the", "killer", "is", "back"], {"the", "is"}) == ["killer", "back"]
    stemmer = SnowballStemmer("english")
    assert cleaning.stem_tokens(["killers", "killing"], stemmer) == ["killer", "kill"]
    assert cleaning.clean_tokens("The killers are killing", text.stopwords(), stemmer) == ["killer", "kill"]
    assert cleaning.clean_tokens("The killers are killing") == ["the", "killers", "are", "killing"]
    assert text.clean_text("The killers are killing", stem=True) == "killer kill"
    assert text.stopwords() == cleaning.load_stopwords()
