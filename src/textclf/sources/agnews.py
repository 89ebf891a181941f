"""AG News, char-CNN release (``ag_news_csv/{train,test}.csv``, as used by torchtext).

Format: no header, three quoted CSV columns ``class,title,description``, classes 1..4.
The release flattened the original text: every line break became a backslash (``second\\team``
means "second team", ``\\\\`` is a paragraph break, and ``\\$`` a stray escape), and
characters became HTML-ish entities, some without their ampersand (``#36;`` = ``$``,
``#39;`` = ``'``, ``&lt;``, ``&amp;``). torchtext keeps them raw; we clean them (see
`clean_text`) and keep the raw ``title + " " + description`` beside it (``raw_text``), which
the references read (a tokenizer's ``raw_text: true`` reads it).

Ids: the 0-based index of the record within its source file (counting malformed records
too, so dropping one never renumbers the others), plus an offset per file so ids are unique
within the dataset: train.csv -> 0 + index, test.csv -> 10,000,000 + index.
"""

from __future__ import annotations

import csv
import html
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from textclf.errors import DataError
from textclf.sources import Malformed, RawFileError, ReadResult, make_frame

ROLE_OFFSETS = {"train": 0, "test": 10_000_000}
"""id = offset + 0-based record index; one file may hold at most 10 million records."""

_BARE_ENTITY = re.compile(r"(?<!&)#(\d+);")
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")  # bytes that are not UTF-8 (surrogateescape)
# C0 controls other than tab / line feed / carriage return, and DEL: never text in the release
# (it has none), and a NUL survives every later stage unnoticed. C1 codes (U+0080-U+009F) are
# left alone: they are mis-decoded Windows-1252 punctuation in real text (IMDB has many).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
COLUMNS = ("class", "title", "description")


class _Bad(Exception):
    """A record that fails a check: reason (the stats key) and a detail for the message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


def _entity(match: re.Match) -> str:
    """``#36;`` -> ``&#36;`` so html.unescape decodes it; control codes (< 32) stay as text,
    since "#1;" in prose is far likelier than an escaped control character."""
    return f"&#{match.group(1)};" if int(match.group(1)) >= 32 else match.group(0)


def clean_text(title: str, description: str) -> str:
    """Title + description as one line of plain text: backslash line-break markers -> spaces,
    entities decoded (bare ``#NN;`` too), whitespace collapsed."""
    text = f"{title} {description}".replace("\\", " ")
    text = html.unescape(_BARE_ENTITY.sub(_entity, text))
    return " ".join(text.split())


def parse_row(row: Sequence[str], num_classes: int) -> tuple[int, str, str]:
    """(label 0..K-1, cleaned text, raw text) of one CSV record; raises _Bad for a malformed one."""
    if len(row) != 3:
        raise _Bad("wrong_column_count", f"expected 3 columns (class,title,description), got {len(row)}")
    if any(_UNDECODABLE.search(field) for field in row):
        raise _Bad("bad_encoding", "not valid UTF-8")
    for column, field in zip(COLUMNS, row, strict=True):
        if control := _CONTROL.search(field):
            raise _Bad("control_character", f"{column} holds control character "
                       f"U+{ord(control.group()):04X} at character {control.start() + 1}")
    raw_label, title, description = row
    try:
        label = int(raw_label)
    except ValueError:
        raise _Bad("label_not_integer", f"class {raw_label!r} is not an integer") from None
    if not 1 <= label <= num_classes:
        raise _Bad("label_out_of_range", f"class {label} is outside 1..{num_classes}")
    text = clean_text(title, description)
    if not text:
        raise _Bad("empty_text", "title and description are empty")
    return label - 1, text, f"{title} {description}"


def iter_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number where the record starts, fields) for each CSV record.

    CSV syntax errors (e.g. a stray quote) are always fatal: after one the record boundaries
    are unknown, so skipping would silently lose or merge rows."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise RawFileError(path, f"{path}:{start}: not valid CSV ({exc})") from exc
            yield start, row
            start = reader.line_num + 1


def read_file(path: Path, offset: int, num_classes: int, malformed: Malformed,
              ) -> tuple[list[int], list[str], list[int], list[str]]:
    """ids, texts, labels and raw texts of the well-formed records of one release file."""
    ids: list[int] = []
    texts: list[str] = []
    labels: list[int] = []
    raw_texts: list[str] = []
    records = tqdm(iter_records(path), desc=f"read {path.name}", unit=" rows", disable=None)
    index = -1
    before = Counter(malformed.counts)
    for index, (line, row) in enumerate(records):
        if index >= 10_000_000:
            raise DataError(f"{path}: more than 10,000,000 records; the id scheme assumes fewer")
        try:
            label, text, raw = parse_row(row, num_classes)
        except _Bad as bad:
            malformed.report(f"{path}:{line}", bad.reason, bad.detail)
            continue
        ids.append(offset + index)
        texts.append(text)
        labels.append(label)
        raw_texts.append(raw)
    if index < 0:
        raise RawFileError(path, f"{path}: empty file ({path.stat().st_size:,} bytes, no CSV "
                                 f"records); expected AG News rows \"class\",\"title\",\"description\"")
    if not ids:
        dropped = dict(sorted((malformed.counts - before).items()))
        raise RawFileError(path, f"{path}: none of its {index + 1:,} record(s) is usable (all "
                                 f"dropped as malformed: {dropped}); not an AG News CSV file")
    return ids, texts, labels, raw_texts


def read_ag_news(files: Mapping[str, Path], classes: Sequence[str], on_malformed: str) -> ReadResult:
    """Read roles ``train`` and ``test`` of the char-CNN release (see the module docstring)."""
    malformed = Malformed(on_malformed)
    ids: list[int] = []
    texts: list[str] = []
    labels: list[int] = []
    raw_texts: list[str] = []
    splits: list[str] = []
    for role, offset in ROLE_OFFSETS.items():
        path = Path(files[role])
        role_ids, role_texts, role_labels, role_raw = read_file(path, offset, len(classes), malformed)
        ids += role_ids
        texts += role_texts
        labels += role_labels
        raw_texts += role_raw
        splits += [role] * len(role_ids)
    malformed.summarize("ag_news")
    return make_frame(ids, texts, labels, splits, raw_texts), malformed.counts
