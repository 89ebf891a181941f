"""Published runs: full-setting results kept in the repository and reused instead of retrained.

A machine's results/ does not outlive the machine; the repository does. Every training run
writes `provenance.json` beside its outputs: the sha256 of its job file (the resolved
settings), of its training code and of the input files it read. `textclf publish` copies each
finished full-setting run (metrics.json, history.csv, predictions.parquet) with that
provenance and each file's sha256 to reports/runs/<dataset>/<study>/<variant>/seed<k>/.

Before training, the train stage looks there (both engines run the same script): when the
settings, the code and the inputs all hash the same, it verifies the published files and
copies them into results/ instead of training. A published run whose provenance differs is
left alone (the job trains); one whose bytes do not match their recorded sha256 is never
used. `TEXTCLF_REUSE_PUBLISHED=0` trains everything; `=ignore-code` reuses a run of the same
settings and inputs whatever training code made it (after a refactor shown to change no
result), as Snakemake's `--rerun-triggers` without `code` does for results/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textclf import atomic
from textclf.config import ParamsError

log = logging.getLogger("textclf.published")

PUBLISHED_DIR = Path("reports") / "runs"
RESULTS_FULL = Path("results") / "full"
OUTPUT_FILES = ("metrics.json", "history.csv", "predictions.parquet")
PROVENANCE = "provenance.json"  # beside a run's outputs in results/ (not an engine output)
RECORD = "record.json"  # beside a published run's files
KEYS = ("settings_sha256", "code_sha256", "inputs_sha256")
REUSE_ENV = "TEXTCLF_REUSE_PUBLISHED"
REUSE_MODES = ("1", "0", "ignore-code")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_sha256(entries: Mapping[str, Path]) -> str:
    """One digest over labelled files (a directory: its visible files, recursively, named
    label/relative path), so the same bytes digest the same wherever they lie."""
    named: dict[str, Path] = {}
    for label, path in entries.items():
        if path.is_dir():
            for file in path.rglob("*"):
                rel = file.relative_to(path)
                if file.is_file() and not any(part.startswith(".") for part in rel.parts):
                    named[f"{label}/{rel.as_posix()}"] = file
        else:
            named[label] = path
    digest = hashlib.sha256()
    for name in sorted(named):
        digest.update(f"{name}\0{file_sha256(named[name])}\n".encode())
    return digest.hexdigest()


def run_provenance(job_path: Path, code: tuple[Path, Iterable[str]], inputs: Mapping[str, Any],
                   root: Path | None = None) -> dict[str, str]:
    """What a run's results depend on, as digests: settings (the job file), training code
    (`code`: the package root and its repo-relative files, as Plan.code lists them) and the
    input files the job names (by input name; relative paths are taken from `root`, default
    the working directory)."""
    root = root or Path.cwd()
    code_root, files = code
    return {
        "settings_sha256": file_sha256(job_path),
        "code_sha256": _tree_sha256({f: code_root / f for f in files}),
        "inputs_sha256": _tree_sha256({k: root / str(p) for k, p in inputs.items() if p}),
    }


def published_dir(out: str | Path) -> Path | None:
    """reports/runs/<dataset>/<study>/<variant>/seed<k> for a full-setting results folder; else None."""
    out = Path(out)
    try:
        return PUBLISHED_DIR / out.relative_to(RESULTS_FULL)
    except ValueError:
        return None


def published_settings(out: str | Path, root: Path | None = None) -> str | None:
    """The settings digest a published run of this results folder was trained with, if any."""
    folder = published_dir(out)
    record = _read_json((root or Path.cwd()) / folder / RECORD) if folder is not None else None
    return record.get("settings_sha256") if record else None


def write_provenance(out: str | Path, provenance: Mapping[str, str], **extra: Any) -> None:
    atomic.write_json(Path(out) / PROVENANCE, {**provenance, **extra})


def clear_provenance(out: str | Path) -> None:
    (Path(out) / PROVENANCE).unlink(missing_ok=True)


def git_commit(root: Path | None = None) -> str | None:
    """The checkout's commit (short), for the record; None outside a git checkout."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root or Path.cwd(),
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def reuse_published(out: str | Path, provenance: Mapping[str, str], root: Path | None = None) -> Path | None:
    """Copy the verified published outputs of this exact run into `out`; the record's folder,
    or None when there is none to reuse (then the caller trains)."""
    root = root or Path.cwd()
    folder = published_dir(out)
    mode = os.environ.get(REUSE_ENV, "1")
    if mode not in REUSE_MODES:
        raise ParamsError(f"{REUSE_ENV}={mode!r}: use 1 (reuse a published run of the same settings, code and "
                          "inputs; the default), ignore-code (same settings and inputs, any training code) or 0 "
                          "(always train)")
    if folder is None or mode == "0":
        return None
    folder = root / folder
    record = _read_json(folder / RECORD)
    if record is None:
        if (folder / RECORD).exists():
            log.warning("%s is unreadable; training instead (delete the folder or run `textclf publish` again)",
                        folder / RECORD)
        return None
    keys = [k for k in KEYS if not (mode == "ignore-code" and k == "code_sha256")]
    differs = [k.removesuffix("_sha256") for k in keys if record.get(k) != provenance.get(k)]
    if differs:
        log.info("published run %s not reused: its %s differ from this run's; training", folder, " and ".join(differs))
        return None
    files = record.get("files") or {}
    for name in OUTPUT_FILES:
        path = folder / name
        if not path.is_file() or file_sha256(path) != files.get(name):
            log.warning("%s does not match the sha256 in %s; not trusted, training instead "
                        "(restore it with git checkout, or delete the folder)", path, folder / RECORD)
            return None
    target = root / Path(out)
    for name in sorted(OUTPUT_FILES, key=lambda n: n == "metrics.json"):  # metrics.json last
        with atomic.atomic_path(target / name) as tmp:
            shutil.copyfile(folder / name, tmp)
    # the digests of what produced these bytes: the record's (ignore-code may differ from ours)
    write_provenance(target, {k: record[k] for k in KEYS}, reused_from=folder.relative_to(root).as_posix(),
                     trained_at=record.get("trained_at"), commit=record.get("commit"))
    return folder


