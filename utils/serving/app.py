"""The REST API and the web page around one exported model (FastAPI).

``create_app(served)`` returns the app that ``python -m utils.serve`` runs under uvicorn:

* ``POST /predict``: ``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optionally
  ``"threshold"`` (a number in (0, 1), ``"global"`` or ``"per_genre"``) or ``"top_k"``;
  returns every genre's probability and the genres above threshold (``labels``).
* ``GET /health``, ``GET /model`` (the model card), ``GET /docs`` (OpenAPI), ``GET /`` (the page).

Limits (:data:`LIMITS`): a text has 1 to ``max_chars`` characters, a request at most
``max_texts`` texts and ``max_body_bytes`` bytes. Anything else gets a 4xx JSON
``{"error": "what was wrong", "details": [...]}``; the logs carry sizes, never the texts.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from utils.serving.batching import MicroBatcher

STATIC = Path(__file__).with_name("static")
LIMITS = {"max_chars": 10_000, "max_texts": 64, "max_body_bytes": 2 * 2**20}
BATCHING = {"window_ms": 5.0, "max_batch": 64}
log = logging.getLogger("utils.serving")


class PredictRequest(BaseModel):
    """One plot (``text``) or several (``texts``); ``threshold`` or ``top_k`` override the model's thresholds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "A retired hitman is pulled back in for one last job in Tokyo."},
                     {"texts": ["Two sisters open a bakery in Seoul.", "A ghost haunts a lighthouse."],
                      "top_k": 3}]})

    text: Optional[StrictStr] = Field(None, description="one raw plot (HTML, accents, any script welcome)")
    texts: Optional[list[StrictStr]] = Field(None, description="several raw plots")
    threshold: Optional[Union[StrictFloat, StrictInt, Literal["global", "per_genre"]]] = Field(
        None, description="a number in (0, 1) for every genre, or the model's 'global' / 'per_genre' thresholds")
    top_k: Optional[StrictInt] = Field(None, description="label the k most likely genres instead of thresholding")


class ApiError(Exception):
    def __init__(self, status: int, message: str, details=None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []


def _error(status: int, message: str, details=None) -> JSONResponse:
    return JSONResponse({"error": message, "details": details or []}, status_code=status)


def _describe(errors) -> tuple[int, str, list]:
    """pydantic's errors -> (status, one sentence, details) with the field names, never the input values."""
    details = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "problem": e.get("msg", "invalid")} for e in errors]
    types = {e.get("type") for e in errors}
    if "json_invalid" in types:
        return 400, "The request body is not valid JSON: send a JSON object such as {\"text\": \"A plot.\"}.", details
    if any(e.get("loc") == ("body",) for e in errors):
        return 422, ("The request body must be a JSON object with \"text\" (a string) or \"texts\" "
                     "(a list of strings)."), details
    if any(d["field"].startswith("threshold.") for d in details):   # one line for the union's three members
        details = [d for d in details if not d["field"].startswith("threshold.")]
        details.append({"field": "threshold", "problem": "should be a number in (0, 1), 'global' or 'per_genre'"})
    problems = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return 422, f"Invalid request ({problems}).", details


def _texts_of(req: PredictRequest, limits: dict) -> tuple[list[str], bool]:
    if (req.text is None) == (req.texts is None):
        raise ApiError(422, "Give either \"text\" (one plot) or \"texts\" (a list of plots), not both and not neither.")
    single = req.text is not None
    texts = [req.text] if single else req.texts
    if not texts:
        raise ApiError(422, "\"texts\" is empty: give at least one plot.")
    if len(texts) > limits["max_texts"]:
        raise ApiError(413, f"{len(texts)} texts in one request; the limit is {limits['max_texts']}. "
                            f"Split them over several requests.")
    for i, t in enumerate(texts):
        where = "text" if single else f"texts[{i}]"
        if not t.strip():
            raise ApiError(422, f"{where} is empty: give at least one sentence describing the movie.")
        if len(t) > limits["max_chars"]:
            raise ApiError(413, f"{where} has {len(t):,} characters; the limit is {limits['max_chars']:,}. "
                                f"Send a plot summary, not a whole screenplay.")
    return texts, single


def _rule(req: PredictRequest, served) -> tuple[str, np.ndarray | None, int | None]:
    if req.threshold is not None and req.top_k is not None:
        raise ApiError(422, "Give \"threshold\" or \"top_k\", not both.")
    n = len(served.genres)
    if req.top_k is not None:
        if not 1 <= req.top_k <= n:
            raise ApiError(422, f"top_k must be between 1 and {n} (the number of genres), not {req.top_k}.")
        return f"top_k={req.top_k}", None, req.top_k
    if req.threshold is None or isinstance(req.threshold, str):
        which = req.threshold or served.predictor.thresholds.get("default", "global")
        if which == "per_genre" and not served.predictor.thresholds.get("per_genre"):
            raise ApiError(422, "This model has no per-genre thresholds: use \"global\" or a number.")
        return which, served.threshold_vector(which), None
    value = float(req.threshold)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ApiError(422, f"threshold must be a number between 0 and 1 (exclusive), not {req.threshold}.")
    return "fixed", np.full(n, value), None


