"""utils.data.download: the real HTTP download (retry, truncation, errors) and safe extraction."""
from __future__ import annotations

import gc
import hashlib
import io
import os
import tarfile

import pytest

from utils.data.download import ArchiveError, DownloadError, download, git_blob_sha1, safe_extract, sha256

PAYLOAD = os.urandom(50_000) + b"end of file"


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- hashes
def test_hashes_match_git_and_hashlib(tmp_path):
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello\n")
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_sha1(f) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert sha256(f) == hashlib.sha256(b"hello\n").hexdigest()
    big = tmp_path / "big.bin"
    big.write_bytes(PAYLOAD * 30)  # > 1 MiB: several chunks
    assert sha256(big) == hashlib.sha256(PAYLOAD * 30).hexdigest()
    assert git_blob_sha1(big) == hashlib.sha1(f"blob {len(PAYLOAD) * 30}\0".encode() + PAYLOAD * 30).hexdigest()


# --------------------------------------------------------------------------- download
def test_download_writes_the_file_atomically(http_server, tmp_path, no_sleep):
    url = http_server.script("/file.bin", {"body": PAYLOAD})
    dest = tmp_path / "sub" / "file.bin"
    assert download(url, dest, quiet=True) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["file.bin"]  # no .part file left
    assert http_server.count("/file.bin") == 1 and no_sleep == []


def test_ctrl_c_during_a_download_leaves_no_part_file(http_server, tmp_path, no_sleep, monkeypatch):
    from utils.data import download as dl

    url = http_server.script("/big.bin", {"body": PAYLOAD * 4})
    monkeypatch.setattr(dl, "CHUNK", 4096)
    written = []

    class Bar:                     # the progress bar sees every chunk: press Ctrl-C after the second
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            written.append(n)
            if len(written) == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_progress", lambda *a, **k: Bar())
    dest = tmp_path / "big.bin"
    with pytest.raises(KeyboardInterrupt):
        download(url, dest, quiet=True)
    assert len(written) == 2 and _leftovers(tmp_path) == []


def test_download_retries_a_503_then_succeeds(http_server, tmp_path, no_sleep):
    url = http_server.script("/flaky", {"status": 503, "body": b"busy"}, {"body": PAYLOAD})
    dest = download(url, tmp_path / "flaky.bin", retries=3, backoff=2.0, quiet=True)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.count("/flaky") == 2
    assert no_sleep == [2.0]  # one backoff before the second attempt
    assert _leftovers(tmp_path) == ["flaky.bin"]


def test_download_gives_up_after_retries_on_5xx(http_server, tmp_path, no_sleep):
    url = http_server.script("/down", {"status": 500, "body": b"oops"})
    with pytest.raises(DownloadError, match="after 3 attempts") as err:
        download(url, tmp_path / "down.bin", retries=3, backoff=1.0, quiet=True)
    assert url in str(err.value)
    assert http_server.count("/down") == 3
    assert no_sleep == [1.0, 2.0]  # exponential backoff between attempts
    assert _leftovers(tmp_path) == []


def test_truncated_body_fails_after_retries_and_leaves_nothing(http_server, tmp_path, no_sleep):
    url = http_server.script("/short", {"body": PAYLOAD, "mode": "truncate"})
    with pytest.raises(DownloadError, match="truncated") as err:
        download(url, tmp_path / "short.bin", retries=2, timeout=5, quiet=True)
    assert "after 2 attempts" in str(err.value)
    assert http_server.count("/short") == 2
    assert _leftovers(tmp_path) == []  # no short.bin, no .part


def test_truncated_chunked_body_is_a_download_error(http_server, tmp_path, no_sleep):
    url = http_server.script("/chunked", {"body": PAYLOAD, "mode": "chunked"})
    with pytest.raises(DownloadError):
        download(url, tmp_path / "chunked.bin", retries=2, timeout=5, quiet=True)
    assert http_server.count("/chunked") == 2
    assert _leftovers(tmp_path) == []


def test_truncated_then_complete_succeeds(http_server, tmp_path, no_sleep):
    url = http_server.script("/second", {"body": PAYLOAD, "mode": "truncate"}, {"body": PAYLOAD})
    assert download(url, tmp_path / "ok.bin", retries=3, quiet=True).read_bytes() == PAYLOAD
    assert http_server.count("/second") == 2


def test_http_404_fails_at_once_naming_the_url(http_server, tmp_path, no_sleep):
    url = http_server.url("/missing.tar.gz")  # not scripted: the server answers 404
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "missing.tar.gz", retries=5, quiet=True)
    assert url in str(err.value) and "404" in str(err.value)
    assert http_server.count("/missing.tar.gz") == 1 and no_sleep == []
    assert _leftovers(tmp_path) == []


def test_offline_says_so(closed_port, tmp_path, no_sleep):
    url = f"http://127.0.0.1:{closed_port}/MovieSummaries.tar.gz"
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "x.tar.gz", retries=2, timeout=5, quiet=True)
    message = str(err.value)
    assert "offline" in message.lower() and url in message and "after 2 attempts" in message
    assert str(tmp_path / "x.tar.gz") in message  # says where to put a manual download
    assert len(no_sleep) == 1
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- safe_extract
def test_safe_extract_keeps_wanted_members_flat(tmp_path, make_tarball):
    archive = make_tarball(tmp_path / "a.tar.gz", {"Top/one.txt": b"1", "Top/two.txt": b"2", "Top/skip.txt": b"3"})
    dest = tmp_path / "out"
    paths = safe_extract(archive, dest, members={"one.txt", "two.txt"})
    assert sorted(p.name for p in paths) == ["one.txt", "two.txt"]
    assert (dest / "one.txt").read_bytes() == b"1" and (dest / "two.txt").read_bytes() == b"2"
    assert _leftovers(dest) == ["one.txt", "two.txt"]
    assert _leftovers(tmp_path) == ["a.tar.gz", "out"]  # temporary folder removed
    assert sorted(p.name for p in safe_extract(archive, tmp_path / "all")) == ["one.txt", "skip.txt", "two.txt"]


