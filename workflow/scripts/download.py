"""Download stage: fetch one params.yaml download into data/raw/<group>/<file>, verified.

With --mirror DIR (or $TEXTCLF_MIRROR) the file is read from DIR/<group>/<file> instead of the
network, and DIR/SHA256SUMS, when it lists the file, supplies the checksum.
"""

from __future__ import annotations

from collections.abc import Sequence

from textclf.config import load_params
from textclf.download import fetch, lookup_download
from textclf.stage import run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, help="<group>/<file> under params downloads")
    parser.add_argument("--out", required=True, help="where the verified file goes")
    parser.add_argument("--mirror", default=None, help="local mirror directory "
                        "(default: $TEXTCLF_MIRROR; unset: download from the URL)")
    args = parser.parse_args(argv)
    group, _, spec = lookup_download(load_params(args.params), args.file)
    result = fetch(spec["url"], args.out, sha256=spec["sha256"], mirror=args.mirror, group=group)
    print(result.summary())


if __name__ == "__main__":
    run_stage(main)
