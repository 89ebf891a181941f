"""Parse a GloVe member (read from the zip, never extracted) once into a fast-loading cache.

    glove_cache.py jobs/glove_cache/<member stem>.json   -> data/embeddings/cache/<member stem>.kv
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from textclf.embeddings import build_cache
from textclf.embeddings.glove import source_label
from textclf.stage import read_job, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "archive", "member", "dim", "out")
    logging.getLogger("gensim").setLevel(logging.WARNING)  # tqdm shows progress instead
    start = time.perf_counter()
    vectors = build_cache(Path(job["archive"]), job["member"], job["dim"], Path(job["out"]))
    print(f"glove cache: {len(vectors):,} vectors x {job['dim']} from "
          f"{source_label(Path(job['archive']), job['member'])} -> {job['out']} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    run_stage(main)
