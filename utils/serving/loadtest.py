"""A bounded load test over loopback: requests per second and latency percentiles.

:func:`run_level` keeps ``clients`` connections busy (each sends its next ``POST /predict`` as
soon as the previous answer arrives: a closed loop, like users who wait for the page) until
``requests`` answers came back or ``seconds`` passed, and measures every request's latency.
The client is plain asyncio over keep-alive HTTP/1.1 connections, cheap enough not to steal
the server's CPU. Only loopback addresses are accepted: this is not a tool to load other
people's servers.

:func:`start_server` runs ``python -m utils.serve`` in a child process on a free port and
waits for ``/health``; :func:`load_test` runs the levels and returns one row per level.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from utils import config
from utils.tools.procguard import set_parent_death_signal

DEFAULT_LEVELS = (1, 8, 32)
EXAMPLES = [
    "A retired hitman is pulled back into the criminal underworld when a rival gang kills his dog.",
    "Two sisters inherit their grandmother's bakery in Seoul and learn to forgive each other.",
    "A crew of astronauts wakes from hypersleep to find something on board is hunting them.",
    "This documentary follows three young footballers from Ghana chasing a contract in Europe.",
    "A shy teenager joins the school's musical and falls for the lead singer.",
    "When a small town's children start vanishing, a detective uncovers an ancient evil.",
]


def check_loopback(url: str) -> tuple[str, int]:
    """(host, port) of ``url``; refuses anything that is not this machine."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise ValueError(f"The load test only targets http:// on this machine (127.0.0.1, ::1, localhost), "
                         f"not {url!r}.")
    return host, parts.port or 80


def sample_texts(dataset: str | None = None, n: int = 200, seed: int = 0) -> list[str]:
    """Raw test plots of ``dataset`` when its prepared data is here, else :data:`EXAMPLES`."""
    try:
        from utils.data.corpus import load_corpus

        texts = load_corpus(dataset).texts("test", kind="raw")
    except Exception:
        return list(EXAMPLES)
    pick = np.random.default_rng(seed).permutation(len(texts))[:n]
    return [texts[i][:2000] for i in pick]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 120.0, process=None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"The server exited with code {process.returncode} before answering /health.")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url}/health did not answer within {timeout:.0f} s.")


FLOOR = "<fastapi-floor>"   # start_server's name for utils.serving.floor_app: FastAPI and uvicorn alone


def start_server(model: str, extra_args=(), log_path=None, timeout: float = 180.0):
    """``python -m utils.serve --model MODEL`` on a free loopback port: ``(process, url)``. ``model=FLOOR``
    serves :mod:`utils.serving.floor_app` on the same uvicorn instead (no model, guard or access log)."""
    port = free_port()
    if model == FLOOR:
        cmd = [sys.executable, "-m", "uvicorn", "utils.serving.floor_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning",
               *extra_args]   # uvicorn's defaults (httptools, uvloop where installed), as utils.serve
    else:
        cmd = [sys.executable, "-m", "utils.serve", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), *extra_args]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=config.ROOT, stdout=log, stderr=subprocess.STDOUT,
                            # Linux: the server gets SIGTERM when the process that started it (a notebook kernel) dies
                            preexec_fn=set_parent_death_signal if sys.platform == "linux" else None)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, timeout, proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _read_answer(reader) -> tuple[bytes, bytes, bool]:
    """(status line, body, server closes) of one HTTP/1.1 answer with a Content-Length."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed by the server")
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif lower.startswith(b"connection:") and b"close" in lower:
            close = True
    return status_line, await reader.readexactly(length), close


async def _worker_pid(reader, writer, host) -> int | None:
    """The process id of the server process that holds this connection (its ``GET /health``)."""
    try:
        writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        status_line, body, _ = await _read_answer(reader)
        return json.loads(body).get("pid") if status_line.startswith(b"HTTP/1.1 200") else None
    except (OSError, ValueError, asyncio.IncompleteReadError, AttributeError):
        return None


async def _client(host, port, bodies, state, latencies, errors, pids=None):
    """One closed-loop client on a keep-alive connection; reconnects when the server closes it. At the end
    it asks ``/health`` on its connection and adds the answering process's id to ``pids``."""
    reader = writer = None
    try:
        while state["sent"] < state["limit"] and time.perf_counter() < state["deadline"]:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            i = state["sent"]
            state["sent"] += 1
            body = bodies[i % len(bodies)]
            head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            start = time.perf_counter()
            try:
                writer.write(head + body)
                await writer.drain()
                status_line, _, close = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError) as err:
                errors.append(f"connection: {type(err).__name__}")
                writer.close()
                reader = writer = None
                continue
            latencies.append(time.perf_counter() - start)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(status_line.decode(errors="replace").strip())
            if close:
                writer.close()
                reader = writer = None
        if writer is not None and pids is not None:
            pids.append(await _worker_pid(reader, writer, host))
    finally:
        if writer is not None:
            writer.close()


async def _level(host, port, bodies, clients, requests, seconds):
    latencies, errors, loads, pids = [], [], [], []
    state = {"sent": 0, "limit": requests, "deadline": time.perf_counter() + seconds}

    async def sample_load():   # the 1-minute load average while the level runs
        while True:
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
            await asyncio.sleep(1.0)

    sampler = asyncio.ensure_future(sample_load())
    start = time.perf_counter()
    try:
        await asyncio.gather(*(_client(host, port, bodies, state, latencies, errors, pids) for _ in range(clients)))
    finally:
        sampler.cancel()
    loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    return latencies, errors, time.perf_counter() - start, loads, pids


