"""The prepare stage: raw files -> ``data/prepared/<dataset>/{train,val,test}.parquet`` + stats.json.

A dataset's reader (textclf.sources) turns its raw files into one labelled table; this module
splits it per the dataset's split policy, checks the splits, and writes them with their
statistics (formats: docs/CONTRACTS.md). Everything is seeded and sorted by id, so the same
params and raw files give byte-identical parquet files.

Split policies:
- ``official``: test = the official test set; val = a stratified ``val_fraction`` of the
  official train set (seeded), train = the rest.
- ``official_val_from_test``: train = the whole official train set; val = a stratified
  ``val_fraction`` of the official test set (seeded), test = the rest of it (seed 004 divided
  its test data into validation and test).
- ``resplit``: all labelled rows are pooled; a stratified ``test_fraction`` becomes test, then
  a stratified ``val_fraction`` of the remainder becomes val (two seeded steps).

``val_fraction: 0`` gives an empty val split (a reference without a validation carve-out; the
plan lets only variants that evaluate on test use such a dataset).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.model_selection import train_test_split

from textclf.atomic import write_json, write_parquet
from textclf.config import ParamsError
from textclf.download import redownload_command, redownload_hint, verify_raw
from textclf.errors import DataError
from textclf.sources import READER_ROLES, RawFileError, get_reader

log = logging.getLogger("textclf.prepare")

SPLITS = ("train", "val", "test")
SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string()), ("label", pa.int64())])
RAW_TEXT = pa.field("raw_text", pa.string())  # the text before the reader cleaned it (AG News)
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def dataset_params(params: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """The `datasets.<dataset>` entry, or a ParamsError listing the names that exist."""
    datasets = params["datasets"]
    if dataset not in datasets:
        raise ParamsError(f"unknown dataset {dataset!r}; allowed: {sorted(datasets)}")
    return datasets[dataset]


def raw_files(ds: Mapping[str, Any], raw_dir: Path) -> dict[str, Path]:
    """role -> local raw path; a missing file is reported with how to fetch it."""
    files = {role: Path(raw_dir) / ref for role, ref in ds["files"].items()}
    roles = READER_ROLES.get(ds["reader"], ())
    for role in roles:
        if role not in files:
            raise ParamsError(f"reader {ds['reader']!r} needs file role {role!r}; got {sorted(files)}")
        if not files[role].is_file():
            ref = ds["files"][role]
            raise FileNotFoundError(
                f"raw file not found: {files[role]} (role {role!r}); fetch it first with the download "
                f"stage ({redownload_command(ref)}), or set TEXTCLF_MIRROR to a folder holding {ref}")
    return files


def check_raw_files(downloads: Mapping[str, Any], ds: Mapping[str, Any], files: Mapping[str, Path]) -> None:
    """Re-verify each downloaded raw file before reading it (textclf.download.verify_raw): a
    file whose bytes or checksum changed since the download stage verified it is refused with
    the command that re-downloads it. A file without a .sha256 sidecar was not fetched by the
    download stage: it is read, with a warning."""
    for role, path in files.items():
        ref = ds["files"][role]
        group, _, name = ref.partition("/")
        spec = downloads.get(group, {}).get(name)
        if spec is None:
            continue
        verified = verify_raw(path, ref, url=spec["url"], sha256=spec["sha256"])
        if verified is None:
            log.warning("%s has no .sha256 sidecar: it was not fetched by the download stage, so "
                        "its bytes are unverified (to fetch and verify it: %s)", path,
                        redownload_command(ref))


def _stratified(frame: pd.DataFrame, fraction: float, seed: int, what: str,
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, carved) with `fraction` of the rows carved out, stratified by label and seeded."""
    try:
        rest, carved = train_test_split(frame, test_size=fraction, stratify=frame["label"],
                                        random_state=seed, shuffle=True)
    except ValueError as exc:
        raise DataError(f"cannot carve {what} ({fraction} of {len(frame)} rows, stratified by "
                        f"label): {exc}") from exc
    return rest, carved


