"""TF Hub BERT on Keras 2 (tf_keras).

Keras 2 and Keras 3 must not mix in one process, and the rest of the test suite runs
Keras 3. So everything that imports TensorFlow runs in child processes: one with
``TF_USE_LEGACY_KERAS=1`` (as the notebook) that loads the TF Hub models, embeds,
trains, fine-tunes and saves; then a fresh one WITHOUT the variable that reloads the
saved model through ``utils.modelfiles.predictor.load_predictor``. This process only checks the
pure-Python parts (no TensorFlow import).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from utils.modelfiles import bert_tfhub as bh
from utils import config

SHARED_CACHE = Path(config.ROOT).parent / "shared" / "tfhub_cache"


def hub_cache() -> Path | None:
    """A TF Hub cache holding the preprocessing model and BERT-Tiny (folders named by SHA-1)."""
    for candidate in (os.environ.get("TFHUB_CACHE_DIR"), SHARED_CACHE):
        if candidate and all((Path(candidate) / hashlib.sha1(h.encode()).hexdigest()).is_dir()
                             for h in (bh.LEGACY_HANDLES[bh.PREPROCESS_HANDLE], bh.LEGACY_HANDLES[bh.FAST_ENCODER])):
            return Path(candidate)
    return None


# --------------------------------------------------------------------------- pure Python


def test_importing_the_module_does_not_import_tensorflow():
    """So a script can still set TF_USE_LEGACY_KERAS after ``import utils.modelfiles.bert_tfhub``."""
    code = "import sys; sys.path.insert(0, %r); import utils.modelfiles.bert_tfhub; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code % str(config.ROOT)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_encoder_table_and_handles():
    table = bh.encoder_table()
    assert list(table.index) == list(bh.ENCODERS)
    assert table.loc["BERT-Tiny", "compute per token (x Tiny)"] == 1
    assert table["params (M)"].is_monotonic_increasing
    # addressed by their Kaggle Models handles, each with its old tfhub.dev name for existing caches
    assert bh.FAST_ENCODER == "https://www.kaggle.com/models/tensorflow/bert/TensorFlow2/bert-en-uncased-l-2-h-128-a-2/2"
    assert bh.PREPROCESS_HANDLE.startswith("https://www.kaggle.com/models/tensorflow/bert/TensorFlow2/")
    assert bh.LEGACY_HANDLES[bh.FAST_ENCODER] == "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-2_H-128_A-2/2"
    assert bh.LEGACY_HANDLES[bh.PREPROCESS_HANDLE] == "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
    assert table.loc["BERT-Small", "handle"] == "bert-en-uncased-l-4-h-512-a-8/2"


def test_choose_encoder_and_finetune_lr_read_notebook_05as_table():
    from utils.lessons import small_berts as sb

    assert bh.ENCODERS is sb.ENCODERS and bh.finetune_lr is sb.finetune_lr   # written once, in 05a
    assert sb.choose_encoder(True, False, 50_000) == "BERT-Tiny"
    assert sb.choose_encoder(False, True, 50_000) == "BERT-Small"
    assert sb.choose_encoder(False, False, sb.CPU_SMALL_MAX_PLOTS) == "BERT-Small"
    assert sb.choose_encoder(False, False, sb.CPU_SMALL_MAX_PLOTS + 1) == "BERT-Mini"
    for handle, *_, lr in sb.ENCODERS.values():
        assert sb.finetune_lr(handle) == lr
        assert sb.finetune_lr(bh.LEGACY_HANDLES[handle]) == lr   # the offline cache's tfhub.dev names
    assert sb.finetune_lr("https://tfhub.dev/other/1") == 3e-5
    assert sb.finetune_lr("https://tfhub.dev/other/1", default=1e-5) == 1e-5
    assert sb.finetune_lr(bh.ENCODERS["BERT-Tiny"][0][:-1] + "1") == 3e-5   # another version: not in the table


def test_resolve_handle(monkeypatch, tmp_path):
    monkeypatch.delenv(bh.ENV_ENCODER, raising=False)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))          # an empty cache: the Kaggle handles
    assert bh.resolve_handle(fast=True) == bh.FAST_ENCODER
    assert bh.resolve_handle(fast=False) == bh.DEFAULT_ENCODER
    # without a GPU, a large corpus (CMU) gets BERT-Mini; Netflix's size, FAST and a GPU keep their encoders
    assert bh.resolve_handle(fast=False, gpu=False, n_plots=42_306) == bh.CPU_ENCODER == bh.ENCODERS["BERT-Mini"][0]
    assert bh.resolve_handle(fast=False, gpu=False, n_plots=8_807) == bh.DEFAULT_ENCODER
    assert bh.resolve_handle(fast=False, gpu=True, n_plots=42_306) == bh.DEFAULT_ENCODER
    assert bh.resolve_handle(fast=True, gpu=False, n_plots=42_306) == bh.FAST_ENCODER
    assert bh.resolve_preprocess_handle() == bh.PREPROCESS_HANDLE
    assert bh.resolve_handle("https://x/y", fast=True) == "https://x/y"
    monkeypatch.setenv(bh.ENV_ENCODER, "https://tfhub.dev/other/1")
    assert bh.resolve_handle(fast=True) == "https://tfhub.dev/other/1"


def test_offline_cache_made_with_tfhub_dev_handles_still_resolves(monkeypatch):
    """CI's ../shared/tfhub_cache holds its folders under the SHA-1 of the old tfhub.dev handles."""
    cache = hub_cache()
    if cache is None:
        pytest.skip("no offline TF Hub cache (set TFHUB_CACHE_DIR, or put ../shared beside the repository)")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.delenv(bh.ENV_ENCODER, raising=False)
    assert bh.resolve_handle(fast=True) == bh.LEGACY_HANDLES[bh.FAST_ENCODER]
    assert bh.resolve_preprocess_handle() == bh.LEGACY_HANDLES[bh.PREPROCESS_HANDLE]
    assert bh.finetune_lr(bh.resolve_handle(fast=True)) == bh.finetune_lr(bh.FAST_ENCODER) == 1e-4
    for handle in (bh.resolve_handle(fast=True), bh.resolve_preprocess_handle()):
        assert (cache / hashlib.sha1(handle.encode()).hexdigest() / "saved_model.pb").exists()


