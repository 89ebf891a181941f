"""Vocabularies: token <-> index tables built from token counts, saved as checked JSON.

Order is deterministic (frequency descending, then token ascending, as torchtext's
build_vocab_from_iterator), with `<pad>`=0 and `<unk>`=1 first. `max_size` counts every
entry INCLUDING the two specials (torchtext's `max_tokens`; "vocab 20k" = 20,000 rows of
the embedding table).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textclf.atomic import write_json
from textclf.errors import DataError, ParamsError
from textclf.text.tokenize import SPLITS, iter_tokenize, read_split, resolve_tokenizer

PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
PAD_INDEX, UNK_INDEX = 0, 1
# "train+test" is every labelled split: the reference had no validation split, so ours (carved
# out of its training data) counts too. "train+val": every training row of a variant that
# trains on the validation rows too (training.train_split train+val).
SOURCES = {"train": ("train",), "train+val": ("train", "val"), "train+test": ("train", "val", "test")}
VOCAB_KEYS = ("tokenizer", "min_freq", "max_size", "source")  # what decides the itos list
VOCAB_DEFAULTS = {"max_size": None, "source": "train", "oov": "unk"}


def resolve_vocab_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A vocab params block with defaults filled in and cross-field checks applied."""
    missing = [k for k in ("tokenizer", "min_freq") if k not in cfg]
    if missing:
        raise ParamsError(f"vocab: missing key(s) {missing}")
    spec = {**VOCAB_DEFAULTS, **cfg}
    spec["tokenizer"] = resolve_tokenizer(spec["tokenizer"])
    if spec["source"] not in SOURCES:
        raise ParamsError(f"vocab.source: {spec['source']!r} is not allowed; allowed values: {list(SOURCES)}")
    if spec["max_size"] is not None and spec["max_size"] <= len(SPECIALS):
        raise ParamsError(f"vocab.max_size: {spec['max_size']} leaves no room for words; it counts "
                          f"the {len(SPECIALS)} specials {list(SPECIALS)} too")
    if spec["oov"] not in ("unk", "drop"):
        raise ParamsError(f"vocab.oov: {spec['oov']!r} is not allowed; allowed values: ['unk', 'drop']")
    return spec


def itos_sha256(itos: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(itos).encode("utf-8")).hexdigest()


