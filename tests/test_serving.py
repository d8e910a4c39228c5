"""Serving (utils.serving): export folders, the API and its errors, micro-batching, the page in a
real headless browser, the load test, and the Dockerfile's command line.

Tiny models of every family are trained or built here (seconds); the API runs in FastAPI's
test client, and the browser and Docker tests start a real uvicorn on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="fastapi is not installed: python -m pip install -r requirements.txt")
from fastapi.testclient import TestClient  # noqa: E402

from utils import config  # noqa: E402
from utils.modelfiles.predictor import ModelFormatError, load_predictor  # noqa: E402
from utils.serving import export as ex  # noqa: E402
from utils.serving import loadtest as lt  # noqa: E402
from utils.serving.app import LIMITS, create_app  # noqa: E402
from utils.serving.batching import MicroBatcher  # noqa: E402
from utils.serving.browser import FLAGS, find_browser, screenshot  # noqa: E402

from support import GENRES, THRESHOLDS, TRAIN, Y  # noqa: E402  (the toy corpus, tests/support.py)
# raw plots as users paste them: markup, entities, accents, non-Latin scripts, odd spaces
RAW = ["<p>An <b>alien</b> space&nbsp;ship lands &amp; a robot falls in love.</p>",
       "Amélie, a naïve café waitress in Zürich, plans a wedding: crème brûlée & kisses!",
       "Ein Geist spukt im Haus. 東京の幽霊屋敷で恐ろしい夜。 Призрак в доме.",
       "A {{cite web}} [[Ghost|ghost]] story https://example.com with\u00a0no-break\u2009spaces",
       "ALIENS!!! SPACE!!! 123 456",
       "Un fantôme hante la maison de l'astronaute — a ghost in space."]
SECRET = "Zyxwvut-secret-plot-words"


# --------------------------------------------------------------------------- tiny models of each family


def _tfidf_folder(root: Path) -> Path:
    from utils.data.text import clean_text
    from utils.lessons.tfidf import fit
    from utils.modelfiles import tfidf

    pipe = fit([clean_text(t) for t in TRAIN], Y, min_df=1, max_df=1.0, ngram_range=(1, 1))
    return tfidf.save_model(pipe, root / "models" / "toy" / "tfidf_logreg", GENRES, THRESHOLDS, "toy")


def _bilstm_folder(root: Path) -> Path:
    from utils.modelfiles import bilstm

    texts = bilstm.prepare_texts(TRAIN)
    trained = bilstm.fit(texts, Y, texts, Y, seed=1, w2v={"vector_size": 8, "epochs": 2, "min_count": 1},
                         lstm_units=4, epochs=1, batch_size=16, vocab_min_count=1)
    return bilstm.save_model(root / "models" / "toy" / "bilstm_w2v", trained.model, trained.vocabulary,
                             trained.sequence_length, GENRES, THRESHOLDS, "toy")


def _minilm_folder(root: Path) -> Path:
    """A 1-layer, 16-wide BERT with a toy WordPiece vocabulary and random weights: the real code path, small."""
    import keras
    import keras_hub

    from utils.lessons.heads import build_head
    from utils.lessons.minilm import build_classifier
    from utils.modelfiles import minilm

    words = sorted({w.strip(".,!").lower() for t in TRAIN for w in t.split()} | {"ghost", "space", "love", "a"})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
             *list("abcdefghijklmnopqrstuvwxyz.,!&;:'-")]
    vocab = list(dict.fromkeys(vocab))
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=64)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=False, strip_accents=False)
    encoder = minilm.Encoder(backbone, tokenizer, "tiny-test-bert", 32, True)
    model = build_classifier(backbone, build_head(keras, 16, len(GENRES), 8, 0.1))
    return minilm.save_model(model, encoder, root / "models" / "toy" / minilm.FROZEN_NAME, GENRES, THRESHOLDS, "toy")


BUILDERS = {"tfidf": _tfidf_folder, "bilstm": _bilstm_folder, "minilm": _minilm_folder}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """name -> (model folder, export folder) for the three families, built once."""
    root = tmp_path_factory.mktemp("serving")
    out = {}
    for name, build in BUILDERS.items():
        try:
            folder = build(root)
        except ImportError as err:
            pytest.skip(f"{name}: {err}")
        out[name] = (folder, ex.export_model(folder, root / "exports" / name))
    return out


@pytest.fixture(scope="module")
def served(folders):
    return ex.load_export(folders["tfidf"][1])


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served)) as c:
        yield c


# --------------------------------------------------------------------------- export


def test_export_holds_the_model_files_and_a_card(folders):
    folder, dest = folders["bilstm"]
    names = {p.name for p in dest.iterdir()}
    assert names == {"predictor.json", "model.keras", "vocabulary.txt", ex.CARD}
    card = json.loads((dest / ex.CARD).read_text())
    assert card["genres"] == GENRES and card["thresholds"] == THRESHOLDS and card["dataset"] == "toy"
    assert card["kind"] == "bilstm" and card["version"].startswith("bilstm_w2v-") and card["text_cleaning"]
    assert not [p for p in dest.rglob("*") if p.suffix in {".py", ".pkl", ".pickle", ".joblib"}], "no code, no pickles"
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")], "no temporary folders left"


def test_card_carries_test_scores_and_split_from_the_results(course_dirs, nltk_data):
    from utils.evaluation.results import save_results

    folder = _tfidf_folder(course_dirs.root)
    prob = np.clip(Y[:8] * 0.8 + 0.1, 0, 1)
    save_results("tfidf_logreg", GENRES, np.arange(8), Y[:8], prob, np.arange(8), Y[:8], prob,
                 thresholds=THRESHOLDS, dataset="toy")
    card = ex.export_model(folder, course_dirs.root / "export") / ex.CARD
    card = json.loads(card.read_text())
    assert card["test_scores"]["global"]["micro_f1"] == pytest.approx(1.0)
    assert card["split"]["n_test"] == 8 and card["split"]["seed"] == config.seed()


@pytest.mark.parametrize("family", list(BUILDERS))
def test_served_prediction_equals_the_notebook_predictor_on_raw_text(folders, family):
    """Through the HTTP API, from the export folder, to 1e-5: markup, accents and non-Latin scripts included."""
    folder, dest = folders[family]
    expected = load_predictor(folder).predict_proba(RAW)          # what the notebooks' predictor says
    with TestClient(create_app(ex.load_export(dest))) as c:
        batch = c.post("/predict", json={"texts": RAW})
        single = [c.post("/predict", json={"text": t}) for t in RAW]
    assert batch.status_code == 200, batch.text
    got = np.array([[r["probabilities"][g] for g in GENRES] for r in batch.json()["results"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    got1 = np.array([[r.json()["probabilities"][g] for g in GENRES] for r in single])
    np.testing.assert_allclose(got1, expected, atol=1e-5)


def test_export_refuses_pickles_and_edited_cards(folders, tmp_path):
    _, dest = folders["tfidf"]
    copy = shutil.copytree(dest, tmp_path / "copy")
    (copy / "weights.npz").unlink()
    (copy / "pipeline.joblib").write_bytes(b"\x80\x04not loaded")
    with pytest.raises(ModelFormatError, match="weights.npz. named in predictor.json is missing"):
        ex.load_export(copy)
    copy2 = shutil.copytree(dest, tmp_path / "copy2")
    card = json.loads((copy2 / ex.CARD).read_text())
    card["genres"] = card["genres"][::-1]
    (copy2 / ex.CARD).write_text(json.dumps(card))
    with pytest.raises(ModelFormatError, match="genres"):
        ex.load_export(copy2)


def test_bilstm_export_loads_in_safe_mode(folders, monkeypatch):
    import keras

    seen = {}
    real = keras.saving.load_model

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    ex.load_export(folders["bilstm"][1], warm_up=False)
    assert seen.get("safe_mode") is True


def test_interrupted_export_leaves_nothing_behind(folders, tmp_path, monkeypatch):
    folder, _ = folders["tfidf"]
    calls = []

    def failing_copy(src, dst, *a, **k):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        return shutil.copyfile(src, dst)

    monkeypatch.setattr(ex.shutil, "copy2", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        ex.export_model(folder, tmp_path / "out" / "tfidf")
    assert list((tmp_path / "out").iterdir()) == []


def test_random_weight_tfhub_model_is_not_exported(tmp_path):
    from utils.modelfiles.bert_tfhub import RANDOM_MARKER
    from utils.modelfiles.predictor import write_manifest

    folder = tmp_path / "bert"
    (folder / "saved_model").mkdir(parents=True)
    (folder / RANDOM_MARKER).write_text("random")
    write_manifest(folder, "bert_tfhub", GENRES, THRESHOLDS, "toy", files=["saved_model"])
    with pytest.raises(ModelFormatError, match="RANDOM"):
        ex.export_model(folder, tmp_path / "out")


# --------------------------------------------------------------------------- endpoints


def test_health_model_page_static_and_docs(client, served):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == served.version
    card = client.get("/model").json()
    assert card["genres"] == GENRES and card["thresholds"] == THRESHOLDS and card["dataset"] == "toy"
    assert card["limits"]["max_chars"] == LIMITS["max_chars"] and "version" in card and "test_scores" in card
    assert card["batching"]["window_ms"] == 0, "TF-IDF never waits for company"
    page = client.get("/")
    assert page.status_code == 200 and 'id="predict"' in page.text and 'id="plot"' in page.text
    assert "://" not in page.text, "no CDN: every asset comes from the app"
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.text) > 100 and "://" not in r.text
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/predict" in schema["paths"] and "PredictRequest" in json.dumps(schema)


def test_predict_one_text_labels_are_the_genres_above_threshold(client, served):
    r = client.post("/predict", json={"text": "An alien space ship and robots on a planet."})
    assert r.status_code == 200, r.text
    body = r.json()
    probs = body["probabilities"]
    assert list(probs) == GENRES and body["rule"] == "global"
    assert body["thresholds"] == {g: THRESHOLDS["global"] for g in GENRES}
    expected = sorted((g for g in GENRES if probs[g] >= 0.4), key=lambda g: -probs[g])
    assert [x["genre"] for x in body["labels"]] == expected and "Sci-Fi" in expected
    assert body["model"] == served.version


def test_predict_many_texts_threshold_and_top_k(client):
    texts = ["A ghost in a haunted house.", "A love story and a wedding."]
    many = client.post("/predict", json={"texts": texts}).json()
    assert len(many["results"]) == 2
    assert many["results"][0]["labels"][0]["genre"] == "Horror"
    low = client.post("/predict", json={"texts": texts, "threshold": 0.01}).json()
    assert all(len(r["labels"]) == 3 for r in low["results"]) and low["rule"] == "fixed"
    per = client.post("/predict", json={"text": texts[0], "threshold": "per_genre"}).json()
    assert per["thresholds"] == THRESHOLDS["per_genre"]
    top = client.post("/predict", json={"texts": texts, "top_k": 1}).json()
    assert [len(r["labels"]) for r in top["results"]] == [1, 1] and top["rule"] == "top_k=1"
    assert top["results"][1]["labels"][0]["genre"] == "Romance"


BAD = [
    ({"text": ""}, 422, "empty"),
    ({"text": "   \n\t"}, 422, "empty"),
    ({"texts": ["fine plot", " "]}, 422, "texts[1] is empty"),
    ({"text": "x" * (LIMITS["max_chars"] + 1)}, 413, "limit is 10,000"),
    ({"texts": ["a plot"] * (LIMITS["max_texts"] + 1)}, 413, "limit is 64"),
    ({"texts": []}, 422, "texts\" is empty"),
    ({"text": 42}, 422, "text: Input should be a valid string"),
    ({"texts": ["ok", 3]}, 422, "texts.1: Input should be a valid string"),
    ({"texts": "not a list"}, 422, "texts"),
    ({"text": "a", "texts": ["b"]}, 422, "not both"),
    ({}, 422, "not both and not neither"),
    ({"plot": "a"}, 422, "plot"),
    ({"text": "a", "threshold": 1.5}, 422, "between 0 and 1"),
    ({"text": "a", "threshold": "median"}, 422, "threshold: should be a number in (0, 1), 'global' or 'per_genre'"),
    ({"text": "a", "threshold": True}, 422, "threshold: should be a number"),
    ({"text": "a", "top_k": "3"}, 422, "top_k: Input should be a valid integer"),
    ({"text": "a", "threshold": 0.3, "top_k": 2}, 422, "not both"),
    ({"text": "a", "top_k": 0}, 422, "between 1 and 3"),
    ([{"text": "a"}], 422, "JSON object"),
    ("just a string", 422, "JSON object"),
]


@pytest.mark.parametrize("body, status, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_requests_get_a_4xx_json_error_that_says_what_was_wrong(client, body, status, message):
    r = client.post("/predict", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert client.get("/health").json()["status"] == "ok", "the server lives on"


@pytest.mark.parametrize("raw, status, message", [
    (b'{"text": "unterminated', 400, "not valid JSON"),
    (b"\xff\xfe garbage", 400, "not UTF-8"),
    (b"", 422, "JSON object"),
])
def test_wrong_json_is_a_400(client, raw, status, message):
    r = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_oversized_body_is_refused_before_parsing(client):
    big = b'{"text": "' + b"a" * (LIMITS["max_body_bytes"] + 10) + b'"}'
    r = client.post("/predict", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_logs_and_errors_never_hold_the_request_text(client, caplog):
    caplog.set_level(logging.DEBUG)
    for body in ({"text": SECRET}, {"text": SECRET * 2000}, {"texts": [SECRET, 7]}, {"text": SECRET, "top_k": 99},
                 {"text": SECRET, "extra": SECRET}):
        r = client.post("/predict", json=body)
        if r.status_code != 200:
            assert SECRET not in r.text
    assert SECRET not in caplog.text
    assert "rejected POST /predict" in caplog.text


def test_a_failing_model_gives_a_500_json_error_without_the_text(served, caplog):
    class Broken:
        genres, card, batched, predictor = served.genres, served.card, False, served.predictor

        def threshold_vector(self, which=None):
            return served.threshold_vector(which)

        def predict_proba(self, texts):
            raise ValueError(f"cannot handle {texts[0]}")

    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(Broken())) as c:
        r = c.post("/predict", json={"text": SECRET})
        assert r.status_code == 500 and "ValueError" in r.json()["error"] and SECRET not in r.text
        assert c.get("/health").json()["errors"] == 1
    assert SECRET not in caplog.text


# --------------------------------------------------------------------------- micro-batching


def test_micro_batcher_groups_concurrent_requests_and_returns_each_its_rows():
    calls = []

    def predict(texts):
        calls.append(len(texts))
        time.sleep(0.02)
        return np.array([[float(t.split()[-1])] for t in texts])

    batcher = MicroBatcher(predict, max_batch=64, window_ms=20)

    async def main():
        return await asyncio.gather(*(batcher.predict([f"plot {i}", f"plot {i + 100}"]) for i in range(12)))

    out = asyncio.run(main())
    batcher.close()
    for i, rows in enumerate(out):
        assert rows[:, 0].tolist() == [i, i + 100]
    assert sum(calls) == 24 and len(calls) <= 2, calls
    assert batcher.stats()["largest_batch"] >= 12


def test_micro_batcher_caps_batch_size_and_survives_model_errors():
    calls = []

    def predict(texts):
        calls.append(len(texts))
        if any("boom" in t for t in texts):
            raise RuntimeError("model failed")
        return np.zeros((len(texts), 1))

    batcher = MicroBatcher(predict, max_batch=4, window_ms=50)

    async def main():
        first = await asyncio.gather(*(batcher.predict(["a"]) for _ in range(10)))
        with pytest.raises(RuntimeError):
            await batcher.predict(["boom"])
        return first, await batcher.predict(["after"])

    first, after = asyncio.run(main())
    batcher.close()
    assert len(first) == 10 and max(calls[:3]) <= 4 and after.shape == (1, 1)


def test_cheap_passes_run_inline_and_long_ones_in_the_model_thread():
    import threading

    from utils.serving.batching import BoundedBatcher, ModelFailed

    where, sizes = [], []

    def predict(texts):
        where.append(threading.get_ident())
        if any("boom" in t for t in texts):
            raise RuntimeError("secret plot text")
        return np.zeros((len(texts), 1))

    batcher = BoundedBatcher(predict, window_ms=0, inline_chars=10, on_batch=lambda n, s: sizes.append(n))

    async def main():
        loop_thread = threading.get_ident()
        await batcher.predict(["short"])                   # 5 characters: on the loop
        await batcher.predict(["a plot longer than ten"])  # over inline_chars: the model thread
        for text in ("boom", "boom, a long plot text"):    # errors are ModelFailed either way, naming no text
            with pytest.raises(ModelFailed) as err:
                await batcher.predict([text])
            assert "secret" not in str(err.value)
        return loop_thread

    loop_thread = asyncio.run(main())
    batcher.close()
    assert where[0] == loop_thread and where[1] != loop_thread
    assert where[2] == loop_thread and where[3] != loop_thread
    assert sizes == [1, 1] and batcher.stats()["batches"] == 2   # failed passes are not counted


def test_only_a_loaded_tfidf_export_runs_inline(folders, served):
    from utils.serving.export import load_export

    assert create_app(load_export(folders["tfidf"][1])).state.batcher.inline_chars > 0
    assert create_app(Slow(served, 0.01)).state.batcher.inline_chars == 0      # a stand-in may be slow
    assert create_app(load_export(folders["bilstm"][1])).state.batcher.inline_chars == 0


def test_neural_models_are_served_through_the_batcher(folders):
    """Concurrent HTTP requests to the BiLSTM share forward passes."""
    import httpx

    served = ex.load_export(folders["bilstm"][1])
    app = create_app(served, window_ms=30)
    assert app.state.batcher is not None

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            rs = await asyncio.gather(*(c.post("/predict", json={"text": t}) for t in RAW * 3))
            return rs, (await c.get("/health")).json()

    rs, health = asyncio.run(main())
    app.state.batcher.close()
    assert all(r.status_code == 200 for r in rs)
    stats = health["batching"]
    assert stats["texts"] == len(RAW) * 3 and stats["batches"] < len(RAW) * 3 and stats["largest_batch"] > 1
    expected = load_predictor(folders["bilstm"][0]).predict_proba(RAW * 3)
    got = np.array([[r.json()["probabilities"][g] for g in GENRES] for r in rs])
    np.testing.assert_allclose(got, expected, atol=1e-5)


# --------------------------------------------------------------------------- commands, load test, live server


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", *args], cwd=config.ROOT, capture_output=True, text=True,
                          timeout=300, **kw)


def test_serve_command_errors_and_export(folders, tmp_path):
    r = _run(["utils.serve", "--model", str(tmp_path / "nothing")])
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = _run(["utils.serve", "--model", str(folders["tfidf"][0]), "--export", str(tmp_path / "exp")])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "exp" / ex.CARD).is_file() and (tmp_path / "exp" / "weights.npz").is_file()


def test_load_test_refuses_other_machines():
    for url in ("http://example.com:8000", "http://10.0.0.5:8000", "https://127.0.0.1:8000"):
        with pytest.raises(ValueError, match="this machine"):
            lt.check_loopback(url)
    assert lt.check_loopback("http://127.0.0.1:8123") == ("127.0.0.1", 8123)


@pytest.fixture(scope="module")
def live(folders, tmp_path_factory):
    """``python -m utils.serve`` on a free 127.0.0.1 port, serving the tiny TF-IDF export."""
    log = tmp_path_factory.mktemp("live") / "server.log"
    proc, url = lt.start_server(str(folders["tfidf"][1]), log_path=log, timeout=120)
    yield url, log
    lt.stop_server(proc)


def test_load_test_measures_a_live_server(live):
    url, log = live
    row = lt.run_level(url, ["An alien lands.", "A ghost story."], clients=4, requests=40, seconds=20, warmup=2)
    assert row["requests"] == 40 and row["errors"] == 0 and row["rps"] > 0
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert row["connections_per_process"] == [4]   # each client asked /health on its connection: one process
    assert "| model | clients |" in lt.format_table("tfidf", [row]) and "per process" not in lt.format_table("t", [row])
    assert "| 3 + 1 |" in lt.format_table("tfidf", [{**row, "connections_per_process": [3, 1]}])


def test_loadtest_command_against_a_running_server(live):
    url, _ = live
    r = _run(["utils.loadtest", "--url", url, "--clients", "1,2", "--requests", "20", "--seconds", "10"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("| tfidf_logreg-") == 2 and "load average" in r.stdout
    r = _run(["utils.loadtest", "--url", "http://192.0.2.1:80", "--requests", "5"])
    assert r.returncode == 2 and "this machine" in r.stderr


# --------------------------------------------------------------------------- the page in a real browser


class WebDriver:
    """The W3C WebDriver protocol over HTTP, enough to type, click and read (no selenium needed)."""

    def __init__(self, driver: str, browser: str, port: int, extra_args=()):
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": browser, "args": [*FLAGS, *extra_args]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    def cmd(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def find(self, css):
        value = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def find_all(self, css):
        return [next(iter(v.values())) for v in self.cmd("POST", "/elements", {"using": "css selector", "value": css})]

    def text(self, element):
        return self.cmd("GET", f"/element/{element}/text")

    def quit(self):
        try:
            self.cmd("DELETE", "")
        finally:
            self.proc.terminate()
            self.proc.wait(10)


def test_page_in_a_real_headless_browser(live):
    browser, driver = find_browser()
    if browser is None or driver is None:
        pytest.skip("no headless browser here: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver); CI installs them")
    url, _ = live
    wd = WebDriver(driver, browser, lt.free_port())
    try:
        wd.cmd("POST", "/url", {"url": url + "/"})
        box = wd.find("#plot")
        wd.cmd("POST", f"/element/{box}/value", {"text": "An alien space ship lands on a planet and robots fight."})
        wd.cmd("POST", f"/element/{wd.find('#predict')}/click", {})
        deadline = time.monotonic() + 30
        while not wd.find_all("#predicted li") and time.monotonic() < deadline:
            time.sleep(0.2)
        predicted = [wd.text(e) for e in wd.find_all("#predicted li")]
        assert predicted and predicted[0].startswith("Sci-Fi"), predicted
        rows = wd.find_all("#chart .bar-row")
        assert len(rows) == len(GENRES)
        assert len(wd.find_all("#chart .bar-row.predicted")) == len([p for p in predicted if "%" in p])
        assert len(wd.find_all("#chart .tick")) == len(GENRES), "every genre's threshold is marked"
        assert "tfidf" in wd.text(wd.find("#model-info"))
    finally:
        wd.quit()


def test_a_link_with_text_shows_its_prediction_in_a_screenshot(live, tmp_path):
    if find_browser()[0] is None:
        pytest.skip("no headless browser here: install Debian's chromium (apt-get install chromium)")
    url, _ = live
    plain = screenshot(url + "/", tmp_path / "empty.png")
    shot = screenshot(url + "/?text=An%20alien%20space%20ship%20lands", tmp_path / "page.png")
    assert shot is not None and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > plain.stat().st_size + 2000, "the chart was drawn"


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile() -> dict:
    text = (config.ROOT / "Dockerfile").read_text()
    joined = text.replace("\\\n", " ")
    instr = {}
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instr.setdefault(word.upper(), []).append(rest.strip())
    return instr


def test_dockerfile_is_cpu_non_root_with_a_healthcheck():
    d = _dockerfile()
    assert d["FROM"][0].startswith("python:3.11")
    assert d["USER"] and d["USER"][-1] not in ("root", "0")
    assert any("/ready" in h for h in d["HEALTHCHECK"]), "readiness: the model thread answers"

    assert any("--require-hashes" in r and "requirements-neural.txt" in r for r in d["RUN"])
    assert d["VOLUME"] and d["EXPOSE"] == ["8000"]
    ignore = (config.ROOT / ".dockerignore").read_text().split()
    assert {".venv", "data", "results"} <= {x.strip("/") for x in ignore}


def test_dockerfile_command_starts_the_server_locally(folders, tmp_path):
    """The image's CMD, with the image's environment, run here against a model folder."""
    d = _dockerfile()
    cmd = json.loads(d["CMD"][-1])
    assert cmd[:3] == ["python", "-m", "utils.serve"] and "--host" in cmd and "--port" in cmd
    assert cmd[cmd.index("--model") + 1] in d["VOLUME"][-1], "the model folder is the volume"
    port = lt.free_port()
    args = [sys.executable, *cmd[1:]]
    args[args.index("--model") + 1] = str(folders["tfidf"][1])   # what `docker run -v` mounts there
    args[args.index("--host") + 1] = "127.0.0.1"                 # 0.0.0.0 in the container; loopback here
    args[args.index("--port") + 1] = str(port)
    env = dict(os.environ)
    proc = subprocess.Popen(args, cwd=config.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = lt.wait_healthy(f"http://127.0.0.1:{port}", 120, proc)
        assert health["status"] == "ok" and health["model"].startswith("tfidf_logreg-")
    finally:
        lt.stop_server(proc)


# --------------------------------------------------------------------------- the open internet: guards


class Slow:
    """A served model whose every pass takes ``seconds`` (a stuck or overloaded model)."""

    def __init__(self, served, seconds):
        self.genres, self.card, self.batched, self.predictor = served.genres, served.card, False, served.predictor
        self.seconds, self._fast = seconds, None

    def threshold_vector(self, which=None):
        return self.predictor.threshold_vector(which)

    def predict_proba(self, texts):
        time.sleep(self.seconds)
        return np.full((len(texts), len(self.genres)), 0.5, np.float32)


def _concurrently(app, n, body=None, path="/predict"):
    import httpx

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
            return await asyncio.gather(*(c.post(path, json=body or {"text": f"plot {i}"}) for i in range(n)))

    try:
        return asyncio.run(main())
    finally:
        app.state.batcher.close()


def _is_error(r, status):
    body = r.json()
    assert r.status_code == status, r.text
    assert set(body) == {"error", "details", "request_id"} and body["error"], body
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def test_full_queue_answers_503_with_retry_after(served):
    app = create_app(Slow(served, 0.3), max_queue=2)
    rs = _concurrently(app, 8)
    codes = sorted(r.status_code for r in rs)
    refused = [r for r in rs if r.status_code == 503]
    assert codes.count(200) >= 2 and refused, codes
    for r in refused:
        assert r.headers["retry-after"] == "1" and "queue is full" in _is_error(r, 503)["error"]
    assert app.state.batcher.stats()["rejected"] == len(refused)


def test_concurrency_limit_answers_503(served):
    app = create_app(Slow(served, 0.3), max_concurrency=2, max_queue=100)
    rs = _concurrently(app, 6)
    refused = [r for r in rs if r.status_code == 503]
    assert len(refused) >= 3 and sum(r.status_code == 200 for r in rs) >= 2, [r.status_code for r in rs]
    assert all("2 requests already" in _is_error(r, 503)["error"] and r.headers["retry-after"] for r in refused)


def test_liveness_and_metrics_answer_at_the_concurrency_cap(served):
    import httpx

    app = create_app(Slow(served, 0.5), max_concurrency=1, max_queue=100)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
            busy = asyncio.ensure_future(c.post("/predict", json={"text": "a plot"}))
            await asyncio.sleep(0.2)
            rs = await c.get("/health"), await c.get("/metrics"), await c.post("/predict", json={"text": "b"})
            await busy
            return rs

    health, metrics, refused = asyncio.run(main())
    app.state.batcher.close()
    assert health.status_code == 200 and metrics.status_code == 200
    assert "movie_genres_requests_in_flight 2" in metrics.text
    _is_error(refused, 503)


def test_request_deadline_answers_503_and_the_model_lives_on(served):
    app = create_app(Slow(served, 1.0), request_timeout_s=0.2)
    (r,) = _concurrently(app, 1)
    assert "not answered within 0.2 s" in _is_error(r, 503)["error"] and r.headers["retry-after"] == "1"


def test_ready_checks_the_model_thread(served):
    with TestClient(create_app(served)) as c:
        assert c.get("/ready").json()["status"] == "ready"
    import httpx

    app = create_app(Slow(served, 1.5), stall_s=0.3)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
            busy = asyncio.ensure_future(c.post("/predict", json={"text": "a plot"}))
            await asyncio.sleep(0.8)                      # the pass is now 0.8 s old: past stall_s
            ready, live = await c.get("/ready"), await c.get("/health")
            await busy
            return ready, live

    ready, live = asyncio.run(main())
    app.state.batcher.close()
    assert "model thread has been on one batch" in _is_error(ready, 503)["error"]
    assert live.status_code == 200, "liveness does not depend on the model"


@pytest.mark.parametrize("request_kwargs, status, message", [
    ({"method": "GET", "url": "/nowhere"}, 404, "Nothing at GET /nowhere"),
    ({"method": "PUT", "url": "/predict"}, 405, "PUT is not allowed on /predict"),
    ({"method": "DELETE", "url": "/model"}, 405, "use GET"),
    ({"method": "POST", "url": "/predict", "content": b'{"text": "a"}', "headers": {"Content-Type": "text/plain"}},
     415, "Content-Type is 'text/plain'"),
    ({"method": "POST", "url": "/predict", "content": b'{"text": "caf\xe9"}',
      "headers": {"Content-Type": "application/json"}}, 400, "not UTF-8 text (byte 0xe9 at offset 13)"),
    ({"method": "POST", "url": "/predict", "content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}},
     400, "nested too deeply"),
    ({"method": "POST", "url": "/predict", "content": b'{"text": "a",}', "headers": {"Content-Type": "application/json"}},
     400, "line 1, column 14"),
    ({"method": "POST", "url": "/predict", "content": b'["a"]', "headers": {"Content-Type": "application/json"}},
     422, "must be a JSON object"),
    ({"method": "POST", "url": "/v1/models/other:predict", "json": {"instances": ["a"]}}, 404, "No model named 'other'"),
])
def test_one_error_shape_everywhere(client, request_kwargs, status, message):
    r = client.request(**request_kwargs)
    assert message in _is_error(r, status)["error"]


def test_request_id_is_echoed_or_made(client):
    r = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces" and len(r.headers["x-request-id"]) == 16


def test_openapi_documents_what_the_server_sends(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/predict"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in schema["components"]["schemas"]
    refs = {code: json.dumps(r) for code, r in post["responses"].items()}
    assert "PredictResponse" in refs["200"]
    for code in ("400", "413", "415", "422", "503"):
        assert "ErrorResponse" in refs[code], code
    error = schema["components"]["schemas"]["ErrorResponse"]
    assert set(error["properties"]) == {"error", "details", "request_id"}
    tfs = schema["paths"]["/v1/models/{name}:predict"]["post"]
    assert "TFServingRequest" in json.dumps(tfs["requestBody"]) and "TFServingRequest" in schema["components"]["schemas"]


def test_docs_and_redoc_are_served_from_the_app(client):
    for route, asset in (("/docs", "/static/docs/swagger-ui-bundle.js"), ("/redoc", "/static/docs/redoc.standalone.js")):
        page = client.get(route)
        assert page.status_code == 200 and asset in page.text
        assert "://" not in page.text, f"{route} loads nothing from another host"
        js = client.get(asset)
        assert js.status_code == 200 and len(js.content) > 500_000
    assert client.get("/static/docs/swagger-ui.css").status_code == 200


def test_metrics_parse_as_prometheus_text(client):
    parser = pytest.importorskip("prometheus_client.parser", reason="pip install prometheus_client (requirements.txt)")
    client.post("/predict", json={"texts": ["An alien.", "A ghost.", "A kiss."]})
    client.post("/predict", json={"text": ""})
    client.get("/nowhere")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parser.text_string_to_metric_families(r.text)}
    assert {"movie_genres_http_request_duration_seconds", "movie_genres_batch_size", "movie_genres_queue_texts",
            "movie_genres_http_errors", "movie_genres_http_requests", "movie_genres_model_info"} <= set(families)
    assert families["movie_genres_http_request_duration_seconds"].type == "histogram"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("movie_genres_http_errors_total", (("code", "422"),))] >= 1
    assert samples[("movie_genres_http_errors_total", (("code", "404"),))] >= 1
    assert samples[("movie_genres_batch_size_bucket", (("le", "4.0"),))] >= 1
    assert samples[("movie_genres_batch_size_count", ())] >= 1
    assert ("movie_genres_queue_texts", ()) in samples


def test_access_log_is_one_json_line_per_request_without_text(client, caplog):
    caplog.set_level(logging.INFO, logger="utils.serving.access")
    client.post("/predict", json={"text": SECRET}, headers={"X-Request-ID": "req-1"})
    client.get(f"/?text={SECRET}")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "utils.serving.access"]
    assert [x["path"] for x in lines] == ["/predict", "/"]
    first = lines[0]
    assert first["request_id"] == "req-1" and first["status"] == 200 and first["latency_ms"] > 0
    assert first["model"].startswith("tfidf_logreg-") and first["texts"] == 1
    assert SECRET not in caplog.text


def test_direct_predict_answers_exactly_as_fastapi_does(served, monkeypatch):
    """The guard's direct call of POST /predict (no FastAPI layers) sends what FastAPI's route sends:
    answers, the endpoint's own errors, validation errors (left to FastAPI), a crash; and it is used."""
    cases = [({"text": RAW[0]}, None), ({"texts": RAW[:3], "top_k": 2}, None), ({"text": RAW[1], "threshold": 0.3}, None),
             ({"text": "A ghost.", "title": "Boo", "threshold": "global"}, None),
             ({"text": "A ghost.", "texts": ["x"]}, None), ({"texts": []}, None), ({"text": "a", "top_k": 99}, None),
             ({"text": "a", "top_k": 1, "threshold": 0.5}, None), ({"text": "a", "threshold": 1.5}, None),
             ({"text": 5}, None), ({"txt": "a"}, None), ([1, 2], None), ({"text": "x" * 20_000}, None),
             ({"text": "a"}, "text/plain"), ({"text": "A ghost.", "threshold": "per_genre"}, None)]
    answers = {}
    for direct in (True, False):
        app = create_app(served, gc_freeze=False, direct_predict=direct, access_log=False)
        with TestClient(app, raise_server_exceptions=False) as c:
            got = []
            for body, ctype in cases:
                r = c.post("/predict", content=json.dumps(body).encode(),
                           headers={"Content-Type": ctype or "application/json", "X-Request-ID": "same"})
                data = r.json()
                data.pop("model_ms", None)
                got.append((r.status_code, data, r.headers["content-type"], r.headers["x-request-id"]))
            with monkeypatch.context() as m:   # a crash inside the endpoint: the app's own 500
                m.setattr("utils.lessons.serving.labelled", lambda *a: 1 / 0)
                r = c.post("/predict", json={"text": "A ghost."}, headers={"X-Request-ID": "same"})
                got.append((r.status_code, r.json(), r.headers.get("x-request-id")))
            guard = app.middleware_stack.app
            answers[direct] = got, guard.direct.answered if guard.direct else 0
    assert answers[True][0] == answers[False][0]
    statuses = [g[0] for g in answers[True][0]]
    assert statuses.count(200) == 5 and 413 in statuses and 415 in statuses and 422 in statuses and 500 in statuses
    # every valid body went the direct way (answers and the endpoint's own errors); FastAPI's app never does
    valid = sum(1 for body, ctype in cases if ctype is None and isinstance(body, dict) and
                not ({"txt"} & set(body)) and not isinstance(body.get("text"), int) and len(body.get("text") or "") < 10_001)
    assert answers[True][1] == valid + 1 and answers[False][1] == 0


