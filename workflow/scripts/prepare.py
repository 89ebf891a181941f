"""prepare stage: raw files -> data/prepared/<dataset>/{train,val,test}.parquet + stats.json.

Usage: prepare.py --params params.yaml --dataset D --raw data/raw --out data/prepared/D
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from textclf.config import load_params
from textclf.prepare import prepare_dataset
from textclf.stage import run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="a name under `datasets` in params.yaml")
    parser.add_argument("--raw", type=Path, default=Path("data/raw"), help="downloaded files (default: data/raw)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. data/prepared/D")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    stats = prepare_dataset(load_params(args.params), args.dataset, args.raw, args.out,
                            params_path=args.params)
    rows = " / ".join(f"{n:,} {name}" for name, n in stats["rows"].items())
    dropped = sum(stats["malformed"].values())
    print(f"prepared {args.dataset}: {rows} rows, {dropped:,} malformed dropped, "
          f"{time.perf_counter() - started:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
