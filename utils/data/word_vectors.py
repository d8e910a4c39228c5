"""Word2vec vectors on disk: notebook 04a saves them, notebook 04b (and anyone) reads them back.

The vectors are stored as plain arrays, never a pickle, in
``data/processed/<dataset>/word2vec/<settings>__<texts hash>.npz``:

* ``words``: the vocabulary, a unicode array, most frequent word first (gensim's order);
* ``vectors``: a float32 matrix, one row per word;
* ``meta``: a JSON string (settings, number of texts, hash, gensim version).

The file name spells the word2vec settings (and the seed) and ends with a hash of
the exact training texts, so a FAST subset, the full corpus, a re-split or other
settings each get their own file and a notebook never reads vectors trained on other
plots. Files are written atomically (:func:`utils.files.atomic_write_bytes`) and read
with ``allow_pickle=False``: loading runs no code from the file.

    path = vectors_path(train_texts, {**W2V_SETTINGS, "seed": SEED})
    save_vectors(path, wv)           # wv: gensim KeyedVectors
    wv = load_vectors(path)          # KeyedVectors again, or None if there is no (readable) file
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from utils import config
from utils.files import atomic_write_bytes

FOLDER = "word2vec"
FORMAT = "word2vec-arrays/1"


def texts_hash(texts) -> str:
    """A short SHA-1 of the training texts, in order (any change of any text changes it)."""
    h = hashlib.sha1()
    for text in texts:
        h.update(str(text).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def settings_name(settings: dict) -> str:
    """``epochs30-min_count2-...``: the settings as a file-name-safe string, keys sorted."""
    parts = []
    for key in sorted(settings):
        value = str(settings[key]).replace(".", "p")
        if not (key.replace("_", "").isalnum() and value.replace("-", "").isalnum()):
            raise ValueError(f"word2vec setting {key}={settings[key]!r} cannot be part of a file name.")
        parts.append(f"{key}{value}")
    return "-".join(parts)


def vectors_path(texts, settings: dict, dataset: str | None = None) -> Path:
    """Where the vectors trained on ``texts`` with ``settings`` (include the seed) live."""
    return config.processed_dir(dataset) / FOLDER / f"{settings_name(settings)}__{texts_hash(texts)}.npz"


def save_vectors(path, wv, meta: dict | None = None) -> Path:
    """Write gensim ``KeyedVectors`` ``wv`` as ``words`` + float32 ``vectors`` (+ ``meta``), atomically."""
    words = [str(w) for w in wv.index_to_key]
    vectors = np.asarray(wv.vectors, dtype=np.float32)
    if vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors.")
    info = {"format": FORMAT, "words": len(words), "dimensions": int(vectors.shape[1]), **(meta or {})}
    buf = io.BytesIO()
    np.savez(buf, words=np.array(words, dtype=str), vectors=vectors, meta=np.array(json.dumps(info)))
    return atomic_write_bytes(Path(path), buf.getvalue())


def read_arrays(path) -> tuple[list[str], np.ndarray, dict]:
    """``(words, vectors, meta)`` from a file written by :func:`save_vectors` (no pickle)."""
    with np.load(Path(path), allow_pickle=False) as z:
        words = [str(w) for w in z["words"]]
        vectors = np.asarray(z["vectors"], dtype=np.float32)
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    if vectors.ndim != 2 or vectors.shape[0] != len(words) or len(set(words)) != len(words):
        raise ValueError(f"{path}: {len(words)} words do not match vectors of shape {vectors.shape}.")
    return words, vectors, meta


def load_vectors(path):
    """The gensim ``KeyedVectors`` saved at ``path``; ``None`` when the file is missing or unreadable."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.exists():
        return None
    try:
        words, vectors, _ = read_arrays(path)
    except Exception as err:  # a truncated or foreign file: the caller trains the vectors again
        print(f"warning: ignoring unreadable word vectors {path} ({type(err).__name__}: {err})")
        return None
    wv = KeyedVectors(vector_size=vectors.shape[1])
    wv.add_vectors(words, vectors)
    return wv
