"""The production server around notebook 09's API: its plumbing for the open internet (FastAPI).

Notebook 09 writes the API itself, exported to :mod:`utils.lessons.serving`: the request and
response models, ``POST /predict``, ``GET /health`` (``make_app``) and the micro-batcher.
``create_app(served)`` builds that app inside one that adds what a public server needs; it is what
``python -m utils.serve`` runs under uvicorn (``app_from_env`` is the factory its ``--workers``
processes call):

* ``POST /predict`` (the notebook's): ``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optionally
  ``"title"`` / ``"titles"`` (read by a model trained on title and plot; a plot-only model ignores them
  and says so in ``note``), ``"threshold"`` (a number in (0, 1), ``"global"`` or ``"per_genre"``) or
  ``"top_k"``; returns every genre's probability, the genres above threshold (``labels``) and how many
  of the plot's words the model knows (``known_words``, with a ``warning`` when it knows none).
  Here its body is read the strict way first (:class:`JSONBodyRoute`).
* ``GET /predict?text=...&title=...``: the same answer, for proxies that drop POST.
* ``POST /v1/models/<name>:predict``: TensorFlow Serving's REST format, ``{"instances": [...]}``
  -> ``{"predictions": [[p, ...], ...]}`` (genres in the order of ``/model``).
* ``GET /health`` (the notebook's liveness, plus process id, uptime and counts), ``GET /ready``
  (readiness: the model thread answers), ``GET /metrics`` (Prometheus), ``GET /model`` (the model
  card), ``GET /docs`` and ``GET /redoc`` (OpenAPI viewers served from ``static/docs``, no CDN),
  ``GET /`` (the page).

Limits (:data:`LIMITS`): a text has 1 to ``max_chars`` characters, a request at most
``max_texts`` texts and ``max_body_bytes`` bytes, counted on the bytes received (a chunked body
too). Guards (:data:`GUARDS`): the body must arrive within ``body_timeout_s``, the whole request
is answered within ``request_timeout_s``, at most ``max_concurrency`` requests run at once and at
most ``max_queue`` texts wait for the model (:class:`utils.serving.batching.BoundedBatcher`); past
those the answer is 408 or 503 with ``Retry-After``. (Header timeout and connection cap live in
:mod:`utils.serving.protocol`.) Every error, from any route, is
``{"error": "what was wrong", "details": [...], "request_id": "..."}``.
One JSON log line per request (``utils.serving.access``) holds its id, path without the query
string, status, latency and model version, never a text.

``POST /predict`` with a valid body is answered by the guard calling the notebook's endpoint itself
(:class:`DirectRoute`): FastAPI's routing and middleware cost about 0.2 ms of CPU a request, as much as
a TF-IDF pass; every other request, and every invalid body, goes through FastAPI (``direct_predict``).
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from utils.data.text_setting import for_model
from utils.lessons.serving import PredictRequest, PredictResponse, answer_request, make_app, read_plots
from utils.serving.batching import BoundedBatcher, ModelFailed, QueueFull
from utils.serving.metrics import Metrics

STATIC = Path(__file__).with_name("static")
LIMITS = {"max_chars": 10_000, "max_texts": 64, "max_body_bytes": 2 * 2**20}
BATCHING = {"window_ms": 5.0, "max_batch": 64}   # neural models' defaults (TF-IDF: no window)
# Measured per kind (README, load test): the BiLSTM's pass takes a few milliseconds, and a 5 ms wait for
# company cost more than it saved (32 clients: 1,180-1,228 requests/s with 2 ms against 903-1,150 with 5).
WINDOW_MS = {"bilstm": 2.0}
# back-pressure and timeouts; python -m utils.serve --help lists them
GUARDS = {"max_queue": 512, "max_concurrency": 256, "body_timeout_s": 10.0, "request_timeout_s": 10.0,
          "stall_s": 30.0, "access_log": True, "gc_freeze": True, "direct_predict": True}
UNCAPPED = {"/health", "/metrics"}   # cheap, and what an orchestrator polls: answered even at the cap
ENV = "COURSE_SERVE_OPTIONS"   # the options a --workers process reads (app_from_env)
log = logging.getLogger("utils.serving")
# a request of models that do not batch (TF-IDF) with at most this many characters runs on the event loop
# (batching.BoundedBatcher: a pass over 20,000 characters is a few milliseconds; longer ones use the thread)
INLINE_CHARS = 20_000
access = logging.getLogger("utils.serving.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# --------------------------------------------------------------------------- request and response models
# (PredictRequest and PredictResponse are the notebook's: utils.lessons.serving)


class TFServingRequest(BaseModel):
    """TensorFlow Serving's row format: one instance per plot, a string or ``{"text": "...", "title": "..."}``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"instances": ["A ghost haunts a lighthouse.",
                                    {"text": "Two sisters open a bakery.", "title": "Sweet Bean"}]}]})

    signature_name: Optional[StrictStr] = Field(None, description="accepted and ignored (one signature)")
    instances: list[Union[StrictStr, dict[str, StrictStr]]]