def _result(genres, probs: np.ndarray, cut: np.ndarray | None, k: int | None) -> dict:
    order = np.argsort(-probs, kind="stable")
    chosen = order[:k] if k is not None else [j for j in order if probs[j] >= cut[j]]
    return {"labels": [{"genre": genres[j], "probability": float(probs[j])} for j in chosen],
            "probabilities": {g: float(p) for g, p in zip(genres, probs)}}


class BodyLimit:
    """ASGI middleware: a request whose Content-Length is over ``limit`` gets a 413 before its body is read.

    A plain ASGI class rather than ``@app.middleware("http")``, which costs a task per request.
    """

    def __init__(self, app, limit: int, counts: dict):
        self.app, self.limit, self.counts = app, int(limit), counts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            for key, value in scope.get("headers", ()):
                if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                    self.counts["errors"] += 1
                    response = _error(413, f"The request body has {int(value):,} bytes; the limit is {self.limit:,}.")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(served, limits: dict | None = None, window_ms: float | None = None,
               max_batch: int = BATCHING["max_batch"]) -> FastAPI:
    """The FastAPI app serving ``served`` (a :class:`utils.serving.export.ServedModel`).

    Every model runs behind a :class:`MicroBatcher`, in its own thread, so the event loop keeps
    reading requests meanwhile. Neural models (``served.batched``) wait ``window_ms`` (default 5)
    for company; TF-IDF does not wait (``window_ms=0``: a pass costs under a millisecond) and
    batches only the requests that queued while the previous pass ran.
    """
    limits = {**LIMITS, **(limits or {})}
    card = served.card
    if window_ms is None:
        window_ms = BATCHING["window_ms"] if served.batched else 0.0
    batcher = MicroBatcher(served.predict_proba, max_batch=max_batch, window_ms=window_ms)
    started = time.time()
    counts = {"requests": 0, "texts": 0, "errors": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(title="Movie genres", lifespan=lifespan, version=card["version"],
                  description=f"Genres of a movie from its plot: {card['name']} trained on {card['dataset']}. "
                              f"Limits: {limits['max_chars']:,} characters per text, {limits['max_texts']} "
                              f"texts per request.")
    app.state.served, app.state.batcher, app.state.limits = served, batcher, limits

    app.add_middleware(BodyLimit, limit=limits["max_body_bytes"], counts=counts)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        counts["errors"] += 1
        status, message, details = _describe(exc.errors())
        log.info("rejected %s %s: %s", request.method, request.url.path, message[:200])
        return _error(status, message, details)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        counts["errors"] += 1
        log.info("rejected %s %s: %s", request.method, request.url.path, exc.message[:200])
        return _error(exc.status, exc.message, exc.details)

    @app.post("/predict", summary="Genres of one or more plots")
    async def predict(req: PredictRequest):
        texts, single = _texts_of(req, limits)
        rule, cut, k = _rule(req, served)
        start = time.perf_counter()
        try:
            probs = await batcher.predict(texts)
        except Exception as err:   # the message may quote the input: log the type and sizes only
            counts["errors"] += 1
            log.error("model failed (%s) on %d text(s) of %d characters", type(err).__name__, len(texts),
                      sum(map(len, texts)))
            return _error(500, f"The model failed on this request ({type(err).__name__}); the server log says more.")
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(texts), len(served.genres)) or not np.isfinite(probs).all():
            counts["errors"] += 1
            log.error("model returned shape %s or non-finite values", probs.shape)
            return _error(500, "The model returned invalid probabilities; the server log says more.")
        counts["requests"] += 1
        counts["texts"] += len(texts)
        ms = (time.perf_counter() - start) * 1000
        log.debug("predicted %d text(s), %d characters, %.1f ms", len(texts), sum(map(len, texts)), ms)
        results = [_result(served.genres, p, cut, k) for p in probs]
        thresholds = {g: float(t) for g, t in zip(served.genres, cut)} if cut is not None else None
        head = {"model": card["version"], "rule": rule, "thresholds": thresholds, "model_ms": round(ms, 2)}
        # a JSONResponse skips FastAPI's generic encoder: plain floats and strings need none
        return JSONResponse({**head, **results[0]} if single else {**head, "results": results})

    @app.get("/health", summary="Liveness: the model is loaded and answering")
    async def health():
        return {"status": "ok", "model": card["version"], "uptime_s": round(time.time() - started, 1),
                **counts, "batching": batcher.stats()}

    @app.get("/model", summary="The model card: genres, thresholds, test scores, dataset, split, version")
    async def model():
        return {**card, "limits": limits,
                "batching": {"window_ms": window_ms, "max_batch": max_batch}}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app
