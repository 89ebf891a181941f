"""Download stage: local/file:// sources, a loopback HTTP server with scripted faults, mirrors."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import logging
import os
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from textclf.config import REPO_ROOT, ParamsError, load_params
from textclf.download import (
    SOURCE_MIRROR,
    SOURCE_PARAMS,
    SOURCE_UNPINNED,
    fetch,
    lookup_download,
    read_sidecar,
    redownload_command,
    verify_raw,
)
from textclf.errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes: several chunks for the server
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_SHA = "0" * 64
SHARED_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"  # /work/shared/data
FAST = {"backoff": 0.001, "timeout": 2}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """No mirror from the caller's shell, and loopback never goes through a proxy."""
    monkeypatch.delenv("TEXTCLF_MIRROR", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# ---------------------------------------------------------------- loopback server


@dataclass
class Script:
    """What the test server does; the handler consults and updates it per request."""

    payload: bytes = PAYLOAD
    fail_first: int = 0  # answer this many requests with fail_status
    fail_status: int = 503
    stall_first: int = 0  # sleep past the client's timeout on this many requests
    truncate_first: int = 0  # cut this many bodies in half (Content-Length still full)
    corrupt: bool = False  # serve different bytes of the same length
    ranges: bool = True  # honour Range with 206
    length: bool = True  # send Content-Length (False: the body ends when the connection closes)
    etag: str | None = '"v1"'  # the payload's ETag (None: send none)
    if_range: bool = True  # honour If-Range (a changed validator gets the full body, 200)
    chunk_delay: float = 0.0  # > 0: send the body in 16 KiB pieces, sleeping this long between
    requests: list[str | None] = field(default_factory=list)  # Range header per request
    if_ranges: list[str | None] = field(default_factory=list)  # If-Range header per request

    def change_upstream(self, payload: bytes, etag: str | None) -> None:
        """The file upstream is replaced (a new release): new bytes, new validator."""
        self.payload, self.etag = payload, etag


class _Handler(BaseHTTPRequestHandler):
    script: Script  # set on a per-server subclass

    def do_GET(self):  # noqa: N802 (http.server API)
        s = self.script
        s.requests.append(self.headers.get("Range"))
        s.if_ranges.append(self.headers.get("If-Range"))
        if len(s.requests) <= s.fail_first:
            self.send_error(s.fail_status)
            return
        if len(s.requests) <= s.stall_first:
            time.sleep(0.5)
        body = bytes(b ^ 0xFF for b in s.payload) if s.corrupt else s.payload
        start = 0
        rng = self.headers.get("Range")
        validator = self.headers.get("If-Range")
        stale = s.if_range and validator is not None and validator != s.etag
        if rng and s.ranges and not stale:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        if s.etag:
            self.send_header("ETag", s.etag)
        chunk = body[start:]
        if s.length:
            self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if s.truncate_first > 0:
            s.truncate_first -= 1
            chunk = chunk[: len(chunk) // 2]
        if not s.chunk_delay:
            self.wfile.write(chunk)
            return
        for pos in range(0, len(chunk), 1 << 14):
            self.wfile.write(chunk[pos:pos + (1 << 14)])
            time.sleep(s.chunk_delay)

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout test) is expected


@contextmanager
def serve(script: Script) -> Iterator[int]:
    """A loopback server on an ephemeral port for the test's duration; yields the port."""
    httpd = _QuietServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"script": script}))
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server():
    """(url, script): tests tweak the script before fetching and inspect its requests after."""
    script = Script()
    with serve(script) as port:
        yield f"http://127.0.0.1:{port}/files/data.bin", script


# ---------------------------------------------------------------- local sources


