"""Parse a GloVe member (read from the zip, never extracted) once into a fast-loading cache.

glove_cache.py --params P --embedding E --archive data/raw/glove/glove.6B.zip
               --out data/embeddings/cache/<member stem>.kv
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from textclf.config import ParamsError, load_params
from textclf.embeddings import build_cache, embedding_config
from textclf.embeddings.glove import source_label
from textclf.stage import run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--embedding", required=True, help="name of a `type: glove` entry in embeddings")
    parser.add_argument("--archive", required=True, type=Path, help="glove.6B.zip (or a .txt / .txt.gz)")
    parser.add_argument("--out", required=True, type=Path, help="cache file (.kv)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    cfg = embedding_config(params, args.embedding)
    if cfg["type"] != "glove":
        glove = sorted(n for n, e in params["embeddings"].items() if e["type"] == "glove")
        raise ParamsError(f"embeddings.{args.embedding}: type {cfg['type']!r} has no GloVe cache; "
                          f"glove entries: {glove}")
    logging.getLogger("gensim").setLevel(logging.WARNING)  # tqdm shows progress instead
    start = time.perf_counter()
    vectors = build_cache(args.archive, cfg["member"], cfg["dim"], args.out)
    print(f"glove cache: {len(vectors):,} vectors x {cfg['dim']} from "
          f"{source_label(args.archive, cfg['member'])} -> {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    run_stage(main)
