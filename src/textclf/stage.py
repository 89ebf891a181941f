"""Shared plumbing for the thin stage CLIs in workflow/scripts/.

Each script builds its parser with `stage_parser`, reads its job file with `read_job` (the
settings the plan resolved and checked from params.yaml), calls one library function, and is wrapped in `run_stage` so that expected failures end with a
single clear message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textclf.config import ParamsError
from textclf.errors import USER_ERRORS

log = logging.getLogger("textclf")


def stage_parser(description: str) -> argparse.ArgumentParser:
    """Every stage takes one argument: its job file (jobs/<stage>/<key>.json, see plan.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("job", type=Path, help="the job file written by the plan (jobs/<stage>/...json)")
    return parser


def read_job(path: Path, *keys: str) -> dict[str, Any]:
    """A job file's settings, with the keys this stage needs; ParamsError naming the file."""
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: job file not found; the engines write it from params.yaml "
                          "(Snakemake when it starts, DVC in its `jobs` stage, or run `textclf jobs`)") from exc
    except (OSError, ValueError) as exc:
        raise ParamsError(f"{path}: unreadable job file ({exc}); run `textclf jobs` to rewrite it") from exc
    missing = [k for k in keys if k not in job]
    if not isinstance(job, dict) or missing:
        raise ParamsError(f"{path}: not a job file of this stage (missing {missing}); run `textclf jobs`")
    return job


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def run_stage(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a stage's main(argv); user-facing errors → one line on stderr, exit status 2."""
    setup_logging()
    try:
        main(argv)
    except USER_ERRORS as exc:
        name = type(exc).__name__
        print(f"error ({name}): {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; no partial output was kept", file=sys.stderr)
        sys.exit(130)