@pytest.fixture
def src_file(tmp_path):
    path = tmp_path / "src" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_local_source(tmp_path, src_file, as_url):
    url = src_file.as_uri() if as_url else str(src_file)
    dest = tmp_path / "out" / "data.bin"
    result = fetch(url, dest, sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD
    assert (result.sha256, result.checksum_source, result.bytes) == (PAYLOAD_SHA, SOURCE_PARAMS, len(PAYLOAD))
    assert result.origin == url and not result.up_to_date
    assert not Path(f"{dest}.part").exists()
    side = read_sidecar(dest)
    assert side == {"sha256": PAYLOAD_SHA, "checksum_source": SOURCE_PARAMS,
                    "checksum_from": "params.yaml", "origin": url, "upstream_sha256": PAYLOAD_SHA,
                    "matches_upstream": "yes"}
    assert Path(f"{dest}.sha256").read_text().startswith(f"{PAYLOAD_SHA}  data.bin\n")


def test_up_to_date_is_a_no_op(tmp_path, server, caplog):
    url, script = server
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    caplog.set_level(logging.INFO, logger="textclf.download")
    again = fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert again.up_to_date and again.sha256 == PAYLOAD_SHA
    assert len(script.requests) == 1
    assert "up to date" in caplog.text and "up to date" in again.summary()


def test_stale_dest_moved_aside_and_refetched(tmp_path, src_file):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old and wrong")
    result = fetch(str(src_file), dest, sha256=PAYLOAD_SHA)
    assert not result.up_to_date and dest.read_bytes() == PAYLOAD
    assert Path(f"{dest}.bad").read_bytes() == b"old and wrong"


def test_missing_local_source(tmp_path):
    with pytest.raises(DownloadError, match="source file not found"):
        fetch(str(tmp_path / "nope.bin"), tmp_path / "out.bin", sha256=PAYLOAD_SHA)


def test_unpinned_is_accepted_loudly_and_recorded(tmp_path, server, caplog):
    url, _ = server
    dest = tmp_path / "data.bin"
    with caplog.at_level(logging.WARNING, logger="textclf.download"):
        result = fetch(url, dest, sha256=None, **FAST)
    assert result.checksum_source == SOURCE_UNPINNED and result.sha256 == PAYLOAD_SHA
    assert "NO CHECKSUM PINNED" in caplog.text and PAYLOAD_SHA in caplog.text
    assert read_sidecar(dest)["sha256"] == PAYLOAD_SHA
    assert fetch(url, dest, sha256=None, **FAST).up_to_date  # the recorded hash is trusted


@pytest.mark.parametrize("form", ["file-url", "absolute", "relative"])
def test_unpinned_local_file_is_refused_and_nothing_copied(tmp_path, monkeypatch, form):
    """Issue 38.4: `url: file:///etc/passwd` (or ../../etc/passwd) with sha256 null became
    train.csv after a format check only."""
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    work = tmp_path / "work" / "project"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    url = {"file-url": secret.as_uri(), "absolute": str(secret),
           "relative": os.path.relpath(secret, work)}[form]
    dest = work / "data" / "raw" / "ag_news" / "train.csv"
    with pytest.raises(DownloadError) as err:
        fetch(url, dest, sha256=None, group="ag_news", key="ag_news/train.csv")
    msg = str(err.value)
    assert "is a local file and params.yaml downloads.ag_news.train.csv.sha256 is not set" in msg
    assert "nothing was copied" in msg and "passwd.sha256" not in msg
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    assert secret.read_text().startswith("root:")


def test_pinned_local_file_that_fails_is_not_copied_anywhere(tmp_path, monkeypatch):
    """Issue 38.4: with the pin kept the file was refused, but a copy stayed in train.csv.bad
    and the message named downloads.ag_news.passwd.sha256, a key that does not exist."""
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    dest = tmp_path / "raw" / "ag_news" / "train.csv"
    with pytest.raises(ChecksumError) as err:
        fetch(secret.as_uri(), dest, sha256=WRONG_SHA, group="ag_news", key="ag_news/train.csv")
    msg = str(err.value)
    assert "(params.yaml downloads.ag_news.train.csv.sha256)" in msg and "passwd.sha256" not in msg
    assert "its copy was deleted and not used" in msg
    assert list(dest.parent.iterdir()) == []


def test_pinned_local_file_is_accepted(tmp_path, src_file):
    result = fetch(src_file.as_uri(), tmp_path / "data.bin", sha256=PAYLOAD_SHA)
    assert result.checksum_source == SOURCE_PARAMS and (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_a_raw_file_once_accepted_unpinned_from_a_local_path_is_not_trusted(tmp_path, src_file):
    """A data/raw file an older version accepted from a local path without a pin is refused
    before a stage reads it."""
    dest = tmp_path / "data.bin"
    fetch(src_file.as_uri(), dest, sha256=PAYLOAD_SHA)
    with pytest.raises(ChecksumError, match=r"is not trusted: .* is a local file and params.yaml "
                       r"downloads.grp.data.bin.sha256 is not set"):
        verify_raw(dest, "grp/data.bin", url=src_file.as_uri(), sha256=None)


# ---------------------------------------------------------------- HTTP


def test_http_download(tmp_path, server):
    url, script = server
    result = fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, **FAST)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert result.origin == url and script.requests == [None]


def test_checksum_mismatch(tmp_path, server):
    url, script = server
    script.corrupt = True
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumError) as err:
        fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    bad_sha = hashlib.sha256(bytes(b ^ 0xFF for b in PAYLOAD)).hexdigest()
    msg = str(err.value)
    assert PAYLOAD_SHA in msg and bad_sha in msg and "params.yaml" in msg
    assert not dest.exists() and not Path(f"{dest}.sha256").exists()
    assert not Path(f"{dest}.part").exists()
    assert hashlib.sha256(Path(f"{dest}.bad").read_bytes()).hexdigest() == bad_sha