class ErrorDetail(BaseModel):
    field: str = Field(description="where: a field name, 'body' or a header")
    problem: str


class ErrorResponse(BaseModel):
    """Every error the server sends, from any route."""

    error: str = Field(description="one sentence: what was wrong and how to fix it")
    details: list[ErrorDetail]
    request_id: str = Field(description="also in the X-Request-ID header and the server's log line")


class TFServingResponse(BaseModel):
    predictions: list[list[float]] = Field(description="per instance, every genre's probability (order of /model)")


def _responses(*codes) -> dict:
    what = {400: "not JSON, not UTF-8 or nested too deeply", 404: "no such model name", 408: "the body came too slowly",
            413: "body, text or list over a limit", 415: "Content-Type is not application/json",
            422: "JSON, but not a valid request", 500: "the model failed",
            503: "overloaded (queue full, too many requests, deadline passed): retry after Retry-After seconds"}
    return {c: {"model": ErrorResponse, "description": what[c]} for c in codes}


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, status: int, message: str, details=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.details, self.headers = status, message, details or [], headers


def _request_id(scope) -> str:
    return scope.get("state", {}).get("request_id") or "-"


def _error(status: int, message: str, details=None, request_id: str = "-", headers=None) -> JSONResponse:
    return JSONResponse({"error": message, "details": details or [], "request_id": request_id},
                        status_code=status, headers=headers)


def _describe(errors) -> tuple[int, str, list]:
    """pydantic's errors -> (status, one sentence, details) with the field names, never the input values."""
    details = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "problem": e.get("msg", "invalid")} for e in errors]
    if any(d["field"].startswith("threshold.") for d in details):   # one line for the union's three members
        details = [d for d in details if not d["field"].startswith("threshold.")]
        details.append({"field": "threshold", "problem": "should be a number in (0, 1), 'global' or 'per_genre'"})
    if any(d["field"].startswith("instances.") for d in details):
        details = [d for d in details if not d["field"].startswith("instances.")] + [
            {"field": "instances", "problem": "each instance should be a string or {\"text\": ..., \"title\": ...}"}]
    problems = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return 422, f"Invalid request ({problems}).", details



