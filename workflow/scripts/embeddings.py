"""Embedding matrix for one vocabulary: E.npy (float32 [len(itos), dim]) + E.coverage.json.

embeddings.py --params P --dataset D --vocab V --embedding E --vocab-file data/vocab/D/V.json
              [--cache data/embeddings/cache/<stem>.kv] [--encoded data/encoded/D/V]
              --out data/embeddings/D/V/E.npy
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from textclf.config import ParamsError, load_params, named_entry
from textclf.embeddings import embedding_config, make_embedding, write_embedding
from textclf.stage import run_stage, stage_parser
from textclf.text.vocab import check_vocab_matches, load_vocab


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--vocab", required=True, help="vocab name (params `vocabs`)")
    parser.add_argument("--embedding", required=True, help="embedding name (params `embeddings`)")
    parser.add_argument("--vocab-file", required=True, type=Path)
    parser.add_argument("--cache", type=Path, help="GloVe cache from glove_cache.py (type glove)")
    parser.add_argument("--encoded", type=Path, help="encoded splits: word2vec corpus, token coverage")
    parser.add_argument("--out", required=True, type=Path, help="matrix file (.npy)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    named_entry(params, "datasets", args.dataset)
    vocab = load_vocab(args.vocab_file)
    check_vocab_matches(vocab, named_entry(params, "vocabs", args.vocab), str(args.vocab_file))
    if args.out.suffix != ".npy":
        raise ParamsError(f"--out must end in .npy, got {args.out}")
    cfg = embedding_config(params, args.embedding)
    logging.getLogger("gensim").setLevel(logging.WARNING)  # tqdm shows progress instead
    start = time.perf_counter()
    matrix, coverage = make_embedding(cfg, vocab, cache=args.cache, encoded=args.encoded)
    write_embedding(args.out, matrix, coverage)
    share = coverage["train_token_share"]
    print(f"embeddings {args.dataset}/{args.vocab}/{args.embedding}: {matrix.shape[0]:,} x {matrix.shape[1]}, "
          f"vocab coverage {coverage['vocab_share']:.1%}, train-token coverage "
          f"{'n/a' if share is None else f'{share:.1%}'} ({coverage['source']}) "
          f"in {time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