def test_retries_5xx(tmp_path, server):
    url, script = server
    script.fail_first = 2
    fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, **FAST)
    assert len(script.requests) == 3


def test_gives_up_after_retries(tmp_path, server):
    url, script = server
    script.fail_first = 99
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\): HTTP 503"):
        fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, retries=2, **FAST)
    assert len(script.requests) == 3 and not (tmp_path / "data.bin").exists()


def test_404_is_not_retried(tmp_path, server):
    """And its message says so."""
    url, script = server
    script.fail_first, script.fail_status = 99, 404
    with pytest.raises(DownloadError, match="HTTP 404 .*: not retried"):
        fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, **FAST)
    assert len(script.requests) == 1


def test_timeout_is_retried(tmp_path, server):
    url, script = server
    script.stall_first = 1
    fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, backoff=0.001, timeout=0.1)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD and len(script.requests) == 2


def test_connection_refused_is_retried_then_clear(tmp_path):
    closed = _QuietServer(("127.0.0.1", 0), _Handler)
    port = closed.server_port
    closed.server_close()  # nothing listens there now
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}.* after 2 attempt"):
        fetch(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", sha256=PAYLOAD_SHA,
              retries=1, **FAST)


def test_truncated_transfer_is_resumed(tmp_path, server):
    url, script = server
    script.truncate_first = 1
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert script.requests == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_truncated_transfer_without_range_restarts(tmp_path, server):
    url, script = server
    script.truncate_first, script.ranges = 2, False
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD and len(script.requests) == 3


def test_always_truncated_fails_clearly(tmp_path, server):
    url, script = server
    script.truncate_first, script.ranges = 99, False
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match=r"truncated transfer: got 51,200 of 102,400 bytes"):
        fetch(url, dest, sha256=PAYLOAD_SHA, retries=2, **FAST)
    assert not dest.exists() and len(script.requests) == 3


def test_part_without_a_record_is_not_resumed(tmp_path, server):
    """A .part nobody recorded the origin of (URL, ETag, size) may belong to another file or
    an older release: it is discarded, not continued."""
    url, script = server
    dest = tmp_path / "data.bin"
    Path(f"{dest}.part").write_bytes(PAYLOAD[:1000])
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD and script.requests == [None]


def test_part_restarts_when_server_ignores_range(tmp_path, server):
    url, script = server
    dest = tmp_path / "data.bin"
    script.truncate_first = 1
    with pytest.raises(DownloadError, match="truncated transfer"):
        fetch(url, dest, sha256=PAYLOAD_SHA, retries=0, **FAST)
    script.ranges = False
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert script.requests == [None, f"bytes={len(PAYLOAD) // 2}-"]


