"""The production server's micro-batcher: notebook 09's, with back-pressure, a heartbeat and metrics.

The micro-batcher itself (a queue, a window of a few milliseconds, one model thread, every request
its own rows back) is written in notebook 09 and exported to :mod:`utils.lessons.serving`
(:class:`~utils.lessons.serving.MicroBatcher`). :class:`BoundedBatcher` adds what a server on the
open internet needs:

* **Back-pressure**: at most ``max_queue`` texts wait for the model. Past that,
  :meth:`BoundedBatcher.predict` raises :class:`QueueFull` at once (the API answers 503 with
  ``Retry-After``) instead of letting every client wait longer and longer.
* **A heartbeat**: :meth:`BoundedBatcher.health` says whether a pass has been running for too long
  (the readiness check reads it).
* **Metrics and a safe error**: ``on_batch(n_texts, seconds)`` after every pass; a model that raises
  becomes :class:`ModelFailed`, whose message is the error's type only (never the texts).
"""
from __future__ import annotations

import logging
import time

from utils.lessons.serving import MicroBatcher

__all__ = ["BoundedBatcher", "MicroBatcher", "ModelFailed", "QueueFull"]
log = logging.getLogger("utils.serving")


class QueueFull(Exception):
    """More texts are waiting for the model than the queue holds: try again shortly."""

    def __init__(self, waiting: int, limit: int, retry_after: int = 1):
        super().__init__(f"{waiting} texts are waiting for the model; the queue holds {limit}.")
        self.waiting, self.limit, self.retry_after = waiting, limit, retry_after


class ModelFailed(Exception):
    """The model raised, or returned what is not probabilities; the message names no input."""


class BoundedBatcher(MicroBatcher):
    """:class:`~utils.lessons.serving.MicroBatcher` with a bounded queue, a heartbeat and ``on_batch``."""

    def __init__(self, predict_fn, max_batch: int = 64, window_ms: float = 5.0, max_queue: int = 1024,
                 on_batch=None):
        super().__init__(predict_fn, max_batch=max_batch, window_ms=window_ms)
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}.")
        self.max_queue = int(max_queue)
        self.on_batch = on_batch
        self.rejected = 0         # requests refused because the queue was full
        self.busy_since = None    # perf_counter() when the running pass started; None when idle
        self.last_pass = None     # perf_counter() when the last pass ended

    def stats(self) -> dict:
        return {**super().stats(), "max_queue": self.max_queue, "rejected": self.rejected}

    def health(self, stall_s: float) -> tuple[bool, str]:
        """(alive, why): the worker task runs and no pass has been running for more than ``stall_s`` seconds."""
        if self._worker is not None and self._worker.done():
            return False, "the batching worker stopped"
        if self.busy_since is not None:
            running = time.perf_counter() - self.busy_since
            if running > stall_s:
                return False, f"the model thread has been on one batch for {running:.0f} s (limit {stall_s:g} s)"
        return True, "ok"

    async def predict(self, texts: list[str]):
        if self.waiting + len(texts) > self.max_queue:
            self.rejected += 1
            raise QueueFull(self.waiting, self.max_queue)
        return await super().predict(texts)

    async def forward(self, texts: list[str]):
        self.busy_since = start = time.perf_counter()
        try:
            out = await super().forward(texts)
        except ModelFailed:
            raise
        except Exception as err:   # the message may quote the input: log the type and sizes only
            log.error("model failed (%s) on %d text(s) of %d characters", type(err).__name__, len(texts),
                      sum(map(len, texts)))
            raise ModelFailed(type(err).__name__) from None
        finally:
            self.busy_since, self.last_pass = None, time.perf_counter()
        if self.on_batch is not None:
            self.on_batch(len(texts), self.last_pass - start)
        return out
