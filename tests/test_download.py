"""Download stage: local/file:// sources, a loopback HTTP server with scripted faults, mirrors."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import time
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
    requests: list[str | None] = field(default_factory=list)  # Range header per request


class _Handler(BaseHTTPRequestHandler):
    script: Script  # set on a per-server subclass

    def do_GET(self):  # noqa: N802 (http.server API)
        s = self.script
        s.requests.append(self.headers.get("Range"))
        if len(s.requests) <= s.fail_first:
            self.send_error(s.fail_status)
            return
        if len(s.requests) <= s.stall_first:
            time.sleep(0.5)
        body = bytes(b ^ 0xFF for b in s.payload) if s.corrupt else s.payload
        start = 0
        rng = self.headers.get("Range")
        if rng and s.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if s.truncate_first > 0:
            s.truncate_first -= 1
            chunk = chunk[: len(chunk) // 2]
        self.wfile.write(chunk)

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
                    "checksum_from": "params.yaml", "origin": url}
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


def test_unpinned_is_accepted_loudly_and_recorded(tmp_path, src_file, caplog):
    dest = tmp_path / "data.bin"
    with caplog.at_level(logging.WARNING, logger="textclf.download"):
        result = fetch(str(src_file), dest, sha256=None)
    assert result.checksum_source == SOURCE_UNPINNED and result.sha256 == PAYLOAD_SHA
    assert "NO CHECKSUM PINNED" in caplog.text and PAYLOAD_SHA in caplog.text
    assert read_sidecar(dest)["sha256"] == PAYLOAD_SHA
    assert fetch(str(src_file), dest, sha256=None).up_to_date  # the recorded hash is trusted


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
    url, script = server
    script.fail_first, script.fail_status = 99, 404
    with pytest.raises(DownloadError, match="HTTP 404"):
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


def test_resume_from_existing_part(tmp_path, server):
    url, script = server
    dest = tmp_path / "data.bin"
    Path(f"{dest}.part").write_bytes(PAYLOAD[:1000])
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD and script.requests == ["bytes=1000-"]


def test_part_restarts_when_server_ignores_range(tmp_path, server):
    url, script = server
    script.ranges = False
    dest = tmp_path / "data.bin"
    Path(f"{dest}.part").write_bytes(b"garbage that is not a prefix")
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD and script.requests == ["bytes=28-"]


# ---------------------------------------------------------------- mirrors


def make_mirror(root: Path, *, listed: bool, payload: bytes = PAYLOAD) -> Path:
    (root / "grp").mkdir(parents=True)
    (root / "grp" / "data.bin").write_bytes(payload)
    if listed:
        sha = hashlib.sha256(payload).hexdigest()
        (root / "SHA256SUMS").write_text(f"{WRONG_SHA}  other/x.bin\n{sha}  grp/data.bin\n")
    return root


def test_mirror_checksum_wins(tmp_path, server, caplog):
    url, script = server
    repack = b"a repack of the upstream file"
    mirror = make_mirror(tmp_path / "mirror", listed=True, payload=repack)
    dest = tmp_path / "data.bin"
    with caplog.at_level(logging.INFO, logger="textclf.download"):
        result = fetch(url, dest, sha256=PAYLOAD_SHA, mirror=mirror, group="grp", **FAST)
    assert result.checksum_source == SOURCE_MIRROR
    assert result.sha256 == hashlib.sha256(repack).hexdigest()
    assert result.origin == str(mirror / "grp" / "data.bin")
    assert script.requests == []  # the network was never touched
    assert str(mirror / "SHA256SUMS") in caplog.text and "repack" in caplog.text
    assert read_sidecar(dest)["checksum_source"] == SOURCE_MIRROR


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
    assert result.sha256 == spec["sha256"] and result.checksum_source == SOURCE_MIRROR
    assert result.origin == str(SHARED_MIRROR / "ag_news" / "test.csv")


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
