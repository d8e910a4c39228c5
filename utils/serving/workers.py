"""``python -m utils.serve --workers N``: N server processes, each listening on the port with a socket of its own.

uvicorn's ``--workers`` shares one listening socket between its processes: the process whose event loop
wakes first accepts every connection waiting. On a 2-core machine whose other core runs the clients, the
second process rarely wakes in time, and 8 clients connecting together landed 8 + 0 or 6 + 2 (measured:
1,530 and 2,482 req/s on the same model, run after run). Here every process opens its own socket on the
same address with ``SO_REUSEPORT`` and the Linux kernel hands each new connection to one of them by a hash
of its addresses: an even spread on average, whoever is awake. Where the kernel does not spread
connections over such sockets (macOS, Windows), :func:`spreads_connections` is False and ``utils.serve``
keeps uvicorn's shared socket.

The parent process only supervises: it reserves the port (a bound socket that never listens, so it gets
no connection), starts the workers, restarts one that exits after it was serving (a worker's socket listens
only once its app has started, so a loading worker is handed no connection), stops all of them on
SIGINT or SIGTERM (uvicorn's graceful shutdown in each), and gives up when a worker fails before serving.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time

log = logging.getLogger("utils.serving")
FACTORY = "utils.serving.app:app_from_env"   # each worker builds its app from $COURSE_SERVE_OPTIONS


def spreads_connections() -> bool:
    """True where sockets sharing a port with SO_REUSEPORT each receive a share of the connections (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def port_socket(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    """A TCP socket bound to ``(host, port)``, with SO_REUSEPORT unless ``reuse_port`` is False (not listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker(host: str, port: int, run: dict, ready) -> None:
    """One worker process: its own socket, which listens once the app has started, then uvicorn until SIGTERM."""
    import uvicorn

    from utils.tools.procguard import set_parent_death_signal

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            # The app (its model loaded) has started and asyncio has just made the socket listen; no request
            # has been answered yet, so a worker that answered once is always known to the parent as serving.
            await super().startup(sockets=sockets)
            if self.started:
                ready.set()

    set_parent_death_signal(signal.SIGTERM)   # never serve on, orphaned, when the supervisor is killed
    # Bound, not listening: until asyncio's create_server listens on it (after the model is loaded), the
    # kernel hands no connection to this socket, so a restarted worker does not hold clients while it loads.
    sock = port_socket(host, port)
    Server(uvicorn.Config(FACTORY, factory=True, host=host, port=port, **run)).run(sockets=[sock])


class Supervisor:
    """Starts ``n`` workers on ``(host, port)`` and keeps them running; :meth:`run` returns the exit code."""

    def __init__(self, n: int, host: str, port: int, run: dict, startup_timeout: float = 180.0):
        if n < 1:
            raise ValueError(f"the number of workers must be >= 1, not {n}.")
        self.n, self.host, self.port, self.run_options = n, host, port, run
        self.startup_timeout = startup_timeout
        self.context = multiprocessing.get_context("spawn")   # a fresh interpreter: no state copied by fork
        self.stopping = threading.Event()
        self.workers: list = []

    def _start(self):
        ready = self.context.Event()
        process = self.context.Process(target=_worker, args=(self.host, self.port, self.run_options, ready),
                                       name="utils.serve worker", daemon=False)
        process.start()
        return process, ready, time.monotonic()

    def _stop(self, signum=None, frame=None) -> None:
        self.stopping.set()

    def run(self) -> int:
        # First without SO_REUSEPORT: a port that anything listens on, another server of ours included (whose
        # sockets would otherwise let these join them and share its connections), is an error here and now.
        with port_socket(self.host, self.port, reuse_port=False) as probe:
            self.port = probe.getsockname()[1]          # (port 0: the one the system chose)
        reserve = port_socket(self.host, self.port)    # then hold it for the workers
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._stop)
            self.workers = [self._start() for _ in range(self.n)]
            while not self.stopping.wait(0.2):
                for i, (process, ready, started) in enumerate(self.workers):
                    if process.is_alive():
                        if not ready.is_set() and time.monotonic() - started > self.startup_timeout:
                            log.error("worker %s did not start serving within %.0f s: stopping",
                                      process.pid, self.startup_timeout)
                            return self._shutdown(1)
                        continue
                    if not ready.is_set():   # failed before it served: restarting would fail the same way
                        log.error("worker %s exited with code %s before serving: stopping (its log says why)",
                                  process.pid, process.exitcode)
                        return self._shutdown(1)
                    log.warning("worker %s exited with code %s: starting another", process.pid, process.exitcode)
                    self.workers[i] = self._start()
            return self._shutdown(0)
        finally:
            reserve.close()

    def _shutdown(self, code: int) -> int:
        for process, _, _ in self.workers:
            if process.is_alive():
                process.terminate()   # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + 10
        for process, _, _ in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        return code