def read_json_object(body: bytes, content_type: str | None, names=(), also=()) -> dict:
    """Bytes of a request -> a JSON object; :class:`ApiError` (400, 415, 422) says what was wrong.

    No Content-Type is read as JSON; another type than JSON (or one of ``also``) is a 415. ``names``:
    the fields the object may have, for the message when it is not an object.
    """
    if content_type:
        mime = content_type.split(";")[0].strip().lower()
        if mime != "application/json" and not mime.endswith("+json") and mime not in also:
            raise ApiError(415, f"Content-Type is {mime!r}; send the body as JSON with "
                                f"'Content-Type: application/json'.", [{"field": "Content-Type", "problem": mime}])
    if not body.strip():
        raise ApiError(422, "The request body is empty: it must be a JSON object such as {\"text\": \"A plot.\"}.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, f"The request body is not UTF-8 text (byte 0x{body[err.start]:02x} at offset "
                            f"{err.start}): send JSON encoded as UTF-8.",
                       [{"field": "body", "problem": "not UTF-8"}]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        where = f"{err.msg} (line {err.lineno}, column {err.colno})"
        raise ApiError(400, f"The request body is not valid JSON: {where}. Send a JSON object such as "
                            f"{{\"text\": \"A plot.\"}}.", [{"field": "body", "problem": where}]) from None
    except RecursionError:
        raise ApiError(400, "The request body is nested too deeply: send a flat JSON object such as "
                            "{\"text\": \"A plot.\"}.", [{"field": "body", "problem": "nested too deeply"}]) from None
    if not isinstance(data, dict):
        listed = " (with " + ", ".join(f'"{n}"' for n in names) + ")" if names else ""
        raise ApiError(422, f"The request body must be a JSON object{listed}, not a JSON "
                            f"{type(data).__name__.replace('str', 'string').replace('dict', 'object')}.",
                       [{"field": "body", "problem": "not a JSON object"}])
    return data


def parse_json_body(body: bytes, content_type: str | None, model, also=()):
    """Bytes of a request -> a validated ``model``; :class:`ApiError` (400, 415, 422) says what was wrong."""
    data = read_json_object(body, content_type, list(model.model_fields), also)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        status, message, details = _describe(err.errors(include_url=False, include_input=False))
        raise ApiError(status, message, details) from None


def _too_long(where: str, text: str, limits: dict) -> ApiError:
    return ApiError(413, f"{where} has {len(text):,} characters; the limit is {limits['max_chars']:,}. "
                         f"Send a plot summary, not a whole screenplay.")


def _check_texts(texts: list[str], limits: dict, name: str) -> list[str]:
    if len(texts) > limits["max_texts"]:
        raise ApiError(413, f"{len(texts)} texts in one request; the limit is {limits['max_texts']}. "
                            f"Split them over several requests.")
    for i, t in enumerate(texts):
        where = name if name == "text" else f"{name}[{i}]"
        if not t.strip():
            raise ApiError(422, f"{where} is empty: give at least one sentence describing the movie.")
        if len(t) > limits["max_chars"]:
            raise _too_long(where, t, limits)
    return texts


def check_limits(data: dict, limits: dict) -> int:
    """413 for a ``/predict`` body over the limits, read before validation (which may quote nothing of
    it); returns the number of texts. Values of the wrong type are left to the request model."""
    for name in ("texts", "titles"):
        items = data.get(name)
        if isinstance(items, list) and len(items) > limits["max_texts"]:
            raise ApiError(413, f"{len(items)} {name} in one request; the limit is {limits['max_texts']}. "
                                f"Split them over several requests.")
    named = [(n, data.get(n)) for n in ("text", "title")]
    for name in ("texts", "titles"):
        if isinstance(data.get(name), list):
            named += [(f"{name}[{i}]", t) for i, t in enumerate(data[name])]
    for where, t in named:
        if isinstance(t, str) and len(t) > limits["max_chars"]:
            raise _too_long(where, t, limits)
    return len(data["texts"]) if isinstance(data.get("texts"), list) else 1


def read_request(body: bytes, content_type: str | None, names, limits: dict, scope) -> dict:
    """A request's JSON object, read the strict way (:func:`read_json_object`) and held to ``limits``
    (:func:`check_limits`); the number of texts goes to the request's log line. :class:`ApiError` otherwise."""
    data = read_json_object(body, content_type, names)
    scope.setdefault("state", {}).setdefault("log", {})["texts"] = check_limits(data, limits)
    return data


class JSONBodyRoute(APIRoute):
    """A route whose body is JSON reads it the API's way before FastAPI validates it against the request
    model (FastAPI's "custom APIRoute class"): a wrong Content-Type (415), bytes that are not UTF-8 or
    not JSON (400, with line and column), a body that is not an object (422) and the limits (413) all
    get the one error shape; FastAPI then validates the object already parsed (not parsed twice)."""

    def get_route_handler(self):
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        names = list(getattr(self.body_field.field_info.annotation, "model_fields", ()))

        async def checked(request: Request) -> Response:
            data = read_request(await request.body(), request.headers.get("content-type"), names,
                                request.app.state.limits, request.scope)
            request._json = data   # Starlette's cache of request.json(), which FastAPI reads
            return await handler(request)

        return checked


# --------------------------------------------------------------------------- the guard (ASGI middleware)


class Guard:
    """Outermost ASGI layer: request id, body limit on received bytes, body and request timeouts,
    the concurrency limit, metrics and one JSON log line per request.

    The body is read here, chunk by chunk, whatever its framing (Content-Length or chunked): the
    413 comes as soon as ``max_body_bytes`` is passed, so memory stays bounded; then the app
    reads the buffered body. A plain ASGI class (``@app.middleware("http")`` costs a task per request).
    """

    def __init__(self, app, settings: dict, metrics: Metrics, model: str, direct=None):
        self.app, self.settings, self.metrics, self.model = app, settings, metrics, model
        self.limit = int(settings["max_body_bytes"])
        self.inflight = 0
        # Starlette builds its middleware when the first request comes, after every route exists
        self.direct = direct() if direct is not None else None   # a DirectRoute for POST /predict

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = length = content_type = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                rid = value.decode("latin-1")
            elif key == b"content-length":
                length = value
            elif key == b"content-type" and content_type is None:   # the first, as Starlette reads it
                content_type = value.decode("latin-1")
        if rid is None or not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        info = {"status": 0, "texts": 0, "bytes": 0}
        scope["state"]["log"] = info
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), rid_header]}
            await send(message)

        async def refuse(status, message, details=None, headers=None):
            if not info["status"]:
                await _error(status, message, details, rid, headers)(scope, receive, send_with_id)

        self.inflight += 1
        self.metrics.inflight = self.inflight
        try:
            if self.inflight > self.settings["max_concurrency"] and scope.get("path") not in UNCAPPED:
                await refuse(503, f"The server is answering {self.settings['max_concurrency']} requests "
                                  f"already: retry in a second.", headers={"Retry-After": "1"})
                return
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                await refuse(413, f"The request body has {length.decode('latin-1')[:20]} bytes; the limit is "
                                  f"{self.limit:,}.", headers={"Connection": "close"})
                return
            try:
                body = await self._read_body(receive, scope)
            except _BodyTooLarge as err:
                await refuse(413, f"The request body passed the limit of {self.limit:,} bytes "
                                  f"({err.received:,} received, sent in chunks).", headers={"Connection": "close"})
                return
            except TimeoutError:
                await refuse(408, f"The request body did not arrive within {self.settings['body_timeout_s']:g} s.",
                             headers={"Connection": "close"})
                return
            except _ClientGone:
                info["status"] = 499
                return
            info["bytes"] = len(body)
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            try:
                async with asyncio.timeout(self.settings["request_timeout_s"]):
                    direct = self.direct if scope["path"] == "/predict" and scope["method"] == "POST" else None
                    if direct is None or not await direct(scope, body, content_type, send_with_id):
                        await self.app(scope, replay, send_with_id)
            except TimeoutError:
                await refuse(503, f"The request was not answered within {self.settings['request_timeout_s']:g} s "
                                  f"(the model is busy): retry shortly.", headers={"Retry-After": "1"})
            except Exception as exc:   # a crash below: the app's 500 answered here, with the request id
                if info["status"]:     # (Starlette's would come from outside this guard, without it)
                    raise
                await (await handled(scope["app"], scope, exc))(scope, _no_more_body, send_with_id)
        finally:
            self.inflight -= 1
            self.metrics.inflight = self.inflight
            seconds = time.perf_counter() - start
            path = scope.get("path", "")
            self.metrics.observe_request(path, info["status"], seconds)
            if info["status"] == 200 and info["texts"]:   # a model route answered
                counts = self.metrics.counts
                counts["requests"] = counts.get("requests", 0) + 1
                counts["texts"] = counts.get("texts", 0) + info["texts"]
            if self.settings["access_log"]:
                access.info(json.dumps({
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "request_id": rid,
                    "method": scope.get("method"), "path": path[:200], "status": info["status"],
                    "latency_ms": round(seconds * 1000, 2), "model": self.model, "texts": info["texts"],
                    "bytes": info["bytes"]}))

    async def _read_body(self, receive, scope) -> bytes:
        chunks, received, more = [], 0, True
        async with asyncio.timeout(self.settings["body_timeout_s"]):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGone()
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.limit:
                    raise _BodyTooLarge(received)
                if chunk:
                    chunks.append(chunk)
                more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class DirectRoute:
    """``POST /predict`` without FastAPI's per-request layers: the same endpoint, called by the guard.

    FastAPI's routing, dependency solving and middleware cost about 0.2 ms of CPU per request on their
    own (``python -m utils.loadtest --floor``), as much as a TF-IDF pass. For the one route that carries
    the load, the guard does what FastAPI would do: it reads the body the :class:`JSONBodyRoute` way,
    validates it against the endpoint's request model and calls the endpoint, notebook 09's function
    itself; an exception goes to the app's own exception handlers. A body that is not a valid request
    goes through FastAPI instead, so every error keeps one source. Only an endpoint whose one parameter
    is its body model qualifies (:meth:`of` returns None otherwise).
    """

    def __init__(self, app: FastAPI, route: APIRoute):
        self.app = app
        self.endpoint = route.endpoint
        self.model = route.body_field.field_info.annotation
        self.names = list(self.model.model_fields)
        self.answered = 0   # requests answered here rather than by FastAPI

    @classmethod
    def of(cls, app: FastAPI, path: str) -> Optional["DirectRoute"]:
        for route in app.routes:
            if isinstance(route, APIRoute) and route.path == path and "POST" in route.methods:
                d = route.dependant
                simple = (len(d.body_params) == 1 and not (d.query_params or d.path_params or d.header_params
                          or d.cookie_params or d.dependencies) and d.request_param_name is None
                          and isinstance(getattr(route.body_field.field_info, "annotation", None), type)
                          and issubclass(route.body_field.field_info.annotation, BaseModel))
                return cls(app, route) if simple else None
        return None

    async def __call__(self, scope, body: bytes, content_type: str | None, send) -> bool:
        """Answer the request and return True; False when it is not a valid request (FastAPI answers)."""
        try:
            req = self.model.model_validate(read_request(body, content_type, self.names, self.app.state.limits, scope))
        except (ApiError, ValidationError):
            return False
        try:
            response = await self.endpoint(req)
        except Exception as exc:
            response = await handled(self.app, scope, exc)
        await response(scope, _no_more_body, send)
        self.answered += 1
        return True


