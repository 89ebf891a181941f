"""Fetch one raw input file, verified: the download stage's library code.

A raw file is only ever trusted after it was verified, so a flaky network, a truncated
transfer, a changed upstream file or a wrong mirror file can never leak into the pipeline:

* the bytes stream into ``<dest>.part``, are fsynced, verified, and only then renamed onto
  ``<dest>`` (an existing ``<dest>`` stays untouched until then); bytes that fail the check
  are moved to ``<dest>.bad`` and never used;
* verified means: the sha256 matches the params.yaml pin (always accepted) or the mirror's
  ``SHA256SUMS`` entry (accepted with a WARNING naming both hashes when a pin exists and
  differs: a repacked mirror copy, recorded as ``matches_upstream: no``); bytes matching
  neither are refused. A file with neither checksum is checked by its own format (zip central
  directory and CRCs, gzip trailer, tar end) and refused when its format cannot be checked and
  its length was not announced;
* ``<dest>.part.json`` records where a .part came from (URL, ETag / Last-Modified, size): a
  resume sends ``Range`` + ``If-Range``, and a .part whose upstream changed (new validator or
  size, or a resumed result failing the pin) is discarded and fetched again from the start;
* a local mirror (``mirror=`` or ``$TEXTCLF_MIRROR``) replaces the network entirely;
* ``<dest>.sha256`` records what was verified, in ``sha256sum -c`` format (extra facts as
  ``# key: value`` lines, documented in docs/CONTRACTS.md);
* ``.<dest name>.verified`` is a hard link to the last verified bytes: the engines delete a
  job's outputs before rerunning it (``snakemake --forcerun``, ``dvc repro -f``), and this
  copy comes back (after a fresh sha256 check against the current pin / mirror checksum)
  instead of a download that might fail;
* deterministic failures (HTTP 4xx, checksum mismatch, a broken archive) are not retried;
  connection errors, timeouts, 5xx and short bodies are, with exponential back-off.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import logging
import os
import re
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
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
    restored_from: Path | None = None

    def summary(self) -> str:
        """One line for the stage log: size, time, throughput and which checksum was checked."""
        if self.restored_from is not None:
            return (f"restored {self.path} from the verified copy {self.restored_from} "
                    f"({self.bytes:,} bytes, sha256 {self.sha256[:12]}…, checksum: "
                    f"{self.checksum_source}); nothing downloaded")
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
    source: str  # SOURCE_PARAMS | SOURCE_MIRROR | SOURCE_UNPINNED
    where: str  # the file it was read from

    def describe(self) -> str:
        return self.source if self.where == self.source else f"{self.source} ({self.where})"


@dataclass(frozen=True)
class Source:
    """Where the bytes come from and which checksums they may match (decided before any I/O)."""

    origin: str  # the URL or local path read
    local: Path | None  # set for mirror / file:// / plain-path sources
    pinned: Checksum | None  # params.yaml
    mirrored: Checksum | None  # the mirror's SHA256SUMS entry
    rel: str = ""  # <group>/<basename>: the mirror layout and SHA256SUMS key
    missing: str | None = None  # mirror set but lacks the file: the error to raise
    in_mirror: bool = False  # local because a mirror replaces the URL (not a file:// URL or path)

    @property
    def unpinned_local(self) -> bool:
        """A file:// URL or path with no sha256 pinned: any file on this machine (a typo, or
        ../../etc/passwd) would pass a format check, so it is never accepted."""
        return self.local is not None and not self.in_mirror and self.pinned is None

    @property
    def checked(self) -> bool:
        """True when some sha256 applies; False: only the file's format can be checked."""
        return self.pinned is not None or self.mirrored is not None

    def match(self, actual: str) -> Checksum | None:
        """The checksum actual satisfies: the params pin first, then the mirror's."""
        return next((c for c in (self.pinned, self.mirrored) if c and c.sha256 == actual), None)

    def expected_text(self) -> str:
        return " or ".join(f"{c.sha256} (from {c.describe()})"
                           for c in (self.pinned, self.mirrored) if c)


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
    """Decide origin and acceptable checksums: the mirror (if set) replaces the network."""
    pinned = Checksum(sha256.lower(), SOURCE_PARAMS, SOURCE_PARAMS) if sha256 else None
    from_env = mirror is None
    if from_env:
        mirror = os.environ.get(MIRROR_ENV)
    rel = f"{group}/{url_basename(url)}" if group else url_basename(url)
    if not mirror:
        return Source(url, local_path(url), pinned, None, rel)
    root = Path(mirror)
    path = root / rel
    mirrored = _mirror_checksum(root, rel)
    missing = None
    if not path.is_file():
        how = f"${MIRROR_ENV}" if from_env else "the mirror setting"
        missing = (f"{rel} is not in the mirror: {path} does not exist (mirror {root}, set by {how}; "
                   f"upstream URL {url}). Nothing is downloaded from the network while a mirror is "
                   f"set: add the file to the mirror, or unset the mirror to fetch it upstream.")
    return Source(str(path), path, pinned, mirrored, rel, missing, in_mirror=True)


