"""Atomic file outputs: a crash or Ctrl-C never leaves a half-written file that a later run trusts.

Every stage writes through these helpers. Data goes to a temporary file in the target's own
directory (same filesystem), is flushed and fsynced, and is then renamed over the target with
``os.replace``, which is atomic on POSIX.

A writer killed outright (SIGKILL, power loss) cannot remove its temporary. Temporaries are
therefore named ``.<target>.<host>.<pid>.<random>.tmp[suffix]`` (``.<target>.<host>.<pid>.old``
for the directory being swapped out), and every write first removes the leftovers of *dead*
writers of the same target: this host's temporaries whose process no longer exists, any
older than a day (another host's, or a reused pid), and old-style ``.<target>.<random>.tmp``
/ ``.<target>.old`` names older than an hour. A live writer's temporary is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
_OWNED = re.compile(r"(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.(?:[a-z0-9_]+\.tmp.*|old)")
_OLD_STYLE = re.compile(r"(?:[a-z0-9_]{8}\.tmp.*|old)")
OWNED_MAX_AGE = 24 * 3600  # seconds: a temporary this old belongs to no running writer
OLD_STYLE_MAX_AGE = 3600


def _tag() -> str:
    return f"{_HOST}.{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that killed writers of ``target`` left beside it (module doc);
    returns what was removed."""
    target = Path(target)
    prefix = f".{target.name}."
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(target.parent) if e.name.startswith(prefix)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        rest = entry.name[len(prefix):]
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        owned = _OWNED.fullmatch(rest)
        if owned:
            pid = int(owned.group("pid"))
            mine = owned.group("host") == _HOST
            stale = age > OWNED_MAX_AGE or (mine and pid != os.getpid() and not _alive(pid))
        else:
            stale = bool(_OLD_STYLE.fullmatch(rest)) and age > OLD_STYLE_MAX_AGE
        if not stale:
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    Use for writers that want a path (``DataFrame.to_parquet``, ``np.save``, ``torch.save``).
    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{_tag()}.", suffix=f".tmp{suffix}",
                                    dir=target.parent)
    os.fchmod(fd, _default_mode(0o666))  # mkstemp makes 0600; outputs should look like normal files
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; on success it replaces ``target`` whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_tag()}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(_default_mode(0o777))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.{_tag()}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _default_mode(base: int) -> int:
    """`base` filtered by the process umask, as open()/mkdir() would do."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline (stable bytes → stable DVC hashes)."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_jsonable) + "\n")


def write_parquet(target: str | os.PathLike, table_or_frame: Any) -> None:
    """Write a pandas DataFrame or pyarrow Table to parquet atomically (zstd, no pandas index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = table_or_frame
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table_or_frame, preserve_index=False)
    with atomic_path(target, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays and paths into plain JSON values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