def _run(coro):
    """``asyncio.run`` that also works inside a running event loop (Jupyter): then in a thread of its own.

    The client stays on asyncio's own loop: on uvloop (0.23) it cost less CPU, but in about one run of two
    or three at 200 clients 60 to 160 first requests of new connections took 1 to 3 s, and with asyncio's
    loop against the same server none did (p99 under 0.25 s in every run)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and of its children (uvicorn's workers), from /proc; None
    where /proc is not there."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        pids = [pid]
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
        total = 0.0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick   # utime, stime
        return total
    except (OSError, ValueError, AttributeError):
        return None


def run_level(url: str, texts, clients: int, requests: int = 500, seconds: float = 20.0, warmup: int = 10,
              server_pid: int | None = None) -> dict:
    """One concurrency level: ``requests`` requests (at most ``seconds``), ``clients`` at a time.

    ``errors`` counts every answer but a 200; ``refused`` the deliberate 503s among them (back-pressure);
    ``load_during`` is the highest 1-minute load average seen while the level ran. With ``server_pid`` (a
    server this process started), ``server_cpu_ms`` is the server's CPU time per answered request and
    ``client_cpu_ms`` this load client's: where the cores went.
    """
    host, port = check_loopback(url)
    if clients < 1 or requests < 1 or seconds <= 0:
        raise ValueError("clients and requests must be >= 1 and seconds > 0.")
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    if warmup:
        _run(_level(host, port, bodies, min(clients, 4), warmup, seconds))
    server_before = process_cpu_seconds(server_pid) if server_pid else None
    client_before = time.process_time()
    latencies, errors, wall, loads, pids = _run(_level(host, port, bodies, clients, requests, seconds))
    client_cpu = time.process_time() - client_before
    server_after = process_cpu_seconds(server_pid) if server_pid else None
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    answered = max(len(latencies), 1)
    cpu = {} if server_before is None or server_after is None else {
        "server_cpu_ms": round((server_after - server_before) / answered * 1000, 3),
        "client_cpu_ms": round(client_cpu / answered * 1000, 3)}
    return {**cpu, "clients": clients, "requests": len(latencies), "errors": len(errors),
            "refused": sum(e.startswith("HTTP/1.1 503") for e in errors), "seconds": round(wall, 2),
            "rps": round(len(latencies) / wall, 1) if wall > 0 else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "load_during": round(max(loads), 2),
            "connections_per_process": sorted(Counter(p for p in pids if p is not None).values(), reverse=True)}


def machine() -> dict:
    """What the figures were measured on: CPU model, cores, load average."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        import platform

        cpu = platform.processor() or platform.machine()
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1_5_15": load}


def load_test(url: str, texts, levels=DEFAULT_LEVELS, requests: int = 500, seconds: float = 20.0,
              server_pid: int | None = None) -> list[dict]:
    return [run_level(url, texts, c, requests, seconds, server_pid=server_pid) for c in levels]


def format_table(name: str, rows: list[dict]) -> str:
    cpu = any("server_cpu_ms" in r for r in rows)
    spread = any(len(r.get("connections_per_process", ())) > 1 for r in rows)   # --workers N
    lines = ["| model | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors (503) | load during |"
             + (" server CPU ms/req | client CPU ms/req |" if cpu else "")
             + (" connections per process |" if spread else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if cpu else "") + ("---|" if spread else "")]
    for r in rows:
        lines.append(f"| {name} | {r['clients']} | {r['requests']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
                     f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} ({r.get('refused', 0)}) | "
                     f"{r.get('load_during', float('nan')):.1f} |"
                     + (f" {r.get('server_cpu_ms', float('nan')):.2f} | {r.get('client_cpu_ms', float('nan')):.2f} |"
                        if cpu else "")
                     + (f" {' + '.join(map(str, r.get('connections_per_process', ()))) or '?'} |" if spread else ""))
    return "\n".join(lines)


def contended(load: float, cores: int | None) -> bool:
    """A goal is not judged when the machine's 1-minute load average exceeds its cores."""
    return cores is not None and not (load <= cores)


def transform_cost(model_dir, texts, repeats: int = 3) -> dict:
    """CPU milliseconds per text of a TF-IDF model, one text per call (what a server sees): the
    course's transform from the saved arrays vs scikit-learn's ``TfidfVectorizer.transform``."""
    import json as _json

    from sklearn.feature_extraction.text import TfidfVectorizer

    from utils.modelfiles import tfidf

    predictor = tfidf.load_predictor(model_dir)
    settings = _json.loads((Path(model_dir) / tfidf.SETTINGS_FILE).read_text(encoding="utf-8"))
    vectorizer = TfidfVectorizer(token_pattern=settings["token_pattern"], lowercase=settings["lowercase"],
                                 ngram_range=tuple(settings["ngram_range"]), sublinear_tf=settings["sublinear_tf"],
                                 vocabulary=settings["vocabulary"], dtype=np.float32)
    vectorizer.idf_ = predictor.idf.astype(np.float32)

    def sklearn_path(text):
        x = vectorizer.transform(tfidf.prepare_texts([text], predictor.text_kind))
        return 1.0 / (1.0 + np.exp(-(np.asarray(x @ predictor.coef.T) + predictor.intercept)))

    out = {"texts": len(texts), "load_before": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    for name, fn in (("arrays_ms", lambda t: predictor.predict_with_known_words([t])), ("sklearn_ms", sklearn_path)):
        fn(texts[0])
        start = time.process_time()
        for _ in range(repeats):
            for t in texts:
                fn(t)
        out[name] = round((time.process_time() - start) / (repeats * len(texts)) * 1000, 3)
    out["load_after"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return out
