"""Embedding matrix for one vocabulary: E.npy (float32 [len(itos), dim]) + E.coverage.json.

    embeddings.py jobs/embeddings/<dataset>/<vocab>/<embedding>.json
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from textclf.embeddings import embedding_config, make_embedding, write_embedding
from textclf.stage import read_job, run_stage, stage_parser
from textclf.text.vocab import check_vocab_matches, load_vocab


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "dataset", "vocab", "vocab_spec", "embedding", "spec", "vocab_file", "encoded",
                   "cache", "out")
    vocab = load_vocab(job["vocab_file"])
    check_vocab_matches(vocab, job["vocab_spec"], job["vocab_file"])
    cfg = embedding_config({"embeddings": {job["embedding"]: job["spec"]}}, job["embedding"])
    logging.getLogger("gensim").setLevel(logging.WARNING)  # tqdm shows progress instead
    start = time.perf_counter()
    matrix, coverage = make_embedding(cfg, vocab, cache=job["cache"], encoded=job["encoded"])
    write_embedding(Path(job["out"]), matrix, coverage)
    share = coverage["train_token_share"]
    print(f"embeddings {job['dataset']}/{job['vocab']}/{job['embedding']}: {matrix.shape[0]:,} x {matrix.shape[1]}, "
          f"vocab coverage {coverage['vocab_share']:.1%}, train-token coverage "
          f"{'n/a' if share is None else f'{share:.1%}'} ({coverage['source']}) "
          f"in {time.perf_counter() - start:.1f} s -> {job['out']}")


if __name__ == "__main__":
    run_stage(main)
