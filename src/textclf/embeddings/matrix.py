"""Embedding matrix for a vocabulary: one row per itos entry, a pretrained vector where found.

Rows not found (and `<unk>`) get the `oov_init` of the embedding's params: zeros, or N(0, 0.01)
(standard deviation 0.01) from a numpy Generator seeded by `seed`. The whole [V, dim] block is
drawn before the found rows are copied in, so a word's random row does not depend on which
other words were found. The specials follow `special_rows`: `pad_zero` (default) zeroes row 0
(`<pad>`); `oov_init` leaves every special with its oov_init draw (seed 000 drew `<PAD>` and
`<UNK>` from N(0, 0.01)); `zeros` zeroes every special (seed 004: torchtext zeroes `<pad>`
and `<unk>`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from gensim.models import KeyedVectors

from textclf.errors import DataError
from textclf.text.vocab import PAD_INDEX

OOV_DEFAULTS: dict[str, Any] = {"oov_init": "normal", "seed": 0, "special_rows": "pad_zero"}
OOV_STD = 0.01


def lookup_indices(itos: Sequence[str], vectors: KeyedVectors, skip: Collection[str]) -> np.ndarray:
    """Row of each itos entry in `vectors` (-1: none): the token itself, else its lower-case form.

    GloVe 6B is lower-cased; trying the exact token first keeps case-sensitive sources
    (a word2vec file) exact. Specials are never looked up.
    """
    index = vectors.key_to_index
    rows = (-1 if tok in skip else index.get(tok, index.get(tok.lower(), -1)) for tok in itos)
    return np.fromiter(rows, dtype=np.int64, count=len(itos))


def oov_rows(n: int, dim: int, cfg: Mapping[str, Any]) -> np.ndarray:
    """The initial value of every row, before pretrained vectors are copied in."""
    if cfg["oov_init"] == "zeros":
        return np.zeros((n, dim), dtype=np.float32)
    rng = np.random.default_rng(cfg["seed"])
    return rng.normal(0.0, OOV_STD, size=(n, dim)).astype(np.float32)


def describe_source(cfg: Mapping[str, Any]) -> str:
    """One line naming where the vectors came from (for coverage.json and the report)."""
    kind = cfg["type"]
    if kind == "glove":
        return f"glove:{cfg['archive']}:{cfg['member']}"
    if kind == "word2vec_file":
        return f"word2vec_file:{cfg['path']}"
    return (f"word2vec:train split (window={cfg['window']}, min_count={cfg['min_count']}, "
            f"epochs={cfg['epochs']}, seed={cfg['seed']}, workers={cfg['workers']})")


def build_matrix(
    itos: Sequence[str],
    vectors: KeyedVectors,
    cfg: Mapping[str, Any],
    *,
    counts: Sequence[int] | np.ndarray | None = None,
    specials: Collection[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(float32 [len(itos), dim] matrix in itos order, coverage dict).

    `counts`: train-token count per itos entry (vocab counts, or a bincount of the encoded train
    split, whose `<unk>` count then counts as not found). `specials` default to itos[:2].
    """
    cfg = {**OOV_DEFAULTS, **cfg}  # an entry written before a default existed reads as that default
    dim = cfg["dim"]
    if vectors.vector_size != dim:
        raise DataError(f"dimension mismatch: params say dim={dim}, the vectors have {vectors.vector_size}")
    skip = frozenset(itos[:2] if specials is None else specials)
    source_rows = lookup_indices(itos, vectors, skip)
    found = source_rows >= 0
    matrix = oov_rows(len(itos), dim, cfg)
    matrix[found] = vectors.vectors[source_rows[found]]
    is_special = np.fromiter((tok in skip for tok in itos), dtype=bool, count=len(itos))
    if cfg["special_rows"] == "zeros":
        matrix[is_special] = 0.0
    elif cfg["special_rows"] == "pad_zero":
        matrix[PAD_INDEX] = 0.0
    return matrix, coverage(found, is_special, counts, cfg)


def coverage(found: np.ndarray, is_special: np.ndarray, counts: Any, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Share of (non-special) vocab entries and of train tokens that got a pretrained vector."""
    n_found = int(found.sum())
    n_words = int((~is_special).sum())
    tokens = None if counts is None else np.asarray(counts, dtype=np.int64)
    if tokens is not None and len(tokens) != len(found):
        raise DataError(f"counts has {len(tokens)} entries, the vocabulary {len(found)}")
    total = 0 if tokens is None else int(tokens.sum())
    return {
        "vocab_share": n_found / n_words if n_words else 0.0,
        "train_token_share": int(tokens[found].sum()) / total if total else None,
        "found": n_found,
        "oov": n_words - n_found,
        "dim": cfg["dim"],
        "source": describe_source(cfg),
        "vocab_size": len(found),
        "train_tokens": total,
        "oov_init": cfg["oov_init"],
        "special_rows": cfg["special_rows"],
        # vocab ids without a vector: what `model.embedding.skip_missing` drops from the input
        "missing_rows": np.flatnonzero(~found & ~is_special).tolist(),
    }