# ---------------------------------------------------------------- unverifiable bytes (issue 10.1)


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("vectors.50d.txt", "".join(f"w{i} " + " ".join(["0.1"] * 50) + "\n"
                                               for i in range(2000)))
    return buf.getvalue()


def tar_gz_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = bytes(range(256)) * 300
        info = tarfile.TarInfo("pack/data.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


FORMATS = {"zip": ("vectors.zip", zip_bytes), "tar.gz": ("pack.tar.gz", tar_gz_bytes),
           "gz": ("table.csv.gz", lambda: gzip.compress(PAYLOAD, mtime=0))}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_unpinned_truncated_without_length_is_refused(tmp_path, server, fmt):
    """No pin, no Content-Length, connection closed mid-body: the cut looks like a complete
    transfer, so only the file's own format can tell. It is checked and the bytes refused."""
    url, script = server
    name, make = FORMATS[fmt]
    script.payload, script.length, script.truncate_first = make(), False, 1
    dest = tmp_path / name
    with pytest.raises(DownloadError) as err:
        fetch(url, dest, sha256=None, retries=0, **FAST)
    msg = str(err.value)
    assert f"not a complete {fmt}" in msg and url in msg
    cut = hashlib.sha256(script.payload[: len(script.payload) // 2]).hexdigest()
    assert f"the bytes (sha256 {cut})" in msg
    assert not dest.exists() and not Path(f"{dest}.sha256").exists()
    assert Path(f"{dest}.bad").stat().st_size == len(script.payload) // 2


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_unpinned_complete_without_length_is_format_checked_and_accepted(tmp_path, server, fmt):
    url, script = server
    name, make = FORMATS[fmt]
    script.payload, script.length = make(), False
    dest = tmp_path / name
    result = fetch(url, dest, sha256=None, **FAST)
    assert dest.read_bytes() == script.payload
    side = read_sidecar(dest)
    assert result.checksum_source == SOURCE_UNPINNED and side["sha256"] == result.sha256
    assert side["matches_upstream"] == "unknown" and side["verified_by"].startswith(fmt)


def test_unpinned_unknown_format_without_length_is_refused(tmp_path, server):
    url, script = server
    script.length = False
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="cannot be verified") as err:
        fetch(url, dest, sha256=None, **FAST)
    assert "downloads" in str(err.value) and not dest.exists()


def test_unpinned_truncated_mirror_archive_is_refused(tmp_path):
    src = tmp_path / "mirror" / "grp" / "vectors.zip"
    src.parent.mkdir(parents=True)
    src.write_bytes(zip_bytes()[:-100])  # the central directory is cut off
    with pytest.raises(DownloadError, match="not a complete zip") as err:
        fetch("https://example.invalid/vectors.zip", tmp_path / "raw" / "vectors.zip", sha256=None,
              mirror=tmp_path / "mirror", group="grp", key="grp/vectors.zip")
    assert "params.yaml downloads.grp.vectors.zip.sha256" in str(err.value)
    assert not (tmp_path / "raw").exists() or list((tmp_path / "raw").iterdir()) == []


# ---------------------------------------------------------------- resuming a .part (issue 10.1)


def test_resume_sends_if_range(tmp_path, server):
    url, script = server
    dest = tmp_path / "data.bin"
    script.truncate_first = 1
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert script.requests == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert script.if_ranges == [None, '"v1"']
    assert not Path(f"{dest}.part").exists() and not Path(f"{dest}.part.json").exists()


def _interrupted(url: str, script: Script, dest: Path, **kw) -> None:
    """Leave dest.part holding the first half of the current payload (a cut transfer)."""
    script.truncate_first = 1
    with pytest.raises(DownloadError, match="truncated"):
        fetch(url, dest, retries=0, **FAST, **kw)
    assert Path(f"{dest}.part").stat().st_size == len(script.payload) // 2


def test_resume_after_upstream_changed_restarts(tmp_path, server):
    """The file changed upstream between the cut and the resume: If-Range gets the whole new
    file (200), never the tail of the new file glued to the head of the old one."""
    url, script = server
    name, make = FORMATS["zip"]
    old = make()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("vectors.50d.txt", "a new release\n" * 5000)
    new = buf.getvalue()
    dest = tmp_path / name
    script.payload = old
    _interrupted(url, script, dest, sha256=None)
    script.change_upstream(new, '"v2"')
    fetch(url, dest, sha256=None, **FAST)
    assert dest.read_bytes() == new
    assert script.requests[-1] == f"bytes={len(old) // 2}-" and script.if_ranges[-1] == '"v1"'


def test_resume_restarts_when_server_ignores_if_range(tmp_path, server):
    """A server that ignores If-Range answers 206 with the new ETag: detected, restarted."""
    url, script = server
    dest = tmp_path / "data.bin"
    _interrupted(url, script, dest, sha256=None)
    changed = bytes(reversed(PAYLOAD))
    script.change_upstream(changed, '"v2"')
    script.if_range = False
    fetch(url, dest, sha256=hashlib.sha256(changed).hexdigest(), **FAST)
    assert dest.read_bytes() == changed
    assert script.requests[-2:] == [f"bytes={len(PAYLOAD) // 2}-", None]


def test_resume_restarts_when_total_size_changed(tmp_path, server):
    url, script = server
    script.etag = None  # no validator at all: only the size can tell
    dest = tmp_path / "data.bin"
    _interrupted(url, script, dest, sha256=PAYLOAD_SHA)
    bigger = PAYLOAD + b"appended"
    script.change_upstream(bigger, None)
    fetch(url, dest, sha256=hashlib.sha256(bigger).hexdigest(), **FAST)
    assert dest.read_bytes() == bigger and script.requests[-1] is None


def test_pinned_resume_that_fails_the_checksum_restarts_once(tmp_path, server):
    """No validator and the same size: the glued bytes fail the pin, so the .part is
    discarded and the file fetched once from the start (not reported as a mismatch)."""
    url, script = server
    script.etag = None
    dest = tmp_path / "data.bin"
    _interrupted(url, script, dest, sha256=PAYLOAD_SHA)
    changed = bytes(b ^ 0x55 for b in PAYLOAD)
    script.change_upstream(changed, None)
    fetch(url, dest, sha256=hashlib.sha256(changed).hexdigest(), **FAST)
    assert dest.read_bytes() == changed
    assert script.requests[-2:] == [f"bytes={len(PAYLOAD) // 2}-", None]


def test_complete_part_is_installed_on_416(tmp_path, server):
    """Killed after the last byte but before the rename: the server answers 416 for a range
    past the end; the complete .part is verified and installed without a new transfer."""
    url, script = server
    dest = tmp_path / "data.bin"
    _interrupted(url, script, dest, sha256=PAYLOAD_SHA)
    part = Path(f"{dest}.part")
    part.write_bytes(PAYLOAD)
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD and script.requests[-1] == f"bytes={len(PAYLOAD)}-"


# ---------------------------------------------------------------- failure paths (issue 14.8)


def test_checksum_mismatch_is_not_retried(tmp_path, server):
    url, script = server
    script.corrupt = True
    with pytest.raises(ChecksumError, match="not retried"):
        fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, **FAST)
    assert len(script.requests) == 1


def test_forced_refetch_keeps_the_good_file_until_the_new_one_verified(tmp_path, server):
    url, script = server
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    sidecar = Path(f"{dest}.sha256").read_text()
    script.corrupt = True
    with pytest.raises(ChecksumError):
        fetch(url, dest, sha256=PAYLOAD_SHA, force=True, **FAST)
    assert dest.read_bytes() == PAYLOAD and Path(f"{dest}.sha256").read_text() == sidecar
    script.corrupt = False
    result = fetch(url, dest, sha256=PAYLOAD_SHA, force=True, **FAST)
    assert not result.up_to_date and dest.read_bytes() == PAYLOAD and len(script.requests) == 3


def test_engine_deleted_output_comes_back_from_the_verified_copy(tmp_path, server):
    """Snakemake (--forcerun) and DVC (repro -f) delete a job's outputs before running it: the
    download stage restores the verified bytes it kept (a hard link), checked against the pin,
    so a forced rerun with the network down (here: 404) loses nothing."""
    url, script = server
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    dest.unlink()
    Path(f"{dest}.sha256").unlink()
    script.fail_first, script.fail_status = 99, 404
    result = fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD and read_sidecar(dest)["sha256"] == PAYLOAD_SHA
    assert len(script.requests) == 1 and "restored" in result.summary()
    # a kept copy that no longer matches the pin is not restored
    dest.unlink()
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(url, dest, sha256=WRONG_SHA, **FAST)
    assert not dest.exists()


# ---------------------------------------------------------------- mirrors


def make_mirror(root: Path, *, listed: bool, payload: bytes = PAYLOAD) -> Path:
    (root / "grp").mkdir(parents=True)
    (root / "grp" / "data.bin").write_bytes(payload)
    if listed:
        sha = hashlib.sha256(payload).hexdigest()
        (root / "SHA256SUMS").write_text(f"{WRONG_SHA}  other/x.bin\n{sha}  grp/data.bin\n")
    return root


def test_mirror_only_match_is_accepted_with_a_warning_and_recorded(tmp_path, server, caplog):
    """Issue 10.4: bytes matching only the mirror's SHA256SUMS (a repack) are accepted, loudly,
    and the sidecar records that this copy differs from the upstream file params.yaml pins."""
    url, script = server
    repack = b"a repack of the upstream file"
    repack_sha = hashlib.sha256(repack).hexdigest()
    mirror = make_mirror(tmp_path / "mirror", listed=True, payload=repack)
    dest = tmp_path / "data.bin"
    with caplog.at_level(logging.INFO, logger="textclf.download"):
        result = fetch(url, dest, sha256=PAYLOAD_SHA, mirror=mirror, group="grp", **FAST)
    assert result.checksum_source == SOURCE_MIRROR and result.sha256 == repack_sha
    assert result.origin == str(mirror / "grp" / "data.bin")
    assert script.requests == []  # the network was never touched
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert repack_sha in warnings[0] and PAYLOAD_SHA in warnings[0]
    assert str(mirror / "SHA256SUMS") in warnings[0] and "differs from upstream" in warnings[0]
    side = read_sidecar(dest)
    assert side["checksum_source"] == SOURCE_MIRROR
    assert side["matches_upstream"] == "no" and side["upstream_sha256"] == PAYLOAD_SHA
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="textclf.download"):
        assert fetch(url, dest, sha256=PAYLOAD_SHA, mirror=mirror, group="grp").up_to_date
    assert "differs from upstream" in caplog.text  # said again on every run, not only once