@dataclass
class PublishCount:
    published: int = 0
    unchanged: int = 0
    no_provenance: list[str] | None = None
    stale: list[str] | None = None
    missing: int = 0


def publish_runs(jobs: Iterable[Any], root: Path | None = None, commit: str | None = None) -> PublishCount:
    """Copy each finished full-setting run of these train jobs to reports/runs/ (never deletes)."""
    root = root or Path.cwd()
    count = PublishCount(no_provenance=[], stale=[])
    for job in jobs:
        out = Path(job.settings["out"])
        folder = published_dir(out)
        if folder is None:
            continue
        results = root / out
        if not all((results / name).is_file() for name in OUTPUT_FILES):
            count.missing += 1
            continue
        provenance = _read_json(results / PROVENANCE)
        if provenance is None:
            count.no_provenance.append(out.as_posix())
            continue
        if provenance.get("settings_sha256") != job.digest:
            count.stale.append(out.as_posix())
            continue
        files = {name: file_sha256(results / name) for name in OUTPUT_FILES}
        old = _read_json(root / folder / RECORD)
        if old and old.get("files") == files and all(old.get(k) == provenance.get(k) for k in KEYS):
            count.unchanged += 1
            continue
        record = {k: provenance[k] for k in KEYS} | {
            "files": files,
            "trained_at": provenance.get("trained_at"),
            "commit": provenance.get("commit") or commit,
            "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        with atomic.atomic_dir(root / folder) as tmp:
            for name in OUTPUT_FILES:
                shutil.copyfile(results / name, tmp / name)
            atomic.write_json(tmp / RECORD, record)
        count.published += 1
    return count
