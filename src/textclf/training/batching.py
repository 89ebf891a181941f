"""Encoded splits in memory and the batches cut from them.

A split is read once from its parquet file into flat numpy arrays (values + offsets, straight
from pyarrow's list layout), so batching never re-tokenizes and never builds Python lists.
Training batches are length-bucketed: rows of similar length share a batch, so a batch is
padded only to its own longest row and the recurrent network wastes little work on padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from textclf.text.vocab import UNK_INDEX

BUCKET_CHUNK_BATCHES = 50
"""A shuffled chunk of this many batches is sorted by length before it is cut into batches."""
EVAL_MAX_ROWS = 256
EVAL_MAX_TOKENS = 16_384
"""Evaluation batches: at most this many rows and padded positions (rows x longest row). On
the 2-core CPU, 64-256 rows ran as fast as any size and 512-1024 rows were 10-40% slower
(cache), so bigger is not better here; sorting by length keeps the padding near zero."""


@dataclass
class EncodedSplit:
    """One split as flat arrays: row i's token ids are values[offsets[i]:offsets[i+1]]."""

    row_ids: np.ndarray  # int64 [N] (the dataset's stable `id` column)
    labels: np.ndarray  # int64 [N]
    values: np.ndarray  # int32 [total tokens]
    offsets: np.ndarray  # int64 [N + 1]
    empty_rows: int = 0  # rows that had no tokens and were given a single <unk>
    vocab_sha256: str | None = None  # from the encode stage's parquet metadata, when present

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, index: np.ndarray) -> EncodedSplit:
        """A new split with the given rows, in the given order (used for subsampling)."""
        index = np.asarray(index, dtype=np.int64)
        starts, lengths = self.offsets[:-1][index], self.lengths[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = _ragged_positions(starts, lengths)
        return EncodedSplit(self.row_ids[index], self.labels[index], self.values[gather], offsets,
                            self.empty_rows, self.vocab_sha256)

    def without_tokens(self, ids: np.ndarray) -> EncodedSplit:
        """The split with every occurrence of these token ids removed, as seed 003 skipped words
        missing from its vectors; a row left with no token gets a single <unk> (counted)."""
        drop = np.zeros(max(int(self.values.max(initial=0)), int(np.max(ids, initial=0))) + 1, dtype=bool)
        drop[np.asarray(ids, dtype=np.int64)] = True
        keep = ~drop[self.values]
        lengths = np.bincount(np.repeat(np.arange(len(self)), self.lengths)[keep], minlength=len(self))
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        split = _fill_empty_rows(EncodedSplit(self.row_ids, self.labels, self.values[keep], offsets,
                                              vocab_sha256=self.vocab_sha256))
        split.empty_rows += self.empty_rows
        return split


def _ragged_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions of the slices [start, start+length) concatenated, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - out_offsets, lengths) + np.arange(total, dtype=np.int64)