@pytest.mark.parametrize("error, says", [(OSError("HTTP Error 403: Forbidden"), "403"),
                                         (OSError("<urlopen error [Errno -3] Temporary failure in name resolution>"),
                                          "no network"),
                                         (ValueError("Trying to load a model of incompatible/unknown type"), "damaged")])
def test_load_failures_say_why_and_what_else_to_do(error, says):
    message = bh.load_failure_message(bh.FAST_ENCODER, bh.PREPROCESS_HANDLE, error)
    assert says in message and "05b" in message and bh.FAST_ENCODER in message


def test_choose_seq_len():
    assert bh.choose_seq_len([10] * 99 + [500]) == 16
    assert bh.choose_seq_len(range(1, 101), percentile=100) == 104
    assert bh.choose_seq_len([1000]) == bh.DEFAULTS["seq_len"]


def test_untrained_layer_norm_detection():
    def var(name, value):
        return SimpleNamespace(name=name, numpy=lambda: np.asarray(value, dtype=np.float32))

    fresh = [var("layer_norm/gamma:0", [1, 1]), var("layer_norm/beta:0", [0, 0]), var("dense/kernel:0", [0.3])]
    trained = [var("layer_norm/gamma:0", [0.9, 1.1]), var("layer_norm/beta:0", [0, 0.01])]
    assert bh.untrained_layer_norms(fresh)
    assert not bh.untrained_layer_norms(trained)
    assert not bh.untrained_layer_norms([var("dense/kernel:0", [1.0])])


# --------------------------------------------------------------------------- TensorFlow, in child processes

