"""Report stage: tables, figures and flat metrics of every replica the job file lists.

    report.py jobs/report/<mode>.json [--out DIR]  -> reports/ (full), reports/quick/, or DIR:
        summary.md and summary.html (the overview, linking each study's page), summary.json,
        studies/<study>.md and .html (its tables, statistics and figures), variants.parquet,
        figures/ (PNGs, and curves/<study>.json for `dvc plots show`),
        metrics.json (each study's best accuracy: the metrics `dvc exp show` prints)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from textclf.report import build_report
from textclf.report.dvc_metrics import write_dvc_metrics
from textclf.stage import read_job, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write here instead of the job's folder (partial reports)")
    args = parser.parse_args(argv)
    job = read_job(args.job, "mode", "studies", "datasets", "runs", "out")
    out = args.out or Path(job["out"])
    summary = build_report(job, out, job_sha256=hashlib.sha256(args.job.read_bytes()).hexdigest())
    write_dvc_metrics(summary, out)
    done = sum(s["variants_done"] for s in summary["studies"].values())
    total = done + sum(s["detail"]["variants_missing"] for s in summary["studies"].values())
    print(f"report ({job['mode']}): {done}/{total} variants with results -> {out / 'summary.md'}")


if __name__ == "__main__":
    run_stage(main)
