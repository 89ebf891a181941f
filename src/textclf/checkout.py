"""Which commit of this project made an output: the run records it (published.py) and the
report names it (report/build.py), both through this one question to git."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def commit_state(pathspecs: Sequence[str], root: Path | None = None) -> tuple[str, bool] | None:
    """(short HEAD, whether the working tree's tracked files matching `pathspecs` differ from it),
    or None when `root` (default: the working directory) is not a git checkout, git is missing or
    cannot tell. Read-only: training jobs ask this in parallel, beside the user's own git commands,
    so it takes no index lock (`--no-optional-locks`; `git status` would refresh the index)."""
    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", "--no-optional-locks", *args], cwd=root or Path.cwd(),
                                  capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None

    head = git("rev-parse", "--short", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return None
    diff = git("diff", "--quiet", "HEAD", "--", *pathspecs)  # exit 0: same as HEAD, 1: differs
    if diff is None or diff.returncode not in (0, 1):
        return None
    return head.stdout.strip(), diff.returncode == 1