def _mirror_checksum(root: Path, rel: str) -> Checksum | None:
    """The mirror's own checksum for rel, if its SHA256SUMS lists it."""
    sums_path = root / SUMS_NAME
    if not sums_path.is_file():
        return None
    digest = read_sums(sums_path).get(rel)
    return Checksum(digest, SOURCE_MIRROR, str(sums_path)) if digest else None


# ---------------------------------------------------------------- fetch


def fetch(url: str, dest: str | os.PathLike, *, sha256: str | None,
          mirror: str | os.PathLike | None = None, group: str | None = None, retries: int = 4,
          backoff: float = 1.0, timeout: float = 60, progress: bool = True,
          force: bool = False, key: str | None = None) -> FetchResult:
    """Fetch url (or its mirror copy) into dest, verified; see the module doc.

    retries: extra attempts after a transient failure (HTTP only), waiting backoff * 2**n
    seconds between them. mirror=None reads $TEXTCLF_MIRROR. force=True fetches again even
    when dest holds verified bytes; dest is only replaced once the new bytes verified.
    key: the params.yaml download ("<group>/<file>") this is, for the keys messages name.
    """
    start = time.monotonic()
    dest = Path(dest)
    source = resolve_source(url, sha256, mirror=mirror, group=group)
    if source.unpinned_local:
        raise DownloadError(f"{unpinned_local_message(url, source.local, key)}; nothing was copied")
    if not force:
        current = _existing(dest, source, start) or _restore_kept(dest, source, start)
        if current is not None:
            return current
    if source.missing:
        raise DownloadError(source.missing)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _sibling(dest, ".part")
    transfer = _transfer(url, source, part, retries=retries, backoff=backoff, timeout=timeout,
                         progress=progress, label=dest.name)
    try:
        verified, how = _verify(part, dest, source, transfer)
    except _Refused as exc:
        if not transfer.resumed:
            raise _reject(part, dest, source, exc, key) from None
        log.warning("%s: the resumed download failed its check (%s): the .part may hold the head "
                    "of an older upstream file; discarding it and downloading from the start",
                    source.origin, exc.short)
        _discard(part)
        transfer = _transfer(url, source, part, retries=retries, backoff=backoff,
                             timeout=timeout, progress=progress, label=dest.name)
        try:
            verified, how = _verify(part, dest, source, transfer)
        except _Refused as again:
            raise _reject(part, dest, source, again, key) from None
    _install(part, dest)
    write_sidecar(dest, verified, source.origin, pinned=source.pinned, verified_by=how)
    _keep(dest)
    return FetchResult(dest, verified.sha256, verified.source, source.origin, dest.stat().st_size,
                       time.monotonic() - start)


