"""Load-test the serving API over loopback: requests/s and p50/p95/p99 latency per concurrency level.

    python -m utils.loadtest --model tfidf_logreg --model bilstm_w2v      # starts each server itself
    python -m utils.loadtest --model bilstm_w2v --train-if-missing       # fresh clone: FAST model first
    python -m utils.loadtest --url http://127.0.0.1:8000 --clients 1,8,32  # a server already running
    python -m utils.loadtest --model tfidf_logreg --clients 1,8,32,200 --requests 2000 --json results/serving.json
    python -m utils.loadtest --model tfidf_logreg --transform-cost         # CPU ms per text of TF-IDF's transform
    python -m utils.loadtest --floor --model tfidf_logreg --clients 8      # beside FastAPI + uvicorn alone

Bounded: at most ``--requests`` requests and ``--seconds`` seconds per level; loopback only.
The goals (2-core CPU, load average below 1): TF-IDF >= 2,000 req/s with p99 < 10 ms at 8 clients;
BiLSTM >= 1,000 req/s with p99 < 100 ms at 32 clients; at 200 clients no error other than deliberate
503s and p99 < 1 s. The machine and its load average before and during each level are printed;
when the load average passes the number of cores the verdict is "contended", never "met". For a server
the command starts, each level also gives the server's and the client's CPU milliseconds per request.
"""
from __future__ import annotations

import argparse
import json
import sys

from utils.serving import loadtest as lt

GOALS = {"tfidf_logreg": (8, 2000, 10), "bilstm_w2v": (32, 1000, 100)}   # clients, req/s, p99 ms
CROWD = (200, 1000)   # clients, p99 ms of answered requests; no error but 503


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--clients takes numbers separated by commas, not {text!r}") from None
    if not levels or min(levels) < 1 or max(levels) > 256:
        raise argparse.ArgumentTypeError("--clients: each level between 1 and 256")
    return levels


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m utils.loadtest", description=__doc__.split("\n\n")[0])
    target = p.add_mutually_exclusive_group()
    target.add_argument("--model", action="append", help="model to serve and test (repeatable): name, model or export folder")
    target.add_argument("--url", help="a server already running on this machine")
    p.add_argument("--floor", action="store_true",
                   help="also measure the smallest FastAPI app (utils/serving/floor_app.py: no model, no guard, no "
                        "access log) on the same uvicorn: what the framework alone costs on this machine")
    p.add_argument("--dataset", help="dataset of the models and of the test plots (default: COURSE_DATASET)")
    p.add_argument("--clients", type=_levels, default=list(lt.DEFAULT_LEVELS), help="levels, e.g. 1,8,32,200")
    p.add_argument("--requests", type=int, default=1000, help="requests per level (default %(default)s, max 20000)")
    p.add_argument("--seconds", type=float, default=20.0, help="time limit per level (default %(default)s, max 120)")
    p.add_argument("--train-if-missing", action="store_true",
                   help="train a missing tfidf_logreg, bilstm_w2v or minilm_frozen at FAST size first "
                        "(before the machine's load is read)")
    p.add_argument("--server-args", default="", help="extra options for python -m utils.serve, e.g. '--no-gc-freeze'")
    p.add_argument("--transform-cost", action="store_true",
                   help="only measure a TF-IDF model's CPU time per text (arrays vs scikit-learn), no server")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return p