@dataclass
class Vocab:
    """The itos list plus what it was built from; `stoi` is derived."""

    itos: list[str]
    counts: list[int]
    config: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        # Text that literally contains "<pad>" must not become padding: it is unknown.
        self.lookup = {tok: i for tok, i in self.stoi.items() if tok != PAD}

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def sha256(self) -> str:
        return itos_sha256(self.itos)

    def to_json(self) -> dict[str, Any]:
        return {
            "itos": self.itos, "specials": list(SPECIALS), "pad_index": PAD_INDEX,
            "unk_index": UNK_INDEX, "config": self.config, "counts": self.counts,
            "stats": self.stats, "sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "vocab") -> Vocab:
        """Check every contract field; raise DataError naming the first problem."""
        _check_vocab_json(obj, source)
        return cls(itos=obj["itos"], counts=obj["counts"], config=obj["config"], stats=obj["stats"])


def _check_vocab_json(obj: Any, source: str) -> None:
    def bad(why: str) -> DataError:
        return DataError(f"{source}: not a valid vocab file: {why} (rebuild it with the vocab stage)")

    if not isinstance(obj, dict):
        raise bad("top level is not an object")
    missing = [k for k in ("itos", "specials", "pad_index", "unk_index", "config", "counts", "stats", "sha256")
               if k not in obj]
    if missing:
        raise bad(f"missing key(s) {missing}")
    itos, counts = obj["itos"], obj["counts"]
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
        raise bad("itos is not a list of strings")
    if list(obj["specials"]) != list(SPECIALS) or itos[: len(SPECIALS)] != list(SPECIALS):
        raise bad(f"specials must be {list(SPECIALS)} at the start of itos")
    if (obj["pad_index"], obj["unk_index"]) != (PAD_INDEX, UNK_INDEX):
        raise bad(f"pad_index/unk_index must be {PAD_INDEX}/{UNK_INDEX}")
    if len(set(itos)) != len(itos):
        raise bad("itos has duplicate tokens")
    if not isinstance(counts, list) or len(counts) != len(itos) or not all(
            isinstance(c, int) and c >= 0 for c in counts):
        raise bad("counts must be one non-negative integer per itos entry")
    if not isinstance(obj["config"], dict) or not isinstance(obj["stats"], dict):
        raise bad("config and stats must be objects")
    if obj["sha256"] != itos_sha256(itos):
        raise bad("sha256 does not match the itos list (edited or corrupt)")


def select_tokens(counter: Mapping[str, int], min_freq: int, max_size: int | None) -> list[str]:
    """Regular tokens kept: count >= min_freq, by count desc then token asc, capped so that
    the whole vocab (specials included) has at most max_size entries."""
    kept = sorted(((t, c) for t, c in counter.items() if c >= min_freq and t not in SPECIALS),
                  key=lambda tc: (-tc[1], tc[0]))
    if max_size is not None:
        kept = kept[: max_size - len(SPECIALS)]
    return [t for t, _ in kept]


def count_tokens(token_lists: Iterable[list[str]]) -> Counter[str]:
    """Token frequencies (Counter's C loop over a flat stream; lists may be lazy)."""
    return Counter(itertools.chain.from_iterable(token_lists))


def split_stats(itos: list[str], counters: Mapping[str, Counter[str]]) -> dict[str, Any]:
    """Coverage (share of running tokens that are regular vocab entries) per split."""
    regular = itos[len(SPECIALS):]
    tokens = {s: sum(c.values()) for s, c in counters.items()}
    covered = {s: sum(c[t] for t in regular if t in c) for s, c in counters.items()}
    coverage = {s: (covered[s] / tokens[s] if tokens[s] else None) for s in counters}
    return {
        "size": len(itos),
        "coverage": coverage,
        "oov_rate": {s: (None if v is None else 1.0 - v) for s, v in coverage.items()},
        "tokens": tokens,
        "types": {s: len(c) for s, c in counters.items()},
    }


def build_vocab(token_lists: Iterable[list[str]] | Mapping[str, Iterable[list[str]]],
                cfg: Mapping[str, Any]) -> Vocab:
    """Vocab from token lists: a plain iterable is the train split; a mapping {split: lists}
    also gives the test split for `source: train+test` and coverage stats for every split.

    `counts` holds TRAIN frequencies (contract), even when test counts helped select tokens.
    """
    spec = resolve_vocab_config(cfg)
    by_split = token_lists if isinstance(token_lists, Mapping) else {"train": token_lists}
    needed = SOURCES[spec["source"]]
    missing = [s for s in needed if s not in by_split]
    if missing:
        raise DataError(f"vocab source {spec['source']!r} needs split(s) {missing}; got {sorted(by_split)}")
    counters = {s: count_tokens(lists) for s, lists in by_split.items()}
    if not counters["train"]:
        raise DataError("the train split has no tokens: cannot build a vocabulary")
    chosen = sum((counters[s] for s in needed), Counter())
    itos = [*SPECIALS, *select_tokens(chosen, spec["min_freq"], spec["max_size"])]
    counts = [0] * len(SPECIALS) + [counters["train"][t] for t in itos[len(SPECIALS):]]
    config = {k: spec[k] for k in VOCAB_KEYS}
    return Vocab(itos=itos, counts=counts, config=config, stats=split_stats(itos, counters))


def vocab_from_prepared(prepared_dir: str | Path, cfg: Mapping[str, Any]) -> Vocab:
    """Vocab stage: tokenize every prepared split lazily, count, select (train or train+test)."""
    spec = resolve_vocab_config(cfg)
    raw = spec["tokenizer"]["raw_text"]
    token_lists = {s: iter_tokenize(read_split(prepared_dir, s, raw=raw).texts, spec["tokenizer"],
                                    desc=f"tokenize {s}") for s in SPLITS}
    return build_vocab(token_lists, spec)


def save_vocab(vocab: Vocab, path: str | Path) -> None:
    write_json(path, vocab.to_json())


def load_vocab(path: str | Path) -> Vocab:
    """Read and check a vocab JSON file; DataError if it is corrupt or not a vocab."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"vocab file not found: {path} (run the vocab stage first)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a valid vocab file: unreadable JSON ({exc})") from exc
    return Vocab.from_json(obj, source=str(path))


def check_vocab_matches(vocab: Vocab, cfg: Mapping[str, Any], source: str = "vocab") -> None:
    """Refuse a vocab file built with other vocab params than the ones given (stale output)."""
    spec = resolve_vocab_config(cfg)
    expected = {k: spec[k] for k in VOCAB_KEYS}
    if vocab.config != expected:
        diff = sorted(k for k in VOCAB_KEYS if vocab.config.get(k) != expected[k])
        raise DataError(f"{source}: built with different vocab params ({diff}); rerun the vocab stage")
