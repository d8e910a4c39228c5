"""Locks between processes: one run per dataset (benchmark, run_course), stale locks taken over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from utils import config
from utils.files import FileLock, LockBusy, run_lock

HOLD = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from utils.files import run_lock
with run_lock("netflix"):
    print("holding", flush=True)
    end = time.time() + float(sys.argv[2])
    while time.time() < end and not os.path.exists(sys.argv[3]):   # the test ends it by creating the file
        time.sleep(0.05)
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A separate workspace (COURSE_OUTPUT_DIR) for this process and the ones it starts, one notebook."""
    out = tmp_path / "ws"
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(out))
    monkeypatch.setattr(config, "PROCESSED_DIR", out / "processed")
    monkeypatch.setattr(config, "RESULTS_DIR", out / "results")
    monkeypatch.setattr(config, "MODELS_DIR", out / "models")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    nb = new_notebook(cells=[new_code_cell("print('ran')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbs / "01_one.ipynb")
    return nbs


def _holder(seconds: float, release="/nonexistent"):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(config.ROOT), str(seconds), str(release)],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _command(module, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=config.ROOT, capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def test_a_second_run_on_the_same_dataset_refuses_and_names_the_first(workspace, tmp_path):
    holder = _holder(120)
    try:
        run = _command("utils.run_course", "--fast", "--dataset", "netflix", "--notebooks", str(workspace),
                       "--out", str(tmp_path / "runs"))
        assert run.returncode == 2, run.stdout + run.stderr
        assert f"is in use by pid {holder.pid}" in run.stderr and "--wait" in run.stderr
        assert "Running" not in run.stdout and not (tmp_path / "runs" / "01_one.ipynb").exists()
        bench = _command("utils.benchmark", "--dataset", "netflix", "--model", "tfidf", "--out", str(tmp_path / "b"))
        assert bench.returncode == 2 and f"is in use by pid {holder.pid}" in bench.stderr, bench.stderr
        assert "would mix" in bench.stderr
        with pytest.raises(LockBusy) as err:            # and in-process, for the functions
            run_lock("netflix").acquire()
        assert err.value.holder["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_wait_starts_when_the_first_run_ends(workspace, tmp_path):
    release = tmp_path / "release"
    holder = _holder(120, release)
    run = subprocess.Popen([sys.executable, "-m", "utils.run_course", "--fast", "--dataset", "netflix",
                            "--notebooks", str(workspace), "--out", str(tmp_path / "runs"), "--wait"],
                           cwd=config.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=os.environ.copy())
    try:
        first = run.stdout.readline()
        assert f"waiting for pid {holder.pid}" in first, first
        assert holder.poll() is None and run.poll() is None        # it waits while the first run goes on
        release.touch()                                            # the first run ends ...
        holder.wait(timeout=60)
        rest = run.communicate(timeout=240)[0]                     # ... and the second starts
    finally:
        for proc in (holder, run):
            if proc.poll() is None:
                proc.kill()
    assert run.returncode == 0, rest
    assert "All 1 notebook(s) ran" in rest
    assert not list((config.PROCESSED_DIR).glob(".*.lock"))          # released and removed


def test_a_lock_left_by_a_killed_run_is_taken_over(workspace, tmp_path):
    holder = _holder(120)
    lock = config.PROCESSED_DIR / ".netflix.run.lock"
    holder.send_signal(signal.SIGKILL)              # kill -9: no chance to clean up
    holder.wait()
    assert lock.exists() and str(holder.pid) in lock.read_text()
    run = _command("utils.run_course", "--fast", "--dataset", "netflix", "--notebooks", str(workspace),
                   "--out", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"left by pid {holder.pid}, which is no longer running; taking it over" in run.stdout
    assert not lock.exists()


def test_pid_file_fallback_takes_over_a_dead_pid_and_refuses_a_live_one(tmp_path, monkeypatch):
    """Where flock is not available (some network file systems), the file itself is the lock."""
    from utils import files

    monkeypatch.setattr(files, "fcntl", None)
    path = tmp_path / "x.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(f'{{"pid": {dead.pid}}}')
    notes = []
    with FileLock(path, "the x folder", log=notes.append):
        assert f'"pid": {os.getpid()}' in path.read_text()
        assert "no longer running" in notes[0]
        with FileLock(path, "the x folder"):         # the same process may take it again
            pass
        assert path.exists()
        other = subprocess.run(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from utils import files; "
             "files.fcntl = None; from utils.files import FileLock, LockBusy\n"
             "try:\n    FileLock(sys.argv[2], 'the x folder').acquire()\nexcept LockBusy as e:\n    print(e)",
             str(config.ROOT), str(path)], capture_output=True, text=True, timeout=60)
        assert f"the x folder is in use by pid {os.getpid()}" in other.stdout, other.stderr
    assert not path.exists()
