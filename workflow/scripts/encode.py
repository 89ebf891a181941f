"""Encode stage: token ids of every prepared split of dataset D with vocab V.

    encode.py --params P --dataset D --vocab V --prepared data/prepared/D
              --vocab-file data/vocab/D/V.json --out data/encoded/D/V
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textclf.config import load_params, named_entry
from textclf.stage import run_stage, stage_parser
from textclf.text.encode import encode_prepared
from textclf.text.vocab import load_vocab


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="name of a `datasets` entry")
    parser.add_argument("--vocab", required=True, help="name of a `vocabs` entry")
    parser.add_argument("--prepared", required=True, help="data/prepared/D")
    parser.add_argument("--vocab-file", required=True, help="data/vocab/D/V.json")
    parser.add_argument("--out", required=True, help="data/encoded/D/V (directory)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    named_entry(params, "datasets", args.dataset)
    cfg = named_entry(params, "vocabs", args.vocab)
    start = time.perf_counter()
    vocab = load_vocab(args.vocab_file)
    summary = encode_prepared(args.prepared, vocab, cfg, args.out, source=args.vocab_file)
    parts = "; ".join(f"{s} {v['rows']:,} rows, unk {v['unk_share']:.4f}, empty {v['empty']}"
                      for s, v in summary.items())
    print(f"encoded {args.dataset}/{args.vocab} (vocab {len(vocab):,}, oov {cfg.get('oov', 'unk')}): {parts}; "
          f"{time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
