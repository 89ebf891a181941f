"""Fetch one raw input file, verified: the download stage's library code.

A raw file is only ever trusted after its sha256 matched a known checksum, so a flaky network,
a truncated transfer or a wrong mirror file can never leak into the pipeline:

* the bytes stream into ``<dest>.part`` (resumable with an HTTP Range request), are fsynced,
  verified, and only then renamed onto ``<dest>``; a mismatch moves them to ``<dest>.bad``;
* a local mirror (``mirror=`` or ``$TEXTCLF_MIRROR``) replaces the network entirely, and its
  ``SHA256SUMS`` may carry its own checksums (repacked files) that then win over params.yaml;
* ``<dest>.sha256`` records the hash verified, where it came from and where the bytes came
  from, in ``sha256sum -c`` format (extra facts as ``#`` comment lines).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from tqdm import tqdm

from textclf.atomic import write_text
from textclf.config import ParamsError
from textclf.errors import ChecksumError, DownloadError

log = logging.getLogger("textclf.download")

MIRROR_ENV = "TEXTCLF_MIRROR"
SUMS_NAME = "SHA256SUMS"
CHUNK = 1 << 20
USER_AGENT = "textclf-pipeline (python urllib)"
RETRY_STATUS = frozenset({408, 425, 429})  # plus every 5xx

SOURCE_PARAMS = "params.yaml"
SOURCE_MIRROR = "mirror SHA256SUMS"
SOURCE_UNPINNED = "unpinned (recorded)"

_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


@dataclass(frozen=True)
class FetchResult:
    """What fetch() did: enough for a one-line summary and for the sidecar."""

    path: Path
    sha256: str
    checksum_source: str
    origin: str
    bytes: int
    seconds: float
    up_to_date: bool = False

    def summary(self) -> str:
        """One line for the stage log: size, time, throughput and which checksum was checked."""
        if self.up_to_date:
            return (f"up to date: {self.path} ({self.bytes:,} bytes, sha256 {self.sha256[:12]}…, "
                    f"checksum: {self.checksum_source})")
        rate = self.bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")
        return (f"fetched {self.path}: {self.bytes:,} bytes in {self.seconds:.2f} s "
                f"({rate:.1f} MB/s) from {self.origin}; sha256 {self.sha256[:12]}… "
                f"checksum: {self.checksum_source}")


@dataclass(frozen=True)
class Checksum:
    """An expected sha256 and where it was read, so every message can say which one failed."""

    sha256: str
    source: str  # SOURCE_PARAMS | SOURCE_MIRROR
    where: str  # the file it was read from

    def describe(self) -> str:
        return self.source if self.where == self.source else f"{self.source} ({self.where})"


@dataclass(frozen=True)
class Source:
    """Where the bytes come from and which checksum they must match (decided before any I/O)."""

    origin: str  # the URL or local path read
    local: Path | None  # set for mirror / file:// / plain-path sources
    expected: Checksum | None  # verified on a fresh fetch; None: unpinned
    trusted: tuple[Checksum, ...]  # any of these makes an existing dest up to date
    missing: str | None = None  # mirror set but lacks the file: the error to raise


# ---------------------------------------------------------------- params and sources


def lookup_download(params: Mapping[str, Any], key: str) -> tuple[str, str, dict[str, Any]]:
    """(group, file, {url, sha256}) for a "<group>/<file>" key of params.downloads."""
    downloads = params["downloads"]
    allowed = sorted(f"{g}/{f}" for g, files in downloads.items() for f in files)
    group, _, name = key.partition("/")
    if name not in downloads.get(group, {}):
        raise ParamsError(f"--file {key!r}: not a download in params.yaml; allowed: {allowed}")
    return group, name, downloads[group][name]


def url_basename(url: str) -> str:
    """The file name at the end of a URL or path (what the mirror layout is keyed on)."""
    return PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name


def local_path(url: str) -> Path | None:
    """The path a file:// URL or plain path points at; None for http(s)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"file URL with a remote host is not supported: {url}")
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme == "":
        return Path(url)
    raise DownloadError(f"unsupported URL scheme {parts.scheme!r} in {url} (http, https, file or a path)")


def read_sums(path: Path) -> dict[str, str]:
    """Parse a SHA256SUMS file ("<hex>  <group>/<file>" lines) into {relative path: hex}."""
    sums: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _SUMS_LINE.match(line)
        if match is None:
            log.warning("%s:%d: not a '<sha256>  <file>' line, ignored: %r", path, lineno, line)
            continue
        sums[match.group(2).strip()] = match.group(1).lower()
    return sums


