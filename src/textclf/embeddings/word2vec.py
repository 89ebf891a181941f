"""word2vec vectors: trained with gensim on the training split, or read from a word2vec file.

Reproducibility: with `workers: 1` gensim's training is deterministic for a given seed. Its
per-word seeding hook `hashfxn` defaults to Python's `hash`, which changes with PYTHONHASHSEED
from one process to the next, so a stable hash (crc32) is passed instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from tqdm import tqdm

from textclf.errors import DataError

W2V_DEFAULTS: dict[str, Any] = {"window": 5, "min_count": 1, "epochs": 5, "workers": 1, "seed": 0}


def stable_hash(text: str) -> int:
    """Process-independent replacement for `hash` (gensim only keeps the low 32 bits)."""
    return zlib.crc32(text.encode("utf-8"))


def sentences_from_ids(flat: np.ndarray, offsets: np.ndarray, itos: Sequence[str],
                       skip_ids: Collection[int]) -> list[list[str]]:
    """Decode encoded rows (flat ids + offsets) to token lists, dropping special ids."""
    words = np.asarray(itos, dtype=object)[flat]
    keep = ~np.isin(flat, np.fromiter(skip_ids, dtype=np.int64))
    rows = (words[a:b][keep[a:b]].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True))
    return [row for row in rows if row]


class _EpochBar(CallbackAny2Vec):
    """A tqdm bar over word2vec epochs (gensim itself only logs)."""

    def __init__(self, epochs: int) -> None:
        self.bar = tqdm(total=epochs, desc="word2vec", unit="epoch", disable=None)

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.bar.update(1)

    def on_train_end(self, model: Word2Vec) -> None:
        self.bar.close()


def train_word2vec(sentences: Sequence[Sequence[str]], cfg: Mapping[str, Any]) -> KeyedVectors:
    """Train gensim Word2Vec (CBOW, gensim defaults otherwise) with the embedding's params."""
    if not sentences:
        raise DataError("word2vec: the training split has no in-vocabulary tokens to train on")
    model = Word2Vec(
        sentences=sentences,
        vector_size=cfg["dim"],
        window=cfg["window"],
        min_count=cfg["min_count"],
        epochs=cfg["epochs"],
        seed=cfg["seed"],
        workers=cfg["workers"],
        hashfxn=stable_hash,
        callbacks=[_EpochBar(cfg["epochs"])],
    )
    return model.wv


def read_word2vec_file(path: str | Path, dim: int, binary: bool | None = None) -> KeyedVectors:
    """A word2vec-format file (binary if `binary`, or by default if it ends in .bin)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word2vec file not found: {path}")
    binary = path.suffix == ".bin" if binary is None else binary
    try:
        vectors = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    except (ValueError, UnicodeDecodeError, EOFError, IndexError) as exc:
        raise DataError(f"{path}: not a {'binary' if binary else 'text'} word2vec file: {exc}") from exc
    if vectors.vector_size != dim:
        raise DataError(f"{path}: dimension mismatch: params say dim={dim}, the file has "
                        f"{vectors.vector_size}-dimensional vectors")
    return vectors
