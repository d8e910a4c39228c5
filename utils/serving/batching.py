"""Micro-batching: requests that arrive within a few milliseconds share one forward pass.

A neural network costs about as much for 16 short plots as for one (the matrix products are
wider, not longer), so a server that runs one pass per request wastes most of its time. The
:class:`MicroBatcher` queues the texts of concurrent requests; a single worker takes the first
request, waits at most ``window_ms`` for others (or until ``max_batch`` texts), runs the model
once on all of them in a worker thread, and hands every request its own rows back.
A request that arrives while a batch is running waits for the next one, so under load batches
fill up without any waiting, and a lone request pays at most ``window_ms`` extra.

Back-pressure: at most ``max_queue`` texts wait for the model. Past that, :meth:`MicroBatcher.predict`
raises :class:`QueueFull` at once (the API answers 503 with ``Retry-After``) instead of letting
every client wait longer and longer. The model thread's heartbeat (:meth:`MicroBatcher.health`)
says whether a pass has been running for too long: the readiness check reads it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time

import numpy as np


class QueueFull(Exception):
    """More texts are waiting for the model than the queue holds: try again shortly."""

    def __init__(self, waiting: int, limit: int, retry_after: int = 1):
        super().__init__(f"{waiting} texts are waiting for the model; the queue holds {limit}.")
        self.waiting, self.limit, self.retry_after = waiting, limit, retry_after


class MicroBatcher:
    """``await batcher.predict(texts)`` -> probabilities; concurrent calls are grouped.

    ``on_batch(n_texts, seconds)``, when given, is called after every forward pass (metrics).
    """

    def __init__(self, predict_fn, max_batch: int = 64, window_ms: float = 5.0, max_queue: int = 1024,
                 on_batch=None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}.")
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, not {window_ms}.")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}.")
        self.predict_fn = predict_fn
        self.max_batch = int(max_batch)
        self.max_queue = int(max_queue)
        self.window = float(window_ms) / 1000.0
        self.on_batch = on_batch
        self.batches = 0          # forward passes run
        self.texts = 0            # texts predicted
        self.largest = 0          # most texts in one pass
        self.rejected = 0         # requests refused because the queue was full
        self.waiting = 0          # texts queued, not yet in a pass
        self.busy_since = None    # perf_counter() when the running pass started; None when idle
        self.last_pass = None     # perf_counter() when the last pass ended
        self._queue = None
        self._worker = None
        self._loop = None
        self._executor = None

    def stats(self) -> dict:
        return {"window_ms": self.window * 1000.0, "max_batch": self.max_batch, "max_queue": self.max_queue,
                "batches": self.batches, "texts": self.texts, "largest_batch": self.largest,
                "mean_batch": round(self.texts / self.batches, 2) if self.batches else 0.0,
                "queued_texts": self.waiting, "rejected": self.rejected}

    def health(self, stall_s: float) -> tuple[bool, str]:
        """(alive, why): the worker task runs and no pass has been running for more than ``stall_s`` seconds."""
        if self._worker is not None and self._worker.done():
            return False, "the batching worker stopped"
        if self.busy_since is not None:
            running = time.perf_counter() - self.busy_since
            if running > stall_s:
                return False, f"the model thread has been on one batch for {running:.0f} s (limit {stall_s:g} s)"
        return True, "ok"

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:   # one thread: one batch at a time, and the event loop stays free
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop, self._queue, self.waiting = loop, asyncio.Queue(), 0
            self._worker = loop.create_task(self._run())

    async def predict(self, texts: list[str]) -> np.ndarray:
        self._ensure_worker()
        if self.waiting + len(texts) > self.max_queue:
            self.rejected += 1
            raise QueueFull(self.waiting, self.max_queue)
        future = self._loop.create_future()
        self.waiting += len(texts)
        self._queue.put_nowait((list(texts), future))
        return await future

    def _take(self, item):
        self.waiting -= len(item[0])
        return item

    async def _collect(self) -> list:
        first = self._take(await self._queue.get())
        items, n = [first], len(first[0])
        deadline = time.perf_counter() + self.window
        while n < self.max_batch:
            try:
                item = self._queue.get_nowait()      # already waiting: take it at once
            except asyncio.QueueEmpty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            items.append(self._take(item))
            n += len(item[0])
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            items = [(t, f) for t, f in items if not f.cancelled()]   # a client that went away or timed out
            if not items:
                continue
            texts = [t for ts, _ in items for t in ts]
            self.busy_since = start = time.perf_counter()
            try:
                probs = await loop.run_in_executor(self._executor, self.predict_fn, texts)
            except Exception as err:   # every request of the batch gets the error; the worker lives on
                for _, future in items:
                    if not future.done():
                        future.set_exception(err)
                continue
            finally:
                self.busy_since, self.last_pass = None, time.perf_counter()
            self.batches += 1
            self.texts += len(texts)
            self.largest = max(self.largest, len(texts))
            if self.on_batch is not None:
                self.on_batch(len(texts), self.last_pass - start)
            start = 0
            for ts, future in items:   # a tuple of arrays (probabilities, coverage) is sliced element-wise
                if not future.done():
                    end = start + len(ts)
                    future.set_result(tuple(a[start:end] for a in probs) if isinstance(probs, tuple)
                                      else probs[start:end])
                start += len(ts)

    def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