def resolve_source(url: str, sha256: str | None, *, mirror: str | os.PathLike | None = None,
                   group: str | None = None) -> Source:
    """Decide origin and expected checksum: the mirror (if set) replaces the network entirely."""
    pinned = Checksum(sha256.lower(), SOURCE_PARAMS, SOURCE_PARAMS) if sha256 else None
    from_env = mirror is None
    if from_env:
        mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return Source(url, local_path(url), pinned, _present(pinned))
    root = Path(mirror)
    rel = f"{group}/{url_basename(url)}" if group else url_basename(url)
    path = root / rel
    mirrored = _mirror_checksum(root, rel)
    if mirrored and pinned and mirrored.sha256 != pinned.sha256:
        log.info("%s lists %s with its own sha256 %s (params.yaml pins %s): the mirror holds a "
                 "repack, so the mirror's checksum is the one verified", mirrored.where, rel,
                 mirrored.sha256, pinned.sha256)
    missing = None
    if not path.is_file():
        how = f"${MIRROR_ENV}" if from_env else "the mirror setting"
        missing = (f"{rel} is not in the mirror: {path} does not exist (mirror {root}, set by {how}; "
                   f"upstream URL {url}). Nothing is downloaded from the network while a mirror is "
                   f"set: add the file to the mirror, or unset the mirror to fetch it upstream.")
    return Source(str(path), path, mirrored or pinned, _present(mirrored, pinned), missing)


def _mirror_checksum(root: Path, rel: str) -> Checksum | None:
    """The mirror's own checksum for rel, if its SHA256SUMS lists it."""
    sums_path = root / SUMS_NAME
    if not sums_path.is_file():
        return None
    digest = read_sums(sums_path).get(rel)
    return Checksum(digest, SOURCE_MIRROR, str(sums_path)) if digest else None


def _present(*checksums: Checksum | None) -> tuple[Checksum, ...]:
    return tuple(c for c in checksums if c is not None)


# ---------------------------------------------------------------- fetch


def fetch(url: str, dest: str | os.PathLike, *, sha256: str | None,
          mirror: str | os.PathLike | None = None, group: str | None = None, retries: int = 4,
          backoff: float = 1.0, timeout: float = 60, progress: bool = True) -> FetchResult:
    """Fetch url (or its mirror copy) into dest, verified against sha256; see the module doc.

    retries: extra attempts after the first (HTTP only), waiting backoff * 2**n seconds
    between them. mirror=None reads $TEXTCLF_MIRROR.
    """
    start = time.monotonic()
    dest = Path(dest)
    source = resolve_source(url, sha256, mirror=mirror, group=group)
    current = _existing(dest, source, start)
    if current is not None:
        return current
    if source.missing:
        raise DownloadError(source.missing)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _sibling(dest, ".part")
    if source.local is not None:
        _copy_local(source.local, part, progress=progress, label=dest.name)
    else:
        _download_http(url, part, retries=retries, backoff=backoff, timeout=timeout,
                       progress=progress, label=dest.name)
    verified = _verify_and_install(part, dest, source)
    write_sidecar(dest, verified, source.origin)
    return FetchResult(dest, verified.sha256, verified.source, source.origin, dest.stat().st_size,
                       time.monotonic() - start)


def _existing(dest: Path, source: Source, start: float) -> FetchResult | None:
    """Fast path: dest already holds verified bytes. Unverifiable bytes are moved to .bad."""
    if not dest.is_file():
        return None
    actual = sha256_file(dest)
    recorded = read_sidecar(dest)
    match = next((c for c in source.trusted if c.sha256 == actual), None)
    if match is None and not source.expected and recorded.get("sha256") == actual:
        match = _unpinned(actual)
    if match is None:
        bad = _sibling(dest, ".bad")
        log.warning("%s exists but its sha256 %s matches no known checksum; moved aside to %s "
                    "and fetching again", dest, actual, bad)
        os.replace(dest, bad)
        return None
    origin = recorded.get("origin", source.origin)
    if recorded.get("sha256") != actual or recorded.get("checksum_source") != match.source:
        write_sidecar(dest, match, origin)
    log.info("up to date: %s (sha256 %s, checksum: %s)", dest, actual, match.describe())
    return FetchResult(dest, actual, match.source, origin, dest.stat().st_size,
                       time.monotonic() - start, up_to_date=True)


def _unpinned(actual: str) -> Checksum:
    """The record for a file nobody pinned: its own hash, labelled as such."""
    return Checksum(actual, SOURCE_UNPINNED, SOURCE_UNPINNED)


def _verify_and_install(part: Path, dest: Path, source: Source) -> Checksum:
    """Check the finished .part; rename it onto dest only if it matches, else onto .bad."""
    actual = sha256_file(part)
    expected = source.expected
    if expected is None:
        log.warning("NO CHECKSUM PINNED for %s: accepted UNVERIFIED; computed sha256 %s "
                    "(recorded in %s). Pin it in params.yaml to make the input reproducible.",
                    source.origin, actual, sidecar_path(dest))
        expected = _unpinned(actual)
    elif actual != expected.sha256:
        bad = _sibling(dest, ".bad")
        os.replace(part, bad)
        raise ChecksumError(
            f"sha256 mismatch for {source.origin}: expected {expected.sha256} (from "
            f"{expected.describe()}), got {actual}; the file was moved aside to {bad} and not "
            f"used (a re-run downloads it afresh)")
    else:
        log.info("verified sha256 %s of %s against %s", actual, source.origin, expected.describe())
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    return expected


