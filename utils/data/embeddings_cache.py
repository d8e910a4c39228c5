"""A disk cache of sentence embeddings, shared by the frozen-encoder paths of notebook 05.

Embedding a corpus with a frozen encoder is the slow step; training a head on the
embeddings takes seconds. So each text's vector is computed once and stored in
``data/processed/<dataset>/embeddings/<encoder>__len<L>__<pooling>.npz``, keyed by
the SHA-1 of the text itself: a FAST subset, the full corpus and a re-split all
reuse the same vectors, and a changed plot is simply embedded again.

The encoder key must name the weights, not just the model's name (the modules add
a fingerprint of the weights), so that a test encoder with random weights and the
real one never share a file. This module needs only NumPy: the encoder is any
``embed_batch(list_of_texts) -> array`` function.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import time
from pathlib import Path

import numpy as np

from utils import config
from utils.files import atomic_write_bytes

SAVE_EVERY_S = 60.0  # write what is done at least this often, so an interrupted run keeps it


def text_key(text: str) -> str:
    """The cache key of one text: the SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def slug(name: str) -> str:
    """A file-name-safe version of a model handle or checkpoint name."""
    name = re.sub(r"^[a-z]+://", "", str(name))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "encoder"


def weights_fingerprint(arrays, n: int = 3) -> str:
    """Short hash of the last ``n`` weight arrays: tells a random encoder from the real one."""
    h = hashlib.sha1()
    arrays = list(arrays)
    for a in arrays[-n:]:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float32)).tobytes())
    return h.hexdigest()[:10]


def cache_path(encoder_key: str, seq_len: int, pooling: str, dataset: str | None = None) -> Path:
    """``data/processed/<dataset>/embeddings/<encoder>__len<L>__<pooling>.npz``."""
    return config.processed_dir(dataset) / "embeddings" / f"{slug(encoder_key)}__len{int(seq_len)}__{pooling}.npz"


class EmbeddingCache:
    """Vectors by text key, read from and written (atomically) to one ``.npz`` file."""

    def __init__(self, path, meta: dict | None = None):
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    keys, vecs = z["keys"], z["vectors"]
                    stored = json.loads(str(z["meta"])) if "meta" in z.files else {}
            except Exception as err:  # truncated or foreign file: start again rather than fail
                print(f"warning: ignoring unreadable embedding cache {self.path} ({err})")
                return
            if meta and any(stored.get(k) != v for k, v in meta.items()):
                print(f"warning: {self.path} was written for {stored}, not {meta}; starting a new cache")
                return
            self.meta = {**stored, **self.meta}
            self.vectors = dict(zip(keys.tolist(), vecs))

    def __len__(self) -> int:
        return len(self.vectors)

    def get(self, key: str):
        return self.vectors.get(key)

    def put(self, keys, vectors) -> None:
        for k, v in zip(keys, np.asarray(vectors, dtype=np.float32)):
            self.vectors[k] = v

    def save(self) -> Path:
        keys = list(self.vectors)
        vecs = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys, dtype="U40"), vectors=vecs.astype(np.float32),
                 meta=np.array(json.dumps(self.meta)))
        return atomic_write_bytes(self.path, buf.getvalue())


def embed_with_cache(texts, embed_batch, path=None, batch_size: int = 32, meta: dict | None = None,
                     progress: bool = True, desc: str = "embedding", sort_key=len):
    """Embeddings of ``texts`` (rows in input order), computing only those not in the cache.

    ``embed_batch(list[str]) -> (n, dim) array`` is called on batches of the missing
    texts, sorted by ``sort_key`` so each batch holds texts of similar length (less
    padding). ``path=None`` disables the cache. Returns ``(vectors, info)`` where
    ``info`` counts cached/computed texts and gives the throughput of the computed ones.
    """
    texts = list(texts)
    keys = [text_key(t) for t in texts]
    cache = EmbeddingCache(path, meta) if path is not None else None
    todo = {}
    for k, t in zip(keys, texts):
        if (cache is None or cache.get(k) is None) and k not in todo:
            todo[k] = t
    order = sorted(todo, key=lambda k: sort_key(todo[k]))
    computed: dict[str, np.ndarray] = {}
    start = last_save = time.perf_counter()
    if order:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(order), desc=desc, unit="text")
        for i in range(0, len(order), batch_size):
            batch = order[i:i + batch_size]
            vecs = np.asarray(embed_batch([todo[k] for k in batch]), dtype=np.float32)
            if vecs.shape[0] != len(batch):
                raise ValueError(f"embed_batch returned {vecs.shape[0]} rows for {len(batch)} texts.")
            computed.update(zip(batch, vecs))
            if cache is not None:
                cache.put(batch, vecs)
                if time.perf_counter() - last_save > SAVE_EVERY_S:
                    cache.save()
                    last_save = time.perf_counter()
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        if cache is not None:
            cache.save()
    seconds = time.perf_counter() - start
    lookup = computed if cache is None else cache.vectors
    vectors = np.stack([lookup[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
    info = {"texts": len(texts), "computed": len(order), "cached": len(set(keys)) - len(order),
            "seconds": round(seconds, 2),
            "texts_per_s": round(len(order) / seconds, 1) if order and seconds > 0 else None,
            "path": str(path) if path is not None else None}
    return vectors, info