def test_params_pin_wins_over_a_wrong_mirror_checksum(tmp_path, server, caplog):
    """Issue 10.4: bytes that match the params.yaml pin are accepted even when the mirror's
    SHA256SUMS lists another hash (the mirror's entry is wrong and is named as such)."""
    url, _ = server
    mirror = make_mirror(tmp_path / "mirror", listed=False)
    (mirror / "SHA256SUMS").write_text(f"{WRONG_SHA}  grp/data.bin\n")
    dest = tmp_path / "data.bin"
    with caplog.at_level(logging.WARNING, logger="textclf.download"):
        result = fetch(url, dest, sha256=PAYLOAD_SHA, mirror=mirror, group="grp")
    assert result.checksum_source == SOURCE_PARAMS and dest.read_bytes() == PAYLOAD
    assert WRONG_SHA in caplog.text and str(mirror / "SHA256SUMS") in caplog.text
    side = read_sidecar(dest)
    assert side["checksum_source"] == SOURCE_PARAMS and side["matches_upstream"] == "yes"


def test_bytes_matching_neither_are_refused(tmp_path, server):
    url, _ = server
    mirror = make_mirror(tmp_path / "mirror", listed=False, payload=b"neither")
    (mirror / "SHA256SUMS").write_text(f"{WRONG_SHA}  grp/data.bin\n")
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumError) as err:
        fetch(url, dest, sha256=PAYLOAD_SHA, mirror=mirror, group="grp")
    msg = str(err.value)
    assert PAYLOAD_SHA in msg and WRONG_SHA in msg and hashlib.sha256(b"neither").hexdigest() in msg
    # the mirror keeps its file; no copy of refused bytes is left beside dest (issue 38.4)
    assert not dest.exists() and not Path(f"{dest}.bad").exists() and not Path(f"{dest}.part").exists()
    assert (mirror / "grp" / "data.bin").read_bytes() == b"neither"


