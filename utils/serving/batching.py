"""Micro-batching: requests that arrive within a few milliseconds share one forward pass.

A neural network costs about as much for 16 short plots as for one (the matrix products are
wider, not longer), so a server that runs one pass per request wastes most of its time. The
:class:`MicroBatcher` queues the texts of concurrent requests; a single worker takes the first
request, waits at most ``window_ms`` for others (or until ``max_batch`` texts), runs the model
once on all of them in a worker thread, and hands every request its own rows back.
A request that arrives while a batch is running waits for the next one, so under load batches
fill up without any waiting, and a lone request pays at most ``window_ms`` extra.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time

import numpy as np


class MicroBatcher:
    """``await batcher.predict(texts)`` -> probabilities; concurrent calls are grouped."""

    def __init__(self, predict_fn, max_batch: int = 64, window_ms: float = 5.0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}.")
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, not {window_ms}.")
        self.predict_fn = predict_fn
        self.max_batch = int(max_batch)
        self.window = float(window_ms) / 1000.0
        self.batches = 0          # forward passes run
        self.texts = 0            # texts predicted
        self.largest = 0          # most texts in one pass
        self._queue = None
        self._worker = None
        self._loop = None
        self._executor = None

    def stats(self) -> dict:
        return {"window_ms": self.window * 1000.0, "max_batch": self.max_batch, "batches": self.batches,
                "texts": self.texts, "largest_batch": self.largest,
                "mean_batch": round(self.texts / self.batches, 2) if self.batches else 0.0}

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:   # one thread: one batch at a time, and the event loop stays free
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run())

    async def predict(self, texts: list[str]) -> np.ndarray:
        self._ensure_worker()
        future = self._loop.create_future()
        await self._queue.put((list(texts), future))
        return await future

    async def _collect(self) -> list:
        first = await self._queue.get()
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
            items.append(item)
            n += len(item[0])
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            items = [(t, f) for t, f in items if not f.cancelled()]   # a client that went away
            if not items:
                continue
            texts = [t for ts, _ in items for t in ts]
            try:
                probs = await loop.run_in_executor(self._executor, self.predict_fn, texts)
            except Exception as err:   # every request of the batch gets the error; the worker lives on
                for _, future in items:
                    if not future.done():
                        future.set_exception(err)
                continue
            self.batches += 1
            self.texts += len(texts)
            self.largest = max(self.largest, len(texts))
            start = 0
            for ts, future in items:
                if not future.done():
                    future.set_result(probs[start:start + len(ts)])
                start += len(ts)

    def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
