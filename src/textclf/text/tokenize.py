"""Tokenizers named in params.yaml (`tokenizer` blocks) and the reader of prepared splits.

`basic_english` reproduces torchtext's `get_tokenizer("basic_english")` token for token
(the reference numbers were built with it) without depending on torchtext, and runs its
rules as a chain of C-level `str.replace` calls instead of twelve regex passes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import filterfalse
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from textclf.errors import DataError, ParamsError

SPLITS = ("train", "val", "test")
TOKENIZERS = ("basic_english", "whitespace", "regex")
TOKENIZER_DEFAULTS = {"pattern": None, "lowercase": True, "strip_html": False, "stopwords": False}

# torchtext's rules, in its order, applied after lower-casing. Each of its patterns but the
# last is a literal string, and re.sub with a literal is str.replace (leftmost, non-overlapping),
# so a chain of C-level replacements gives the same text; its last rule (\s+ -> " ") is implied
# by str.split(), which splits on exactly the characters Python's \s matches.
_BASIC_ENGLISH_RULES = (
    ("'", " '  "),
    ('"', ""),
    (".", " . "),
    ("<br />", " "),
    (",", " , "),
    ("(", " ( "),
    (")", " ) "),
    ("!", " ! "),
    ("?", " ? "),
    (";", " "),
    (":", " "),
)
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")

Tokenizer = Callable[[str], list[str]]


def _basic_english_rules(text: str) -> list[str]:
    for old, new in _BASIC_ENGLISH_RULES:
        text = text.replace(old, new)
    return text.split()


def basic_english(line: str) -> list[str]:
    """Same tokens as torchtext's get_tokenizer("basic_english")(line)."""
    return _basic_english_rules(line.lower())


def strip_html(text: str) -> str:
    """Replace HTML tags (IMDB's "<br />", "<i>") by spaces so they never become tokens."""
    return _HTML_TAG.sub(" ", text) if "<" in text else text


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop-word list (imported lazily: sklearn is slow to import)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def resolve_tokenizer(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The tokenizer block with defaults filled in; accepts a whole vocab block too.

    Raises ParamsError for an unknown name, a missing or invalid regex pattern, or a
    pattern given to a tokenizer that would ignore it.
    """
    if "tokenizer" in cfg:
        cfg = cfg["tokenizer"]
    spec = {**TOKENIZER_DEFAULTS, **cfg}
    name = spec.get("name")
    if name not in TOKENIZERS:
        raise ParamsError(f"tokenizer.name: {name!r} is not allowed; allowed values: {list(TOKENIZERS)}")
    unknown = sorted(set(spec) - set(TOKENIZER_DEFAULTS) - {"name"})
    if unknown:
        raise ParamsError(f"tokenizer: unknown key(s) {unknown}; allowed keys: {sorted([*TOKENIZER_DEFAULTS, 'name'])}")
    pattern = spec["pattern"]
    if name == "regex":
        if not pattern:
            raise ParamsError("tokenizer: name 'regex' needs a 'pattern' (e.g. \"[a-z0-9]+\")")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ParamsError(f"tokenizer.pattern: {pattern!r} is not a valid regex: {exc}") from exc
    elif pattern is not None:
        raise ParamsError(f"tokenizer.pattern: only used by name 'regex', not {name!r}")
    return spec


def _core(spec: Mapping[str, Any]) -> Tokenizer:
    """The splitting step of a tokenizer; its input is already lower-cased if asked."""
    if spec["name"] == "basic_english":
        return _basic_english_rules
    if spec["name"] == "regex":
        return re.compile(spec["pattern"]).findall
    return str.split


def make_tokenizer(cfg: Mapping[str, Any]) -> Tokenizer:
    """text -> tokens: strip tags (optional), lower-case (default), split, drop stop words."""
    spec = resolve_tokenizer(cfg)
    core = _core(spec)
    lowercase, html = spec["lowercase"], spec["strip_html"]
    stop = stop_words() if spec["stopwords"] else None

    def tokenize(text: str) -> list[str]:
        if html:
            text = strip_html(text)
        tokens = core(text.lower() if lowercase else text)
        return list(filterfalse(stop.__contains__, tokens)) if stop else tokens

    return tokenize


def iter_tokenize(texts: Iterable[str], cfg: Mapping[str, Any], *, desc: str | None = None) -> Iterator[list[str]]:
    """Lazy token lists, so a vocab count never holds a whole corpus of tokens in memory."""
    tokenize = make_tokenizer(cfg)
    total = len(texts) if isinstance(texts, Sequence) else None
    bar = tqdm(texts, desc=desc or "tokenize", total=total, unit="doc", disable=None, leave=False)
    return map(tokenize, bar)


def tokenize_many(texts: Iterable[str], cfg: Mapping[str, Any], *, desc: str | None = None) -> list[list[str]]:
    """Token lists for many texts (one tokenizer built, no per-text setup)."""
    return list(iter_tokenize(texts, cfg, desc=desc))


class PreparedSplit(NamedTuple):
    ids: np.ndarray
    labels: np.ndarray
    texts: list[str]


def read_split(prepared_dir: str | Path, split: str) -> PreparedSplit:
    """One prepared split (id, text, label), checked against the prepared-file contract."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(prepared_dir) / f"{split}.parquet"
    if not path.is_file():
        raise DataError(f"prepared split not found: {path} (run the prepare stage first)")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: unreadable parquet file: {exc}") from exc
    missing = sorted({"id", "text", "label"} - set(table.column_names))
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; has {table.column_names}")
    kinds = {"id": pa.types.is_integer, "label": pa.types.is_integer,
             "text": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)}
    for col, is_kind in kinds.items():
        if not is_kind(table.schema.field(col).type):
            raise DataError(f"{path}: column {col!r} has type {table.schema.field(col).type}, "
                            f"expected {'string' if col == 'text' else 'int64'}")
        if table[col].null_count:
            raise DataError(f"{path}: column {col!r} has {table[col].null_count} null value(s)")
    return PreparedSplit(
        ids=table["id"].to_numpy().astype(np.int64, copy=False),
        labels=table["label"].to_numpy().astype(np.int64, copy=False),
        texts=table["text"].to_pylist(),
    )
