"""Downloading and unpacking, safely.

* :func:`download` fetches a URL to a temporary name with a progress bar, retries
  transient failures, checks the size, and renames the file into place only when
  it is complete. Being offline gives :class:`DownloadError` with a fix, not a
  traceback from deep inside urllib. A download killed where Python cannot clean up
  (SIGTERM, ``kill -9``, a closed laptop) leaves its ``.part`` file: the next download
  of the same file removes it (:func:`remove_stale_parts`), never one still being written.
* :func:`safe_extract` unpacks a tar archive refusing absolute paths, ``..``,
  links and device files.
* :func:`git_blob_sha1` / :func:`sha256` hash files to verify what was downloaded.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

try:
    import fcntl
except ImportError:     # Windows: stale parts are recognised by their age instead
    fcntl = None

CHUNK = 1 << 20
STALE_PART_S = 24 * 3600   # without fcntl: a .part file untouched this long is stale
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class DownloadError(RuntimeError):
    """A download that failed for good (offline, HTTP error, truncated file)."""


class ArchiveError(RuntimeError):
    """An archive that is corrupt, truncated, unsafe or has unexpected contents."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """SHA-1 of ``b"blob <size>\\0" + content``: the hash git gives the file."""
    h = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _progress(total: int | None, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=quiet, leave=False)


def _part_is_stale(path: Path) -> bool:
    """Whether no running download writes ``path``: a writer holds ``flock`` on it until it ends."""
    if fcntl is None:
        try:
            return time.time() - path.stat().st_mtime > STALE_PART_S
        except OSError:
            return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:      # held: a download in progress (this process or another)
        return False
    finally:
        os.close(fd)


def remove_stale_parts(dest: Path, quiet: bool = False) -> list[Path]:
    """Remove the ``.part`` files of ``dest`` left by downloads that were killed; keep those in progress."""
    dest = Path(dest)
    removed = []
    for part in sorted(dest.parent.glob(f".{dest.name}.*.part")) if dest.parent.is_dir() else []:
        if part.is_file() and not part.is_symlink() and _part_is_stale(part):
            size = part.stat().st_size
            part.unlink(missing_ok=True)
            removed.append(part)
            if not quiet:
                print(f"removed {part.name} ({size / 2**20:.1f} MiB), the unfinished download of a run that was killed")
    return removed


def download(url: str, dest: Path, retries: int = 3, timeout: float = 30.0,
             backoff: float = 1.0, quiet: bool = False) -> Path:
    """Download ``url`` to ``dest`` (atomically); return ``dest``.

    Connection problems, timeouts, HTTP 5xx and truncated bodies are retried
    ``retries`` times with exponential backoff; HTTP 4xx fails at once.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(dest, quiet=quiet)
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)   # "in progress" for remove_stale_parts, until the file is closed
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "movie-genres-course"})
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length")
                total = int(total) if total and total.isdigit() else None
                got = 0
                with _progress(total, dest.name, quiet) as bar:
                    for chunk in iter(lambda: resp.read(CHUNK), b""):
                        out.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                if total is not None and got != total:
                    raise DownloadError(f"truncated download: got {got:,} of {total:,} bytes")
                out.flush()
                os.chmod(tmp, 0o666 & ~_UMASK)
                os.replace(tmp, dest)        # while still locked: never taken for a stale part
            return dest
        except urllib.error.HTTPError as err:
            if 400 <= err.code < 500:
                raise DownloadError(f"{url} answered HTTP {err.code} ({err.reason}): the file is not "
                                    f"there. Check the URL, or download it by hand into {dest.parent}.") from None
            last_error = err
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, DownloadError,
                OSError, http.client.HTTPException) as err:  # HTTPException: IncompleteRead, BadStatusLine
            last_error = err
        finally:  # also on Ctrl-C (KeyboardInterrupt): never leave a .part file behind
            Path(tmp).unlink(missing_ok=True)
        if attempt < retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    reason = getattr(last_error, "reason", last_error)
    raise DownloadError(
        f"Could not download {url} after {retries} attempts ({reason}). Are you offline? "
        f"Connect to the internet, or download the file by hand and put it at {dest}."
    )


def _member_problem(member: tarfile.TarInfo, root: Path) -> str | None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        return "a path outside the target folder"
    if not (member.isfile() or member.isdir()):
        return "a link or special file"
    target = (root / member.name).resolve()
    if root != target and root not in target.parents:
        return "a path outside the target folder"
    return None


def safe_extract(archive: Path, dest: Path, members: set[str] | None = None) -> list[Path]:
    """Extract regular files (optionally only those whose base name is in ``members``).

    Extraction goes to a temporary folder beside ``dest`` that is renamed into place
    at the end, so an interrupted or failed extraction leaves nothing behind.
    """
    archive, dest = Path(archive), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    root = tmp.resolve()
    written = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                problem = _member_problem(member, root)
                if problem:
                    raise ArchiveError(f"{archive.name} contains {member.name!r}, {problem}; "
                                       f"refusing to extract it. Delete the archive and download it again.")
                if not member.isfile():
                    continue
                base = PurePosixPath(member.name).name
                if members is not None and base not in members:
                    continue
                src = tar.extractfile(member)
                target = root / base
                with open(target, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                written.append(base)
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for base in written:
            os.replace(root / base, dest / base)
            paths.append(dest / base)
        return paths
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise ArchiveError(f"{archive} is corrupt or truncated ({err}). Delete it and download it again.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
