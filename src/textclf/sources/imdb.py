"""Large Movie Review Dataset v1.0 (Maas et al. 2011), read straight from ``aclImdb_v1.tar.gz``.

The archive is streamed once (``gzip`` + ``tarfile`` mode ``r|``, nothing extracted to
disk): a full read of the 50,000 labelled reviews takes a few seconds. Only
``aclImdb/{train,test}/{pos,neg}/<file id>_<rating>.txt`` are read (label neg=0, pos=1);
``unsup/``, the URL lists, the vocabulary and the README are ignored. Texts are kept as
written (including ``<br />``; the tokenizers strip HTML when asked to).

Ids encode where a review came from, so they are stable and unique within the dataset:
``id = 10,000,000 * split (train 0, test 1) + 1,000,000 * label + file id``; e.g.
``aclImdb/test/pos/123_9.txt`` -> 11,000,123. Sorting by id is therefore the order
(split, label, numeric file id).
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from textclf.config import ParamsError
from textclf.sources import Malformed, RawFileError, ReadResult, make_frame

SPLITS = ("train", "test")
LABELS = ("neg", "pos")
_REVIEW_DIR = re.compile(r"aclImdb/(train|test)/(pos|neg)/([^/]+)")
_REVIEW_FILE = re.compile(r"(\d{1,6})_(\d+)\.txt")


def review_id(split: str, label: int, file_id: int) -> int:
    """The stable dataset-wide id of one review (see the module docstring)."""
    return 10_000_000 * SPLITS.index(split) + 1_000_000 * label + file_id


def iter_reviews(path: Path) -> Iterator[tuple[re.Match, bytes]]:
    """(name match, bytes) of each file under aclImdb/{train,test}/{pos,neg}/, in archive
    order, streamed once with a byte progress bar; other members are skipped unread.

    gzip (not tarfile's own "r|gz") does the decompression because it checks the CRC and
    raises on a truncated file, where tarfile would just stop at a cut between members."""
    try:
        with open(path, "rb") as raw, \
                tqdm.wrapattr(raw, "read", total=path.stat().st_size, desc=f"read {path.name}",
                              disable=None) as stream, \
                gzip.GzipFile(fileobj=stream, mode="rb") as unzipped, \
                tarfile.open(fileobj=unzipped, mode="r|") as archive:
            for member in archive:
                place = _REVIEW_DIR.fullmatch(member.name)
                if place and member.isfile():
                    yield place, archive.extractfile(member).read()
            while unzipped.read(1 << 20):  # to the end: the gzip trailer check runs there
                pass
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise RawFileError(path, f"{path}: not a readable .tar.gz ({exc})") from exc


def read_aclimdb(files: Mapping[str, Path], classes: Sequence[str], on_malformed: str) -> ReadResult:
    """Read the labelled train/test reviews of role ``archive`` (see the module docstring)."""
    if len(classes) != len(LABELS):
        raise ParamsError(f"reader 'aclimdb' has 2 classes (neg, pos); params list {list(classes)}")
    path = Path(files["archive"])
    malformed = Malformed(on_malformed)
    ids: list[int] = []
    texts: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    found = Counter({(s, lab): 0 for s in SPLITS for lab in LABELS})
    for place, data in iter_reviews(path):
        split, label_name, file_name = place.groups()
        found[split, label_name] += 1
        where = f"{path}:{place.group(0)}"
        name = _REVIEW_FILE.fullmatch(file_name)
        if not name:
            malformed.report(where, "bad_file_name", "expected <file id>_<rating>.txt, file id < 1,000,000")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            malformed.report(where, "bad_encoding", str(exc))
            continue
        if not text.strip():
            malformed.report(where, "empty_text", "the review is empty")
            continue
        label = LABELS.index(label_name)
        ids.append(review_id(split, label, int(name.group(1))))
        texts.append(text)
        labels.append(label)
        splits.append(split)
    _check_complete(path, found)
    malformed.summarize(str(path))
    return make_frame(ids, texts, labels, splits), malformed.counts


def _check_complete(path: Path, found: Counter) -> None:
    """Every (split, label) folder must hold reviews; otherwise the archive is incomplete."""
    empty = [f"aclImdb/{split}/{label}/" for (split, label), n in sorted(found.items()) if not n]
    if empty:
        counts = ", ".join(f"{split}/{label} {n:,}" for (split, label), n in sorted(found.items()))
        raise RawFileError(path, f"{path}: no reviews under {', '.join(empty)} (reviews found: "
                                 f"{counts}); the archive is incomplete")