def test_corrupt_archive(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(os.urandom(4096))
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["bad.tar.gz"]


def test_truncated_archive(tmp_path, make_tarball):
    files = {f"Top/f{i}.bin": os.urandom(20_000) for i in range(6)}
    whole = make_tarball(tmp_path / "whole.tar.gz", files)
    half = tmp_path / "half.tar.gz"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        safe_extract(half, tmp_path / "out")
    assert _leftovers(tmp_path) == ["half.tar.gz", "whole.tar.gz"]  # nothing half-extracted


def _special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize("special", [
    _special("../evil.txt", tarfile.REGTYPE),
    _special("Top/../../evil.txt", tarfile.REGTYPE),
    _special("/tmp/evil.txt", tarfile.REGTYPE),
    _special("Top/evil.txt", tarfile.SYMTYPE, "/etc/passwd"),
    _special("Top/evil.txt", tarfile.LNKTYPE, "Top/good.txt"),
    _special("Top/fifo", tarfile.FIFOTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_unsafe_members_are_refused(tmp_path, make_tarball, special):
    work = tmp_path / "work"
    archive = make_tarball(work / "a.tar.gz", {"Top/good.txt": b"fine"}, specials=[(special, b"pwned")])
    dest = work / "x" / "out"
    with pytest.raises(ArchiveError, match="refusing to extract") as err:
        safe_extract(archive, dest)
    assert special.name in str(err.value)
    assert not dest.exists()  # not even the good member
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "work", "work/a.tar.gz", "work/x"]
    assert not os.path.exists("/tmp/evil.txt") or open("/tmp/evil.txt", "rb").read() != b"pwned"


def test_extracting_over_an_existing_folder_replaces_files(tmp_path, make_tarball):
    archive = make_tarball(tmp_path / "a.tar.gz", {"Top/one.txt": b"new"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "one.txt").write_bytes(b"old")
    safe_extract(archive, dest)
    assert (dest / "one.txt").read_bytes() == b"new"


def test_archive_from_bytes_in_memory_is_readable(tmp_path):
    # a plain (uncompressed) tar is accepted too: "r:*" detects the format
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("a/b.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    archive = tmp_path / "plain.tar"
    archive.write_bytes(buf.getvalue())
    assert safe_extract(archive, tmp_path / "out")[0].read_bytes() == b"abc"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open files")
def test_failed_attempts_do_not_leak_file_descriptors(http_server, tmp_path, no_sleep):
    url = http_server.script("/busy", {"status": 503, "body": b"busy"})
    missing = http_server.url("/nothing")

    def fail_both():
        with pytest.raises(DownloadError):
            download(url, tmp_path / "busy.bin", retries=2, quiet=True)
        with pytest.raises(DownloadError):
            download(missing, tmp_path / "nothing.bin", retries=2, quiet=True)
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    before = fail_both()
    after = [fail_both() for _ in range(5)]
    assert max(after) <= before  # 15 failed attempts: not one more open file
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- a download killed half-way
KILLED_DOWNLOAD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from utils.data.download import download
download(sys.argv[2], sys.argv[3], quiet=True, retries=1)
"""


@pytest.fixture
def stalling_server():
    """A loopback HTTP server: ``/stall`` sends half of 5 MB then hangs; ``/whole`` sends it all."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = PAYLOAD * 100
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path == "/stall":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                release.wait(60)
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", body
    release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_killed_download_leaves_a_part_file_that_the_next_start_removes(stalling_server, tmp_path, sig):
    import signal
    import subprocess
    import sys
    import time

    from utils import config

    base, body = stalling_server
    dest = tmp_path / "MovieSummaries.tar.gz"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, str(config.ROOT), f"{base}/stall", str(dest)])
    deadline = time.time() + 60
    while not [p for p in tmp_path.glob("*.part") if p.stat().st_size > 0]:
        assert time.time() < deadline and proc.poll() is None, "the download never started"
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=30)
    parts = list(tmp_path.glob(".MovieSummaries.tar.gz.*.part"))
    assert len(parts) == 1 and not dest.exists()              # what a killed download leaves
    download(f"{base}/whole", dest, quiet=True)               # the next start
    assert dest.read_bytes() == body
    assert _leftovers(tmp_path) == ["MovieSummaries.tar.gz"]   # the stale .part is gone


def test_a_part_file_still_being_written_is_left_alone(stalling_server, tmp_path, capsys):
    """Only parts whose writer is gone are removed: a download in progress holds a lock on its part."""
    import fcntl

    base, body = stalling_server
    dest = tmp_path / "file.bin"
    live = tmp_path / ".file.bin.abc123.part"
    stale = tmp_path / ".file.bin.def456.part"
    live.write_bytes(b"being written")
    stale.write_bytes(b"left by a killed run")
    with open(live, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)               # as a running download holds it
        download(f"{base}/whole", dest)
    assert dest.read_bytes() == body
    assert live.exists() and not stale.exists()
    assert "removed .file.bin.def456.part" in capsys.readouterr().out
