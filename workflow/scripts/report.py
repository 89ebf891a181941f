"""Report stage: aggregate the selected studies' results into reports/ (summary.md, summary.json, figures)."""

from pathlib import Path

from textclf.config import load_params, select_studies
from textclf.report import build_report
from textclf.stage import run_stage, stage_parser


def main(argv=None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--studies", help="comma-separated study names (default: run.studies)")
    parser.add_argument("--results", default="results", type=Path)
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--out", default="reports", type=Path)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    studies = select_studies(params, args.studies.split(",") if args.studies else None)
    summary = build_report(params, studies, args.results, args.out, args.prepared)
    done = sum(s["variants_done"] for s in summary.values())
    total = done + sum(s["variants_missing"] for s in summary.values())
    print(f"report: {done}/{total} variants with results -> {args.out / 'summary.md'}")


if __name__ == "__main__":
    run_stage(main)
