"""The BiLSTM + word2vec model: losses, vocabulary, embedding matrix, model, save and reload.

The model code is notebook 04b's (``utils.lessons.bilstm``) and 04a's (``utils.lessons.word2vec``);
the plumbing (``fit``, saving, the predictor) is ``utils.modelfiles.bilstm``; the word vectors
04a hands to 04b go through ``utils.data.word_vectors``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("gensim")

from utils.data import word_vectors  # noqa: E402
from utils.lessons import bilstm  # noqa: E402
from utils.lessons.word2vec import train_word2vec  # noqa: E402
from utils.modelfiles import bilstm as model_files, predictor  # noqa: E402
from utils.modelfiles.predictor import ModelFormatError  # noqa: E402

GENRES = ["Horror", "Comedy", "Western"]
SIGNAL = {0: ["ghost", "haunted", "blood", "scream"], 1: ["joke", "funny", "prank", "laugh"],
          2: ["sheriff", "cowboy", "saloon", "outlaw"]}
NOISE = ["city", "family", "friend", "night", "journey", "secret", "house", "town", "the", "a"]


def synthetic(n: int, seed: int):
    """Raw plots (mixed case, punctuation) whose genre words give their labels away."""
    rng = np.random.default_rng(seed)
    texts, y = [], np.zeros((n, len(GENRES)), dtype=np.int8)
    for i in range(n):
        labels = rng.choice(len(GENRES), size=rng.integers(1, 3), replace=False)
        y[i, labels] = 1
        words = [w for j in labels for w in rng.choice(SIGNAL[j], size=3)]
        words += list(rng.choice(NOISE, size=int(rng.integers(4, 12))))
        rng.shuffle(words)
        texts.append(("The " + " ".join(words) + "!").replace("ghost", "Ghost,"))
    return texts, y


def keyed_vectors(words_vectors: dict):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=len(next(iter(words_vectors.values()))))
    kv.add_vectors(list(words_vectors), np.array(list(words_vectors.values()), dtype=np.float32))
    return kv


# --------------------------------------------------------------------------- losses


def _np_soft_f1_loss(y, p):
    tp = (y * p).sum(0)
    fp = ((1 - y) * p).sum(0)
    fn = (y * (1 - p)).sum(0)
    return 1 - np.mean(2 * tp / (2 * tp + fp + fn + 1e-7))


def loss_value(fn, y, p) -> float:
    return float(keras.ops.convert_to_numpy(fn(np.asarray(y, np.float32), np.asarray(p, np.float32))))


def test_soft_f1_loss_known_values():
    y = [[1, 0], [0, 1]]
    assert loss_value(bilstm.soft_f1_loss, y, [[1, 0], [0, 1]]) == pytest.approx(0.0, abs=1e-6)
    assert loss_value(bilstm.soft_f1_loss, y, [[0, 0], [0, 0]]) == pytest.approx(1.0, abs=1e-6)
    # every probability 0.5: per genre TP = FP = FN = 0.5, F1 = 1 / 2
    assert loss_value(bilstm.soft_f1_loss, y, [[0.5, 0.5], [0.5, 0.5]]) == pytest.approx(0.5, abs=1e-6)
    # genre 0: TP 1.4, FP 0, FN 0.6 -> F1 2.8/3.4; genre 1 has no positive: F1 0
    y2, p2 = [[1, 0], [1, 0]], [[0.8, 0.2], [0.6, 0.0]]
    assert loss_value(bilstm.soft_f1_loss, y2, p2) == pytest.approx(1 - (2.8 / 3.4) / 2, abs=1e-6)
    rng = np.random.default_rng(0)
    y3, p3 = rng.integers(0, 2, (16, 5)), rng.random((16, 5))
    assert loss_value(bilstm.soft_f1_loss, y3, p3) == pytest.approx(_np_soft_f1_loss(y3, p3), abs=1e-5)


def test_soft_f1_loss_has_useful_gradient():
    import tensorflow as tf

    y = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    p = tf.Variable([[0.4, 0.6], [0.3, 0.7]])
    with tf.GradientTape() as tape:
        loss = bilstm.soft_f1_loss(y, p)
    grad = tape.gradient(loss, p).numpy()
    # raising a true positive's probability lowers the loss; raising a false one raises it
    assert grad[0, 0] < 0 and grad[1, 1] < 0 and grad[0, 1] > 0 and grad[1, 0] > 0


def test_weighted_bce_matches_bce_and_weights_positives():
    y = np.array([[1, 0, 1], [0, 1, 0]], np.float32)
    p = np.array([[0.7, 0.2, 0.4], [0.1, 0.9, 0.3]], np.float32)
    plain = float(keras.ops.convert_to_numpy(keras.losses.BinaryCrossentropy()(y, p)))
    assert loss_value(bilstm.WeightedBCE([1, 1, 1]), y, p) == pytest.approx(plain, rel=1e-4)
    w = np.array([3.0, 1.0, 2.0])
    expected = np.mean(-(w * y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert loss_value(bilstm.WeightedBCE(w), y, p) == pytest.approx(expected, rel=1e-5)
    loss = bilstm.WeightedBCE(w)
    assert bilstm.WeightedBCE.from_config(loss.get_config()).pos_weight == [3.0, 1.0, 2.0]


def test_positive_weights():
    y = np.array([[1, 0, 0]] * 1 + [[0, 1, 0]] * 4 + [[0, 1, 1]] * 95)
    w = bilstm.positive_weights(y, cap=10)
    # genre 0: 99 negatives / 1 positive -> capped at 10; frequent genres are floored at 1
    assert w.tolist() == pytest.approx([10.0, 1.0, 1.0])
    assert bilstm.positive_weights(y, cap=200)[0] == pytest.approx(99.0)


def test_log_odds_sets_output_bias_to_genre_priors():
    y = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 1, 1]])
    expected = [np.log(0.25 / 0.75), np.log(0.25 / 0.75), np.log(0.999 / 0.001)]  # 1.0 is clipped
    assert bilstm.log_odds(y).tolist() == pytest.approx(expected, rel=1e-5)
    matrix = np.zeros((5, 4), np.float32)
    model = bilstm.build_model(matrix, 3, 6, lstm_units=2, output_bias=bilstm.log_odds(y))
    np.testing.assert_allclose(model.get_layer("genres").get_weights()[1], bilstm.log_odds(y), rtol=1e-6)
    plain = bilstm.build_model(matrix, 3, 6, lstm_units=2)
    assert not plain.get_layer("genres").get_weights()[1].any()


def test_make_loss_rejects_unknown():
    with pytest.raises(ValueError, match="loss must be"):
        bilstm.make_loss("hinge")
    with pytest.raises(ValueError, match="needs y_train"):
        bilstm.make_loss("weighted_bce")


# --------------------------------------------------------------------------- vocabulary, sequences, embeddings


def test_build_vocabulary_min_count_order_and_cap():
    tokens = [["b", "a", "c"], ["a", "b", "d"], ["a", "e"]]
    assert bilstm.build_vocabulary(tokens, min_count=2, max_tokens=None) == ["", "[UNK]", "a", "b"]
    assert bilstm.build_vocabulary(tokens, min_count=1, max_tokens=5) == ["", "[UNK]", "a", "b", "c"]
    with pytest.raises(ValueError, match="min_count"):
        bilstm.build_vocabulary(tokens, min_count=10)


def test_sequence_length_and_what_it_cuts():
    tokens = [["w"] * n for n in range(1, 101)]          # lengths 1..100
    assert bilstm.choose_sequence_length(tokens, percentile=90, max_length=None) == 91
    assert bilstm.choose_sequence_length(tokens, percentile=90, max_length=50) == 50
    stats = bilstm.length_stats(tokens, 90)
    assert stats["plots_cut"] == pytest.approx(0.10)
    assert stats["tokens_dropped"] == pytest.approx(sum(range(1, 11)) / sum(range(1, 101)))


def test_vectorizer_pads_right_truncates_and_marks_unknown():
    vec = bilstm.make_vectorizer(["", "[UNK]", "ghost", "town"], sequence_length=4)
    x = bilstm.vectorize(vec, ["ghost town", "town zombie ghost town ghost", "Ghost"])
    assert x.dtype == np.int32 and x.shape == (3, 4)
    assert x.tolist() == [[2, 3, 0, 0], [3, 1, 2, 3], [1, 0, 0, 0]]  # no lowercasing inside: cleaned in Python
    assert bilstm.unknown_rate(x) == pytest.approx(2 / 7)
    with pytest.raises(ValueError, match="must start with"):
        bilstm.make_vectorizer(["ghost", "town"], 4)


def test_embedding_matrix_copies_vectors_and_handles_oov():
    kv = keyed_vectors({"ghost": [1.0, 2.0, 3.0], "town": [-1.0, 0.5, 0.0]})
    vocab = ["", "[UNK]", "ghost", "zombie", "town", "saloon"]
    matrix, info = bilstm.embedding_matrix(vocab, kv, oov="random", seed=0)
    assert matrix.shape == (6, 3) and matrix.dtype == np.float32
    assert not matrix[0].any() and not matrix[1].any()            # padding and [UNK] are zeros
    np.testing.assert_array_equal(matrix[2], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(matrix[4], [-1.0, 0.5, 0.0])
    assert matrix[3].any() and matrix[5].any()                    # OOV: random, not zero
    assert info["found"] == 2 and info["oov"] == 2 and info["oov_words"] == ["zombie", "saloon"]
    assert info["oov_share"] == pytest.approx(0.5)
    again, _ = bilstm.embedding_matrix(vocab, kv, oov="random", seed=0)
    np.testing.assert_array_equal(matrix, again)
    zeros, _ = bilstm.embedding_matrix(vocab, kv, oov="zeros")
    assert not zeros[3].any() and not zeros[5].any()
    with pytest.raises(ValueError, match="oov must be"):
        bilstm.embedding_matrix(vocab, kv, oov="mean")


def test_word2vec_is_reproducible_with_one_worker_and_rejects_unknown_settings():
    texts, _ = synthetic(80, seed=1)
    tokens = [t.split() for t in model_files.prepare_texts(texts)]
    wv1 = train_word2vec(tokens, seed=7, workers=1, vector_size=16, epochs=3)
    wv2 = train_word2vec(tokens, seed=7, workers=1, vector_size=16, epochs=3)
    assert wv1.vector_size == 16 and "ghost" in wv1
    np.testing.assert_allclose(wv1["ghost"], wv2["ghost"])
    with pytest.raises(ValueError, match="Unknown word2vec settings"):
        train_word2vec(tokens, size=16)
    with pytest.raises(ValueError, match="non-empty"):
        train_word2vec([[], []])


def test_word2vec_epochs_follow_the_token_budget():
    from utils.lessons.word2vec import W2V_SETTINGS, word2vec_epochs

    assert word2vec_epochs(150_000) == 30                       # Netflix: every pass
    assert word2vec_epochs(8_200_000) == 5                      # CMU: the floor of 5 passes
    assert word2vec_epochs(2_000_000) == 10                     # 20 M tokens read in all
    assert word2vec_epochs(2_000_000, epochs=3) == 3            # never more than asked
    assert word2vec_epochs(0) == 30
    assert W2V_SETTINGS["epochs"] == 30 and W2V_SETTINGS["token_budget"] == 20_000_000


def test_bucketed_batches_hold_every_plot_once_cut_to_their_longest():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 500)
    x = np.zeros((500, 60), dtype=np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(2, 99, n)
    x[:, 0] = np.arange(500) + 2                      # first token = a row id, to find each plot again
    y = rng.random((500, 3)) < 0.3
    ds = bilstm.make_dataset(x, y, batch_size=32, seed=1)
    seen, positions = [], 0
    for ids, labels in ds:
        ids = ids.numpy()
        real = (ids != 0).sum(axis=1)
        assert ids.shape[1] == real.max()             # cut to the longest plot of the batch
        assert real.max() - real.min() < 30           # similar lengths share a batch
        rows = ids[:, 0] - 2
        np.testing.assert_array_equal(labels.numpy(), y[rows].astype(np.float32))
        np.testing.assert_array_equal(ids, x[rows, : ids.shape[1]])
        seen.extend(rows.tolist())
        positions += ids.size
    assert sorted(seen) == list(range(500))            # every plot exactly once per epoch
    assert len(ds) == len(list(ds))                    # the cardinality Keras is told is right
    assert positions < 0.7 * x.size                    # far less padding than fixed-length batches
    plain = bilstm.make_dataset(x, y, batch_size=32, bucket=False)
    assert {b.shape[1] for b, _ in plain} == {60}


def test_training_rows_budget():
    np.testing.assert_array_equal(bilstm.training_rows(50, None), np.arange(50))
    np.testing.assert_array_equal(bilstm.training_rows(50, 80), np.arange(50))
    rows = bilstm.training_rows(1000, 100, seed=3)
    assert len(rows) == 100 == len(set(rows)) and (np.diff(rows) > 0).all() and rows.max() < 1000
    np.testing.assert_array_equal(rows, bilstm.training_rows(1000, 100, seed=3))
    assert not np.array_equal(rows, bilstm.training_rows(1000, 100, seed=4))


# --------------------------------------------------------------------------- word vectors on disk (04a -> 04b)


def test_word_vectors_path_depends_on_texts_and_settings(course_dirs):
    settings = {"vector_size": 100, "window": 5, "seed": 42}
    path = word_vectors.vectors_path(["a b", "c d"], settings, "netflix")
    assert path.parent == course_dirs.processed / "netflix" / "word2vec" and path.suffix == ".npz"
    assert path == word_vectors.vectors_path(["a b", "c d"], dict(reversed(settings.items())), "netflix")
    assert path != word_vectors.vectors_path(["a b", "c e"], settings, "netflix")          # another plot
    assert path != word_vectors.vectors_path(["a b"], settings, "netflix")                 # a subset
    assert path != word_vectors.vectors_path(["a b", "c d"], {**settings, "seed": 1}, "netflix")
    assert path != word_vectors.vectors_path(["a b", "c d"], settings, "cmu")
    with pytest.raises(ValueError, match="file name"):
        word_vectors.settings_name({"window": "../x"})


def test_word_vectors_round_trip_as_plain_arrays(tmp_path):
    texts, _ = synthetic(60, seed=2)
    wv = train_word2vec([t.split() for t in model_files.prepare_texts(texts)], seed=1, vector_size=8, epochs=2)
    path = word_vectors.save_vectors(tmp_path / "w2v" / "v.npz", wv, meta={"dataset": "toy"})
    assert not list(path.parent.glob("*.tmp"))
    with np.load(path, allow_pickle=False) as z:                     # plain arrays: no pickle needed
        assert z["vectors"].dtype == np.float32 and z["vectors"].shape == (len(wv), 8)
    words, vectors, meta = word_vectors.read_arrays(path)
    assert words == list(wv.index_to_key) and meta["dataset"] == "toy" and meta["dimensions"] == 8
    back = word_vectors.load_vectors(path)
    assert back.index_to_key == wv.index_to_key and back.vector_size == 8
    np.testing.assert_array_equal(back["ghost"], wv["ghost"])
    matrix, _ = bilstm.embedding_matrix(["", "[UNK]", "ghost", "zzz"], back, seed=0)
    np.testing.assert_array_equal(matrix[2], wv["ghost"])


def test_load_word_vectors_missing_or_unreadable(tmp_path, capsys):
    assert word_vectors.load_vectors(tmp_path / "nothing.npz") is None
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    assert word_vectors.load_vectors(bad) is None
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, words=np.array([{"a": 1}], dtype=object), vectors=np.zeros((1, 2), np.float32))
    assert word_vectors.load_vectors(pickled) is None                # object arrays are refused
    assert "ignoring unreadable word vectors" in capsys.readouterr().out


# --------------------------------------------------------------------------- model, training, saving


@pytest.fixture(scope="module")
def trained():
    texts, y = synthetic(120, seed=0)
    val_texts, y_val = synthetic(40, seed=1)
    cleaned, val_cleaned = model_files.prepare_texts(texts), model_files.prepare_texts(val_texts)
    result = model_files.fit(cleaned, y, val_cleaned, y_val, seed=3, trainable=False,
                             w2v={"vector_size": 16, "epochs": 5}, lstm_units=8, epochs=3, patience=2, batch_size=32)
    return result, val_texts, val_cleaned, y_val


def test_model_shape_frozen_embedding_and_history(trained):
    result, _, val_cleaned, _ = trained
    model = result.model
    assert model.output_shape == (None, len(GENRES))
    assert not model.get_layer("word2vec").trainable
    prob = result.predict_proba(val_cleaned)
    assert prob.shape == (40, 3) and prob.dtype == np.float32
    assert ((prob >= 0) & (prob <= 1)).all()
    history = result.history
    assert {"loss", "val_loss", "micro_f1", "val_micro_f1", "seconds"} <= set(history)
    assert len(history["seconds"]) == len(history["loss"]) <= 3
    summary = bilstm.summarize(history)
    assert summary["epochs"] == len(history["loss"])
    assert summary["best_epoch"] == int(np.argmin(history["val_loss"])) + 1
    assert summary["train_seconds"] == pytest.approx(sum(history["seconds"]))
    # the embedding starts from word2vec and, frozen, stays there
    matrix, _ = bilstm.embedding_matrix(result.vocabulary, result.wv, seed=3)
    np.testing.assert_allclose(model.get_layer("word2vec").get_weights()[0], matrix, atol=1e-6)


def test_fine_tuned_embedding_is_trainable_and_soft_f1_compiles():
    matrix = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    model = bilstm.build_model(matrix, n_genres=3, sequence_length=6, trainable=True, lstm_units=4)
    bilstm.compile_model(model, bilstm.make_loss("soft_f1"))
    assert model.get_layer("word2vec").trainable and model.loss is bilstm.soft_f1_loss
    assert model.predict(np.ones((2, 6), np.int32), verbose=0).shape == (2, 3)
    history = bilstm.train(model, np.ones((4, 6), np.int32), np.eye(3)[[0, 1, 2, 0]], np.ones((2, 6), np.int32),
                           np.eye(3)[[0, 1]], epochs=1, batch_size=2)
    assert np.isfinite(history["loss"]).all()
    model = bilstm.build_model(matrix, 3, 6, lstm_units=4)
    bilstm.compile_model(model, bilstm.make_loss("weighted_bce", np.eye(3)))
    assert isinstance(model.loss, bilstm.WeightedBCE)


def test_lstm_meets_the_cudnn_conditions_and_sequences_are_right_padded():
    """Notebook 04b, section 11: what Keras needs to run the LSTM with the fused cuDNN kernel on a GPU."""
    matrix = np.zeros((6, 4), np.float32)
    model = bilstm.build_model(matrix, 3, 5, lstm_units=4)
    for lstm in (model.get_layer("bilstm").forward_layer, model.get_layer("bilstm").backward_layer):
        cfg = lstm.get_config()
        assert cfg["activation"] == "tanh" and cfg["recurrent_activation"] == "sigmoid"
        assert cfg["recurrent_dropout"] == 0 and cfg["unroll"] is False and cfg["use_bias"] is True
    assert model.get_layer("word2vec").get_config()["mask_zero"] is True
    vec = bilstm.make_vectorizer(["", "[UNK]", "a", "b", "c"], 5)
    x = bilstm.vectorize(vec, ["a b", "c c c c c c c", "zzz a", "b"])
    real = x != 0
    assert (real[:, 1:] <= real[:, :-1]).all()          # padding only after the real tokens


def test_prepare_texts_is_light_text():
    """The predictor's cleaning is the corpus' light_text (the guard test checks the real corpus)."""
    from utils.data.text import light_text

    texts, _ = synthetic(20, seed=4)
    assert model_files.prepare_texts(texts) == [light_text(t) for t in texts]
    assert model_files.prepare_texts(texts[0]) == [light_text(texts[0])]


def test_save_then_load_predictor_gives_same_predictions(trained, tmp_path):
    result, val_texts, val_cleaned, _ = trained
    folder = tmp_path / "bilstm_w2v"
    thresholds = {"global": 0.4, "per_genre": {g: 0.4 for g in GENRES}, "default": "global"}
    model_files.save_model(folder, result.model, result.vocabulary, result.sequence_length, GENRES,
                      thresholds, "toy")
    assert sorted(p.name for p in folder.iterdir()) == ["model.keras", "predictor.json", "vocabulary.txt"]
    manifest = json.loads((folder / "predictor.json").read_text())
    assert manifest["kind"] == "bilstm" and manifest["sequence_length"] == result.sequence_length
    assert model_files.read_vocabulary(folder / "vocabulary.txt") == result.vocabulary

    loaded = predictor.load_predictor(folder)      # through the course-wide contract
    assert isinstance(loaded, model_files.BiLSTMPredictor) and loaded.genres == GENRES
    expected = result.predict_proba(val_cleaned)
    np.testing.assert_allclose(loaded.predict_proba(val_texts), expected, atol=1e-5)  # raw text in
    np.testing.assert_allclose(loaded.predict_proba(val_texts[0]), expected[:1], atol=1e-5)
    assert loaded.known_words("The GHOST and the zzzunknown!") == (3, 5)  # "and" never seen
    assert loaded.threshold_vector().tolist() == [0.4] * 3


def test_load_predictor_errors(trained, tmp_path):
    result = trained[0]
    folder = tmp_path / "m"
    thresholds = {"global": 0.5, "per_genre": {g: 0.5 for g in GENRES}, "default": "global"}
    with pytest.raises(ValueError, match="genres"):
        model_files.save_model(folder, result.model, result.vocabulary, result.sequence_length,
                          GENRES[:2], thresholds, "toy")
    model_files.save_model(folder, result.model, result.vocabulary, result.sequence_length, GENRES,
                      thresholds, "toy")
    (folder / "vocabulary.txt").write_text("ghost\ntown\n")
    with pytest.raises(ModelFormatError, match="vocabulary"):
        model_files.load_predictor(folder)
    (folder / "model.keras").unlink()
    with pytest.raises(ModelFormatError, match="missing"):
        model_files.load_predictor(folder)
    with pytest.raises(ModelFormatError, match="does not exist"):
        model_files.load_predictor(tmp_path / "nowhere")


def test_fit_rejects_unknown_settings():
    with pytest.raises(ValueError, match="Unknown settings"):
        model_files.fit(["a b"], np.ones((1, 1)), ["a b"], np.ones((1, 1)), lstm_size=3)