def test_mirror_fix_makes_a_bad_raw_file_untrusted(tmp_path, server):
    """Issue 10.3: a truncated file once verified against a wrong mirror checksum is no longer
    trusted when the mirror is fixed: the next fetch re-verifies, moves it aside and copies
    the fixed file; verify_raw (what the prepare stage calls) names the command to run."""
    url, _ = server
    mirror = make_mirror(tmp_path / "mirror", listed=True, payload=PAYLOAD[:500])
    dest = tmp_path / "raw" / "grp" / "data.bin"
    fetch(url, dest, sha256=None, mirror=mirror, group="grp")
    assert dest.read_bytes() == PAYLOAD[:500]
    (mirror / "grp" / "data.bin").write_bytes(PAYLOAD)
    (mirror / "SHA256SUMS").write_text(f"{PAYLOAD_SHA}  grp/data.bin\n")
    with pytest.raises(ChecksumError) as err:
        verify_raw(dest, "grp/data.bin", url=url, sha256=None, mirror=mirror)
    msg = str(err.value)
    assert str(dest) in msg and PAYLOAD_SHA in msg and str(mirror / "SHA256SUMS") in msg
    assert redownload_command("grp/data.bin") in msg
    assert "python workflow/scripts/download.py jobs/download/grp/data.bin.json" in msg
    result = fetch(url, dest, sha256=None, mirror=mirror, group="grp")
    assert not result.up_to_date and dest.read_bytes() == PAYLOAD
    assert Path(f"{dest}.bad").read_bytes() == PAYLOAD[:500]
    assert verify_raw(dest, "grp/data.bin", url=url, sha256=None,
                      mirror=mirror).sha256 == PAYLOAD_SHA


