"""Write faults and damaged files, said in one line: what the stage runner prints instead of a
traceback when the disk is full, a folder is not writable, or a parquet file it reads is damaged.

The stage scripts (both engines run the same ones) raise these from deep inside torch, pyarrow
or the standard library, often without a file name (`OSError: [Errno 28]`, `RuntimeError:
[enforce fail at inline_container.cc:672]`, `ZSTD decompression failed`). `describe` turns one
into (kind, message): the file, or the job's output when the library named none, and what to do.
Nothing here changes what a stage writes or reads; it only reads the job file and, for a damaged
parquet, re-reads the candidate files to say which one is damaged.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
NOT_ALLOWED = {errno.EACCES, errno.EPERM}
# torch.save's C++ writer reports a failed write (a full disk, above all) without errno or file
TORCH_WRITE_FAILED = ("PytorchStreamWriter failed writing", "inline_container.cc", "file write failed")
PATH_LOCALS = ("path", "source", "where", "file", "filename", "tmp", "dest", "target")


def describe(exc: BaseException, job_path: Path | None, stage: str) -> tuple[str, str] | None:
    """(kind, one-line message) for a write fault or a damaged parquet; None for anything else."""
    job = _read_job(job_path)
    rerun = _rerun(stage, job_path)
    for err in _chain(exc):
        if _is_arrow(err) or _is_damaged_parquet_read(err):
            damaged = _damaged_parquet(exc, job)
            if damaged is not None:
                return "DamagedFile", _damaged_message(damaged, err)
            if not isinstance(err, OSError):  # an Arrow error that no input explains
                return None
        code = _errno(err)
        if code in NO_SPACE:
            where = _where(err, job)
            return "NoSpace", (f"writing {where}: no space left on the device ({_free(where)}); free "
                               f"space there, then rerun: {rerun}")
        if code == errno.EROFS:
            where = _where(err, job)
            return "PermissionError", (f"{where}: read-only file system; run from a writable checkout (or "
                                       f"remount the file system holding {_existing(where)} writable), then "
                                       f"rerun: {rerun}")
        if code in NOT_ALLOWED:
            where = _where(err, job)
            return "PermissionError", (f"{where}: permission denied; fix the permissions of {_existing(where)} "
                                       f"(the user running the pipeline must be able to read and write there), then rerun: {rerun}")
        if isinstance(err, RuntimeError) and any(s in str(err) for s in TORCH_WRITE_FAILED):
            where = _where(err, job)
            return "WriteError", (f"writing a model or checkpoint under {where} failed ({_first_line(err)}): "
                                  f"most often the disk is full ({_free(where)}); free space there, "
                                  f"then rerun: {rerun}")
    return None


# ---------------------------------------------------------------- what and where


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """exc, then what caused it (raise ... from, or during handling), each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _errno(err: BaseException) -> int | None:
    """The errno of an OSError; pyarrow's own IO errors carry it only in their text."""
    if not isinstance(err, OSError):
        return None
    if err.errno is not None:
        return err.errno
    text = str(err)
    for code in (*NO_SPACE, *NOT_ALLOWED, errno.EROFS):
        if f"errno {code}]" in text.lower() or errno.errorcode.get(code, "?") in text:
            return code
    return None


def _is_arrow(err: BaseException) -> bool:
    arrow = sys.modules.get("pyarrow.lib")
    return arrow is not None and isinstance(err, arrow.ArrowException) and _errno(err) is None


def _is_damaged_parquet_read(err: BaseException) -> bool:
    return isinstance(err, OSError) and _errno(err) is None and "parquet" in str(err).lower()


def _read_job(job_path: Path | None) -> dict[str, Any]:
    try:
        job = json.loads(job_path.read_text(encoding="utf-8")) if job_path else {}
    except (OSError, ValueError):
        return {}
    return job if isinstance(job, dict) else {}


def _rerun(stage: str, job_path: Path | None) -> str:
    alone = f"python workflow/scripts/{stage}.py {job_path}" if job_path else "the same command"
    return f"{alone} (or rerun the pipeline: snakemake or dvc repro)"


