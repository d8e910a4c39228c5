"""Writing files so that a crash never leaves half of one: a temporary name in the same folder, then a rename."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: Path, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


@contextlib.contextmanager
def atomic_folder(folder):
    """Build ``folder`` under a temporary name beside it; it takes its real name only if the block succeeds.

    Yields the temporary folder (a ``Path``). At the end an existing ``folder`` is replaced; on an error
    the temporary folder is removed and ``folder`` is left as it was: never half a folder.
    """
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)   # mkdtemp makes 0700: give the folder normal permissions
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- locks between processes
try:
    import fcntl
except ImportError:       # Windows: the pid-file fallback below
    fcntl = None

_HELD: dict[str, list] = {}     # "lock path@thread" -> [fd, depth]: a thread may take its own lock again


class LockBusy(RuntimeError):
    """Another running process holds the lock; ``holder`` says which (pid, command, start time)."""

    def __init__(self, message: str, holder: dict | None = None):
        super().__init__(message)
        self.holder = holder or {}


def pid_alive(pid) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    try:
        pid = int(pid)
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except (ValueError, TypeError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _holder_now(purpose: str) -> dict:
    import sys
    import time

    return {"pid": os.getpid(), "command": " ".join([os.path.basename(sys.executable)] + sys.argv)[:300],
            "purpose": purpose, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "host": os.uname().nodename if hasattr(os, "uname") else ""}


def _read_holder(path) -> dict:
    try:
        holder = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict) -> str:
    """``pid 1234 (python -m utils.benchmark ..., started 2026-01-01 08:00:00)``."""
    if not holder.get("pid"):
        return "another process (it has not written its pid yet)"
    bits = [b for b in (holder.get("command"), holder.get("started") and f"started {holder['started']}") if b]
    return f"pid {holder['pid']}" + (f" ({', '.join(bits)})" if bits else "")


class FileLock:
    """An exclusive lock between processes, held for a ``with`` block: ``fcntl.flock`` on ``path``.

    The kernel drops the lock when its process ends, even by ``kill -9``, so a lock can never
    be left behind: a file whose holder is dead is simply taken over. The file records who holds
    it (pid, command, start time) for the message another process gets. Where ``flock`` is not
    available (Windows, some network file systems) the file itself is the lock, created
    exclusively, and taken over when the pid it names is no longer running.

    ``wait``: ``False`` raises :class:`LockBusy` at once when another process holds it; ``True``
    waits (saying for whom, once, through ``log``); a number waits at most that many seconds.
    """

    def __init__(self, path, purpose: str = "", wait: bool | float = False, log=print, poll: float = 0.2,
                 advice: str = ""):
        self.path, self.purpose, self.wait, self.log, self.poll = Path(path), purpose, wait, log, poll
        self.advice = advice

    # -- the two ways of holding it
    def _try_flock(self):
        """The open, locked fd; ``None`` when another process holds it; raise OSError when flock is unusable."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError:
            os.close(fd)
            raise
        try:                                    # the holder before us may have removed the file meanwhile
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try_flock()
        return fd

    def _try_pidfile(self):
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666 & ~_UMASK)
        except FileExistsError:
            holder = _read_holder(self.path)
            if holder.get("pid") and not pid_alive(holder["pid"]):     # stale: its process is gone
                Path(self.path).unlink(missing_ok=True)
                return self._try_pidfile()
            return None
        return fd

    def acquire(self) -> "FileLock":
        import time

        self.path.parent.mkdir(parents=True, exist_ok=True)
        import threading

        key = f"{self.path.parent.resolve() / self.path.name}@{threading.get_ident()}"   # re-entrant per thread
        if key in _HELD:
            _HELD[key][1] += 1
            self._key = key
            return self
        deadline = None if self.wait is True else time.monotonic() + (0 if self.wait is False else float(self.wait))
        said = False
        while True:
            before = _read_holder(self.path)
            fd = None
            if fcntl is not None:
                try:
                    fd = self._try_flock()
                    if fd is None:
                        fd = False
                except OSError:                 # ENOLCK, EOPNOTSUPP ...: no flock on this file system
                    fd = None
            if fd is None:
                fd = self._try_pidfile() or False
            if fd is not False:
                break
            holder = _read_holder(self.path) or before
            if deadline is not None and time.monotonic() >= deadline:
                raise LockBusy(f"{self.purpose or self.path} is in use by {describe_holder(holder)}."
                               + (f" {self.advice.format(pid=holder.get('pid', '?'))}" if self.advice else ""), holder)
            if not said:
                self.log(f"waiting for {describe_holder(holder)}, which holds {self.purpose or self.path} ...")
                said = True
            time.sleep(self.poll)
        if before.get("pid") and before.get("pid") != os.getpid() and not pid_alive(before["pid"]):
            self.log(f"note: {self.path.name} was left by pid {before['pid']}, which is no longer running; taking it over.")
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_holder_now(self.purpose)) + "\n").encode())
        _HELD[key] = [fd, 1]
        self._key = key
        return self

    def release(self) -> None:
        held = _HELD.get(self._key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[self._key]
        try:
            self.path.unlink(missing_ok=True)   # removed while still held: no one is left with a stale file
        finally:
            os.close(held[0])

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def run_lock(dataset: str, wait: bool | float = False, log=print) -> FileLock:
    """The lock a whole run (``utils.benchmark``, ``utils.run_course``) holds on one dataset's folders.

    Two runs on one dataset at once would mix their files: one run's split under the other's
    scores, one's model files beside the other's metrics. A second run refuses at once, naming the
    first (pid, command, start time), or with ``wait`` queues behind it. The lock file is
    ``data/processed/.<dataset>.run.lock`` (beside the folders it guards, wherever
    ``COURSE_OUTPUT_DIR`` puts them); a run killed with ``kill -9`` leaves no lock behind.
    """
    from utils import config

    folder = config.processed_dir(dataset)
    return FileLock(folder.parent / f".{folder.name}.run.lock", wait=wait, log=log,
                    purpose=f"dataset {folder.name} (its processed data, results and models)",
                    advice="Two runs on one dataset at once would mix their files (one run's split, the other's "
                           "scores). Wait until it ends, run again with --wait to start when it does, "
                           "or stop it (kill {pid}).")