# ---------------------------------------------------------------- transfers


def _copy_local(src: Path, part: Path, *, progress: bool, label: str) -> None:
    """Copy a local file (mirror, file:// or path) into .part; always from the start."""
    try:
        with open(src, "rb") as fin:
            _stream(fin, part, mode="wb", initial=0, total=os.fstat(fin.fileno()).st_size,
                    progress=progress, label=label)
    except FileNotFoundError as exc:
        raise DownloadError(f"source file not found: {src}") from exc
    except OSError as exc:
        raise DownloadError(f"cannot copy {src} to {part}: {exc}") from exc


def _download_http(url: str, part: Path, *, retries: int, backoff: float, timeout: float,
                   progress: bool, label: str) -> None:
    """Run _http_attempt until it succeeds, backing off exponentially on transient failures."""
    for attempt in range(retries + 1):
        try:
            _http_attempt(url, part, timeout=timeout, progress=progress, label=label)
            return
        except _Transient as exc:
            if attempt == retries:
                raise DownloadError(f"could not fetch {url} after {retries + 1} attempt(s): "
                                    f"{exc}") from exc
            delay = backoff * 2**attempt
            log.warning("%s: %s; retry %d/%d in %.3g s", url, exc, attempt + 1, retries, delay)
            time.sleep(delay)


class _Transient(Exception):
    """A failure worth retrying (connection, timeout, 5xx, truncated body)."""


def _http_attempt(url: str, part: Path, *, timeout: float, progress: bool, label: str) -> None:
    """One GET, resuming .part with a Range request; a short body raises _Transient."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout) as resp:
            start, total = _resume_point(resp, offset)
            written = _stream(resp, part, mode="ab" if start else "wb", initial=start,
                              total=total, progress=progress, label=label)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:  # .part is not a prefix the server can continue: start over
            part.unlink(missing_ok=True)
            raise _Transient(f"server refused to resume at byte {offset} (HTTP 416)") from exc
        if exc.code >= 500 or exc.code in RETRY_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc
    if total is not None and written < total:
        raise _Transient(f"truncated transfer: got {written:,} of {total:,} bytes")


def _resume_point(resp: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """(byte the body starts at, full file size or None): 206 continues .part, 200 restarts."""
    length = resp.headers.get("Content-Length")
    if offset and resp.status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            size = match.group(2)
            log.info("resuming %s at byte %d", resp.url, offset)
            return offset, int(size) if size != "*" else (offset + int(length) if length else None)
        raise _Transient(f"unexpected Content-Range {resp.headers.get('Content-Range')!r} "
                         f"for a resume at byte {offset}")
    if offset:
        log.info("server ignored the Range request for %s: restarting from byte 0", resp.url)
    return 0, int(length) if length else None


def _stream(src: BinaryIO, part: Path, *, mode: str, initial: int, total: int | None,
            progress: bool, label: str) -> int:
    """Copy src into part in chunks under a progress bar, then fsync; returns part's size."""
    with open(part, mode) as fh, tqdm(total=total, initial=initial, desc=label, unit="B",
                                      unit_scale=True, unit_divisor=1024,
                                      disable=None if progress else True) as bar:
        while chunk := src.read(CHUNK):
            fh.write(chunk)
            bar.update(len(chunk))
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


# ---------------------------------------------------------------- files


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(dest: str | os.PathLike) -> Path:
    return _sibling(Path(dest), ".sha256")


def write_sidecar(dest: Path, verified: Checksum, origin: str) -> None:
    """<dest>.sha256 in `sha256sum -c` format, plus # lines saying what was checked and how."""
    write_text(sidecar_path(dest), (
        f"{verified.sha256}  {dest.name}\n"
        f"# checksum_source: {verified.source}\n"
        f"# checksum_from: {verified.where}\n"
        f"# origin: {origin}\n"))


def read_sidecar(dest: str | os.PathLike) -> dict[str, str]:
    """{sha256, checksum_source, checksum_from, origin} from dest's sidecar; {} if absent."""
    path = sidecar_path(dest)
    if not path.is_file():
        return {}
    info: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            info[key.strip()] = value.strip()
        elif _SUMS_LINE.match(line):
            info["sha256"] = line.split()[0].lower()
    return info


def _sibling(dest: Path, suffix: str) -> Path:
    return dest.with_name(dest.name + suffix)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); harmless where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