async def handled(app: FastAPI, scope, exc: Exception) -> Response:
    """The app's exception handler's answer to ``exc`` (looked up by the class's MRO, as Starlette does;
    the ``Exception`` handler for anything else)."""
    handlers = app.exception_handlers
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None) or handlers[Exception]
    return await handler(Request(scope), exc)


async def _no_more_body():
    return {"type": "http.disconnect"}


class _BodyTooLarge(Exception):
    def __init__(self, received):
        self.received = received


class _ClientGone(Exception):
    pass


# --------------------------------------------------------------------------- the app


def _model_fn(served):
    """What the model thread runs on a batch: probabilities and (known, total) words per text, checked."""
    from utils.serving.export import ServedModel

    fused = getattr(served.predictor, "predict_with_known_words", None)
    if fused is not None and isinstance(served, ServedModel) and served._fast is None:
        def run_model(texts):   # TF-IDF: one pass of the arrays gives both
            probs, known = fused(texts)
            return np.asarray(probs, np.float32), np.asarray(known, np.int64).reshape(len(texts), 2)
    else:
        run_model = read_plots(served)   # the notebook's
    n_genres = len(served.genres)

    def run(texts):
        probs, known = run_model(texts)
        probs = np.asarray(probs)
        if probs.shape != (len(texts), n_genres) or not np.isfinite(probs).all():
            log.error("model returned shape %s or non-finite values", probs.shape)
            raise ModelFailed("invalid probabilities")
        return probs, known
    return run