def test_mirror_without_sums_uses_params_checksum(tmp_path, server, monkeypatch):
    url, script = server
    mirror = make_mirror(tmp_path / "mirror", listed=False)
    monkeypatch.setenv("TEXTCLF_MIRROR", str(mirror))
    result = fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, group="grp", **FAST)
    assert result.checksum_source == SOURCE_PARAMS and script.requests == []


def test_mirror_file_with_wrong_checksum(tmp_path, server):
    url, _ = server
    mirror = make_mirror(tmp_path / "mirror", listed=False, payload=b"not it")
    with pytest.raises(ChecksumError, match="expected .* \\(from params.yaml\\), got"):
        fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, mirror=mirror, group="grp")


def test_mirror_missing_file_names_the_path(tmp_path, server, monkeypatch):
    url, script = server
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("TEXTCLF_MIRROR", str(mirror))
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, group="grp", **FAST)
    msg = str(err.value)
    assert "grp/data.bin is not in the mirror" in msg
    assert str(mirror / "grp" / "data.bin") in msg and url in msg and "$TEXTCLF_MIRROR" in msg
    assert script.requests == []  # no silent fallback to the network


@pytest.mark.skipif(not SHARED_MIRROR.is_dir(), reason="shared data mirror not present")
def test_shared_mirror_ag_news_test(tmp_path):
    group, name, spec = lookup_download(load_params(REPO_ROOT / "params.yaml"), "ag_news/test.csv")
    result = fetch(spec["url"], tmp_path / name, sha256=spec["sha256"], mirror=SHARED_MIRROR,
                   group=group)
    assert result.sha256 == spec["sha256"] and result.checksum_source == SOURCE_PARAMS
    assert read_sidecar(tmp_path / name)["matches_upstream"] == "yes"
    assert result.origin == str(SHARED_MIRROR / "ag_news" / "test.csv")