def _where(err: BaseException, job: dict[str, Any]) -> Path:
    """The file the library named, else the job's output (what the stage was writing)."""
    for candidate in _chain(err):
        name = getattr(candidate, "filename", None)
        if name:
            return Path(str(name))
    return Path(str(job.get("out", "."))) if job.get("out") else Path.cwd()


def _existing(where: Path) -> Path:
    """where, or its nearest folder that exists (what permissions or free space apply to)."""
    while not where.exists() and where != where.parent:
        where = where.parent
    return where


def _free(where: Path) -> str:
    try:
        free = shutil.disk_usage(_existing(where)).free
    except OSError:
        return "free space unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free:,.0f} {unit} free" if unit == "bytes" else f"{free:.1f} {unit} free"
        free /= 1024
    return "free space unknown"


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------- damaged parquet


_UNREADABLE = re.compile(r"^(\S+\.parquet): unreadable parquet file")


def rebuild_hint(message: str) -> str:
    """'; rebuild it: ...' for a stage's own "<file>.parquet: unreadable parquet file" error."""
    found = _UNREADABLE.match(message)
    if found is None or "rebuild it" in message:
        return ""
    return "; " + _rebuild(Path(found.group(1)))


def _damaged_parquet(exc: BaseException, job: dict[str, Any]) -> Path | None:
    """The parquet file that cannot be read: named by the failing frames, else found among the
    job's inputs by reading each one."""
    for path in _unique([*_frame_parquets(exc.__traceback__), *_job_parquets(job)]):
        if _unreadable(path):
            return path
    return None


def _unique(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path not in out:
            out.append(path)
    return out


def _frame_parquets(tb: TracebackType | None) -> list[Path]:
    """Parquet paths held by the frames that raised, innermost first."""
    found: list[Path] = []
    while tb is not None:
        for name in PATH_LOCALS:
            value = tb.tb_frame.f_locals.get(name)
            if isinstance(value, (str, Path)) and str(value).endswith(".parquet"):
                found.append(Path(value))
        tb = tb.tb_next
    return list(reversed(found))


def _job_parquets(job: dict[str, Any]) -> list[Path]:
    """The parquet files under the paths a job file names (its inputs)."""
    found: list[Path] = []
    for value in _strings(job):
        path = Path(value)
        if value.endswith(".parquet") and path.is_file():
            found.append(path)
        elif "/" in value and path.is_dir():
            found.extend(sorted(path.rglob("*.parquet")))
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _unreadable(path: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.read_table(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, pa.ArrowException):
        return True
    return False


def _damaged_message(path: Path, err: BaseException) -> str:
    """The damaged file, why, and how to rebuild it (the job that writes it, found by its out)."""
    return f"{path} is damaged and cannot be read ({_first_line(err)}); {_rebuild(path)}"


def _rebuild(path: Path) -> str:
    """How to rebuild a file: remove the output of the job that writes it and rerun."""
    producer = _producer(path)
    if producer is None:
        return f"rebuild it: rm {path} and rerun (snakemake --cores 1 {path}, or dvc repro)"
    stage, job_file, out = producer
    rm = "rm -r" if Path(out).is_dir() else "rm"
    return (f"rebuild it: {rm} {out} and rerun (snakemake --cores 1 {out}, or dvc repro; the {stage} "
            f"stage alone: python workflow/scripts/{stage}.py {job_file})")


def _producer(path: Path) -> tuple[str, Path, str] | None:
    """(stage, job file, output) of the job whose output holds path, from jobs/<stage>/."""
    target = path.resolve()
    for job_file in sorted(Path("jobs").glob("*/**/*.json")):
        out = _read_job(job_file).get("out")
        if not isinstance(out, str):
            continue
        where = Path(out).resolve()
        if target == where or where in target.parents:
            return job_file.relative_to("jobs").parts[0], job_file, out
    return None
