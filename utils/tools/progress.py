"""Progress of long commands: one format for the benchmark's workers, the runner and the rehearsal.

On a terminal a step is redrawn in place (``\\r``); anywhere else (a CI log, ``| tee``) each step is
one line, written at most every :data:`INTERVAL_S` seconds (``COURSE_PROGRESS_INTERVAL``), plus the
last step of anything that took a while: a long run shows that it moves, and never floods a log.

``COURSE_PROGRESS`` forces a mode: ``bar`` (in place), ``lines`` or ``off``. Lines go to stderr
(stdout keeps the figures a script may read) and start with ``[progress]``::

    [progress] ensemble · minilm_finetuned run 2/3 · epoch 1/2 · batch 120/400 · 9.5 min elapsed · ~6.1 min left

The benchmark's worker calls :func:`install_fit_progress`: every Keras ``fit`` it makes then reports
its epochs (and, for long epochs, its batches) with the time elapsed and an estimate of what is left,
without the model code having to ask; :func:`stage` names what runs (a member, a fine-tuning run) and
a heartbeat (:func:`start_heartbeat`) says "still running" when a long step prints nothing.
"""
from __future__ import annotations

import os
import sys
import threading
import time

MODE_ENV = "COURSE_PROGRESS"
INTERVAL_ENV = "COURSE_PROGRESS_INTERVAL"
INTERVAL_S = 10.0          # lines mode: at most one line per this many seconds (per source)
BAR_REDRAW_S = 0.5         # bar mode: redraw at most this often
PREFIX = "[progress]"

_lock = threading.Lock()
_state = {"label": "", "stage": "", "started": time.monotonic(), "last_line": 0.0, "open_bar": False}


def mode(stream=None) -> str:
    """``"bar"`` on a terminal, ``"lines"`` otherwise; ``COURSE_PROGRESS`` overrides (bar/lines/off)."""
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced in ("bar", "lines", "off"):
        return forced
    stream = stream or sys.stderr
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


def interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, INTERVAL_S)))
    except ValueError:
        return INTERVAL_S


def fmt_seconds(seconds: float | None) -> str:
    """``"42 s"``, ``"3.5 min"``, ``"1.2 h"``; ``"?"`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def eta(done: float, total: float, elapsed: float) -> float | None:
    """Seconds left when ``done`` of ``total`` units took ``elapsed`` seconds (``None`` before the first)."""
    if not total or done <= 0:
        return None
    return elapsed / done * max(0.0, total - done)


def format_line(parts, elapsed: float | None = None, left: float | None = None, label: str | None = None) -> str:
    """``[progress] label · part · part · 3.5 min elapsed · ~1.2 min left``."""
    items = [p for p in ([label] if label else []) + list(parts) if p]
    if elapsed is not None:
        items.append(f"{fmt_seconds(elapsed)} elapsed")
    if left is not None:
        items.append(f"~{fmt_seconds(left)} left")
    return f"{PREFIX} " + " · ".join(items)


def set_label(label: str) -> None:
    """What every line of this process starts with (the benchmark's model name)."""
    _state["label"] = label
    _state["started"] = time.monotonic()


def emit(text: str, final: bool = True, stream=None) -> None:
    """Write one progress message: a line, or (bar mode, ``final=False``) an in-place redraw."""
    m = mode(stream)
    if m == "off":
        return
    stream = stream or sys.stderr
    with _lock:
        try:
            if m == "bar" and not final:
                stream.write("\r" + text[:_width()].ljust(_width()))
                _state["open_bar"] = True
            else:
                stream.write(("\r" if _state["open_bar"] and m == "bar" else "") + text
                             + (" " * max(0, _width() - len(text)) if _state["open_bar"] and m == "bar" else "") + "\n")
                _state["open_bar"] = False
            stream.flush()
        except (ValueError, OSError):      # a closed stream: progress is never worth a crash
            pass
        _state["last_line"] = time.monotonic()


def _width() -> int:
    try:
        return max(40, os.get_terminal_size(sys.stderr.fileno()).columns - 1)
    except (OSError, ValueError, AttributeError):
        return 100


def stage(what: str, k: int | None = None, n: int | None = None) -> None:
    """Announce a step (``member tfidf``, ``fine-tuning run 2/3``); later fit lines carry its name."""
    text = what if k is None else f"{what} {k}/{n}"
    _state["stage"] = text
    emit(format_line([text, "starting"], elapsed=time.monotonic() - _state["started"], label=_state["label"]))


class Throttle:
    """Decides when a step is worth a line: in lines mode every ``interval()`` seconds, in bar mode often."""

    def __init__(self):
        self.last = 0.0

    def due(self, final: bool = False, min_duration: float = 0.0, started: float | None = None) -> bool:
        now = time.monotonic()
        if mode() == "bar":
            ok = final or now - self.last >= BAR_REDRAW_S
        else:
            since_start = now - started if started is not None else float("inf")
            ok = now - self.last >= interval() or (final and since_start >= min_duration)
        if ok:
            self.last = now
        return ok


class Steps:
    """Progress of a known number of steps (notebooks, cells): ``with Steps(n, "notebook") as s: s.step(name)``."""

    def __init__(self, total: int, what: str, label: str | None = None, stream=None):
        self.total, self.what, self.label, self.stream = total, what, label, stream
        self.done, self.started, self.throttle, self.current = 0, time.monotonic(), Throttle(), ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, name: str, force: bool = False) -> None:
        """Step ``done + 1`` begins (a line in lines mode when due, or always with ``force``)."""
        self.current = name
        elapsed = time.monotonic() - self.started
        line = format_line([f"{self.what} {self.done + 1}/{self.total}", name], elapsed=elapsed,
                           left=eta(self.done, self.total, elapsed), label=self.label)
        if force or self.throttle.due():
            emit(line, final=force or mode(self.stream) != "bar", stream=self.stream)

    def finish(self, name: str | None = None, force: bool = False) -> None:
        self.done += 1
        if force:
            elapsed = time.monotonic() - self.started
            emit(format_line([f"{self.what} {self.done}/{self.total}", name or self.current, "done"], elapsed=elapsed,
                             left=eta(self.done, self.total, elapsed), label=self.label), stream=self.stream)


