"""Serve a trained model over HTTP: a REST API, OpenAPI docs and a web page.

    python -m utils.serve --model tfidf_logreg --train-if-missing          # fresh clone: trains a FAST model first
    python -m utils.serve --model models/netflix/tfidf_logreg              # http://127.0.0.1:8000/
    python -m utils.serve --model exports/netflix/minilm_frozen --port 8080
    python -m utils.serve --model bilstm_w2v --export exports/netflix/bilstm_w2v   # write an export, then exit
    python -m utils.serve --model exports/netflix/tfidf_logreg --workers 2        # one process per core

``--model`` is an export folder (:mod:`utils.serving.export`), a model folder, or a model name under
``models/<dataset>/``. The server listens on 127.0.0.1 unless ``--host`` says otherwise
(``--host 0.0.0.0`` inside a container). See :mod:`utils.serving.app` for the endpoints and limits.

When more workers help: each worker is a process with its own copy of the model and its own
model thread. TF-IDF is CPU-bound per request (no batching gain), so up to one worker per core
raises throughput. A neural model already fills a core with batches of many requests; a second
worker splits the requests (smaller batches) and doubles the model's memory, so it helps only
when cores sit idle under load, which one Python process often leaves them (its event loop and
model thread share one interpreter lock). Each worker counts its own /metrics. On Linux every worker listens
on the port with a socket of its own and the kernel spreads connections over them
(utils.serving.workers); elsewhere they share uvicorn's one socket.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from utils.serving.app import BATCHING, ENV, GUARDS, LIMITS, WINDOW_MS
from utils.serving.protocol import DEFAULTS as PROTOCOL


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m utils.serve", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 3)[3], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="export folder, model folder or model name under models/<dataset>/")
    p.add_argument("--dataset", help="dataset of a model given by name (default: COURSE_DATASET)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own model (default 1; see below for when more help)")
    p.add_argument("--export", metavar="DEST", help="write the model as an export folder at DEST and exit")
    p.add_argument("--train-if-missing", action="store_true",
                   help="train a missing tfidf_logreg / bilstm_w2v / minilm_frozen at FAST size first")
    b = p.add_argument_group("batching")
    b.add_argument("--window-ms", type=float, default=None,
                   help=f"micro-batching window in milliseconds (default {WINDOW_MS['bilstm']:g} for the BiLSTM, "
                        f"{BATCHING['window_ms']:g} for the other neural models, 0 for TF-IDF)")
    b.add_argument("--max-batch", type=int, default=BATCHING["max_batch"],
                   help="most texts in one forward pass (default %(default)s)")
    g = p.add_argument_group("limits and guards (each answer past them is a JSON error)")
    g.add_argument("--max-chars", type=int, default=LIMITS["max_chars"], help="longest text accepted (default %(default)s; 413)")
    g.add_argument("--max-texts", type=int, default=LIMITS["max_texts"], help="most texts in one request (default %(default)s; 413)")
    g.add_argument("--max-body-bytes", type=int, default=LIMITS["max_body_bytes"],
                   help="largest request body, counted on the bytes received, chunked or not (default %(default)s; 413)")
    g.add_argument("--max-queue", type=int, default=GUARDS["max_queue"],
                   help="most texts waiting for the model; past it 503 with Retry-After (default %(default)s)")
    g.add_argument("--max-concurrency", type=int, default=GUARDS["max_concurrency"],
                   help="most requests being answered at once; past it 503 with Retry-After (default %(default)s)")
    g.add_argument("--max-connections", type=int, default=PROTOCOL["max_connections"],
                   help="most open connections; past it 503 and closed (default %(default)s)")
    g.add_argument("--header-timeout", type=float, default=PROTOCOL["header_timeout_s"],
                   help="seconds for a request's line and headers to arrive; then 408 and closed (default %(default)s)")
    g.add_argument("--body-timeout", type=float, default=GUARDS["body_timeout_s"],
                   help="seconds for the whole body to arrive; then 408 and closed (default %(default)s)")
    g.add_argument("--request-timeout", type=float, default=GUARDS["request_timeout_s"],
                   help="seconds to answer a request once its body is in, queue included; then 503 (default %(default)s)")
    g.add_argument("--keep-alive", type=float, default=5.0,
                   help="seconds an idle keep-alive connection stays open (default %(default)s)")
    g.add_argument("--stall", type=float, default=GUARDS["stall_s"],
                   help="/ready answers 503 when one batch has run longer than this (default %(default)s s)")
    p.add_argument("--gc-freeze", action=argparse.BooleanOptionalAction, default=True,
                   help="freeze the objects loaded at start-up (model, TensorFlow) out of Python's garbage collector: "
                        "a full collection over them stalls every request for 0.2-1 s (default on)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                   help="one JSON line per request: id, method, path without query, status, latency, model "
                        "version, number of texts; never a text (default on)")
    p.add_argument("--direct-predict", action=argparse.BooleanOptionalAction, default=True,
                   help="POST /predict with a valid JSON body calls the endpoint without FastAPI's per-request "
                        "layers (about 0.2 ms of CPU a request); the same answers and errors (default on)")
    return p


def _options(args, model: str) -> dict:
    return {"model": model, "dataset": args.dataset, "window_ms": args.window_ms, "max_batch": args.max_batch,
            "limits": {"max_chars": args.max_chars, "max_texts": args.max_texts,
                       "max_body_bytes": args.max_body_bytes},
            "guards": {"max_queue": args.max_queue, "max_concurrency": args.max_concurrency,
                       "body_timeout_s": args.body_timeout, "request_timeout_s": args.request_timeout,
                       "stall_s": args.stall, "access_log": args.access_log, "gc_freeze": args.gc_freeze,
                       "direct_predict": args.direct_predict},
            "header_timeout_s": args.header_timeout, "max_connections": args.max_connections}


def _log_config() -> dict:
    """Text lines for the server's messages; the access log's lines are bare JSON objects."""
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                           "json": {"format": "%(message)s"}},
            "handlers": {"text": {"class": "logging.StreamHandler", "formatter": "text", "stream": "ext://sys.stderr"},
                         "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
            "loggers": {"utils.serving": {"handlers": ["text"], "level": "INFO", "propagate": False},
                        "utils.serving.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
                        "uvicorn": {"handlers": ["text"], "level": "INFO", "propagate": False},
                        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}}}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1 or args.max_queue < 1 or args.max_concurrency < 1 or args.max_connections < 1:
        parser.error("--workers, --max-queue, --max-concurrency and --max-connections must be >= 1")
    if min(args.header_timeout, args.body_timeout, args.request_timeout, args.keep_alive, args.stall) <= 0:
        parser.error("timeouts must be > 0 seconds")
    from utils.modelfiles.predictor import ModelFormatError

    try:
        model = args.model
        if args.train_if_missing:
            from utils.serving.train import model_or_trained

            model = model_or_trained(model, args.dataset)
        from utils.tools.predict import resolve_model_dir

        folder = resolve_model_dir(model, args.dataset)
        if args.export:
            from utils.serving.export import export_model

            print(f"exported to {export_model(folder, args.export, args.dataset)}")
            return 0
        from utils.serving.export import load_export, read_card

        if args.workers == 1:
            served = load_export(folder)
            version, kind, n_genres = served.version, served.kind, len(served.genres)
        else:   # every worker loads its own copy; here only check the folder
            card = read_card(folder)
            version, kind, n_genres = card["version"], card["kind"], len(card["genres"])
    except (ModelFormatError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        if not args.train_if_missing and "does not exist" in str(err):
            from utils.serving.train import MISSING_HINT

            print(MISSING_HINT, file=sys.stderr)
        return 2

    import uvicorn

    from utils.serving.protocol import configure

    options = _options(args, str(folder))
    os.environ[ENV] = json.dumps(options)
    protocol = configure(args.header_timeout, args.max_connections)
    run = {"host": args.host, "port": args.port, "http": protocol, "log_config": _log_config(),
           "access_log": False, "timeout_keep_alive": args.keep_alive, "timeout_graceful_shutdown": 5}
    print(f"serving {version} ({kind}, {n_genres} genres) on http://{args.host}:{args.port}/  "
          f"(docs: /docs; {args.workers} worker{'s' if args.workers > 1 else ''})", flush=True)
    if args.workers == 1:
        from utils.serving.app import create_app, lean_logging

        lean_logging()
        app = create_app(served, limits=options["limits"], window_ms=args.window_ms, max_batch=args.max_batch,
                         **options["guards"])
        uvicorn.run(app, **run)
    else:
        from utils.serving.workers import FACTORY, Supervisor, spreads_connections

        if spreads_connections():   # Linux: a listening socket per worker, connections spread by the kernel
            import logging.config

            logging.config.dictConfig(run["log_config"])
            worker_run = {k: v for k, v in run.items() if k not in ("host", "port")}
            try:
                return Supervisor(args.workers, args.host, args.port, worker_run).run()
            except OSError as err:
                print(f"error: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
                return 2
        # elsewhere uvicorn's workers, one shared socket; a worker answers the parent's health pings only once
        # its model is loaded (TensorFlow: tens of seconds)
        uvicorn.run(FACTORY, factory=True, workers=args.workers, timeout_worker_healthcheck=180, **run)
    return 0
