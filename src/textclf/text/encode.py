"""Encoding: prepared texts -> token-id sequences, stored as parquet list<int32> columns.

Sequences are stored at full length; truncation to max_len happens at batching time, so one
encoded set serves every max_len a study sweeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from textclf.atomic import atomic_dir, write_parquet
from textclf.errors import DataError, ParamsError
from textclf.text.tokenize import SPLITS, iter_tokenize, read_split
from textclf.text.vocab import UNK_INDEX, Vocab, check_vocab_matches, resolve_vocab_config

log = logging.getLogger("textclf.encode")
_DROPPED = -1  # marks an unknown token under `oov: drop` before it is filtered out


def encode_tokens(token_lists: Iterable[list[str]], vocab: Vocab, oov: str = "unk") -> list[np.ndarray]:
    """One int32 id array per token list; unknown tokens -> <unk> (oov "unk") or removed ("drop")."""
    if oov not in ("unk", "drop"):
        raise ParamsError(f"vocab.oov: {oov!r} is not allowed; allowed values: ['unk', 'drop']")
    get = vocab.lookup.get
    default = UNK_INDEX if oov == "unk" else _DROPPED
    rows = []
    for tokens in token_lists:
        ids = np.fromiter(map(get, tokens, repeat(default)), dtype=np.int32, count=len(tokens))
        rows.append(ids if oov == "unk" else ids[ids != _DROPPED])
    return rows


def lengths_of(rows: Sequence[np.ndarray]) -> np.ndarray:
    return np.fromiter(map(len, rows), dtype=np.int32, count=len(rows))


def encode_split(texts: Iterable[str], vocab: Vocab, cfg: Mapping[str, Any], *,
                 desc: str | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """(id arrays, int32 lengths) for texts, with the tokenizer and `oov` of a vocab block."""
    spec = resolve_vocab_config(cfg)
    rows = encode_tokens(iter_tokenize(texts, spec["tokenizer"], desc=desc), vocab, spec["oov"])
    return rows, lengths_of(rows)


def decode(ids: Iterable[int], vocab: Vocab) -> list[str]:
    """Tokens for ids (unknown words come back as "<unk>"); for checks and error analysis."""
    return [vocab.itos[i] for i in ids]


def to_list_array(rows: Sequence[np.ndarray]) -> pa.ListArray:
    """list<int32> column from flat values + offsets (numpy), not row-by-row Python lists."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths_of(rows), out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise DataError(f"{offsets[-1]:,} tokens in one split: more than a list<int32> column holds")
    values = np.concatenate(rows).astype(np.int32, copy=False) if rows else np.empty(0, np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))


def encoded_table(ids: np.ndarray, labels: np.ndarray, rows: Sequence[np.ndarray],
                  metadata: Mapping[str, str] | None = None) -> pa.Table:
    """The encoded-split contract: id int64, label int64, ids list<int32>, length int32."""
    table = pa.table({
        "id": pa.array(np.asarray(ids, dtype=np.int64)),
        "label": pa.array(np.asarray(labels, dtype=np.int64)),
        "ids": to_list_array(rows),
        "length": pa.array(lengths_of(rows)),
    })
    return table.replace_schema_metadata(dict(metadata or {}))


def split_summary(rows: Sequence[np.ndarray]) -> dict[str, Any]:
    lengths = lengths_of(rows)
    tokens = int(lengths.sum())
    unk = int(sum(int(np.count_nonzero(r == UNK_INDEX)) for r in rows))
    return {"rows": len(rows), "tokens": tokens, "empty": int(np.count_nonzero(lengths == 0)),
            "unk_share": unk / tokens if tokens else 0.0}


def encode_prepared(prepared_dir: str | Path, vocab: Vocab, cfg: Mapping[str, Any],
                    out_dir: str | Path, *, source: str = "vocab") -> dict[str, dict[str, Any]]:
    """Encode stage: write out_dir/{train,val,test}.parquet as one atomic directory swap,
    so an interrupted run never leaves a set that looks complete. Returns per-split stats."""
    spec = resolve_vocab_config(cfg)
    check_vocab_matches(vocab, spec, source)
    metadata = {"textclf.vocab_sha256": vocab.sha256, "textclf.oov": spec["oov"]}
    summary = {}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            data = read_split(prepared_dir, split, raw=spec["tokenizer"]["raw_text"])
            rows, _ = encode_split(data.texts, vocab, spec, desc=f"encode {split}")
            summary[split] = split_summary(rows)
            if summary[split]["empty"]:
                log.warning("%s: %d of %d rows have no tokens after encoding (kept with length 0)",
                            split, summary[split]["empty"], len(rows))
            write_parquet(Path(tmp) / f"{split}.parquet", encoded_table(data.ids, data.labels, rows, metadata))
    return summary
