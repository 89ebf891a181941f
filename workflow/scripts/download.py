"""Download stage: fetch one params.yaml download into data/raw/<group>/<file>, verified.

    download.py jobs/download/<group>/<file>.json

With $TEXTCLF_MIRROR=DIR set, the file is read from DIR/<group>/<file> instead of the network,
and DIR/SHA256SUMS, when it lists the file, supplies the checksum.
"""

from __future__ import annotations

from collections.abc import Sequence

from textclf.download import fetch
from textclf.stage import read_job, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "file", "url", "sha256", "out")
    group = job["file"].partition("/")[0]
    result = fetch(job["url"], job["out"], sha256=job["sha256"], mirror=None, group=group, key=job["file"])
    print(result.summary())


if __name__ == "__main__":
    run_stage(main)
