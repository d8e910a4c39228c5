"""Notebook 09's API (utils.lessons.serving) on its own and inside the production server, and the
``title`` of issue 27: a model trained on title and plot reads "Title. Plot", a plot-only model
ignores the title and says so.

The models are tiny TF-IDF exports trained here in seconds (no TensorFlow).
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="fastapi is not installed: python -m pip install -r requirements.txt")
from fastapi.testclient import TestClient  # noqa: E402

from utils.lessons.serving import MicroBatcher, make_app, model_inputs, next_batch  # noqa: E402
from utils.serving import export as ex  # noqa: E402
from utils.serving.app import create_app  # noqa: E402

from support import GENRES, THRESHOLDS, TRAIN, Y  # noqa: E402  (the toy corpus, tests/support.py)
PLOT = "Two strangers meet in a city at night."
TITLE = "Ghost Wedding"          # words the model knows: the title moves the probabilities
IGNORED = "This model was trained on plots alone: the title is ignored."


def _export(root, setting):
    from utils.data.text import clean_text
    from utils.lessons.tfidf import fit
    from utils.modelfiles import tfidf

    extra = {} if setting is None else {"text": setting}
    pipe = fit([clean_text(t) for t in TRAIN], Y, min_df=1, max_df=1.0, ngram_range=(1, 1))
    folder = tfidf.save_model(pipe, root / "models" / "toy" / "tfidf_logreg", GENRES, THRESHOLDS, "toy", **extra)
    return ex.load_export(ex.export_model(folder, root / "exports" / "tfidf_logreg"))


@pytest.fixture(scope="module")
def plot_only(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("plot"), None)


@pytest.fixture(scope="module")
def title_plot(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("title"), "title+plot")


def _probs(body):
    return np.array([body["probabilities"][g] for g in GENRES])


# --------------------------------------------------------------------------- the title (issue 27)


def test_the_card_carries_the_text_setting(plot_only, title_plot):
    assert plot_only.card["text"] == "plot" and title_plot.card["text"] == "title+plot"


def test_a_title_plot_model_reads_title_dot_plot(title_plot):
    from utils.lessons.serving import PredictRequest

    texts, note, single = model_inputs(PredictRequest(text=PLOT, title=TITLE), title_plot.card)
    assert texts == [f"{TITLE}. {PLOT}"] and note is None and single
    with TestClient(create_app(title_plot)) as c:
        body = c.post("/predict", json={"text": PLOT, "title": TITLE}).json()
        assert "note" not in body
        np.testing.assert_allclose(_probs(body), title_plot.predict_proba([f"{TITLE}. {PLOT}"])[0], atol=1e-6)
        assert np.abs(_probs(body) - title_plot.predict_proba([PLOT])[0]).max() > 0.01, "the title changed nothing"
        many = c.post("/predict", json={"texts": [PLOT, PLOT], "titles": [TITLE, ""]}).json()["results"]
        np.testing.assert_allclose(_probs(many[0]), _probs(body), atol=1e-6)
        np.testing.assert_allclose(_probs(many[1]), title_plot.predict_proba([PLOT])[0], atol=1e-6)
        got = c.get("/predict", params={"text": PLOT, "title": TITLE}).json()
        np.testing.assert_allclose(_probs(got), _probs(body), atol=1e-6)
        tfs = c.post("/v1/models/tfidf_logreg:predict", json={"instances": [{"text": PLOT, "title": TITLE}]})
        np.testing.assert_allclose(tfs.json()["predictions"][0], _probs(body), atol=1e-6)
        assert c.get("/model").json()["text"] == "title+plot"


def test_a_plot_only_model_ignores_the_title_and_says_so(plot_only):
    with TestClient(create_app(plot_only)) as c:
        body = c.post("/predict", json={"text": PLOT, "title": TITLE}).json()
        assert body["note"] == IGNORED
        np.testing.assert_allclose(_probs(body), plot_only.predict_proba([PLOT])[0], atol=1e-6)
        assert "note" not in c.post("/predict", json={"text": PLOT}).json(), "no title, no note"
        assert c.get("/predict", params={"text": PLOT, "title": TITLE}).json()["note"] == IGNORED


@pytest.mark.parametrize("body, status, message", [
    ({"texts": [PLOT], "title": TITLE}, 422, "\"title\" goes with \"text\""),
    ({"text": PLOT, "titles": [TITLE]}, 422, "\"titles\" with \"texts\""),
    ({"texts": [PLOT, PLOT], "titles": [TITLE]}, 422, "1 titles for 2 plots"),
    ({"text": PLOT, "title": 7}, 422, "title: Input should be a valid string"),
    ({"text": PLOT, "title": "x" * 10_001}, 413, "title has 10,001 characters"),
])
def test_bad_titles_get_the_one_error_shape(plot_only, body, status, message):
    with TestClient(create_app(plot_only)) as c:
        r = c.post("/predict", json=body)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert set(r.json()) == {"error", "details", "request_id"}


# --------------------------------------------------------------------------- the notebook's app alone


def test_the_notebooks_app_answers_on_its_own(plot_only):
    """make_app without the production plumbing: FastAPI's own 422s, the notebook's HTTPExceptions."""
    app = make_app(plot_only)
    with TestClient(app) as c:
        body = c.post("/predict", json={"text": PLOT, "top_k": 2}).json()
        assert [x["genre"] for x in body["labels"]] == list(np.array(GENRES)[np.argsort(-_probs(body))[:2]])
        assert body["model"] == plot_only.card["version"] and body["rule"] == "top_k=2"
        wrong = c.post("/predict", json={"text": 42})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "text"]
        empty = c.post("/predict", json={"texts": []})
        assert empty.status_code == 422 and "\"texts\" is empty" in empty.json()["detail"]
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["batching"]["texts"] == 1
    app.state.batcher.close()
    paths = {r.path for r in app.routes}
    assert {"/predict", "/health"} <= paths and "/metrics" not in paths, "the plumbing is the server's"


def test_the_production_server_is_built_on_the_notebooks_app(plot_only):
    from utils.serving.batching import BoundedBatcher

    app = create_app(plot_only)
    assert isinstance(app.state.batcher, BoundedBatcher) and isinstance(app.state.batcher, MicroBatcher)
    route = next(r for r in app.routes if getattr(r, "path", "") == "/predict" and "POST" in r.methods)
    assert route.endpoint.__module__ == "utils.lessons.serving", "POST /predict is the notebook's route"
    with TestClient(app) as c:
        health = c.get("/health").json()
    assert {"pid", "uptime_s", "requests", "errors", "batching"} <= set(health), "the server adds its fields"


def test_next_batch_takes_what_waits_and_stops_at_max_batch():
    async def main():
        queue = asyncio.Queue()
        for i in range(5):
            queue.put_nowait(([f"t{i}", f"u{i}"], None))
        first = await next_batch(queue, max_batch=4, window_s=0.0)
        second = await next_batch(queue, max_batch=100, window_s=0.0)
        return first, second, queue.qsize()

    first, second, left = asyncio.run(main())
    assert [t for t, _ in first] == [["t0", "u0"], ["t1", "u1"]] and len(second) == 3 and left == 0


def test_an_output_without_rows_fails_its_requests_and_the_worker_lives_on():
    """A model that returns what cannot be sliced (here None) must not kill the worker and leave requests waiting."""
    calls = []

    def model(texts):
        calls.append(list(texts))
        return None if texts == ["bad"] else np.arange(len(texts), dtype=float)

    async def main():
        batcher = MicroBatcher(model, window_ms=0.0)
        try:
            with pytest.raises(TypeError):
                await asyncio.wait_for(batcher.predict(["bad"]), 5)
            good = await asyncio.wait_for(batcher.predict(["a", "b"]), 5)
            return good, batcher.stats(), batcher._worker.done()
        finally:
            batcher.close()

    good, stats, worker_done = asyncio.run(main())
    assert list(good) == [0.0, 1.0] and not worker_done, "the next request is answered by the same worker"
    assert calls == [["bad"], ["a", "b"]] and stats["batches"] == 2 and stats["texts"] == 3


def test_the_lesson_module_is_what_the_notebook_exports():
    from utils.tools.export import collect

    cells = collect()["serving"]
    assert {nb for nb, _, _ in cells} == {"09_serving.ipynb"}
    assert all(len(body.splitlines()) < 40 for _, _, body in cells), "no code cell over 40 lines"
