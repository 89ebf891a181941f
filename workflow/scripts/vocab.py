"""Vocab stage: build data/vocab/D/V.json from the prepared splits of dataset D.

    vocab.py jobs/vocab/<dataset>/<vocab>.json
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textclf.stage import read_job, run_stage, stage_parser
from textclf.text.vocab import save_vocab, vocab_from_prepared


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "dataset", "vocab", "spec", "prepared", "out")
    start = time.perf_counter()
    vocab = vocab_from_prepared(job["prepared"], job["spec"])
    save_vocab(vocab, job["out"])
    cov = " ".join(f"{s} {v:.4f}" for s, v in vocab.stats["coverage"].items() if v is not None)
    print(f"vocab {job['dataset']}/{job['vocab']}: {len(vocab):,} entries (incl. 2 specials); "
          f"coverage {cov}; {time.perf_counter() - start:.1f} s -> {job['out']}")


if __name__ == "__main__":
    run_stage(main)
