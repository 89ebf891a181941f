"""GloVe text vectors → a gensim KeyedVectors cache, parsed once.

The text file is read straight out of the archive (zip member, .gz or plain .txt; never
extracted) with pyarrow's CSV reader, which parses the 20M floats of glove.6B.50d.txt in about a
second. pyarrow only says *that* a row is bad, so on failure the same stream is re-read line by
line to name the 1-based line number. The cache is one file (gensim's pickle written through a
handle, so no side .npy files) that loads in well under a second.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import pickle
import zipfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from gensim.models import KeyedVectors
from tqdm import tqdm

from textclf.atomic import atomic_path
from textclf.errors import DataError

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 22  # pyarrow CSV block: 4 MiB was fastest on glove.6B.50d.txt


def source_label(source: str | Path, member: str | None) -> str:
    """How messages name the vectors file: `archive.zip:member` or the file name."""
    return f"{Path(source).name}:{member}" if member else Path(source).name


@contextlib.contextmanager
def open_vectors_text(source: str | Path, member: str | None = None) -> Iterator[tuple[BinaryIO, int | None]]:
    """Yield (binary stream, uncompressed size or None) for a zip member, a .gz or a plain file."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"vectors file not found: {source}")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = zf.namelist()
            if member not in names:
                raise DataError(f"{source}: no member {member!r}; the archive holds only {names}")
            info = zf.getinfo(member)
            with zf.open(info) as fh:
                yield fh, info.file_size
    elif source.suffix == ".gz":
        with gzip.open(source, "rb") as fh:
            yield fh, None
    else:
        with open(source, "rb") as fh:
            yield fh, source.stat().st_size


def parse_line(line: bytes, lineno: int, dim: int, name: str) -> tuple[str, np.ndarray]:
    """One `word v1 .. vdim` line → (word, float32 vector); DataError names the line."""
    fields = line.rstrip(b"\r\n").split(b" ")
    if len(fields) != dim + 1:
        if lineno == 1:
            raise DataError(f"{name}: dimension mismatch: params say dim={dim}, but the file has "
                            f"{len(fields) - 1}-dimensional vectors (line 1 has {len(fields)} fields)")
        raise DataError(f"{name}: malformed line {lineno}: expected 1 word + {dim} numbers "
                        f"separated by single spaces, got {len(fields)} fields")
    try:
        word = fields[0].decode("utf-8")
        vector = np.array(fields[1:], dtype=np.float32)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{name}: malformed line {lineno}: {exc}") from exc
    return word, vector


def parse_lines(lines: Iterable[bytes], dim: int, name: str) -> tuple[list[str], np.ndarray]:
    """Line-by-line reference parser: slow, but exact about which line is bad."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    for lineno, line in enumerate(lines, start=1):
        word, vector = parse_line(line, lineno, dim, name)
        words.append(word)
        rows.append(vector)
    return words, np.array(rows, dtype=np.float32).reshape(len(rows), dim)


def _csv_reader(fh: BinaryIO, dim: int) -> pcsv.CSVStreamingReader:
    """Space-separated, no quoting (GloVe has words like `"`), no nulls, no skipped lines."""
    names = ["word", *(f"v{i}" for i in range(dim))]
    types = {"word": pa.string(), **{n: pa.float32() for n in names[1:]}}
    return pcsv.open_csv(
        fh,
        read_options=pcsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
        parse_options=pcsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False,
                                        ignore_empty_lines=False),
        convert_options=pcsv.ConvertOptions(column_types=types, null_values=[],
                                            strings_can_be_null=False),
    )


def _parse_bulk(fh: BinaryIO, size: int | None, dim: int, name: str) -> tuple[list[str], np.ndarray]:
    """Fast path: pyarrow batches → words + a C-contiguous float32 [n, dim] array."""
    words: list[str] = []
    blocks: list[np.ndarray] = []
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"parse {name}", disable=None) as bar:
        for batch in _csv_reader(fh, dim):
            words.extend(batch.column(0).to_pylist())
            blocks.append(np.asarray(batch.drop_columns(["word"]).to_tensor(row_major=True)))
            bar.update(fh.tell() - bar.n)
    return words, np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)


def read_glove(source: str | Path, member: str | None, dim: int, *, limit: int | None = None) -> KeyedVectors:
    """Parse a GloVe text file (optionally only its first `limit` lines) into KeyedVectors."""
    name = source_label(source, member)
    with open_vectors_text(source, member) as (fh, _):
        first = fh.readline()
    if not first:
        raise DataError(f"{name}: the file is empty")
    parse_line(first, 1, dim, name)  # dimension check with a clear message before the bulk parse
    with open_vectors_text(source, member) as (fh, size):
        if limit is not None:
            return to_keyed_vectors(*parse_lines(islice(fh, limit), dim, name), name)
        try:
            words, vectors = _parse_bulk(fh, size, dim, name)
        except pa.ArrowInvalid as exc:
            raise _locate_bad_line(source, member, dim, name, exc) from exc
    return to_keyed_vectors(words, vectors, name)


def _locate_bad_line(source: str | Path, member: str | None, dim: int, name: str,
                     exc: Exception) -> DataError:
    """pyarrow failed: re-read line by line to name the bad line (else pass on its reason)."""
    with open_vectors_text(source, member) as (fh, _):
        try:
            parse_lines(fh, dim, name)
        except DataError as located:
            return located
    return DataError(f"{name}: could not be parsed: {exc}")


def to_keyed_vectors(words: list[str], vectors: np.ndarray, name: str) -> KeyedVectors:
    """Wrap words + vectors; a repeated word keeps its first vector (as lookups would)."""
    first = dict(zip(reversed(words), range(len(words) - 1, -1, -1), strict=True))
    if len(first) < len(words):
        log.warning("%s: %d repeated word(s); keeping the first vector of each", name, len(words) - len(first))
        keep = np.sort(np.fromiter(first.values(), dtype=np.int64, count=len(first)))
        words, vectors = [words[i] for i in keep], vectors[keep]
    kv = KeyedVectors(vectors.shape[1], dtype=np.float32)
    kv.add_vectors(words, vectors)
    return kv


def save_cache(vectors: KeyedVectors, out: str | Path) -> None:
    """One file, atomically: gensim pickles everything into a handle (no side .npy files)."""
    with atomic_path(out, suffix=".kv") as tmp, open(tmp, "wb") as fh:
        vectors.save(fh)


def load_cache(path: str | Path, dim: int | None = None) -> KeyedVectors:
    """Load a cache written by save_cache; DataError if it is not one or has another dim."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vector cache not found: {path} (run the glove cache stage)")
    try:
        vectors = KeyedVectors.load(str(path))
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise DataError(f"{path}: not a vector cache ({exc}); delete it and rebuild") from exc
    if not isinstance(vectors, KeyedVectors):
        raise DataError(f"{path}: holds a {type(vectors).__name__}, not KeyedVectors; rebuild it")
    if dim is not None and vectors.vector_size != dim:
        raise DataError(f"{path}: dimension mismatch: params say dim={dim}, the cache holds "
                        f"{vectors.vector_size}-dimensional vectors; rebuild it")
    return vectors


def build_cache(source: str | Path, member: str | None, dim: int, out: str | Path) -> KeyedVectors:
    """Parse once and write the cache; returns the vectors for a summary."""
    vectors = read_glove(source, member, dim)
    save_cache(vectors, out)
    return vectors
