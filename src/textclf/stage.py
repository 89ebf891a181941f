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

from textclf import faults
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
    """Run a stage's main(argv); user-facing errors → one line on stderr, exit status 2. So are
    write faults (no space, no permission) and damaged parquet inputs (textclf.faults): the file
    and what to do, instead of a traceback from deep inside torch or pyarrow."""
    setup_logging()
    try:
        main(argv)
    except USER_ERRORS as exc:
        name, hint = type(exc).__name__, faults.rebuild_hint(str(exc))
        text = " ".join(str(exc).split()) if hint else str(exc)  # pyarrow's reasons span lines
        print(f"error ({name}): {text}{hint}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; no partial output was kept", file=sys.stderr)
        sys.exit(130)
    except (OSError, RuntimeError, ValueError) as exc:
        said = faults.describe(exc, _job_arg(argv), Path(main.__code__.co_filename).stem)
        if said is None:
            raise
        print(f"error ({said[0]}): {said[1]}", file=sys.stderr)
        sys.exit(2)


def _job_arg(argv: Sequence[str] | None) -> Path | None:
    """The job file a stage was given (its one positional argument)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return next((Path(a) for a in args if not a.startswith("-")), None)
