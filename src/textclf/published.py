"""Published runs: full-setting results kept in the repository and reused instead of retrained.

A machine's results/ does not outlive the machine; the repository does. Every training run
writes `provenance.json` beside its outputs: the sha256 of its job file (the resolved
settings), of its training code and requirements.lock, of the input files it read, and the
device it trained on, all taken when it starts. `textclf publish` copies each
finished full-setting run (metrics.json, history.csv, predictions.parquet) with that
provenance and each file's sha256 to reports/runs/<dataset>/<study>/<variant>/seed<k>/.

Before training, the train stage looks there (both engines run the same script): when the
settings, code, inputs and device match, it copies the published files into results/,
verifying each copy, instead of training. A published run whose provenance differs is
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textclf import atomic
from textclf.checkout import commit_state
from textclf.config import ParamsError
from textclf.download import sha256_file as file_sha256
from textclf.isa import instruction_set

log = logging.getLogger("textclf.published")

PUBLISHED_DIR = Path("reports") / "runs"
RESULTS_FULL = Path("results") / "full"
OUTPUT_FILES = ("metrics.json", "history.csv", "predictions.parquet")
PROVENANCE = "provenance.json"  # beside a run's outputs in results/ (not an engine output)
RECORD = "record.json"  # beside a published run's files
STALE_FILES = ("model.pt", "model.pkl", "checkpoint.pt")  # not published: never left beside a copied run
KEYS = ("settings_sha256", "code_sha256", "inputs_sha256", "device", "isa")  # all must match to reuse
LOCK_FILE = "requirements.lock"
REUSE_ENV = "TEXTCLF_REUSE_PUBLISHED"
REUSE_MODES = ("1", "0", "ignore-code")


def _file_digests(entries: Mapping[str, Path]) -> dict[str, str]:
    """The sha256 of each labelled file (a directory: its visible files, recursively, named
    label/relative path), so the same bytes digest the same wherever they lie. A missing path
    digests as missing: the stage then trains and reports it the way it always does."""
    named: dict[str, Path | None] = {}
    for label, path in entries.items():
        if path.is_dir():
            for file in path.rglob("*"):
                rel = file.relative_to(path)
                if file.is_file() and not any(part.startswith(".") for part in rel.parts):
                    named[f"{label}/{rel.as_posix()}"] = file
        else:
            named[label] = path if path.is_file() else None
    return {name: file_sha256(named[name]) if named[name] else "missing" for name in sorted(named)}


def _digest_of(files: Mapping[str, str]) -> str:
    """One digest over _file_digests' entries (the record's inputs_sha256)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()


def _tree_sha256(entries: Mapping[str, Path]) -> str:
    return _digest_of(_file_digests(entries))


def code_sha256(code_root: Path, files: Iterable[str]) -> str:
    """The training code (Plan.code's files) and the pinned environment (requirements.lock)."""
    return _tree_sha256({f: code_root / f for f in [*files, LOCK_FILE]})


def variant_device(variant: Mapping[str, Any]) -> str:
    """The device this machine would train a variant on (TEXTCLF_DEVICE included); cpu for TF-IDF."""
    try:
        if variant["model"]["type"] != "rnn":
            return "cpu"
        requested = variant["training"]["device"]
    except (KeyError, TypeError):
        return "unknown"  # the stage's own checks report a bad job file
    from textclf.training.device import resolve_device

    try:
        return resolve_device(requested).type
    except ParamsError:
        return "unavailable"  # training reports it