def test_a_plot_the_model_knows_nothing_of_says_so(client):
    gibberish = client.post("/predict", json={"text": "<p><b>Zzqxv</b> &nbsp; qwrtp</p>"}).json()
    assert gibberish["known_words"]["known"] == 0 and "prior" in gibberish["warning"]
    known = client.post("/predict", json={"texts": ["An alien space ship lands on a planet."]}).json()["results"][0]
    assert 0 < known["known_words"]["share"] <= 1 and "warning" not in known


def test_tf_serving_route_matches_predict(client, served):
    name = served.card["name"]
    texts = ["A ghost haunts a house.", "Two lovers at a wedding."]
    r = client.post(f"/v1/models/{name}:predict", json={"instances": [texts[0], {"text": texts[1]}]})
    assert r.status_code == 200, r.text
    got = np.array(r.json()["predictions"])
    ours = client.post("/predict", json={"texts": texts}).json()["results"]
    np.testing.assert_allclose(got, [[x["probabilities"][g] for g in GENRES] for x in ours], atol=1e-7)
    # TF Serving's documented call is curl -d without a Content-Type (form-urlencoded)
    r = client.post(f"/v1/models/{name}:predict", content=json.dumps({"instances": texts}).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    assert client.get(f"/v1/models/{name}").json()["model_version_status"][0]["state"] == "AVAILABLE"
    assert "instances" in _is_error(client.post(f"/v1/models/{name}:predict", json={"instances": [3]}), 422)["error"]


@pytest.mark.parametrize("ngram_range, sublinear_tf", [((1, 1), False), ((1, 2), True), ((2, 3), False)])
def test_tfidf_transform_from_arrays_equals_scikit_learn(tmp_path, nltk_data, ngram_range, sublinear_tf):
    from utils.data.text import clean_text
    from utils.lessons.tfidf import fit, predict_proba
    from utils.modelfiles import tfidf

    cleaned = [clean_text(t) for t in TRAIN]
    pipe = fit(cleaned, Y, min_df=1, max_df=1.0, ngram_range=ngram_range, sublinear_tf=sublinear_tf)
    folder = tfidf.save_model(pipe, tmp_path / "m", GENRES, THRESHOLDS, "toy")
    predictor = tfidf.load_predictor(folder)
    probe = RAW + ["<b>the</b> of", "zzz qqq", "alien alien alien space"] + TRAIN[:8]
    want = predict_proba(pipe, [clean_text(t) for t in probe])
    np.testing.assert_allclose(predictor.predict_proba(probe), want, atol=1e-6)
    probs, known = predictor.predict_with_known_words(probe)
    np.testing.assert_allclose(probs, want, atol=1e-6)
    assert known.tolist() == [list(predictor.known_words(t)) for t in probe]


# --------------------------------------------------------------------------- guards on a live server


@pytest.fixture(scope="module")
def guarded(folders, tmp_path_factory):
    """A live server with short timeouts and a small connection cap: (process, url)."""
    log = tmp_path_factory.mktemp("guarded") / "server.log"
    proc, url = lt.start_server(str(folders["tfidf"][1]), log_path=log, timeout=120, extra_args=[
        "--header-timeout", "1", "--body-timeout", "1", "--max-connections", "20"])
    yield proc, url
    lt.stop_server(proc)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _read_response(sock, timeout=10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_chunked_50_mb_body_is_refused_with_memory_bounded(guarded):
    import select
    import socket

    proc, url = guarded
    host, port = lt.check_loopback(url)
    before = _rss_kb(proc.pid)
    sock = socket.create_connection((host, port))
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk, sent, answer = b"a" * 65536, 0, b""
    try:
        while sent < 50 * 2**20 and not answer:
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                answer = _read_response(sock)
    except OSError:   # the server closed the connection after its 413
        pass
    answer = answer or _read_response(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 50 * 2**20, "refused before the whole body was sent"
    grown_mb = (_rss_kb(proc.pid) - before) / 1024
    assert grown_mb < 20, f"server memory grew by {grown_mb:.0f} MB for a refused body"
    with urllib.request.urlopen(url + "/health", timeout=5) as r:
        assert json.loads(r.read())["status"] == "ok"


def test_declared_oversized_body_is_refused_before_reading(guarded):
    import socket

    _, url = guarded
    sock = socket.create_connection(lt.check_loopback(url))
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 52428800\r\n\r\n")
    answer = _read_response(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()


@pytest.mark.parametrize("what, payload, status", [
    ("half-sent headers", b"POST /predict HTTP/1.1\r\nHost: x\r\n", b"408"),
    ("silent connection", b"", b"408"),
    ("slow body", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"te", b"408"),
])
def test_slow_clients_are_dropped_after_the_timeout(guarded, what, payload, status):
    import socket

    _, url = guarded
    sock = socket.create_connection(lt.check_loopback(url))
    start = time.monotonic()
    if payload:
        sock.sendall(payload)
    sock.settimeout(10)
    answer, closed = b"", False
    try:
        while not closed:
            chunk = sock.recv(65536)
            answer += chunk
            closed = chunk == b""          # the server closed its side
    except socket.timeout:
        pass
    waited = time.monotonic() - start
    sock.close()
    assert answer.startswith(b"HTTP/1.1 " + status), (what, answer[:200])
    assert b'"error"' in answer, "the API's JSON error shape"
    assert closed and 0.8 < waited < 5, f"{what}: closed={closed} after {waited:.1f} s (timeout 1 s)"


def test_connection_cap_answers_503(guarded):
    import socket

    _, url = guarded
    held = [socket.create_connection(lt.check_loopback(url)) for _ in range(20)]
    try:
        time.sleep(0.2)
        extra = socket.create_connection(lt.check_loopback(url))
        answer = _read_response(extra, timeout=5)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower()
        assert b'"error"' in answer or b"content-length" in answer.lower()
    finally:
        for s in held:
            s.close()


def test_docs_render_in_a_browser_with_no_network(live):
    """Swagger UI and ReDoc come from the app: with every other host unreachable, both still render."""
    browser, driver = find_browser()
    if browser is None or driver is None:
        pytest.skip("no headless browser here: install Debian's chromium and chromium-driver")
    url, _ = live
    offline = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
               "--proxy-bypass-list=127.0.0.1"]
    wd = WebDriver(driver, browser, lt.free_port(), offline)
    try:
        wd.cmd("POST", "/url", {"url": url + "/docs"})
        deadline = time.monotonic() + 30
        while not wd.find_all(".swagger-ui .opblock") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "Movie genres" in wd.text(wd.find(".swagger-ui .info .title"))
        paths = [wd.text(e) for e in wd.find_all(".swagger-ui .opblock-summary-path")]
        assert "/predict" in paths, paths
        wd.cmd("POST", "/url", {"url": url + "/redoc"})
        deadline = time.monotonic() + 30
        while not wd.find_all("h1") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert any("Movie genres" in wd.text(e) for e in wd.find_all("h1"))
    finally:
        wd.quit()


def test_serve_command_says_how_to_train_a_missing_model(tmp_path):
    env = {**os.environ, "COURSE_OUTPUT_DIR": str(tmp_path)}
    r = _run(["utils.serve", "--model", "tfidf_logreg", "--dataset", "netflix"], env=env)
    assert r.returncode == 2 and "--train-if-missing" in r.stderr, r.stderr
    r = _run(["utils.serve", "--help"])
    for option in ("--max-body-bytes", "--max-queue", "--max-concurrency", "--max-connections", "--header-timeout",
                   "--body-timeout", "--request-timeout", "--workers", "When more workers help"):
        assert option in r.stdout, option


def test_loadtest_floor_and_cpu_per_request():
    """--floor measures FastAPI + uvicorn alone; every level of a server it started gives CPU ms per request."""
    r = _run(["utils.loadtest", "--floor", "--clients", "2", "--requests", "500", "--seconds", "60"])   # >= 10 CPU ticks
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("| floor |"))
    assert "server CPU ms/req" in r.stdout
    server_ms, client_ms = (float(x) for x in row.strip("| ").split("|")[-2:])
    assert 0 < server_ms < 1000 and 0 < client_ms < 1000, row
    r = _run(["utils.loadtest", "--requests", "5"])
    assert r.returncode == 2 and "--floor" in r.stderr


def test_loadtest_trains_a_missing_model_when_asked_and_says_how_otherwise(tmp_path):
    env = {**os.environ, "COURSE_OUTPUT_DIR": str(tmp_path), "COURSE_FAST": "1"}
    args = ["utils.loadtest", "--model", "tfidf_logreg", "--dataset", "netflix", "--clients", "1", "--requests", "20"]
    r = _run(args, env=env)
    assert r.returncode == 2 and "--train-if-missing" in r.stderr, r.stderr
    r = _run([*args, "--train-if-missing"], env=env)
    assert r.returncode == 0, r.stderr
    assert "training it now at FAST size" in r.stdout and r.stdout.count("| tfidf_logreg-") == 1, r.stdout
    from utils.modelfiles.predictor import MANIFEST

    assert len(list(tmp_path.rglob(f"netflix/tfidf_logreg/{MANIFEST}"))) == 1   # saved where serve finds it


def test_workers_serve_through_the_app_factory(folders, tmp_path):
    log = tmp_path / "server.log"
    proc, url = lt.start_server(str(folders["tfidf"][1]), extra_args=["--workers", "2"], log_path=log, timeout=180)
    try:
        req = urllib.request.Request(url + "/predict", data=json.dumps({"text": "An alien lands."}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert "Sci-Fi" in json.loads(r.read())["probabilities"]
        with urllib.request.urlopen(url + "/ready", timeout=10) as r:
            assert json.loads(r.read())["status"] == "ready"
        pids, deadline = set(), time.monotonic() + 120   # the second worker may still be loading its model
        while len(pids) < 2 and time.monotonic() < deadline:
            with urllib.request.urlopen(url + "/health", timeout=10) as r:   # a new connection each time
                pids.add(json.loads(r.read())["pid"])
            time.sleep(0.05)
        assert len(pids) == 2, "two processes answer"
        import psutil

        children = psutil.Process(proc.pid).children()
    finally:
        lt.stop_server(proc)   # SIGTERM: the supervisor stops its workers
    assert not psutil.wait_procs(children, timeout=15)[1], "every worker ended with the supervisor"
    assert "2 workers" in log.read_text()


def test_loadtest_never_calls_a_goal_met_on_a_contended_machine():
    from utils.tools.loadtest import verdict

    row = {"rps": 5000, "p99_ms": 1.0, "errors": 0, "refused": 0, "load_during": 3.5}
    assert verdict(row, 2, 2000, 10).startswith("contended (load average 3.5 > 2 cores)")
    assert verdict({**row, "load_during": 0.5}, 2, 2000, 10) == "met"
    assert verdict({**row, "load_during": 0.5, "p99_ms": 20}, 2, 2000, 10) == "NOT met"
    crowd = {**row, "load_during": 0.5, "errors": 5, "refused": 5}
    assert verdict(crowd, 2, None, 1000, crowd=True) == "met", "deliberate 503s are allowed at 200 clients"
    assert verdict({**crowd, "refused": 4}, 2, None, 1000, crowd=True) == "NOT met"


def test_start_up_freezes_the_loaded_objects_out_of_the_collector(served):
    import gc

    gc.unfreeze()
    with TestClient(create_app(served, gc_freeze=False)) as c:
        assert gc.get_freeze_count() == 0 and c.get("/health").status_code == 200
    with TestClient(create_app(served)) as c:
        assert gc.get_freeze_count() > 10_000, "the model and libraries are out of the collector's sight"
        gc.collect(0)
        assert "movie_genres_gc_pause_seconds_bucket" in c.get("/metrics").text


def test_transform_cost_is_measured(folders):
    cost = lt.transform_cost(folders["tfidf"][0], RAW, repeats=1)
    assert cost["arrays_ms"] > 0 and cost["sklearn_ms"] > 0 and cost["texts"] == len(RAW)


# --------------------------------------------------------------------------- the images' locked packages

LOCKS = config.ROOT / "docker"


def _pins(path) -> dict[str, str]:
    import re

    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#\\]+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """docker/requirements-<name>.txt -> {package: (version, [sha256, ...])}, read as pip's hash-checking mode does."""
    import re

    out = {}
    for line in (LOCKS / f"requirements-{name}.txt").read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        assert m, f"docker/requirements-{name}.txt: {line[:60]!r} is not pinned with =="
        out[m.group(1).lower().replace("_", "-")] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return out


def test_image_requirements_are_locked_with_hashes_at_the_course_pins():
    """Both images' packages carry SHA-256 hashes; the ones named in docker/*.in are requirements.txt's versions."""
    course = _pins(config.ROOT / "requirements.txt")
    for name in ("tfidf", "neural", "neural-nodeps"):
        locked = _locked(name)
        assert locked and all(hashes for _, hashes in locked.values()), f"{name}: a package without --hash"
        for pkg, version in _pins(LOCKS / f"{name}.in").items():
            want = course["tensorflow" if pkg == "tensorflow-cpu" else pkg]
            assert version == want, f"docker/{name}.in has {pkg}=={version}, requirements.txt {want}: bash docker/lock.sh"
            assert locked[pkg][0] == version, f"docker/requirements-{name}.txt is out of date: bash docker/lock.sh"


def test_docker_tfidf_image_has_no_tensorflow():
    slim, neural, nodeps = _locked("tfidf"), _locked("neural"), _locked("neural-nodeps")
    assert {"numpy", "scipy", "scikit-learn", "nltk", "fastapi", "uvicorn", "httptools"} <= set(slim)
    assert not [p for p in slim if "tensorflow" in p or "keras" in p], "the slim closure holds no TensorFlow"
    assert "tensorflow-cpu" in neural and "tensorflow" not in neural, "one TensorFlow: the CPU build"
    assert set(nodeps) == {"tensorflow-text", "keras-hub"} and not set(nodeps) & set(neural)
    text = (config.ROOT / "Dockerfile").read_text()
    for name in ("tfidf", "neural", "neural-nodeps"):
        assert f"pip install --require-hashes --no-deps -r /tmp/requirements-{name}.txt" in text


def test_base_image_is_pinned_by_a_digest_docker_accepts():
    import re

    ref = _dockerfile()["FROM"][0]
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", ref), ref
    # Docker's reference grammar: a digest is algorithm ":" at least 32 hex digits
    grammar = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
    assert re.fullmatch(grammar, ref.split("@", 1)[1]), ref
    readme = (config.ROOT / "README.md").read_text()
    assert ref.split("@", 1)[1] in readme, "the README names the digest the Dockerfile pins"
    assert "bash docker/pin-base-image.sh" in readme, "the README says how to pin again"


@pytest.mark.skipif(not os.environ.get("COURSE_IMAGE_PYTHON"),
                    reason="set COURSE_IMAGE_PYTHON to the python of a venv built with pip install --require-hashes "
                           "--no-deps -r docker/requirements-tfidf.txt (CI's .ci/run does)")
def test_slim_image_package_set_serves_tfidf(tmp_path):
    """The slim image's exact packages, installed from the lock into a venv of their own, serve TF-IDF."""
    python = os.environ["COURSE_IMAGE_PYTHON"]
    export = ex.export_model(_tfidf_folder(tmp_path), tmp_path / "exports" / "tfidf")
    freeze = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    have = {k.lower().replace("_", "-"): v for k, _, v in (ln.partition("==") for ln in freeze.split())}
    assert have == {k: v for k, (v, _) in _locked("tfidf").items() if k not in ("pip", "setuptools", "wheel")}
    port = lt.free_port()
    proc = subprocess.Popen([python, "-m", "utils.serve", "--model", str(export), "--port", str(port)],
                            cwd=config.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        assert lt.wait_healthy(url, 120, proc)["status"] == "ok"
        req = urllib.request.Request(url + "/predict", data=json.dumps({"text": "An alien space ship lands."}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.loads(r.read())["labels"][0]["genre"] == "Sci-Fi"
    finally:
        lt.stop_server(proc)
    lib = Path(python).parents[1] / "lib"   # the venv's packages (bin/python links to the base interpreter)
    size = sum(p.stat().st_size for p in lib.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"the slim image's package set: {size / 2**20:.0f} MiB in {lib}")


def test_tfidf_serves_with_tensorflow_absent(folders):
    """What the slim image holds: TF-IDF is served with TensorFlow, Keras and the neural packages unimportable."""
    code = f"""
import sys
BLOCKED = {{"tensorflow", "keras", "keras_hub", "tensorflow_text", "tensorflow_hub", "safetensors", "pyarrow",
           "gensim", "matplotlib", "torch", "transformers"}}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("not in the slim image: " + name)
sys.meta_path.insert(0, Block())
from fastapi.testclient import TestClient
from utils.serving.app import create_app
from utils.serving.export import load_export
with TestClient(create_app(load_export({str(folders["tfidf"][1])!r}))) as c:
    r = c.post("/predict", json={{"text": "An alien space ship lands."}})
    assert r.status_code == 200 and c.get("/ready").status_code == 200, r.text
print("served", r.json()["labels"][0]["genre"])
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=config.ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "served Sci-Fi" in r.stdout, r.stderr[-2000:]


def test_get_predict_answers_as_post_does_for_proxies_that_drop_post(client):
    """Colab's port proxy may drop POST (colabtools#3925): the page falls back to GET /predict?text=."""
    text = "An alien space ship and robots on a planet."
    post = client.post("/predict", json={"text": text, "top_k": 2}).json()
    got = client.get("/predict", params={"text": text, "top_k": 2})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["probabilities"] == post["probabilities"] and body["labels"] == post["labels"]
    assert body["rule"] == post["rule"] and body["model"] == post["model"]
    by_number = client.get("/predict", params={"text": text, "threshold": "0.3"}).json()
    assert by_number["thresholds"] == {g: 0.3 for g in GENRES}


def test_get_predict_errors_have_the_one_error_shape(client):
    missing = client.get("/predict")
    assert missing.status_code == 422 and {"error", "details", "request_id"} <= set(missing.json())
    bad = client.get("/predict", params={"text": "a ghost", "threshold": "high"})
    assert bad.status_code == 422 and "threshold" in bad.json()["error"]
    empty = client.get("/predict", params={"text": "   "})
    assert empty.status_code in (400, 422) and "error" in empty.json()


def test_the_page_falls_back_to_get_when_post_gets_no_answer_from_the_server():
    script = (Path(ex.__file__).parent / "static" / "app.js").read_text()
    assert 'fetch("/predict?" + new URLSearchParams({ text }) + withTitle)' in script
    assert "if (!body)" in script


def _worker_pids(url, want: int, seconds: float = 120) -> set:
    """Process ids that answer /health on new connections, until ``want`` of them answered."""
    pids, deadline = set(), time.monotonic() + seconds
    while len(pids) < want and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=10) as r:
                pids.add(json.loads(r.read())["pid"])
        except OSError:
            pass
        time.sleep(0.02)
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only")
def test_workers_supervisor_restarts_a_dead_worker_and_stops_them_all(folders, tmp_path):
    """--workers 2 on Linux: a socket per worker (SO_REUSEPORT); a worker killed while serving is replaced;
    a taken port is a clear error; the workers end when the supervisor is killed with SIGKILL."""
    import signal

    import psutil

    log = tmp_path / "server.log"
    proc, url = lt.start_server(str(folders["tfidf"][1]), extra_args=["--workers", "2"], log_path=log, timeout=180)
    try:
        first = _worker_pids(url, 2)
        assert len(first) == 2
        workers = {p.pid for p in psutil.Process(proc.pid).children()}
        assert first <= workers
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        # Until the replacement answers, every new connection must go to the worker that serves: a socket
        # that listened before its model was loaded would hold the connections hashed to it for the load.
        later, waits, resets, deadline = set(), [], 0, time.monotonic() + 120
        while len(later) < 2 and time.monotonic() < deadline:
            start = time.monotonic()
            try:
                with urllib.request.urlopen(url + "/health", timeout=30) as r:
                    later.add(json.loads(r.read())["pid"])
                waits.append(time.monotonic() - start)
            except ConnectionResetError:   # queued on the victim's socket as it died: the kernel resets those
                resets += 1
            except OSError as err:
                pytest.fail(f"{err!r} while a worker restarted; the server's log:\n{log.read_text()[-3000:]}")
        assert victim not in later and len(later) == 2, (first, later, log.read_text()[-3000:])
        assert max(waits) < 1.5, f"a request waited {max(waits):.1f} s for the loading worker"
        assert resets <= 3, f"{resets} connections reset: only those queued as the victim died may be"
        assert "starting another" in log.read_text()
        # a second server on a port that this one serves must not join its sockets and share its connections
        r = _run(["utils.serve", "--model", str(folders["tfidf"][1]), "--workers", "2", "--port", url.rsplit(":", 1)[1]])
        assert r.returncode == 2 and "cannot listen" in r.stderr, r.stderr
        children = psutil.Process(proc.pid).children()
        proc.kill()   # kill -9: the supervisor cannot stop its workers; they end by themselves (PDEATHSIG)
        proc.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, "every worker ended with the killed supervisor"
    finally:
        lt.stop_server(proc)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only")
def test_workers_supervisor_gives_up_when_a_worker_fails_before_serving(tmp_path):
    """Workers that cannot load their model (here: it is gone) end the supervisor with an error, instead of
    being restarted forever."""
    from utils.serving.app import ENV

    code = ("import sys; from utils.serving.workers import Supervisor; "
            f"sys.exit(Supervisor(2, '127.0.0.1', {lt.free_port()}, {{'log_config': None}}).run())")
    r = subprocess.run([sys.executable, "-c", code], cwd=config.ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, ENV: json.dumps({"model": str(tmp_path / "gone")})})
    assert r.returncode == 1 and "before serving" in r.stderr, (r.returncode, r.stderr[-2000:])


def test_batching_window_defaults_by_model_kind(folders):
    """The BiLSTM waits 2 ms for company (measured: README), the other neural models 5 ms, TF-IDF none;
    --window-ms overrides."""
    from utils.serving.app import BATCHING, WINDOW_MS

    want = {"tfidf": 0.0, "bilstm": WINDOW_MS["bilstm"], "minilm": BATCHING["window_ms"]}
    assert want["bilstm"] == 2.0 and want["minilm"] == 5.0
    for family, window in want.items():
        app = create_app(ex.load_export(folders[family][1]), gc_freeze=False)
        assert app.state.batcher.window * 1000 == pytest.approx(window), family
    app = create_app(ex.load_export(folders["bilstm"][1]), gc_freeze=False, window_ms=7)
    assert app.state.batcher.window * 1000 == pytest.approx(7)