def verdict(row: dict, cores, rps: float | None, p99: float, crowd: bool = False) -> str:
    """'met', 'NOT met' or 'contended (...)': never a verdict on a machine busier than its cores."""
    if lt.contended(row["load_during"], cores):
        return f"contended (load average {row['load_during']:.1f} > {cores} cores): not judged"
    if crowd:
        ok = row["errors"] == row["refused"] and row["p99_ms"] < p99
    else:
        ok = row["rps"] >= rps and row["p99_ms"] < p99 and row["errors"] == 0
    return "met" if ok else "NOT met"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.model or args.url or args.floor):
        parser.error("give --model, --url or --floor")
    if args.transform_cost and not args.model:
        parser.error("--transform-cost needs --model")
    if not 1 <= args.requests <= 20000 or not 0 < args.seconds <= 120:
        print("error: --requests must be 1..20000 and --seconds 0..120 (the test is bounded)", file=sys.stderr)
        return 2
    if args.train_if_missing and args.model:   # before any figure: training loads the machine
        from utils.serving.train import model_or_trained

        try:
            args.model = [model_or_trained(m, args.dataset) for m in args.model]
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    texts = lt.sample_texts(args.dataset)
    machine = lt.machine()
    cores = machine["cores"]
    report = {"machine": machine, "texts": len(texts), "runs": []}
    print(f"machine: {machine['cpu']}, {cores} cores, load average before {machine['load_average_1_5_15']} "
          f"(1, 5, 15 min)")
    if args.transform_cost:
        from utils.tools.predict import resolve_model_dir

        for name in args.model or []:
            cost = lt.transform_cost(resolve_model_dir(name, args.dataset), texts)
            print(f"{name}: {cost['arrays_ms']:.3f} ms CPU per text from the saved arrays (target <= 0.3), "
                  f"{cost['sklearn_ms']:.3f} ms with scikit-learn's transform; {cost['texts']} test plots, "
                  f"load average {cost['load_before']} -> {cost['load_after']}")
            report["runs"].append({"model": name, "transform_cost": cost})
        _write(args.json, report)
        return 0
    targets = [(m, None) for m in args.model or []] + ([(args.url, args.url)] if args.url else [])
    if args.floor:
        targets.append((lt.FLOOR, None))
    for name, url in targets:
        proc = None
        try:
            if url is None:
                from utils.tools.predict import resolve_model_dir

                folder = name if name == lt.FLOOR else str(resolve_model_dir(name, args.dataset))
                proc, url = lt.start_server(folder, args.server_args.split() if name != lt.FLOOR else ())
            else:
                lt.check_loopback(url)
            health = lt.wait_healthy(url, 10)
            rows = lt.load_test(url, texts, args.clients, args.requests, args.seconds,
                                server_pid=proc.pid if proc is not None else None)
        except (ValueError, RuntimeError, TimeoutError, OSError) as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            if not args.train_if_missing and "does not exist" in str(err):
                from utils.serving.train import MISSING_HINT

                print(MISSING_HINT, file=sys.stderr)
            return 2
        finally:
            if proc is not None:
                lt.stop_server(proc)
        model = health.get("model", name)
        print()
        print(lt.format_table(model, rows))
        goal = next((g for key, g in GOALS.items() if str(model).startswith(key)), None)
        row = next((r for r in rows if goal and r["clients"] == goal[0]), None)
        if row:
            clients, rps, p99 = goal
            print(f"goal at {clients} clients: >= {rps} req/s and p99 < {p99} ms -> {row['rps']:.0f} req/s, "
                  f"p99 {row['p99_ms']:.1f} ms: {verdict(row, cores, rps, p99)}")
        crowd = next((r for r in rows if r["clients"] == CROWD[0]), None)
        if crowd:
            print(f"goal at {CROWD[0]} clients: no error but 503, p99 < {CROWD[1]} ms -> {crowd['errors']} errors "
                  f"({crowd['refused']} of them 503), p99 {crowd['p99_ms']:.1f} ms: "
                  f"{verdict(crowd, cores, None, CROWD[1], crowd=True)}")
        report["runs"].append({"model": model, "levels": rows})
    report["load_average_after"] = lt.machine()["load_average_1_5_15"]
    print(f"\nload average after: {report['load_average_after']}")
    _write(args.json, report)
    return 0


def _write(path, report) -> None:
    if path:
        from pathlib import Path

        from utils.files import atomic_write_json

        atomic_write_json(Path(path), report)
