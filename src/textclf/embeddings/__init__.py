"""Embedding matrices for a vocabulary: GloVe (via a parsed cache), word2vec trained on the train
split, or a word2vec-format file. `make_embedding` is what the embeddings stage runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from gensim.models import KeyedVectors

from textclf.atomic import atomic_path, write_json
from textclf.config import named_entry
from textclf.embeddings.glove import build_cache, load_cache, read_glove
from textclf.embeddings.matrix import OOV_DEFAULTS, build_matrix
from textclf.embeddings.word2vec import (
    W2V_DEFAULTS,
    read_word2vec_file,
    sentences_from_ids,
    train_word2vec,
)
from textclf.errors import DataError
from textclf.text.vocab import PAD_INDEX, UNK_INDEX, Vocab

__all__ = [
    "build_cache", "build_matrix", "coverage_path", "embedding_config", "load_cache",
    "load_vectors", "make_embedding", "read_glove", "read_train_ids", "write_embedding",
]


def embedding_config(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The `embeddings.<name>` entry with defaults filled in; ParamsError lists known names."""
    entry = named_entry(params, "embeddings", name)
    defaults = {**OOV_DEFAULTS, **(W2V_DEFAULTS if entry["type"] == "word2vec" else {})}
    return {**defaults, **entry, "name": name}


def coverage_path(matrix_path: str | Path) -> Path:
    """`.../E.npy` → `.../E.coverage.json`."""
    return Path(matrix_path).with_suffix(".coverage.json")


def read_train_ids(encoded_dir: str | Path, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids and row offsets of the encoded train split."""
    path = Path(encoded_dir) / "train.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"encoded train split not found: {path}")
    column = pq.read_table(path, columns=["ids"]).column("ids").combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    offsets = column.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    if flat.size and (flat.min() < 0 or flat.max() >= vocab_size):
        raise DataError(f"{path}: token ids outside 0..{vocab_size - 1}; encoded with another vocab?")
    return flat, offsets


def load_vectors(cfg: Mapping[str, Any], vocab: Vocab, *, cache: str | Path | None = None,
                 train_ids: tuple[np.ndarray, np.ndarray] | None = None) -> KeyedVectors:
    """The source vectors of one embedding entry, whatever its type."""
    kind, name = cfg["type"], cfg.get("name", "?")
    if kind == "glove":
        if cache is None:
            raise DataError(f"embedding {name!r} (type glove) needs --cache (built by glove_cache.py)")
        return load_cache(cache, cfg["dim"])
    if kind == "word2vec_file":
        return read_word2vec_file(cfg["path"], cfg["dim"], cfg.get("binary"))
    if train_ids is None:
        raise DataError(f"embedding {name!r} (type word2vec) needs the encoded splits (the job names none)")
    sentences = sentences_from_ids(*train_ids, vocab.itos, skip_ids=(PAD_INDEX, UNK_INDEX))
    return train_word2vec(sentences, cfg)


def make_embedding(cfg: Mapping[str, Any], vocab: Vocab, *, cache: str | Path | None = None,
                   encoded: str | Path | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Matrix + coverage for one vocab and embedding entry.

    With `encoded`, train-token coverage counts every train token the model sees (`<unk>`
    included, as not found); without, it is weighted by the vocab's counts.
    """
    train_ids = read_train_ids(encoded, len(vocab.itos)) if encoded is not None else None
    vectors = load_vectors(cfg, vocab, cache=cache, train_ids=train_ids)
    counts = np.asarray(vocab.counts) if train_ids is None else np.bincount(train_ids[0], minlength=len(vocab.itos))
    matrix, coverage = build_matrix(vocab.itos, vectors, cfg, counts=counts)
    coverage["train_tokens_from"] = "vocab counts" if train_ids is None else "encoded train split"
    coverage["vocab_sha256"] = vocab.sha256
    return matrix, coverage


def write_embedding(out: str | Path, matrix: np.ndarray, coverage: Mapping[str, Any]) -> None:
    """`E.npy` and `E.coverage.json` beside it, each written atomically."""
    with atomic_path(out, suffix=".npy") as tmp:
        np.save(tmp, matrix.astype(np.float32, copy=False))
    write_json(coverage_path(out), dict(coverage))
