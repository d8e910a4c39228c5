"""Load-test the serving API over loopback: requests/s and p50/p95/p99 latency per concurrency level.

    python -m utils.loadtest --model tfidf_logreg --model bilstm_w2v      # starts each server itself
    python -m utils.loadtest --url http://127.0.0.1:8000 --clients 1,8,32  # a server already running
    python -m utils.loadtest --model tfidf_logreg --requests 2000 --seconds 30 --json results/serving.json

Bounded: at most ``--requests`` requests and ``--seconds`` seconds per level; loopback only.
The goals (2-core CPU): TF-IDF >= 300 req/s with p99 < 50 ms at 8 clients; BiLSTM >= 50 req/s
with p99 < 300 ms at 32 clients. Other work on the machine slows both: the load average is printed.
"""
from __future__ import annotations

import argparse
import json
import sys

from utils.serving import loadtest as lt

GOALS = {"tfidf_logreg": (8, 300, 50), "bilstm_w2v": (32, 50, 300)}   # clients, req/s, p99 ms


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
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", action="append", help="model to serve and test (repeatable): name, model or export folder")
    target.add_argument("--url", help="a server already running on this machine")
    p.add_argument("--dataset", help="dataset of the models and of the test plots (default: COURSE_DATASET)")
    p.add_argument("--clients", type=_levels, default=list(lt.DEFAULT_LEVELS), help="levels, e.g. 1,8,32")
    p.add_argument("--requests", type=int, default=1000, help="requests per level (default %(default)s, max 20000)")
    p.add_argument("--seconds", type=float, default=20.0, help="time limit per level (default %(default)s, max 120)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.requests <= 20000 or not 0 < args.seconds <= 120:
        print("error: --requests must be 1..20000 and --seconds 0..120 (the test is bounded)", file=sys.stderr)
        return 2
    texts = lt.sample_texts(args.dataset)
    report = {"machine": lt.machine(), "texts": len(texts), "runs": []}
    print(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
          f"load average {report['machine']['load_average_1_5_15']}")
    targets = [(m, None) for m in args.model] if args.model else [(args.url, args.url)]
    for name, url in targets:
        proc = None
        try:
            if url is None:
                from utils.tools.predict import resolve_model_dir

                proc, url = lt.start_server(str(resolve_model_dir(name, args.dataset)))
            else:
                lt.check_loopback(url)
            health = lt.wait_healthy(url, 10)
            rows = lt.load_test(url, texts, args.clients, args.requests, args.seconds)
        except (ValueError, RuntimeError, TimeoutError, OSError) as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            return 2
        finally:
            if proc is not None:
                lt.stop_server(proc)
        model = health.get("model", name)
        print()
        print(lt.format_table(model, rows))
        goal = next((g for key, g in GOALS.items() if str(model).startswith(key)), None)
        if goal:
            clients, rps, p99 = goal
            row = next((r for r in rows if r["clients"] == clients), None)
            if row:
                ok = row["rps"] >= rps and row["p99_ms"] < p99
                print(f"goal at {clients} clients: >= {rps} req/s and p99 < {p99} ms -> "
                      f"{row['rps']:.0f} req/s, p99 {row['p99_ms']:.1f} ms: {'met' if ok else 'NOT met'}")
        report["runs"].append({"model": model, "levels": rows})
    report["load_average_after"] = lt.machine()["load_average_1_5_15"]
    print(f"\nload average after: {report['load_average_after']}")
    if args.json:
        from pathlib import Path

        from utils.files import atomic_write_json

        atomic_write_json(Path(args.json), report)
    return 0
