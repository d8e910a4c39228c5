"""Serve a trained model over HTTP: a REST API, OpenAPI docs and a web page.

    python -m utils.serve --model models/netflix/tfidf_logreg            # http://127.0.0.1:8000/
    python -m utils.serve --model exports/netflix/minilm_frozen --port 8080
    python -m utils.serve --model bilstm_w2v --export exports/netflix/bilstm_w2v   # write an export, then exit
    python -m utils.serve --model tfidf_logreg --train-if-missing          # fresh machine: train at FAST size

``--model`` is an export folder (:mod:`utils.serving.export`), a model folder, or a model name under
``models/<dataset>/``. The server listens on 127.0.0.1 unless ``--host`` says otherwise
(``--host 0.0.0.0`` inside a container). See :mod:`utils.serving.app` for the endpoints and limits.
"""
from __future__ import annotations

import argparse
import logging
import sys

from utils.serving.app import BATCHING, LIMITS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m utils.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="export folder, model folder or model name under models/<dataset>/")
    p.add_argument("--dataset", help="dataset of a model given by name (default: COURSE_DATASET)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--window-ms", type=float, default=None,
                   help=f"micro-batching window in milliseconds (default {BATCHING['window_ms']:g} for neural "
                        f"models, 0 for TF-IDF)")
    p.add_argument("--max-batch", type=int, default=BATCHING["max_batch"], help="most texts in one forward pass")
    p.add_argument("--max-chars", type=int, default=LIMITS["max_chars"], help="longest text accepted")
    p.add_argument("--max-texts", type=int, default=LIMITS["max_texts"], help="most texts in one request")
    p.add_argument("--access-log", action="store_true", help="log every request line (method, path, status)")
    p.add_argument("--export", metavar="DEST", help="write the model as an export folder at DEST and exit")
    p.add_argument("--train-if-missing", action="store_true",
                   help="train a missing tfidf_logreg / bilstm_w2v / minilm_frozen at FAST size first")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from utils.modelfiles.predictor import ModelFormatError

    try:
        model = args.model
        if args.train_if_missing:
            from utils.serving.train import TRAINERS, ensure_model

            if model in TRAINERS:
                model = str(ensure_model(model, args.dataset))
        if args.export:
            from utils.serving.export import export_model

            print(f"exported to {export_model(model, args.export, args.dataset)}")
            return 0
        from utils.serving.export import load_export
        from utils.tools.predict import resolve_model_dir

        served = load_export(resolve_model_dir(model, args.dataset))
    except (ModelFormatError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import uvicorn

    from utils.serving.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(served, limits={"max_chars": args.max_chars, "max_texts": args.max_texts},
                     window_ms=args.window_ms, max_batch=args.max_batch)
    print(f"serving {served.version} ({served.kind}, {len(served.genres)} genres) on "
          f"http://{args.host}:{args.port}/  (docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info",
                timeout_graceful_shutdown=5)
    return 0
