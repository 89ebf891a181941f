"""Tokenizers named in params.yaml (`tokenizer` blocks) and the reader of prepared splits.

`basic_english` reproduces torchtext's `get_tokenizer("basic_english")` token for token
(the reference numbers were built with it) without depending on torchtext, and runs its
rules as a chain of C-level `str.replace` calls instead of twelve regex passes. `spacy` is
spaCy's rule-based English tokenizer (`spacy.blank("en")`: no trained model, nothing to
download), what torchtext's `Field(tokenize="spacy")` ran for seed 004 (token texts, whitespace
tokens included). `punct_nltk` is seed 002's preprocessing: every ASCII punctuation mark
(`string.punctuation`) becomes a space, then NLTK's `word_tokenize` splits the rest (it still
splits "cannot" into "can not", "gonna" into "gon na").

Stop words: `stopwords: true` / `sklearn` is scikit-learn's English list (318 words),
`nltk` is NLTK's English list (179 words, shipped in textclf/text/data/; seed 001).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import filterfalse
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from textclf.errors import DataError, ParamsError

SPLITS = ("train", "val", "test")
TOKENIZERS = ("basic_english", "whitespace", "regex", "spacy", "punct_nltk")
_PUNCTUATION_TO_SPACE = str.maketrans(string.punctuation, " " * len(string.punctuation))
TOKENIZER_DEFAULTS = {"pattern": None, "lowercase": True, "strip_html": False, "stopwords": False,
                      "bos_eos": False, "raw_text": False}
STOP_WORD_LISTS = ("sklearn", "nltk")
NLTK_STOPWORDS_FILE = Path(__file__).parent / "data" / "nltk_english_stopwords.txt"
BOS, EOS = "<bos>", "<eos>"

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
def stop_words(source: str = "sklearn") -> frozenset[str]:
    """An English stop-word list: "sklearn" (scikit-learn's ENGLISH_STOP_WORDS, 318 words,
    imported lazily: sklearn is slow to import) or "nltk" (NLTK's 179 words, shipped as data)."""
    if source == "nltk":
        lines = NLTK_STOPWORDS_FILE.read_text(encoding="utf-8").splitlines()
        return frozenset(w for w in (line.strip() for line in lines) if w and not w.startswith("#"))
    if source != "sklearn":
        raise ParamsError(f"tokenizer.stopwords: {source!r} is not allowed; allowed values: "
                          f"[true, false, {', '.join(STOP_WORD_LISTS)}]")
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def stop_word_list(setting: bool | str) -> str | None:
    """The stop-word list a tokenizer's `stopwords` setting names, or None (keep every word)."""
    if setting is False:
        return None
    if setting is True:
        return "sklearn"
    if setting not in STOP_WORD_LISTS:
        raise ParamsError(f"tokenizer.stopwords: {setting!r} is not allowed; allowed values: "
                          f"[true, false, {', '.join(STOP_WORD_LISTS)}]")
    return setting


@functools.cache
def _spacy_tokenizer() -> Any:
    """spaCy's rule-based English tokenizer (no model, no download), loaded once."""
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - spacy is a pinned dependency
        raise ParamsError("tokenizer.name 'spacy' needs the spacy package (pinned in requirements.lock; "
                          "run setup.sh)") from exc
    return spacy.blank("en").tokenizer


def spacy_english(text: str) -> list[str]:
    """Token texts of spaCy's English tokenizer, as torchtext's `tokenize="spacy"` returned
    them (`[tok.text for tok in tokenizer(text)]`, whitespace tokens included)."""
    return [tok.text for tok in _spacy_tokenizer()(text)]


def punct_nltk(text: str) -> list[str]:
    """Seed 002 (002:167-170, 213-217): `text.translate(punctuation -> ' ')`, then
    `nltk.word_tokenize`. `preserve_line=True` skips NLTK's Punkt sentence splitter, whose model
    is a download; on text without punctuation Punkt returns the whole text as one sentence,
    so the tokens are the same."""
    from nltk.tokenize import word_tokenize

    return word_tokenize(text.translate(_PUNCTUATION_TO_SPACE), preserve_line=True)


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
    stop_word_list(spec["stopwords"])
    return spec


def _core(spec: Mapping[str, Any]) -> Tokenizer:
    """The splitting step of a tokenizer; its input is already lower-cased if asked."""
    if spec["name"] == "basic_english":
        return _basic_english_rules
    if spec["name"] == "regex":
        return re.compile(spec["pattern"]).findall
    if spec["name"] == "spacy":
        return spacy_english
    if spec["name"] == "punct_nltk":
        return punct_nltk
    return str.split


def make_tokenizer(cfg: Mapping[str, Any]) -> Tokenizer:
    """text -> tokens: strip tags (optional), lower-case (default), split, drop stop words,
    wrap in <bos> ... <eos> (optional)."""
    spec = resolve_tokenizer(cfg)
    core = _core(spec)
    lowercase, html, wrap = spec["lowercase"], spec["strip_html"], spec["bos_eos"]
    stop_list = stop_word_list(spec["stopwords"])
    stop = stop_words(stop_list) if stop_list else None

    def tokenize(text: str) -> list[str]:
        if html:
            text = strip_html(text)
        tokens = core(text.lower() if lowercase else text)
        if stop:
            tokens = list(filterfalse(stop.__contains__, tokens))
        return [BOS, *tokens, EOS] if wrap else tokens

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


def read_split(prepared_dir: str | Path, split: str, *, raw: bool = False) -> PreparedSplit:
    """One prepared split (id, text, label), checked against the prepared-file contract.

    `raw`: the text as the source stored it (column raw_text, written by readers that clean
    their text, e.g. AG News's entities); a reader that keeps its text as it is writes none,
    and `text` is read."""
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
        texts=table["raw_text" if raw and "raw_text" in table.column_names else "text"].to_pylist(),
    )