def _existing(dest: Path, source: Source, start: float) -> FetchResult | None:
    """Fast path: dest already holds verified bytes. Unverifiable bytes are moved to .bad."""
    if not dest.is_file():
        return None
    actual = sha256_file(dest)
    recorded = read_sidecar(dest)
    match = source.match(actual)
    how = None
    if match is None and not source.checked and recorded.get("sha256") == actual:
        how = recorded.get("verified_by")
        if how is None:  # recorded before format checks existed: check the format once now
            try:
                how = _check_format(dest, dest.name) or _UNCHECKED
            except _Refused as exc:
                log.warning("%s: %s", dest, exc.short)
                how = None
        if how is not None:
            match = _unpinned(actual)
    if match is None:
        bad = _sibling(dest, ".bad")
        expected = source.expected_text() or f"its recorded sha256 {recorded.get('sha256')}"
        log.warning("%s exists but its sha256 %s matches no checksum that applies now (%s); "
                    "moved aside to %s and fetching again", dest, actual, expected, bad)
        kept = kept_path(dest)
        with contextlib.suppress(OSError):
            if kept.exists() and os.path.samefile(kept, dest):
                kept.unlink()  # the kept copy is these very bytes: no longer verified
        os.replace(dest, bad)
        _sibling(dest, ".sha256").unlink(missing_ok=True)
        return None
    _announce(dest, actual, match, source)
    origin = recorded.get("origin", source.origin)
    wanted = _sidecar_text(dest, match, origin, pinned=source.pinned, verified_by=how)
    if not sidecar_path(dest).is_file() or sidecar_path(dest).read_text(encoding="utf-8") != wanted:
        write_text(sidecar_path(dest), wanted)
    _keep(dest)
    log.info("up to date: %s (sha256 %s, checksum: %s)", dest, actual, match.describe())
    return FetchResult(dest, actual, match.source, origin, dest.stat().st_size,
                       time.monotonic() - start, up_to_date=True)


def _restore_kept(dest: Path, source: Source, start: float) -> FetchResult | None:
    """dest is gone (an engine deleted it before a forced rerun): bring back the kept hard
    link when its bytes still match the params pin or the mirror checksum. Unpinned bytes are
    never restored: without a checksum, only a fresh download says what upstream holds."""
    kept = kept_path(dest)
    if dest.exists() or not kept.is_file() or not source.checked:
        return None
    actual = sha256_file(kept)
    match = source.match(actual)
    if match is None:
        log.info("%s no longer matches %s: not restored", kept, source.expected_text())
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(dest, ".restore")
    tmp.unlink(missing_ok=True)
    try:
        os.link(kept, tmp)
    except OSError:
        return None
    os.replace(tmp, dest)
    os.utime(dest)  # a restored file is as new as a downloaded one (mtime-based engines)
    _fsync_dir(dest.parent)
    _announce(dest, actual, match, source)
    write_sidecar(dest, match, source.origin, pinned=source.pinned)
    log.info("restored %s from the verified copy %s (sha256 %s, checksum: %s)", dest, kept,
             actual, match.describe())
    return FetchResult(dest, actual, match.source, source.origin, dest.stat().st_size,
                       time.monotonic() - start, up_to_date=True, restored_from=kept)


def _announce(dest: Path, actual: str, match: Checksum, source: Source) -> None:
    """Say loudly when the bytes differ from upstream, or when the mirror lists a wrong hash."""
    pinned, mirrored = source.pinned, source.mirrored
    if match is mirrored and pinned is not None:
        log.warning("%s: sha256 %s matches the mirror's checksum (%s) but not the params.yaml pin "
                    "%s: accepted as a MIRROR COPY that differs from upstream (recorded in %s as "
                    "matches_upstream: no)", dest, actual, mirrored.where, pinned.sha256,
                    sidecar_path(dest))
    elif match is pinned and mirrored is not None and mirrored.sha256 != pinned.sha256:
        log.warning("%s: sha256 %s matches the params.yaml pin; %s lists %s for %s, which is wrong "
                    "for these bytes (fix or remove that line)", dest, actual, mirrored.where,
                    mirrored.sha256, source.rel)
    elif match is not None:
        log.info("verified sha256 %s of %s against %s", actual, dest, match.describe())


def _unpinned(actual: str) -> Checksum:
    """The record for a file nobody pinned: its own hash, labelled as such."""
    return Checksum(actual, SOURCE_UNPINNED, SOURCE_UNPINNED)


class _Refused(Exception):
    """Bytes that fail verification: kind 'checksum' or 'format'."""

    def __init__(self, kind: str, short: str, actual: str = "") -> None:
        super().__init__(short)
        self.kind, self.short, self.actual = kind, short, actual


_UNCHECKED = "length: announced, format not checkable"


