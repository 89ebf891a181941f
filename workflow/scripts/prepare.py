"""Prepare stage: raw files -> data/prepared/<dataset>/{train,val,test}.parquet + stats.json.

    prepare.py jobs/prepare/<dataset>.json
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from textclf.prepare import prepare_dataset
from textclf.stage import read_job, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "dataset", "spec", "raw", "downloads", "out")
    started = time.perf_counter()
    raw_dir = Path(next(iter(job["raw"].values()))).parents[1]  # data/raw/<group>/<file> -> data/raw
    params = {"datasets": {job["dataset"]: job["spec"]}, "downloads": job["downloads"]}
    stats = prepare_dataset(params, job["dataset"], raw_dir, job["out"])
    rows = " / ".join(f"{n:,} {name}" for name, n in stats["rows"].items())
    dropped = sum(stats["malformed"].values())
    print(f"prepared {job['dataset']}: {rows} rows, {dropped:,} malformed dropped, "
          f"{time.perf_counter() - started:.1f} s -> {job['out']}")


if __name__ == "__main__":
    run_stage(main)