TRAIN_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"          # before TensorFlow is imported, as in notebook 05a
    sys.path.insert(0, os.environ["COURSE_ROOT"])
    from pathlib import Path
    import numpy as np
    from utils import config
    from utils.modelfiles import bert_tfhub as bh
    from utils.tools.keras_tools import epoch_timer
    out = Path(os.environ["OUT"])
    config.PROCESSED_DIR = out / "processed"
    report = {"setup": bh.keras_setup()}
    import tensorflow as tf
    import tf_keras
    from utils.lessons.bert_tfhub import MaskedMean, build_model, finetune
    from utils.lessons.heads import adamw, train_head, warmup_linear_decay
    tf.random.set_seed(0); np.random.seed(0)

    def bce(y_true, prob):
        prob = np.clip(prob, 1e-7, 1 - 1e-7)
        return float(-np.mean(y_true * np.log(prob) + (1 - y_true) * np.log(1 - prob)))

    schedule = warmup_linear_decay(tf_keras, 1e-3, 10, 2)
    report["schedule"] = [float(schedule(s)) for s in range(11)]
    seq = tf.constant(np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2))
    report["masked_mean"] = MaskedMean()(seq, tf.constant([[1, 1, 0], [0, 0, 0]])).numpy().tolist()
    gen = np.random.default_rng(1)   # the notebook's formula: sum of m_t h_t over sum of m_t
    seq_r = gen.normal(size=(4, 7, 5)).astype(np.float32)
    mask_r = (gen.random((4, 7)) < 0.6).astype(np.int32)
    mask_r[:, 0] = 1
    formula = (seq_r * mask_r[..., None]).sum(1) / mask_r.sum(1, keepdims=True)
    report["masked_mean_formula"] = float(np.abs(MaskedMean()(tf.constant(seq_r), tf.constant(mask_r)).numpy() - formula).max())
    genres = ["Horror", "Comedy", "Western"]
    words = {"Horror": "ghost haunted blood demon", "Comedy": "joke prank funny wedding",
             "Western": "cowboy sheriff saloon horse"}
    rng = np.random.default_rng(0)
    texts, y = [], []
    for i in range(48):
        g = genres[i % 3]
        texts.append(f"A story {i} about the " + " ".join(rng.permutation(words[g].split())) + ".")
        y.append([int(g == h) for h in genres])
    y = np.array(y, dtype=np.float32)
    enc = bh.load_encoder(bh.cached_handle(bh.FAST_ENCODER), seq_len=32)
    report["random_reasons"] = enc.random_reasons
    packed = enc.pack(["a short plot", " ".join(["word"] * 100)])
    report["pack_shape"] = list(packed["input_word_ids"].shape)
    report["mask_sums"] = packed["input_mask"].numpy().sum(1).tolist()
    report["token_counts"] = enc.token_counts(["a short plot", " ".join(["word"] * 100)]).tolist()
    outs = enc.encode(["a short plot"])
    report["pooled_shape"] = list(outs["pooled_output"].shape)
    report["sequence_shape"] = list(outs["sequence_output"].shape)
    v1, info1 = enc.embed_cached(texts, dataset="netflix", progress=False)
    v2, info2 = enc.embed_cached(texts, dataset="netflix", progress=False)
    report["embed_shape"] = list(v1.shape)
    report["cache"] = [info1["computed"], info2["computed"], float(np.abs(v1 - v2).max())]
    alone = enc.embed(texts[:1])
    report["padding_free"] = float(np.abs(alone[0] - v1[0]).max())
    head, hist = train_head(tf_keras, v1, y, v1, y, hidden=32, epochs=40, patience=40)
    report["head_loss"] = [hist["loss"][0], hist["loss"][-1]]
    frozen = build_model(enc.preprocessor, enc.handle, 3, enc.seq_len, trainable=False, pooling="mean", head=head)
    report["frozen_vs_head"] = float(np.abs(bh.predict_proba(frozen, texts) - head.predict(v1, verbose=0)).max())
    model = build_model(enc.preprocessor, enc.handle, 3, 24, trainable=True)
    report["trainable"] = [len(frozen.trainable_weights) - len(head.trainable_weights), len(model.trainable_weights)]
    before = bce(y, bh.predict_proba(model, texts))
    timer = epoch_timer(tf_keras)
    ft = finetune(model, adamw(tf_keras, 3 * 6, lr=5e-4), texts, y, texts[:12], y[:12], epochs=3, batch_size=8,
                  patience=3, callbacks=[timer], verbose=0)
    report["ft_loss"] = [before, bce(y, bh.predict_proba(model, texts))]
    report["ft_epochs"] = [len(ft["loss"]), len(ft["val_loss"]), len(timer.seconds)]
    thresholds = {"global": 0.5, "per_genre": dict.fromkeys(genres, 0.5), "default": "global"}
    folder = out / "model"
    bh.save_model(model, enc, folder, genres, thresholds, "netflix", seq_len=24)
    np.save(out / "expected.npy", bh.predict_proba(model, texts[:6]))
    (out / "texts.json").write_text(json.dumps(texts[:6]))
    print("REPORT " + json.dumps(report))
