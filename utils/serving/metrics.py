"""``GET /metrics``: the server's counters in Prometheus' text format (version 0.0.4), no dependency.

Per process (each ``--workers`` process counts its own; scrape each, or run one worker per
container): request latency by route (histogram), requests and errors by status code, forward
passes by batch size and their duration (histograms), texts waiting for the model, requests in
flight, and the model version as an info metric.
"""
from __future__ import annotations

import bisect
import time
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ROUTES = ("/predict", "/health", "/ready", "/metrics", "/model", "/", "/docs", "/redoc", "/openapi.json")


def route_of(path: str) -> str:
    """A bounded label for a path: unknown paths (404 probes) share one label."""
    if path in ROUTES:
        return path
    if path.startswith("/static/"):
        return "/static"
    if path.startswith("/v1/models/"):
        return "/v1/models"
    return "other"


class Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets, self.counts):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{_num(bound)}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        wrap = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{wrap} {_num(self.sum)}")
        out.append(f"{name}_count{wrap} {self.n}")
        return out


def _num(x) -> str:
    return repr(float(x)) if not float(x).is_integer() else f"{float(x):.1f}"


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, version: str):
        self.version = version
        self.latency = defaultdict(lambda: Histogram(LATENCY_BUCKETS))
        self.requests = defaultdict(int)        # (route, code) -> count
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.inflight = 0
        self.batcher = None
        self.counts = {}
        self.gc_pause = defaultdict(lambda: Histogram(LATENCY_BUCKETS))   # generation -> pauses
        self._gc_start = None

    def observe_gc(self, phase: str, info: dict) -> None:
        """A ``gc.callbacks`` hook: how long each garbage collection stopped the process."""
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self._gc_start is not None:
            self.gc_pause[info.get("generation", -1)].observe(time.perf_counter() - self._gc_start)
            self._gc_start = None

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = route_of(path)
        self.latency[route].observe(seconds)
        self.requests[(route, int(status))] += 1

    def observe_batch(self, n: int, seconds: float) -> None:
        self.batch_size.observe(n)
        self.batch_seconds.observe(seconds)

    def render(self) -> str:
        lines = ["# HELP movie_genres_model_info The model this process serves.",
                 "# TYPE movie_genres_model_info gauge",
                 f'movie_genres_model_info{{version="{_label(self.version)}"}} 1',
                 "# HELP movie_genres_http_requests_total Requests answered, by route and status code.",
                 "# TYPE movie_genres_http_requests_total counter"]
        for (route, code), n in sorted(self.requests.items()):
            lines.append(f'movie_genres_http_requests_total{{route="{_label(route)}",code="{code}"}} {n}')
        lines += ["# HELP movie_genres_http_errors_total Requests answered with a 4xx or 5xx, by status code.",
                  "# TYPE movie_genres_http_errors_total counter"]
        errors = defaultdict(int)
        for (_, code), n in self.requests.items():
            if code >= 400 or code == 0:
                errors[code] += n
        for code, n in sorted(errors.items()):
            lines.append(f'movie_genres_http_errors_total{{code="{code}"}} {n}')
        lines += ["# HELP movie_genres_http_request_duration_seconds Time from the request's headers to its answer.",
                  "# TYPE movie_genres_http_request_duration_seconds histogram"]
        for route, hist in sorted(self.latency.items()):
            lines += hist.lines("movie_genres_http_request_duration_seconds", f'route="{_label(route)}"')
        lines += ["# HELP movie_genres_batch_size Texts per forward pass of the model.",
                  "# TYPE movie_genres_batch_size histogram",
                  *self.batch_size.lines("movie_genres_batch_size"),
                  "# HELP movie_genres_batch_duration_seconds Time of one forward pass (the model thread).",
                  "# TYPE movie_genres_batch_duration_seconds histogram",
                  *self.batch_seconds.lines("movie_genres_batch_duration_seconds"),
                  "# HELP movie_genres_queue_texts Texts waiting for the model now.",
                  "# TYPE movie_genres_queue_texts gauge",
                  f"movie_genres_queue_texts {self.batcher.waiting if self.batcher else 0}",
                  "# HELP movie_genres_queue_rejected_total Requests refused with 503 because the queue was full.",
                  "# TYPE movie_genres_queue_rejected_total counter",
                  f"movie_genres_queue_rejected_total {self.batcher.rejected if self.batcher else 0}",
                  "# HELP movie_genres_gc_pause_seconds Python garbage collections: the whole process waits.",
                  "# TYPE movie_genres_gc_pause_seconds histogram",
                  *[line for gen, hist in sorted(self.gc_pause.items())
                    for line in hist.lines("movie_genres_gc_pause_seconds", f'generation="{gen}"')],
                  "# HELP movie_genres_requests_in_flight Requests being answered now.",
                  "# TYPE movie_genres_requests_in_flight gauge",
                  f"movie_genres_requests_in_flight {self.inflight}"]
        return "\n".join(lines) + "\n"
