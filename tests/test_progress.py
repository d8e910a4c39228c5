"""Progress lines (#28): one format, plain lines in a log, throttled, with elapsed time and time left."""
from __future__ import annotations

import io
import time

import pytest

from utils.tools import progress, run_course


@pytest.fixture
def lines_mode(monkeypatch):
    monkeypatch.setenv(progress.MODE_ENV, "lines")
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")
    monkeypatch.setitem(progress._state, "stage", "")
    monkeypatch.setitem(progress._state, "label", "")
    monkeypatch.setitem(progress._state, "open_bar", False)


def test_mode_follows_the_stream_unless_forced(monkeypatch):
    monkeypatch.delenv(progress.MODE_ENV, raising=False)
    assert progress.mode(io.StringIO()) == "lines"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress.mode(Tty()) == "bar"
    monkeypatch.setenv(progress.MODE_ENV, "off")
    assert progress.mode(Tty()) == "off"


def test_line_format_and_estimates():
    assert progress.fmt_seconds(42) == "42 s" and progress.fmt_seconds(210) == "3.5 min"
    assert progress.fmt_seconds(7200) == "2.0 h" and progress.fmt_seconds(None) == "?"
    assert progress.eta(0, 10, 5.0) is None and progress.eta(2, 10, 10.0) == pytest.approx(40.0)
    line = progress.format_line(["member bilstm 4/5", "epoch 2/3"], elapsed=130, left=65, label="ensemble")
    assert line == "[progress] ensemble · member bilstm 4/5 · epoch 2/3 · 2.2 min elapsed · ~65 s left"


def test_lines_mode_writes_whole_lines_and_throttles(lines_mode, monkeypatch):
    out = io.StringIO()
    steps = progress.Steps(3, "notebook", stream=out)
    for name in ("01_a", "02_b", "03_c"):
        steps.start(name)
        steps.finish()
    text = out.getvalue()
    assert text.count("\n") == 3 and "\r" not in text
    assert "notebook 1/3 · 01_a" in text and "notebook 3/3 · 03_c" in text and "left" in text
    monkeypatch.setenv(progress.INTERVAL_ENV, "60")     # a minute between lines: a fast loop writes one
    out = io.StringIO()
    steps = progress.Steps(500, "cell", stream=out)
    for i in range(500):
        steps.start(f"cell {i}")
    assert out.getvalue().count("\n") == 1


def test_cell_progress_reports_the_running_cell(lines_mode, capsys):
    with run_course.CellProgress("04b_bilstm.ipynb", 40, tick=0.2) as watch:
        watch.cell(11)
        time.sleep(0.7)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert 2 <= len(lines) <= 6, err
    assert all(line.startswith("[progress] 04b_bilstm.ipynb · cell 12/40 · this cell") and "elapsed" in line
               for line in lines), err


def test_keras_fits_report_their_epochs(lines_mode, capsys):
    """The benchmark's worker patches Keras fit: a verbose=0 fit still says which epoch runs and what is left."""
    import numpy as np

    from utils.tools.quiet_tf import import_tensorflow

    import_tensorflow()
    import keras

    progress.install_fit_progress()
    assert progress.install_fit_progress() == []          # once only
    progress.stage("member bilstm", 4, 5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    x, y = np.zeros((64, 4), "float32"), np.zeros((64, 2), "float32")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    err = capsys.readouterr().err
    epochs = [line for line in err.splitlines() if "epoch" in line and "batch" not in line]   # epoch ends
    assert "member bilstm 4/5 · starting" in err
    assert [f"epoch {k}/3" in line for k, line in zip((1, 2, 3), epochs)] == [True] * 3, err
    assert all("member bilstm 4/5" in line and "elapsed" in line and "loss" in line for line in epochs), err
    assert "~0 s left" in epochs[-1] or "left" not in epochs[-1]


def test_time_left_ignores_the_first_batch_which_traces_the_graph(monkeypatch):
    """A first batch of 60 s (tracing) then 1 s batches: the estimate follows the 1 s batches, not the 60 s."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock["now"])
    cb = progress._make_callback(object)(1)
    cb.params = {"epochs": 2, "steps": 10}
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    clock["now"] += 60
    cb.on_train_batch_end(0)
    assert cb._left(1) is None                   # too early to tell
    for batch in range(1, 5):
        clock["now"] += 1
        cb.on_train_batch_end(batch)
    assert cb._left(5) == pytest.approx(15.0)    # 15 batches left at 1 s each