def load_encoded(path: str | Path) -> EncodedSplit:
    """Read an encoded split (id, label, ids list<int32>, length) into flat arrays.

    Rows without tokens get a single <unk> so every length is ≥ 1 (recurrent layers and packed
    sequences need at least one step); how many is kept in `empty_rows`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoded split not found: {path}")
    table = pq.read_table(path, columns=["id", "label", "ids"])
    ids = table.column("ids").combine_chunks()
    offsets = ids.offsets.to_numpy().astype(np.int64)
    values = ids.values.to_numpy().astype(np.int32, copy=False)
    offsets, values = offsets - offsets[0], values[offsets[0] : offsets[-1]]
    split = EncodedSplit(
        row_ids=table.column("id").to_numpy().astype(np.int64),
        labels=table.column("label").to_numpy().astype(np.int64),
        values=values,
        offsets=offsets,
        vocab_sha256=(table.schema.metadata or {}).get(b"textclf.vocab_sha256", b"").decode() or None,
    )
    return _fill_empty_rows(split)


def _fill_empty_rows(split: EncodedSplit) -> EncodedSplit:
    empty = split.lengths == 0
    n_empty = int(empty.sum())
    if n_empty:
        lengths = np.maximum(split.lengths, 1)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.full(int(offsets[-1]), UNK_INDEX, dtype=np.int32)
        keep = ~empty
        values[_ragged_positions(offsets[:-1][keep], lengths[keep])] = split.values
        split = EncodedSplit(split.row_ids, split.labels, values, offsets, vocab_sha256=split.vocab_sha256)
    split.empty_rows = n_empty
    return split


def bucket_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Row indices of every training batch of one epoch, length-bucketed.

    Shuffle all rows, sort by length inside chunks of BUCKET_CHUNK_BATCHES batches, cut
    batches, shuffle the batch order. Depends only on (seed, epoch), so a resumed run sees
    the same batches as an uninterrupted one.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    chunk = batch_size * BUCKET_CHUNK_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def shuffled_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Plain shuffled batches (no bucketing), like the references' DataLoaders: what `padding:
    fixed` and `padding: batch` use."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def eval_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Batches of rows sorted by length (little padding); callers scatter results back by index.

    At most batch_size rows each and, with max_tokens, at most that many padded positions
    (rows x the batch's longest row, at least one row): short rows share big batches, long
    rows do not blow up the activations."""
    order = np.argsort(lengths, kind="stable")
    if max_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[np.ndarray] = []
    start, sorted_lengths = 0, np.maximum(lengths[order], 1)
    while start < len(order):
        # rows start..end-1 fit when (end - start) * sorted_lengths[end - 1] <= max_tokens
        window = sorted_lengths[start : start + batch_size]
        fits = np.arange(1, len(window) + 1) * window <= max_tokens
        size = max(1, int(np.argmin(fits)) if not fits.all() else len(fits))
        batches.append(order[start : start + size])
        start += size
    return batches


@dataclass
class Batch:
    index: np.ndarray  # row positions in the split
    ids: torch.Tensor  # int64 [B, T], right-padded with PAD_INDEX
    lengths: torch.Tensor  # int64 [B], ≥ 1, ≤ max_len
    labels: torch.Tensor  # int64 [B]

    @property
    def tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return int(self.lengths.sum())


def collate(split: EncodedSplit, index: np.ndarray, max_len: int, fixed: bool = False) -> Batch:
    """Pad the given rows to the batch's longest row (or to exactly max_len when fixed),
    keeping the first max_len tokens of longer rows."""
    lengths = np.minimum(split.lengths[index], max_len)
    width = max_len if fixed else int(lengths.max())
    ids = np.zeros((len(index), width), dtype=np.int64)
    mask = np.arange(width) < lengths[:, None]
    positions = split.offsets[:-1][index][:, None] + np.arange(width)
    ids[mask] = split.values[positions[mask]]
    return Batch(
        index=index,
        ids=torch.from_numpy(ids),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
        labels=torch.from_numpy(split.labels[index]),
    )

def epoch_batches(
    split: EncodedSplit, batch_size: int, *, seed: int, epoch: int, padding: str
) -> list[np.ndarray]:
    """The training batches for one epoch under `training.padding`: `bucket`, length-bucketed
    batches padded to their longest row; `fixed`, shuffled batches padded to max_len (seed 000);
    `batch`, shuffled batches padded to their longest row (seeds 001, 002)."""
    if padding in ("fixed", "batch"):
        return shuffled_batches(len(split), batch_size, seed, epoch)
    return bucket_batches(split.lengths, batch_size, seed, epoch)


def predict_batches(lengths: np.ndarray, padding: str, batch_size: int, max_len: int) -> list[np.ndarray]:
    """The evaluation batches under the variant's padding policy.

    `batch`: dataset order, training-size batches, each padded to its longest row (a reference's
    test DataLoader): with `pool_padding` a row's pooled output depends on the rows it shares a
    batch with, so evaluation must group rows as the reference did. Otherwise rows sorted by
    length (no pooled output depends on its neighbours there), in batches of at least
    EVAL_MAX_ROWS rows and EVAL_MAX_TOKENS padded positions."""
    if padding == "batch":
        return [np.arange(i, min(i + batch_size, len(lengths))) for i in range(0, len(lengths), batch_size)]
    widths = np.full(len(lengths), max_len) if padding == "fixed" else np.minimum(lengths, max_len)
    return eval_batches(widths, max(EVAL_MAX_ROWS, batch_size), max(EVAL_MAX_TOKENS, batch_size * max_len))
