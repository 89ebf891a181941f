"""Readers that turn downloaded raw files into one labelled table per dataset.

Every reader has the signature ``reader(files, classes, on_malformed) -> (frame, problems)``:

- ``files``: role -> local path (the roles a reader needs are fixed: see ``READER_ROLES``);
- ``classes``: the class names from params.yaml (label k is ``classes[k]``);
- ``on_malformed``: ``"drop"`` (count the record, log a warning, skip it) or ``"fail"``
  (raise ``DataError`` naming the file, the record's location and the reason).

``frame`` has the columns ``id`` (int64, unique within the dataset, stable across runs),
``text`` (str), ``label`` (int64 in 0..K-1) and ``split`` (the record's *official* split,
"train" or "test", which the prepare stage uses for ``policy: official`` and then drops).
``problems`` is a Counter {reason: count} of the records that were dropped.

A raw file that is unusable as a whole (empty, truncated, not the expected format, missing a
part) raises ``RawFileError`` naming the file; the prepare stage adds the command that
re-downloads it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from textclf.config import ParamsError
from textclf.errors import DataError

log = logging.getLogger(__name__)

ReadResult = tuple[pd.DataFrame, Counter]
Reader = Callable[[Mapping[str, Path], Sequence[str], str], ReadResult]

READER_ROLES = {"ag_news_csv": ("train", "test"), "aclimdb": ("archive",)}
"""The file roles each reader needs (params.yaml `datasets.<name>.files`)."""

ON_MALFORMED = ("drop", "fail")
MAX_LOGGED = 10  # per-record warnings before only the summary is logged


def get_reader(name: str) -> Reader:
    """The reader function registered under `name` (imported lazily: the modules import this one)."""
    from textclf.sources import agnews, imdb

    readers: dict[str, Reader] = {"ag_news_csv": agnews.read_ag_news, "aclimdb": imdb.read_aclimdb}
    if name not in readers:
        raise ParamsError(f"unknown reader {name!r}; allowed: {sorted(readers)}")
    return readers[name]


class RawFileError(DataError):
    """A raw file is unusable as a whole (empty, corrupt, incomplete): fetch it again."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{problem}; re-download the file")


class Malformed:
    """Decides the fate of a bad record in one place, so every reader drops or fails alike."""

    def __init__(self, on_malformed: str) -> None:
        if on_malformed not in ON_MALFORMED:
            raise ParamsError(f"on_malformed: {on_malformed!r} is not allowed; allowed values: {list(ON_MALFORMED)}")
        self.fail = on_malformed == "fail"
        self.counts: Counter = Counter()

    def report(self, where: str, reason: str, detail: str = "") -> None:
        """Record one bad record at `where` (file and line/member): raise or count and warn."""
        message = f"{where}: malformed record ({reason}){': ' + detail if detail else ''}"
        if self.fail:
            raise DataError(f"{message} (set on_malformed: drop to skip such records)")
        self.counts[reason] += 1
        if sum(self.counts.values()) <= MAX_LOGGED:
            log.warning("%s; dropped", message)

    def summarize(self, source: str) -> None:
        """One warning line with the totals, so drops are never silent even past MAX_LOGGED."""
        if self.counts:
            log.warning("%s: dropped %d malformed record(s): %s", source,
                        sum(self.counts.values()), dict(sorted(self.counts.items())))


def make_frame(ids: Sequence[int], texts: Sequence[str], labels: Sequence[int],
               splits: Sequence[str], raw_texts: Sequence[str] | None = None) -> pd.DataFrame:
    """Build the reader output with the contract's dtypes, sorted by id (a deterministic order).
    A reader that cleans its text passes the uncleaned text as `raw_texts` (column raw_text)."""
    frame = pd.DataFrame({
        "id": pd.array(ids, dtype="int64"),
        "text": pd.array(texts, dtype="str"),
        "label": pd.array(labels, dtype="int64"),
        "split": pd.array(splits, dtype="str"),
    })
    if raw_texts is not None:
        frame["raw_text"] = pd.array(raw_texts, dtype="str")
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise DataError(f"duplicate record id {dup}: the source files overlap or are inconsistent")
    return frame.sort_values("id", kind="stable").reset_index(drop=True)