def split_frame(frame: pd.DataFrame, split: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """train/val/test frames (columns id, text, label; sorted by id) per the split policy."""
    seed, val_fraction = split["seed"], split["val_fraction"]
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
    policy = split["policy"]
    if policy in ("official", "official_val_from_test"):
        pool, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    elif policy == "resplit":
        pool, test = _stratified(frame, split["test_fraction"], seed, "the test split")
    else:
        raise ParamsError(f"split.policy: {policy!r} is not allowed; allowed values: "
                          "['official', 'official_val_from_test', 'resplit']")
    if val_fraction == 0:
        train, val = pool, pool.iloc[:0]
    elif policy == "official_val_from_test":
        train, (test, val) = pool, _stratified(test, val_fraction, seed, "the validation split")
    else:
        train, val = _stratified(pool, val_fraction, seed, "the validation split")
    return {name: part.drop(columns="split").sort_values("id", kind="stable").reset_index(drop=True)
            for name, part in {"train": train, "val": val, "test": test}.items()}


def check_splits(splits: Mapping[str, pd.DataFrame], classes: Sequence[str], *,
                 allow_empty_val: bool = False) -> None:
    """Every split must be non-empty and hold every class (else metrics are meaningless); the
    val split may be empty when the dataset asks for none (val_fraction 0)."""
    for name, part in splits.items():
        if part.empty and name == "val" and allow_empty_val:
            continue
        if part.empty:
            raise DataError(f"split {name!r} is empty; check the raw files and the split fractions")
        missing = [c for k, c in enumerate(classes) if not (part["label"] == k).any()]
        if missing:
            raise DataError(f"split {name!r} has no rows of class(es) {missing}; every split needs "
                            f"every class (check the raw files, classes and split fractions)")


def token_quantiles(texts: pd.Series) -> dict[str, float]:
    """p50/p90/p99/max of the whitespace-token count per row (quantiles rounded to 0.01)."""
    lengths = texts.str.split().str.len().to_numpy(dtype=np.int64)
    if len(lengths) == 0:  # an empty val split (val_fraction 0)
        return {**{key: None for key in QUANTILES}, "max": None}
    stats = {key: round(float(np.quantile(lengths, q)), 2) for key, q in QUANTILES.items()}
    stats["max"] = int(lengths.max())
    return stats


def split_stats(splits: Mapping[str, pd.DataFrame], classes: Sequence[str], malformed: Counter,
                split: Mapping[str, Any]) -> dict[str, Any]:
    """The stats.json document (docs/CONTRACTS.md)."""
    return {
        "classes": list(classes),
        "rows": {name: len(part) for name, part in splits.items()},
        "rows_per_class": {
            name: {c: int((part["label"] == k).sum()) for k, c in enumerate(classes)}
            for name, part in splits.items()},
        "token_length_quantiles": {name: token_quantiles(part["text"]) for name, part in splits.items()},
        "malformed": dict(sorted(malformed.items())),
        "split": split["policy"],
        "split_params": dict(split),
    }


def prepare_dataset(params: Mapping[str, Any], dataset: str, raw_dir: str | Path,
                    out_dir: str | Path) -> dict[str, Any]:
    """Read, split, check and write one dataset; returns the stats.json document. `params`
    needs `datasets` (this one) and the `downloads` of its files (their checksums now)."""
    ds = dataset_params(params, dataset)
    reader = get_reader(ds["reader"])
    raw_dir = Path(raw_dir)
    files = raw_files(ds, raw_dir)
    check_raw_files(params.get("downloads", {}), ds, files)
    try:
        frame, malformed = reader(files, ds["classes"], ds.get("on_malformed", "drop"))
    except RawFileError as exc:
        ref = next((ds["files"][r] for r, p in files.items() if Path(p) == exc.path), None)
        if ref is None:
            raise
        raise DataError(f"{exc.problem}; "
                        f"{redownload_hint(exc.path, ref)}") from exc
    where = ", ".join(str(p) for p in files.values())
    if frame.empty:
        raise DataError(f"dataset {dataset!r}: the raw files hold no well-formed rows ({where})")
    try:
        splits = split_frame(frame, ds["split"])
        check_splits(splits, ds["classes"], allow_empty_val=ds["split"]["val_fraction"] == 0)
    except DataError as exc:
        raise DataError(f"dataset {dataset!r} (raw files {where}): {exc}") from exc
    out_dir = Path(out_dir)
    schema = SCHEMA.append(RAW_TEXT) if "raw_text" in frame.columns else SCHEMA
    for name in SPLITS:
        write_parquet(out_dir / f"{name}.parquet",
                      pa.Table.from_pandas(splits[name], schema=schema, preserve_index=False))
    stats = split_stats(splits, ds["classes"], malformed, ds["split"])
    write_json(out_dir / "stats.json", stats)
    return stats