@pytest.mark.skipif(not SHARED_MIRROR.is_dir(), reason="shared data mirror not present")
def test_shared_mirror_repack_is_marked(tmp_path):
    group, name, spec = lookup_download(load_params(REPO_ROOT / "params.yaml"),
                                        "imdb/aclImdb_v1.tar.gz")
    result = fetch(spec["url"], tmp_path / name, sha256=spec["sha256"], mirror=SHARED_MIRROR,
                   group=group, progress=False)
    assert result.checksum_source == SOURCE_MIRROR
    side = read_sidecar(tmp_path / name)
    assert side["matches_upstream"] == "no" and side["upstream_sha256"] == spec["sha256"]


# ---------------------------------------------------------------- CLI


def _script_main():
    path = REPO_ROOT / "workflow" / "scripts" / "download.py"
    spec = importlib.util.spec_from_file_location("download_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_lookup_unknown_download_lists_allowed():
    params = load_params(REPO_ROOT / "params.yaml")
    with pytest.raises(ParamsError, match=r"allowed: \[.*'ag_news/test.csv'.*'imdb/aclImdb_v1"):
        lookup_download(params, "ag_news/nope.csv")
    with pytest.raises(ParamsError, match="not a download"):
        lookup_download(params, "nogroup")


def test_cli_reads_params_and_mirror(tmp_path, capsys):
    mirror = tmp_path / "mirror" / "ag_news"
    mirror.mkdir(parents=True)
    data = b"1,title,description\n"
    (mirror / "test.csv").write_bytes(data)
    (mirror.parent / "SHA256SUMS").write_text(f"{hashlib.sha256(data).hexdigest()}  ag_news/test.csv\n")
    out = tmp_path / "raw" / "ag_news" / "test.csv"
    os.environ["TEXTCLF_MIRROR"] = str(mirror.parent)
    try:
        _script_main()([_job(tmp_path, "ag_news/test.csv", out)])
    finally:
        del os.environ["TEXTCLF_MIRROR"]
    line = capsys.readouterr().out
    assert out.read_bytes() == data
    assert "bytes in" in line and "MB/s" in line and SOURCE_MIRROR in line


def _job(tmp_path, ref: str, out) -> str:
    """The download stage's job file, as the plan writes it from params.yaml."""
    group, _, name = ref.partition("/")
    spec = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["downloads"][group][name]
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"file": ref, "url": spec["url"], "sha256": spec["sha256"], "out": str(out)}))
    return str(path)


def test_cli_unpinned_local_url_exits_2_naming_the_params_key(tmp_path, capsys, monkeypatch):
    """Issue 38.4 end to end: params.yaml's ag_news/train.csv pointed at a local file, unpinned."""
    from textclf.stage import run_stage

    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    out = tmp_path / "raw" / "ag_news" / "train.csv"
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"file": "ag_news/train.csv", "url": secret.as_uri(), "sha256": None,
                               "out": str(out)}))
    with pytest.raises(SystemExit) as exit_info:
        run_stage(_script_main(), [str(job)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error (DownloadError): {secret.as_uri()} is a local file and params.yaml "
                          "downloads.ag_news.train.csv.sha256 is not set") and "\n" not in err
    assert not out.parent.exists()


def test_cli_missing_mirror_file_exits_2(tmp_path, capsys, monkeypatch):
    from textclf.stage import run_stage

    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("TEXTCLF_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(SystemExit) as exit_info:
        run_stage(_script_main(), [_job(tmp_path, "ag_news/train.csv", tmp_path / "train.csv")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error (DownloadError): ag_news/train.csv is not in the mirror" in err
    assert str(tmp_path / "mirror" / "ag_news" / "train.csv") in err