def each(items, what: str, label: str, name=str):
    """Yield ``items`` with progress: on a terminal one line redrawn in place, elsewhere one line per item
    (``[progress] editions · notebook 3/11 · 03_tfidf_logistic_baseline · 2 s elapsed · ~5 s left``)."""
    items = list(items)
    steps = Steps(len(items), what, label=label)
    bar = mode() == "bar"
    for item in items:
        steps.start(name(item), force=not bar)
        yield item
        steps.finish()
    if _state["open_bar"]:                  # end the in-place line
        emit(format_line([f"{what} {steps.done}/{steps.total}", "done"], elapsed=time.monotonic() - steps.started,
                         label=label))


# --------------------------------------------------------------------------- Keras


def _make_callback(base):
    class FitProgress(base):
        """Epoch (and, for long epochs, batch) progress of one ``fit``, with elapsed time and time left."""

        def __init__(self, number: int):
            super().__init__()
            self.number = number
            self.throttle = Throttle()

        def on_train_begin(self, logs=None):
            self.t0 = time.monotonic()
            self.epochs = int(self.params.get("epochs") or 1)
            self.steps = self.params.get("steps")
            self.epoch = 0
            self.first_batch_end = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.e0 = epoch, time.monotonic()

        def _parts(self, batch=None):
            parts = [_state["stage"] or None, f"fit {self.number}", f"epoch {self.epoch + 1}/{self.epochs}"]
            if batch is not None and self.steps:
                parts.append(f"batch {batch}/{self.steps}")
            return parts

        def _left(self, batch=None):
            """Time left in this fit, from the steps after the first (which pays for tracing the graph)."""
            now = time.monotonic()
            done = self.epoch + ((batch / self.steps) if (batch is not None and self.steps) else 1)
            if self.first_batch_end is None or done * (self.steps or 1) < 3:
                return None                      # too early to tell
            first = 1 / (self.steps or 1)        # the first batch, as a fraction of an epoch
            return eta(done - first, self.epochs - first, now - self.first_batch_end)

        def on_train_batch_end(self, batch, logs=None):
            if self.first_batch_end is None:
                self.first_batch_end = time.monotonic()
            # a batch line only when epochs are long (a MiniLM epoch takes minutes on a CPU)
            if time.monotonic() - self.e0 < (2.0 if mode() == "bar" else interval()):
                return
            if self.throttle.due():
                emit(format_line(self._parts(batch + 1), time.monotonic() - _state["started"],
                                 self._left(batch + 1), _state["label"]), final=mode() != "bar")

        def on_epoch_end(self, epoch, logs=None):
            last = epoch + 1 >= self.epochs
            if self.throttle.due(final=last, min_duration=2.0, started=self.t0):
                loss = (logs or {}).get("val_loss", (logs or {}).get("loss"))
                parts = self._parts() + ([f"{'val_loss' if 'val_loss' in (logs or {}) else 'loss'} {loss:.4f}"]
                                         if isinstance(loss, (int, float)) else [])
                emit(format_line(parts, time.monotonic() - _state["started"], self._left(), _state["label"]),
                     final=last or mode() != "bar")

        def on_train_end(self, logs=None):
            early = self.epoch + 1 < self.epochs and getattr(getattr(self, "model", None), "stop_training", False)
            if _state["open_bar"] or early:
                emit(format_line(self._parts() + ["stopped early" if early else "done"],
                                 time.monotonic() - _state["started"], None, _state["label"]))

    return FitProgress


_fits = {"count": 0}


def _patch(keras_module) -> bool:
    model = keras_module.Model
    if getattr(model.fit, "_course_progress", False):
        return False
    original = model.fit
    callback_class = _make_callback(keras_module.callbacks.Callback)

    def fit(self, *args, **kwargs):
        _fits["count"] += 1
        callbacks = list(kwargs.get("callbacks") or [])
        kwargs["callbacks"] = callbacks + [callback_class(_fits["count"])]
        return original(self, *args, **kwargs)

    fit._course_progress = True
    fit.__doc__ = original.__doc__
    model.fit = fit
    return True


def install_fit_progress() -> list[str]:
    """Make every Keras ``fit`` of this process report progress (Keras 3, and tf_keras when it is used).

    The benchmark's worker calls it; the model code keeps its ``verbose=0`` (no Keras bar with
    thousands of lines in a log) and gains the throttled lines of :class:`FitProgress`.
    """
    patched = []
    for name in ("keras", "tf_keras"):
        if name == "tf_keras" and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
            continue
        try:
            module = __import__(name)
        except ImportError:
            continue
        if _patch(module):
            patched.append(name)
    return patched


def start_heartbeat(every: float = 60.0) -> threading.Thread:
    """A daemon thread that says "still running" when nothing was reported for ``every`` seconds."""

    def beat():
        while True:
            time.sleep(min(every, 5.0))
            if time.monotonic() - max(_state["last_line"], _state["started"]) >= every:
                emit(format_line([_state["stage"] or None, "still running"], time.monotonic() - _state["started"],
                                 None, _state["label"]))

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    return thread
