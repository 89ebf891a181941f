"""Encode stage: token ids of every prepared split of dataset D with vocab V.

    encode.py jobs/encode/<dataset>/<vocab>.json      -> data/encoded/D/V/{train,val,test}.parquet
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textclf.stage import read_job, run_stage, stage_parser
from textclf.text.encode import encode_prepared
from textclf.text.vocab import load_vocab


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "dataset", "vocab", "spec", "prepared", "vocab_file", "out")
    cfg = job["spec"]
    start = time.perf_counter()
    vocab = load_vocab(job["vocab_file"])
    summary = encode_prepared(job["prepared"], vocab, cfg, job["out"], source=job["vocab_file"])
    parts = "; ".join(f"{s} {v['rows']:,} rows, unk {v['unk_share']:.4f}, empty {v['empty']}"
                      for s, v in summary.items())
    print(f"encoded {job['dataset']}/{job['vocab']} (vocab {len(vocab):,}, oov {cfg.get('oov', 'unk')}): {parts}; "
          f"{time.perf_counter() - start:.1f} s -> {job['out']}")


if __name__ == "__main__":
    run_stage(main)
