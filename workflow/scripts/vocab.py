"""Vocab stage: build data/vocab/D/V.json from the prepared splits of dataset D.

    vocab.py --params P --dataset D --vocab V --prepared data/prepared/D --out data/vocab/D/V.json
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textclf.config import load_params, named_entry
from textclf.stage import run_stage, stage_parser
from textclf.text.vocab import save_vocab, vocab_from_prepared


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="name of a `datasets` entry")
    parser.add_argument("--vocab", required=True, help="name of a `vocabs` entry")
    parser.add_argument("--prepared", required=True, help="data/prepared/D")
    parser.add_argument("--out", required=True, help="data/vocab/D/V.json")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    named_entry(params, "datasets", args.dataset)
    cfg = named_entry(params, "vocabs", args.vocab)
    start = time.perf_counter()
    vocab = vocab_from_prepared(args.prepared, cfg)
    save_vocab(vocab, args.out)
    cov = " ".join(f"{s} {v:.4f}" for s, v in vocab.stats["coverage"].items() if v is not None)
    print(f"vocab {args.dataset}/{args.vocab}: {len(vocab):,} entries (incl. 2 specials); "
          f"coverage {cov}; {time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
