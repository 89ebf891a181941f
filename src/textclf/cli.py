"""`textclf` command: project utilities that are not pipeline stages.

    textclf dvc-yaml [--check]     write (or check) dvc.yaml from params.yaml
    textclf variants [--studies a,b]   list the variants the studies expand to
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from textclf import atomic
from textclf.config import DEFAULT_PARAMS, ParamsError, load_params
from textclf.engines import render_dvc_yaml
from textclf.plan import Plan


def _parse_studies(value: str | None) -> list[str] | None:
    return [s for s in value.split(",") if s] if value else None


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    text = render_dvc_yaml(Plan(params, _parse_studies(args.studies), params_path=DEFAULT_PARAMS))
    target = Path(args.out)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print("dvc.yaml is out of date with params.yaml: run `textclf dvc-yaml`", file=sys.stderr)
            return 1
        print("dvc.yaml is up to date")
        return 0
    atomic.write_text(target, text)
    print(f"wrote {target} ({text.count(chr(10))} lines)")
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    plan = Plan(load_params(args.params), _parse_studies(args.studies))
    for variant in plan.variants:
        print(variant["id"])
    print(f"{len(plan.variants)} variants, {len(plan.jobs())} jobs", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="textclf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=DEFAULT_PARAMS, help="default: ./params.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from params.yaml")
    p.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is not current")
    p.add_argument("--out", default="dvc.yaml", help="default: ./dvc.yaml")
    p.add_argument("--studies", help="comma-separated studies (default: run.studies)")
    p.set_defaults(func=cmd_dvc_yaml)
    p = sub.add_parser("variants", help="list the variants of the selected studies")
    p.add_argument("--studies", help="comma-separated studies (default: run.studies)")
    p.set_defaults(func=cmd_variants)
    args = parser.parse_args(argv)
    try:
        sys.exit(args.func(args))
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