def _verify(part: Path, dest: Path, source: Source, transfer: _Transfer,
            ) -> tuple[Checksum, str | None]:
    """(checksum matched, how an unpinned file was verified) for a finished .part."""
    actual = sha256_file(part)
    if source.checked:
        match = source.match(actual)
        if match is None:
            raise _Refused("checksum", f"sha256 {actual} matches neither {source.expected_text()}",
                           actual)
        _announce(dest, actual, match, source)
        return match, None
    try:
        how = _check_format(part, dest.name)
    except _Refused as refused:
        refused.actual = actual
        raise
    if how is None:
        if not transfer.length_known:
            raise _Refused("unverifiable", "served without a Content-Length, no sha256 pinned and "
                           "no archive format to check", actual)
        how = f"length: {part.stat().st_size:,} bytes as announced (format not checkable)"
    log.warning("NO CHECKSUM PINNED for %s: accepted after a format check only (%s); computed "
                "sha256 %s (recorded in %s). Pin it in params.yaml to make the input reproducible.",
                source.origin, how, actual, sidecar_path(dest))
    return _unpinned(actual), how


def pin_key(key: str | None) -> str:
    """The params.yaml key that pins a download's sha256, e.g. downloads.ag_news.train.csv.sha256
    (the key is the download's name in params.yaml, not the URL's file name); without the name
    (a library call), the pin is described instead of guessed."""
    if key is None:
        return "the sha256 of its entry in params.yaml downloads"
    group, _, name = key.partition("/")
    return f"params.yaml downloads.{group}.{name}.sha256"


def unpinned_local_message(url: str, path: Path | None, key: str | None) -> str:
    """Why a file:// URL or path without a pinned sha256 is refused, and how to accept it."""
    where = f" ({path.resolve()})" if path is not None and not path.is_absolute() else ""
    return (f"{url}{where} is a local file and {pin_key(key)} is not set: a local path is accepted "
            f"as data only with its sha256 pinned (any file on this machine would pass a format "
            f"check). If it is the file you mean, pin it: run sha256sum on it and put the hash in "
            f"{pin_key(key)}")


def _reject(part: Path, dest: Path, source: Source, refused: _Refused,
            key: str | None = None) -> DownloadError:
    """Set the refused bytes aside and build the one-line error (not retried). Bytes from the
    network go to .bad (they may be gone upstream); a refused local file is not copied anywhere
    (its copy is deleted: the original stays where it is)."""
    pin = pin_key(key)
    if source.local is not None:
        size = part.stat().st_size if part.is_file() else 0
        part.unlink(missing_ok=True)
        kept = f"its copy was deleted and not used ({source.origin} itself is left as it is)"
    else:
        bad = _sibling(dest, ".bad")
        os.replace(part, bad)
        size = bad.stat().st_size
        kept = f"the file was moved aside to {bad} and not used"
    _meta_path(part).unlink(missing_ok=True)
    if refused.kind == "checksum":
        return ChecksumError(
            f"sha256 mismatch for {source.origin}: expected {source.expected_text()}, got "
            f"{refused.actual}; {kept}; not retried (the same bytes would come back): check the "
            f"URL / mirror file and the checksum ({pin}"
            + (f" or {source.mirrored.where}" if source.mirrored else "") + ")")
    if refused.kind == "unverifiable":
        return DownloadError(
            f"{source.origin} cannot be verified: {refused.short}; {size:,} bytes received, "
            f"{kept}. Pin its sha256 in {pin} (or list it in a mirror's SHA256SUMS) to accept it")
    return DownloadError(
        f"{source.origin}: {refused.short}; no sha256 is pinned for it, so its format is the only "
        f"check: the bytes (sha256 {refused.actual}) were not used ({kept}). Rerun to download it "
        f"again; pin its sha256 in {pin} to make it verifiable")


def _install(part: Path, dest: Path) -> None:
    """Rename the verified .part onto dest (atomic, durable) and forget its resume record."""
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    _meta_path(part).unlink(missing_ok=True)


