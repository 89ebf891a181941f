"""Text processing: tokenizers, vocabularies and token-id encoding (vocab and encode stages)."""

from textclf.text.encode import decode, encode_prepared, encode_split, encode_tokens, encoded_table
from textclf.text.tokenize import (
    SPLITS,
    basic_english,
    iter_tokenize,
    make_tokenizer,
    read_split,
    resolve_tokenizer,
    strip_html,
    tokenize_many,
)
from textclf.text.vocab import (
    PAD_INDEX,
    SPECIALS,
    UNK_INDEX,
    Vocab,
    build_vocab,
    load_vocab,
    resolve_vocab_config,
    save_vocab,
    vocab_from_prepared,
)

__all__ = [
    "PAD_INDEX", "SPECIALS", "SPLITS", "UNK_INDEX", "Vocab", "basic_english", "build_vocab",
    "decode", "encode_prepared", "encode_split", "encode_tokens", "encoded_table",
    "iter_tokenize", "load_vocab", "make_tokenizer", "read_split", "resolve_tokenizer",
    "resolve_vocab_config", "save_vocab", "strip_html", "tokenize_many", "vocab_from_prepared",
]
