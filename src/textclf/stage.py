"""Shared plumbing for the thin stage CLIs in workflow/scripts/.

Each script builds its parser with `stage_parser`, validates params.yaml with `load_params`,
calls one library function, and is wrapped in `run_stage` so that expected failures end with a
single clear message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from textclf.errors import USER_ERRORS

log = logging.getLogger("textclf")


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


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