def kept_path(dest: str | os.PathLike) -> Path:
    """The hidden hard link to dest's last verified bytes."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.verified")


def _keep(dest: Path) -> None:
    """Point the kept hard link at dest's (verified) bytes; silently skipped where the
    filesystem has no hard links (a copy would double the disk use)."""
    kept = kept_path(dest)
    with contextlib.suppress(OSError):
        if kept.exists() and os.path.samefile(kept, dest):
            return
        tmp = dest.with_name(f".{dest.name}.verified.new")
        tmp.unlink(missing_ok=True)
        os.link(dest, tmp)
        os.replace(tmp, kept)


# ---------------------------------------------------------------- formats


def _format_of(path: Path, name: str) -> str | None:
    """'zip', 'tar.gz', 'gz', 'tar' from the name, else from the magic bytes; None: unknown."""
    lower = name.lower()
    for suffix, fmt in ((".zip", "zip"), (".tar.gz", "tar.gz"), (".tgz", "tar.gz"),
                        (".gz", "gz"), (".tar", "tar")):
        if lower.endswith(suffix):
            return fmt
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return "zip"
    if magic.startswith(b"\x1f\x8b"):
        return "gz"
    return None


def _check_format(path: Path, name: str) -> str | None:
    """Read an archive to its end, checking its structure and CRCs; returns a description,
    None for a format that cannot be checked; raises _Refused for an incomplete file."""
    fmt = _format_of(path, name)
    if fmt is None:
        return None
    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as zf:
                broken = zf.testzip()
                count = len(zf.infolist())
            if broken is not None:
                raise _Refused("format", f"not a complete zip (member {broken!r} fails its CRC)")
            return f"zip: central directory and CRCs of {count} member(s) checked"
        if fmt == "tar":
            size = path.stat().st_size
            with tarfile.open(path, "r:") as tar:
                members = tar.getmembers()
            end = max((m.offset_data + m.size for m in members), default=0)
            if end > size:
                raise _Refused("format", f"not a complete tar (ends at byte {size:,}, its last "
                               f"member needs {end:,})")
            return f"tar: {len(members)} member(s) checked"
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            if fmt == "tar.gz":
                with tarfile.open(fileobj=unzipped, mode="r|") as tar:
                    count = sum(1 for _ in tar)
            else:
                count = None
            total = 0
            while block := unzipped.read(CHUNK):  # to the end: the gzip trailer (CRC, size)
                total += len(block)
        if fmt == "tar.gz":
            return f"tar.gz: {count} member(s), gzip CRC and length checked"
        return f"gz: gzip CRC and length checked ({total:,} bytes unpacked)"
    except _Refused:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error,
            OSError, ValueError) as exc:
        raise _Refused("format", f"not a complete {fmt} ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------- transfers


@dataclass
class _Transfer:
    """What a transfer into .part established: whether it continued an earlier .part, and
    whether the full length was announced (Content-Length / Content-Range, or a local file)."""

    resumed: bool = False
    length_known: bool = False


def _transfer(url: str, source: Source, part: Path, *, retries: int, backoff: float,
              timeout: float, progress: bool, label: str) -> _Transfer:
    if source.local is not None:
        _discard(part)
        _copy_local(source.local, part, progress=progress, label=label)
        return _Transfer(resumed=False, length_known=True)
    return _download_http(url, part, pinned=source.checked, retries=retries, backoff=backoff,
                          timeout=timeout, progress=progress, label=label)


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


def _download_http(url: str, part: Path, *, pinned: bool, retries: int, backoff: float,
                   timeout: float, progress: bool, label: str) -> _Transfer:
    """Run _http_attempt until it succeeds, backing off exponentially on transient failures."""
    state = _Transfer()
    for attempt in range(retries + 1):
        try:
            _http_attempt(url, part, state, pinned=pinned, timeout=timeout, progress=progress,
                          label=label)
            return state
        except _Transient as exc:
            if attempt == retries:
                raise DownloadError(f"could not fetch {url} after {retries + 1} attempt(s): "
                                    f"{exc}") from exc
            delay = backoff * 2**attempt
            log.warning("%s: %s; retry %d/%d in %.3g s", url, exc, attempt + 1, retries, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class _Transient(Exception):
    """A failure worth retrying (connection, timeout, 5xx, truncated body)."""


class _Restart(Exception):
    """The .part cannot be continued (upstream changed, bad range): start from byte 0."""


def _meta_path(part: Path) -> Path:
    return _sibling(part, ".json")


def _read_meta(part: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


def _validator(meta: Mapping[str, Any]) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range may carry (weak ETags may not)."""
    etag = meta.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return meta.get("last_modified")


def _resume_offset(url: str, part: Path, *, pinned: bool) -> tuple[int, dict[str, Any] | None]:
    """(bytes of .part to keep, its record); 0 when the .part cannot be trusted as a prefix."""
    if not part.is_file():
        _meta_path(part).unlink(missing_ok=True)
        return 0, None
    offset = part.stat().st_size
    meta = _read_meta(part)
    why = None
    if meta is None:
        why = "no record of where its bytes came from"
    elif meta.get("url") != url:
        why = f"it was fetched from {meta.get('url')}"
    elif not pinned and _validator(meta) is None:
        why = "the server gave no ETag / Last-Modified, and no sha256 is pinned to check a resume"
    if why is not None:
        if offset:
            log.info("discarding %s (%s): downloading from the start", part, why)
        _discard(part)
        return 0, None
    return offset, meta