def _cheap(served) -> bool:
    """A model whose pass is known to cost well under a millisecond: a loaded TF-IDF export (never a stand-in
    or a neural model, whose passes belong in the model thread)."""
    from utils.serving.export import ServedModel

    return isinstance(served, ServedModel) and served.kind == "tfidf_logreg"


def lean_logging() -> None:
    """One access-log line per request: skip what no formatter of the server prints (the caller's file and
    line, thread and process names), as the logging HOWTO's "Optimization" section says (0.1 ms a request
    here). Process-wide, so called by the server's entry points, not by :func:`create_app`."""
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def create_app(served, limits: dict | None = None, window_ms: float | None = None,
               max_batch: int = BATCHING["max_batch"], **guards) -> FastAPI:
    """The FastAPI app serving ``served`` (a :class:`utils.serving.export.ServedModel`).

    The routes ``POST /predict`` and ``GET /health`` are notebook 09's (:func:`utils.lessons.serving.make_app`);
    this adds the strict body reader, limits, guards, error shape, logs, metrics and the other routes.
    ``guards`` override :data:`GUARDS` (``max_queue``, ``max_concurrency``, ``body_timeout_s``,
    ``request_timeout_s``, ``stall_s``, ``access_log``, ``gc_freeze``, ``direct_predict``). Every model runs behind a
    :class:`~utils.serving.batching.BoundedBatcher`, in its own thread, so the event loop keeps reading
    requests meanwhile. Neural models (``served.batched``) wait ``window_ms`` for company (default
    :data:`WINDOW_MS` for the kind, else 5);
    TF-IDF does not wait (``window_ms=0``: a pass costs well under a millisecond), and a loaded TF-IDF export
    runs requests of up to :data:`INLINE_CHARS` characters on the event loop itself when nothing is queued
    (no thread hop); longer ones, and requests that arrive while others wait, go to its thread.
    """
    unknown = set(guards) - set(GUARDS)
    if unknown:
        raise TypeError(f"create_app: unknown settings {sorted(unknown)}; known: {sorted(GUARDS)}.")
    limits = {**LIMITS, **(limits or {})}
    settings = {**GUARDS, **guards, **limits}
    card = served.card
    version = card["version"]
    if window_ms is None:
        window_ms = WINDOW_MS.get(served.kind, BATCHING["window_ms"]) if served.batched else 0.0
    metrics = Metrics(version)
    batcher = BoundedBatcher(_model_fn(served), max_batch=max_batch, window_ms=window_ms,
                             max_queue=settings["max_queue"], on_batch=metrics.observe_batch,
                             inline_chars=INLINE_CHARS if _cheap(served) else 0)
    metrics.batcher = batcher
    started = time.time()
    counts = {"requests": 0, "texts": 0, "errors": 0}
    metrics.counts = counts

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if settings["gc_freeze"]:
            # TensorFlow and Keras leave ~400,000 Python objects behind; a full garbage collection walks
            # them all (0.2-1 s on a busy 2-core machine) while every request waits: the BiLSTM's p99.
            # Freezing moves what exists now (the model, the libraries) out of the collector's sight.
            gc.collect()
            gc.freeze()
        gc.callbacks.append(metrics.observe_gc)
        yield
        gc.callbacks.remove(metrics.observe_gc)
        batcher.close()

    # strict_content_type=False: a body without Content-Type is read as JSON (JSONBodyRoute checked it)
    app = FastAPI(title="Movie genres", lifespan=lifespan, version=version, docs_url=None, redoc_url=None,
                  strict_content_type=False,
                  description=f"Genres of a movie from its plot: {card['name']} trained on {card['dataset']}"
                              f" (input: {card.get('text') or 'plot'}). "
                              f"Limits: {limits['max_chars']:,} characters per text, {limits['max_texts']} "
                              f"texts and {limits['max_body_bytes']:,} bytes per request. Every error is "
                              f"`{{\"error\", \"details\", \"request_id\"}}`.")
    app.router.route_class = JSONBodyRoute
    app.state.served, app.state.limits, app.state.metrics = served, limits, metrics
    app.state.settings = settings
    app.add_middleware(Guard, settings=settings, metrics=metrics, model=version,
                       direct=(lambda: DirectRoute.of(app, "/predict")) if settings["direct_predict"] else None)

    def reject(request: Request, status: int, message: str, details=None, headers=None) -> JSONResponse:
        counts["errors"] += 1
        log.info("rejected %s %s (%d): %s", request.method, request.url.path, status, message[:200])
        return _error(status, message, details, _request_id(request.scope), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        status, message, details = _describe(exc.errors())
        return reject(request, status, message, details)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return reject(request, exc.status, exc.message, exc.details, exc.headers)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull):
        return reject(request, 503, f"The model's queue is full ({exc.limit} texts waiting): retry in "
                                    f"{exc.retry_after} s.", headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ModelFailed)
    async def model_failed(request: Request, exc: ModelFailed):
        return reject(request, 500, f"The model failed on this request ({exc}); the server log says more.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):   # the notebook's HTTPExceptions too
        method, path = request.method, request.url.path[:100]
        if exc.status_code == 404:
            message = (f"Nothing at {method} {path}: the API has POST /predict, POST /v1/models/<name>:predict, "
                       f"GET /health, /ready, /metrics, /model, /docs and the page at /.")
        elif exc.status_code == 405:
            message = f"{method} is not allowed on {path}: use {exc.headers.get('Allow', 'another method')}."
        else:
            message = str(exc.detail)
        return reject(request, exc.status_code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):   # the message may quote the input: its type only
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return reject(request, 500, f"The server failed on this request ({type(exc).__name__}); its log says more.")

    # notebook 09's POST /predict and GET /health, with this server's batcher, errors and counts
    make_app(served, batcher=batcher, app=app, responses=_responses(400, 408, 413, 415, 422, 500, 503),
             health=lambda: {"pid": os.getpid(), "uptime_s": round(time.time() - started, 1), **counts})

    @app.get("/predict", summary="Genres of one plot, from the query string (for proxies that drop POST)",
             responses={200: {"model": PredictResponse}, **_responses(400, 413, 422, 500, 503)})
    async def predict_get(request: Request, text: str, title: Optional[str] = None, top_k: Optional[int] = None,
                          threshold: Optional[str] = None):
        """``GET /predict?text=...``: the same answer as ``POST /predict`` with ``{"text": ...}``. For
        clients behind a proxy that drops POST (Colab's port proxy, colabtools#3925); POST stays the API.
        The plot travels in the URL, so the access log writes the path only, never the query."""
        if threshold is not None and threshold not in ("global", "per_genre"):
            try:
                threshold = float(threshold)
            except ValueError:
                raise ApiError(422, f"threshold must be a number in (0, 1), 'global' or 'per_genre', not "
                                    f"{threshold[:40]!r}.", [{"field": "threshold", "problem": "not a number"}]) from None
        request.scope["state"]["log"]["texts"] = check_limits({"text": text, "title": title}, limits)
        try:
            req = PredictRequest(text=text, title=title, top_k=top_k, threshold=threshold)
        except ValidationError as err:
            raise ApiError(422, "The query does not fit: " + "; ".join(e["msg"] for e in err.errors()[:3])) from None
        return JSONResponse(await answer_request(req, served, batcher))

    @app.post("/v1/models/{name}:predict", summary="TensorFlow Serving's REST predict (row format)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/TFServingRequest"}}}}},
              responses={200: {"model": TFServingResponse}, **_responses(400, 404, 408, 413, 415, 422, 500, 503)})
    async def tf_serving_predict(name: str, request: Request):
        if name != card["name"]:
            raise ApiError(404, f"No model named {name[:60]!r} here: this server has {card['name']!r}.",
                           [{"field": "name", "problem": "unknown model"}])
        # curl -d (TensorFlow Serving's documented call) sends form-urlencoded: read as JSON like TF Serving does
        req = parse_json_body(await request.body(), request.headers.get("content-type"), TFServingRequest,
                              also=("application/x-www-form-urlencoded",))
        if not req.instances:
            raise ApiError(422, "\"instances\" is empty: give at least one plot.")
        plots, titles = [], []
        for i, inst in enumerate(req.instances):
            if isinstance(inst, dict):
                if "text" not in inst or not set(inst) <= {"text", "title"}:
                    raise ApiError(422, f"instances[{i}] must be a string or {{\"text\": \"...\"}} (and \"title\").",
                                   [{"field": f"instances.{i}", "problem": "an object needs 'text' (and 'title')"}])
                plots.append(inst["text"])
                titles.append(inst.get("title"))
            else:
                plots.append(inst)
                titles.append(None)
        _check_texts(plots, limits, "instances")
        for i, t in enumerate(titles):
            if t and len(t) > limits["max_chars"]:
                raise _too_long(f"instances[{i}].title", t, limits)
        request.scope["state"]["log"]["texts"] = len(plots)
        probs, _ = await batcher.predict([for_model(card, p, t)[0] for p, t in zip(plots, titles)])
        return JSONResponse({"predictions": [[float(p) for p in row] for row in probs]})

    @app.get("/v1/models/{name}", summary="TensorFlow Serving's model status")
    async def tf_serving_status(name: str):
        if name != card["name"]:
            raise ApiError(404, f"No model named {name[:60]!r} here: this server has {card['name']!r}.")
        return {"model_version_status": [{"version": version.rsplit("-", 1)[-1], "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    @app.get("/ready", summary="Readiness: the model thread answers a tiny prediction",
             responses={200: {"description": "ready"}, **_responses(503)})
    async def ready(request: Request):
        alive, why = batcher.health(settings["stall_s"])
        if not alive:
            raise ApiError(503, f"Not ready: {why}.", headers={"Retry-After": "5"})
        fresh = batcher.last_pass is not None and time.perf_counter() - batcher.last_pass < 1.0
        if not fresh:   # nothing passed through the model in the last second: try one tiny plot
            try:
                async with asyncio.timeout(min(5.0, settings["stall_s"])):
                    await batcher.predict(["A short plot to check that the model answers."])
            except (TimeoutError, QueueFull):
                raise ApiError(503, "Not ready: the model did not answer a tiny prediction in time.",
                               headers={"Retry-After": "5"}) from None
        return {"status": "ready", "model": version, "queued_texts": batcher.waiting}

    @app.get("/metrics", summary="Prometheus metrics (text format 0.0.4)", response_class=Response)
    async def prometheus():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/model", summary="The model card: genres, thresholds, test scores, dataset, split, version")
    async def model():
        return {**card, "limits": limits,
                "batching": {"window_ms": window_ms, "max_batch": max_batch, "max_queue": settings["max_queue"]}}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Movie genres: API",
                                   swagger_js_url="/static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static/docs/swagger-ui.css",
                                   swagger_favicon_url="/static/docs/favicon-32x32.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return get_redoc_html(openapi_url="/openapi.json", title="Movie genres: API",
                              redoc_js_url="/static/docs/redoc.standalone.js",
                              redoc_favicon_url="/static/docs/favicon-32x32.png", with_google_fonts=False)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def openapi():   # TFServingRequest is read by hand (form-urlencoded too): its schema is added here
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["TFServingRequest"] = TFServingRequest.model_json_schema(
                ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def app_from_env() -> FastAPI:
    """The app factory of ``python -m utils.serve --workers N``: each worker process loads the model
    and builds its app from the options that the command put in ``$COURSE_SERVE_OPTIONS`` (JSON)."""
    from utils.serving.export import load_export
    from utils.serving.protocol import configure
    from utils.tools.predict import resolve_model_dir

    options = json.loads(os.environ[ENV])
    configure(options.get("header_timeout_s"), options.get("max_connections"))
    lean_logging()
    served = load_export(resolve_model_dir(options["model"], options.get("dataset")))
    return create_app(served, limits=options.get("limits"), window_ms=options.get("window_ms"),
                      max_batch=options.get("max_batch", BATCHING["max_batch"]), **options.get("guards", {}))