def _device(job_path: Path) -> str:
    try:
        return variant_device(json.loads(job_path.read_text(encoding="utf-8"))["variant"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def run_provenance(job_path: Path, code: tuple[Path, Iterable[str]], inputs: Mapping[str, Any],
                   root: Path | None = None) -> dict[str, str | None]:
    """What a run's results depend on, taken when it starts: its settings (the job file), its
    training code and environment (`code`: the package root and the repo-relative files
    Plan.code lists, plus requirements.lock), its input files (by input name; relative paths
    from `root`, default the working directory), the device, the numerical kernels' instruction
    set (textclf.isa), and the checkout's commit."""
    root = root or Path.cwd()
    code_root, files = code
    digests = _file_digests({k: root / str(p) for k, p in inputs.items() if p})
    return {
        "settings_sha256": file_sha256(job_path),
        "code_sha256": code_sha256(code_root, files),
        "inputs_sha256": _digest_of(digests),
        "device": _device(job_path),
        "isa": instruction_set(),
        "commit": git_commit(code_root),
        "inputs": digests,  # per input file: what a later publish names when the inputs differ
    }


def published_dir(out: str | Path) -> Path | None:
    """reports/runs/<dataset>/<study>/<variant>/seed<k> for a full-setting results folder; else None."""
    out = Path(out)
    try:
        return PUBLISHED_DIR / out.relative_to(RESULTS_FULL)
    except ValueError:
        return None


def published_record(out: str | Path, root: Path | None = None) -> dict[str, Any] | None:
    """The record of the published run of this results folder, if there is a readable one."""
    folder = published_dir(out)
    return _read_json((root or Path.cwd()) / folder / RECORD) if folder is not None else None


def write_provenance(out: str | Path, provenance: Mapping[str, Any], **extra: Any) -> None:
    """provenance.json beside a run's outputs; `extra` adds keys, never overrides what was taken
    when the run started (its commit, above all)."""
    atomic.write_json(Path(out) / PROVENANCE, {**extra, **{k: v for k, v in provenance.items() if v is not None}})


def clear_provenance(out: str | Path) -> None:
    (Path(out) / PROVENANCE).unlink(missing_ok=True)


def git_commit(root: Path | None = None) -> str | None:
    """The checkout's commit (short; "+dirty" when the code differs from it); None outside git."""
    state = commit_state(["src", "workflow", LOCK_FILE], root)
    return None if state is None else state[0] + ("+dirty" if state[1] else "")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _Untrusted(Exception):
    """A published file whose bytes are not the ones its record lists."""


def reuse_mode() -> str:
    mode = os.environ.get(REUSE_ENV, "1")
    if mode not in REUSE_MODES:
        raise ParamsError(f"{REUSE_ENV}={mode!r}: use 1 (reuse a published run of the same settings, code, "
                          "inputs and device; the default), ignore-code (any training code) or 0 (always train)")
    return mode


def reuse_published(out: str | Path, provenance: Mapping[str, Any], root: Path | None = None) -> Path | None:
    """Copy the verified published outputs of this exact run into `out`; the record's folder,
    or None when there is none to reuse (then the caller trains)."""
    root = root or Path.cwd()
    mode = reuse_mode()
    clear_provenance(root / Path(out))  # whatever happens next, an older run's provenance is void
    folder = published_dir(out)
    if folder is None or mode == "0":
        return None
    folder = root / folder
    record = _read_json(folder / RECORD)
    files = record.get("files") if record else None
    if record is None or not isinstance(files, dict):
        if (folder / RECORD).exists():
            log.warning("%s is unreadable or not a record; training instead (delete the folder, or publish the "
                        "run again)", folder / RECORD)
        return None
    keys = [k for k in KEYS if not (mode == "ignore-code" and k == "code_sha256")]
    differs = [k.removesuffix("_sha256") for k in keys if record.get(k) != provenance.get(k)]
    if differs:
        log.info("published run %s not reused: its %s differ from this run's; training", folder, " and ".join(differs))
        return None
    if record.get("code_sha256") != provenance.get("code_sha256"):
        log.warning("reusing %s although it was made by other training code (%s=ignore-code)", folder, REUSE_ENV)
    missing = [name for name in OUTPUT_FILES if not (folder / name).is_file()]
    if missing:
        log.warning("%s lists %s, missing there; training instead (restore with git checkout)",
                    folder / RECORD, ", ".join(missing))
        return None
    target = root / Path(out)
    for name in STALE_FILES:  # an older run's model or checkpoint would not belong to these results
        (target / name).unlink(missing_ok=True)
    try:
        for name in sorted(OUTPUT_FILES, key=lambda n: n == "metrics.json"):  # metrics.json last
            with atomic.atomic_path(target / name) as tmp:
                shutil.copyfile(folder / name, tmp)
                if file_sha256(tmp) != files.get(name):  # the copy itself is what gets verified
                    raise _Untrusted(folder / name)
    except _Untrusted as bad:
        log.warning("%s does not match the sha256 in %s; not trusted, training instead (restore it with git "
                    "checkout, or delete the folder)", bad, folder / RECORD)
        for name in OUTPUT_FILES:
            (target / name).unlink(missing_ok=True)
        return None
    # the digests of what produced these bytes: the record's (ignore-code may differ from ours)
    write_provenance(target, {k: record.get(k) for k in (*KEYS, "inputs")},
                     reused_from=folder.relative_to(root).as_posix(), trained_at=record.get("trained_at"),
                     commit=record.get("commit"))
    return folder


@dataclass
class PublishCount:
    published: int = 0
    replaced: int = 0
    unchanged: int = 0
    missing: int = 0
    no_provenance: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # would replace a record of other inputs or results


class CurrentProvenance:
    """What a plan's train job would record as provenance if it started here now (the code
    and input digests computed once per code family and per set of inputs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[tuple, str] = {}

    def _cached(self, key: tuple, compute) -> str:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def code(self, model_type: str) -> str:
        from textclf.config import REPO_ROOT
        from textclf.plan import code_family, code_files

        family = code_family(model_type)
        return self._cached(("code", family), lambda: code_sha256(REPO_ROOT, code_files("train", family, REPO_ROOT)))

    def __call__(self, job: Any) -> dict[str, str]:
        variant = job.settings["variant"]
        inputs = tuple(sorted((k, str(v)) for k, v in job.settings["inputs"].items() if v))
        return {
            "settings_sha256": job.digest,
            "code_sha256": self.code(variant["model"]["type"]),
            "inputs_sha256": self._cached(("inputs", inputs), lambda: _tree_sha256({k: self.root / v for k, v in inputs})),
            "device": self._cached(("device", variant["model"]["type"], str(variant.get("training", {}).get("device"))),
                                   lambda: variant_device(variant)),
            "isa": instruction_set(),
        }


def _estimate_before(found: Any, digest: str) -> dict[str, Any] | None:
    """The estimate this workspace saved for the run before it trained (`found`), if made under
    its settings, so the report's estimate check survives the machine, as the run itself does."""
    if not isinstance(found, dict) or found.get("settings_sha256") not in (None, digest):
        return None
    return found


def published_estimate(out: str | Path, root: Path | None = None) -> dict[str, Any] | None:
    """The estimate a published run's record carries (made before it trained), if any."""
    record = published_record(out, root)
    found = record.get("estimate") if record else None
    return found if isinstance(found, dict) and isinstance(found.get("seconds"), int | float) else None


def record_differences(old: Mapping[str, Any], provenance: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    """What differs between a published record and a run about to replace it: its settings,
    code, inputs (the input files, where both list them) or device, and its result files."""
    found = []
    for key in KEYS:
        if old.get(key) == provenance.get(key):
            continue
        name = key.removesuffix("_sha256")
        if key == "inputs_sha256" and isinstance(old.get("inputs"), dict) and isinstance(provenance.get("inputs"), dict):
            before, now = old["inputs"], provenance["inputs"]
            names = sorted(n for n in set(before) | set(now) if before.get(n) != now.get(n))
            found.append(f"inputs {', '.join(names)}")
        elif key == "inputs_sha256":
            found.append(f"inputs {str(old.get(key))[:12]}… -> {str(provenance.get(key))[:12]}… (the record "
                         "lists no per-file digests)")
        elif key == "device":
            found.append(f"device {old.get(key)} -> {provenance.get(key)}")
        else:
            found.append(f"{name} {str(old.get(key))[:12]}… -> {str(provenance.get(key))[:12]}…")
    results = sorted(n for n in files if (old.get("files") or {}).get(n) != files[n])
    if results:
        found.append(f"result files {', '.join(results)}")
    return found


def publish_runs(jobs: Iterable[Any], root: Path | None = None, *, replace: bool = False) -> PublishCount:
    """Copy each finished full-setting run of these train jobs to reports/runs/ (never deletes).
    Only a run whose provenance equals what the job would record here now is published: its
    results are those of today's settings, code, inputs and device. A published record of
    other settings, code, inputs, device or results is replaced only with replace=True;
    otherwise the run is listed in `refused` with what differs (a damaged cached input once
    overwrote a good record with worse numbers, and nothing said so)."""
    from textclf.estimate import ESTIMATES_DIR, read_estimates

    root = root or Path.cwd()
    count = PublishCount()
    estimates = read_estimates(root / ESTIMATES_DIR / "full.json")  # once, not per run
    current = CurrentProvenance(root)
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
        if provenance is None or any(k not in provenance for k in KEYS):
            count.no_provenance.append(out.as_posix())
            continue
        if provenance["settings_sha256"] != job.digest:
            count.stale.append(out.as_posix())
            continue
        now = current(job)
        differs = [k.removesuffix("_sha256") for k in KEYS if provenance[k] != now[k]]
        if differs:
            count.changed.append(f"{out.as_posix()} ({', '.join(differs)})")
            continue
        files = {name: file_sha256(results / name) for name in OUTPUT_FILES}
        old = _read_json(root / folder / RECORD)
        same_run = bool(old) and old.get("files") == files and all(old.get(k) == provenance[k] for k in KEYS)
        estimate = _estimate_before(estimates.get(out.as_posix()), job.digest) or (old.get("estimate") if same_run else None)
        if same_run and old.get("estimate") == estimate:
            count.unchanged += 1
            continue
        differs = record_differences(old, provenance, files) if old else []
        if differs and not replace:
            count.refused.append(f"{out.as_posix()}: {'; '.join(differs)}")
            continue
        record = {k: provenance[k] for k in KEYS} | {
            "files": files,
            "trained_at": provenance.get("trained_at"),
            "commit": provenance.get("commit"),
            "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        } | ({"estimate": estimate} if estimate else {}) | (
            {"inputs": provenance["inputs"]} if isinstance(provenance.get("inputs"), dict) else {})
        with atomic.atomic_dir(root / folder) as tmp:
            for name in OUTPUT_FILES:
                shutil.copyfile(results / name, tmp / name)
                if file_sha256(tmp / name) != files[name]:
                    raise OSError(f"{results / name} changed while it was being published; publish again")
            atomic.write_json(tmp / RECORD, record)
        if old:
            count.replaced += 1
        else:
            count.published += 1
    return count