def _http_attempt(url: str, part: Path, state: _Transfer, *, pinned: bool, timeout: float,
                  progress: bool, label: str) -> None:
    """One GET, resuming .part with Range + If-Range; a short body raises _Transient."""
    offset, meta = _resume_offset(url, part, pinned=pinned)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator := _validator(meta or {}):
            headers["If-Range"] = validator
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout) as resp:
            start, total = _resume_point(resp, offset, meta or {})
            if start == 0:
                _write_meta(part, url, resp, total)
            state.resumed, state.length_known = start > 0, total is not None
            written = _stream(resp, part, mode="ab" if start else "wb", initial=start,
                              total=total, progress=progress, label=label)
    except _Restart as exc:
        log.warning("%s: %s; downloading from the start", url, exc)
        _discard(part)
        _http_attempt(url, part, state, pinned=pinned, timeout=timeout, progress=progress,
                      label=label)
        return
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            if _complete_part(exc, offset, meta or {}):
                log.info("%s: the .part already holds all %d bytes", url, offset)
                state.resumed, state.length_known = True, True
                return
            log.warning("%s: server refused to resume at byte %d (HTTP 416); downloading from "
                        "the start", url, offset)
            _discard(part)
            _http_attempt(url, part, state, pinned=pinned, timeout=timeout, progress=progress,
                          label=label)
            return
        if exc.code >= 500 or exc.code in RETRY_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}: not retried (the server "
                            f"answered; asking again gives the same answer): check the URL in "
                            f"params.yaml downloads") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc
    if total is not None and written < total:
        raise _Transient(f"truncated transfer: got {written:,} of {total:,} bytes")


def _complete_part(exc: urllib.error.HTTPError, offset: int, meta: Mapping[str, Any]) -> bool:
    """A 416 for a range starting at the end: the .part is whole (killed before the rename)."""
    match = re.fullmatch(r"bytes \*/(\d+)", (exc.headers or {}).get("Content-Range", "") or "")
    return bool(match) and int(match.group(1)) == offset and meta.get("length") in (None, offset)


def _write_meta(part: Path, url: str, resp: http.client.HTTPResponse, total: int | None) -> None:
    """Record where a fresh .part comes from, before its first byte is written."""
    write_text(_meta_path(part), json.dumps({
        "url": url, "etag": resp.headers.get("ETag"),
        "last_modified": resp.headers.get("Last-Modified"), "length": total}) + "\n")


def _resume_point(resp: http.client.HTTPResponse, offset: int, meta: Mapping[str, Any],
                  ) -> tuple[int, int | None]:
    """(byte the body starts at, full size or None): 206 continues .part, 200 restarts; a 206
    whose validator or size differs from the .part's record raises _Restart."""
    length = resp.headers.get("Content-Length")
    if offset and resp.status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            raise _Restart(f"unexpected Content-Range {resp.headers.get('Content-Range')!r} for a "
                           f"resume at byte {offset}")
        size = int(match.group(2)) if match.group(2) != "*" else (
            offset + int(length) if length else None)
        for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
            now, before = resp.headers.get(header), meta.get(key)
            if now and before and now != before:
                raise _Restart(f"the file changed upstream since the .part was started "
                               f"({header} {before} -> {now})")
        if size is not None and meta.get("length") not in (None, size):
            raise _Restart(f"the file changed upstream since the .part was started (size "
                           f"{meta['length']:,} -> {size:,} bytes)")
        log.info("resuming %s at byte %d", resp.url, offset)
        return offset, size
    if offset:
        log.info("server sent the whole file for %s (Range ignored, or the file changed "
                 "upstream): restarting from byte 0", resp.url)
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


# ---------------------------------------------------------------- raw files already in place


def redownload_command(ref: str) -> str:
    """The command that re-verifies data/raw/<ref> and fetches it again when it fails (its
    download job file, written by either engine from params.yaml)."""
    return f"python workflow/scripts/download.py jobs/download/{ref}.json"


