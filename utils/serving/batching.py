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
* **Cheap passes inline** (``inline_chars``, for models that do not batch, such as TF-IDF): a request of at
  most that many characters, arriving while nothing waits, runs on the event loop itself. A TF-IDF pass costs
  about 0.2 ms; handing it to the model thread cost as much again, and the thread then waited for the
  interpreter lock while the loop served other requests (milliseconds at 8 clients). Longer requests still
  go to the model thread, so the loop is never held for long.
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
                 on_batch=None, inline_chars: int = 0):
        super().__init__(predict_fn, max_batch=max_batch, window_ms=window_ms)
        if max_queue < 1 or inline_chars < 0:
            raise ValueError(f"max_queue must be at least 1 and inline_chars >= 0, not {max_queue} and {inline_chars}.")
        self.max_queue, self.inline_chars = int(max_queue), int(inline_chars)
        self.on_batch = on_batch
        self.rejected = 0         # requests refused because the queue was full
        self.busy_since = None    # perf_counter() when the running pass started; None when idle
        self.last_pass = None     # perf_counter() when the last pass ended

    def stats(self) -> dict:
        return {**super().stats(), "max_queue": self.max_queue, "rejected": self.rejected,
                "inline_chars": self.inline_chars}

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
        if self.inline_chars and not self.waiting and sum(map(len, texts)) <= self.inline_chars:
            return self._inline(texts)
        return await super().predict(texts)

    def _inline(self, texts: list[str]):
        """One pass on the event loop: no queue, no thread, the same accounting and errors as a batch."""
        start = self._start()
        try:
            out = self.predict_fn(list(texts))
        except Exception as err:
            self._fail(err, texts)
        finally:
            self.busy_since, self.last_pass = None, time.perf_counter()
        self.count(len(texts))
        return self._done(out, texts, start)

    async def forward(self, texts: list[str]):
        start = self._start()
        try:
            out = await super().forward(texts)
        except Exception as err:
            self._fail(err, texts)
        finally:
            self.busy_since, self.last_pass = None, time.perf_counter()
        return self._done(out, texts, start)

    def _start(self) -> float:
        self.busy_since = time.perf_counter()
        return self.busy_since

    @staticmethod
    def _fail(err: Exception, texts: list[str]):
        if isinstance(err, ModelFailed):
            raise err
        # the message may quote the input: log the type and sizes only
        log.error("model failed (%s) on %d text(s) of %d characters", type(err).__name__, len(texts),
                  sum(map(len, texts)))
        raise ModelFailed(type(err).__name__) from None

    def _done(self, out, texts: list[str], start: float):
        if self.on_batch is not None:
            self.on_batch(len(texts), self.last_pass - start)
        return out