""")

RELOAD_SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, os.environ["COURSE_ROOT"])
    from pathlib import Path
    import numpy as np
    import keras                                      # a Keras 3 process: no TF_USE_LEGACY_KERAS
    from utils.modelfiles.predictor import load_predictor
    out = Path(os.environ["OUT"])
    p = load_predictor(out / "model")
    got = p.predict_proba(json.loads((out / "texts.json").read_text()))
    print("REPORT " + json.dumps({"diff": float(np.abs(got - np.load(out / "expected.npy")).max()),
                                  "random": p.random_weights, "keras": keras.__version__}))
""")


def run_child(script: str, out: Path, env_extra: dict, drop=()) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(COURSE_ROOT=str(config.ROOT), OUT=str(out), TF_CPP_MIN_LOG_LEVEL="2", **env_extra)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len("REPORT "):])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cache = hub_cache()
    if cache is None:
        pytest.skip("no TF Hub cache with the BERT preprocessing model and BERT-Tiny "
                    "(set TFHUB_CACHE_DIR, or put ../shared beside the repository)")
    out = tmp_path_factory.mktemp("tfhub")
    report = run_child(TRAIN_SCRIPT, out, {"TFHUB_CACHE_DIR": str(cache)}, drop=("TF_USE_LEGACY_KERAS",))
    return SimpleNamespace(out=out, cache=cache, report=report)


def test_keras2_setup(trained):
    setup = trained.report["setup"]
    assert setup["tf.keras is Keras 2"] and setup["TF_USE_LEGACY_KERAS"]


def test_random_encoder_is_detected(trained):
    marker = (trained.cache / hashlib.sha1(bh.cached_handle(bh.FAST_ENCODER).encode()).hexdigest() / bh.RANDOM_MARKER).exists()
    reasons = " | ".join(trained.report["random_reasons"])
    if marker:
        assert bh.RANDOM_MARKER in reasons and "LayerNorm" in reasons
    else:
        assert "LayerNorm" not in reasons, "a pretrained encoder has trained LayerNorms"


def test_preprocessing_and_encoder_shapes(trained):
    r = trained.report
    assert r["pack_shape"] == [2, 32]
    assert r["mask_sums"] == [5, 32], "[CLS] a short plot [SEP]; the long plot is cut to seq_len"
    assert r["token_counts"] == [3, 100]
    assert r["pooled_shape"] == [1, 128] and r["sequence_shape"] == [1, 32, 128]
    assert r["embed_shape"] == [48, 128]


def test_embedding_cache_and_padding(trained):
    computed_first, computed_again, diff = trained.report["cache"]
    assert computed_first == 48 and computed_again == 0 and diff == 0
    assert trained.report["padding_free"] < 1e-4
    assert trained.report["frozen_vs_head"] < 1e-4


def test_warmup_then_linear_decay_schedule(trained):
    lr = trained.report["schedule"]   # peak 1e-3, 10 steps, 2 of warm-up
    np.testing.assert_allclose(lr[:3], [0.5e-3, 1e-3, 1e-3], rtol=1e-6)
    np.testing.assert_allclose(lr[2:], [1e-3 * (10 - s) / 8 for s in range(2, 11)], rtol=1e-5, atol=1e-12)
    assert lr[-1] == 0


def test_masked_mean_ignores_padding(trained):
    # [[0,1],[2,3],[4,5]] with mask 1,1,0 -> mean of the first two rows; an all-padding row gives 0
    assert trained.report["masked_mean"] == [[1.0, 2.0], [0.0, 0.0]]
    assert trained.report["masked_mean_formula"] < 1e-5   # random vectors and masks: the formula of section 5


def test_frozen_model_trains_nothing_but_its_head(trained):
    frozen_encoder, finetuned = trained.report["trainable"]
    assert frozen_encoder == 0 and finetuned > 10


def test_training_lowers_the_loss(trained):
    first, last = trained.report["head_loss"]
    assert last < first
    before, after = trained.report["ft_loss"]
    assert after < before
    assert trained.report["ft_epochs"] == [3, 3, 3]


def test_saved_model_reloads_in_a_fresh_keras3_process(trained):
    r = run_child(RELOAD_SCRIPT, trained.out, {}, drop=("TF_USE_LEGACY_KERAS", "TFHUB_CACHE_DIR"))
    assert r["diff"] < 1e-5
    assert r["keras"].startswith("3.")
    manifest = json.loads((trained.out / "model" / "predictor.json").read_text())
    assert manifest["kind"] == bh.KIND and manifest["random_weights"] == bool(trained.report["random_reasons"])
    assert manifest["seq_len"] == 24
    assert r["random"] == manifest["random_weights"]