def redownload_hint(path: str | os.PathLike, ref: str) -> str:
    """'re-download it: <command>' for a raw file whose content is broken, plus, when the
    broken bytes passed a checksum, the warning that this checksum must be corrected first
    (the command would otherwise find the same bytes verified and keep them)."""
    hint = f"re-download it: {redownload_command(ref)}"
    recorded = read_sidecar(path)
    if recorded.get("checksum_source") in (SOURCE_PARAMS, SOURCE_MIRROR):
        hint += (f" (these bytes, sha256 {recorded.get('sha256', '?')}, passed the checksum in "
                 f"{recorded.get('checksum_from')}: if the command says 'up to date', that "
                 f"checksum is wrong too: correct it first)")
    return hint


def verify_raw(path: str | os.PathLike, ref: str, *, url: str, sha256: str | None,
               mirror: str | os.PathLike | None = None) -> Checksum | None:
    """Re-check a downloaded raw file before a stage reads it: its bytes must still be the ones
    its sidecar records, and that hash must still satisfy the checksums that apply now (the
    params pin, the mirror's SHA256SUMS, or the SHA256SUMS it was verified against). A file
    that fails raises ChecksumError with the command that re-downloads it. None: the file has
    no sidecar (not fetched by the download stage), so there is nothing to compare with."""
    path = Path(path)
    recorded = read_sidecar(path)
    if not recorded.get("sha256"):
        return None
    actual = sha256_file(path)
    cmd = redownload_command(ref)
    if actual != recorded["sha256"]:
        raise ChecksumError(f"{path} changed after it was verified: sha256 now {actual}, "
                            f"{sidecar_path(path)} records {recorded['sha256']}; re-download it: "
                            f"{cmd}")
    group = ref.partition("/")[0] if "/" in ref else None
    source = resolve_source(url, sha256, mirror=mirror, group=group)
    if source.unpinned_local:
        raise ChecksumError(f"{path} is not trusted: {unpinned_local_message(url, source.local, ref)}; "
                            f"then re-verify it: {cmd}")
    candidates = [source.pinned, source.mirrored]
    if recorded.get("checksum_source") == SOURCE_MIRROR:
        sums = Path(recorded.get("checksum_from", ""))
        if source.mirrored is None or str(sums) != source.mirrored.where:
            if sums.is_file():
                candidates.append(_mirror_checksum(sums.parent, source.rel))
            else:
                log.warning("%s was verified against %s, which no longer exists: trusting that "
                            "record", path, sums)
                return Checksum(actual, SOURCE_MIRROR, str(sums))
    applying = [c for c in candidates if c is not None]
    match = next((c for c in applying if c.sha256 == actual), None)
    if match is not None:
        return match
    if not applying and recorded.get("checksum_source") == SOURCE_UNPINNED:
        return _unpinned(actual)
    now = " or ".join(f"{c.sha256} (from {c.describe()})" for c in applying) or "none"
    raise ChecksumError(
        f"{path} is no longer trusted: its sha256 {actual} was verified against "
        f"{recorded.get('checksum_source', '?')} ({recorded.get('checksum_from', '?')}) when it "
        f"was downloaded, but the checksums that apply now are {now}; re-download it: {cmd}")


# ---------------------------------------------------------------- files


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(dest: str | os.PathLike) -> Path:
    return _sibling(Path(dest), ".sha256")


def write_sidecar(dest: Path, verified: Checksum, origin: str, *,
                  pinned: Checksum | None = None, verified_by: str | None = None) -> None:
    """<dest>.sha256 in `sha256sum -c` format, plus # lines saying what was checked and how."""
    write_text(sidecar_path(dest), _sidecar_text(dest, verified, origin, pinned=pinned,
                                                 verified_by=verified_by))


def _sidecar_text(dest: Path, verified: Checksum, origin: str, *, pinned: Checksum | None,
                  verified_by: str | None) -> str:
    upstream = ("unknown" if pinned is None
                else "yes" if pinned.sha256 == verified.sha256 else "no")
    lines = [f"{verified.sha256}  {dest.name}",
             f"# checksum_source: {verified.source}",
             f"# checksum_from: {verified.where}",
             f"# origin: {origin}",
             f"# upstream_sha256: {pinned.sha256 if pinned else 'none'}",
             f"# matches_upstream: {upstream}"]
    if verified_by:
        lines.append(f"# verified_by: {verified_by}")
    return "\n".join(lines) + "\n"


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
