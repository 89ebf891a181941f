"""Which commit of this project made an output: the run records it (published.py) and the
report names it (report/build.py), both through this one question to git."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def commit_state(pathspecs: Sequence[str], root: Path | None = None) -> tuple[str, bool] | None:
    """(short HEAD, whether tracked files matching `pathspecs` differ from it), or None when
    `root` (default: the working directory) is not a git checkout or git is missing."""
    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            done = subprocess.run(["git", *args], cwd=root or Path.cwd(), capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done if done.returncode == 0 else None

    head = git("rev-parse", "--short", "HEAD")
    if head is None or not head.stdout.strip():
        return None
    status = git("status", "--porcelain", "--untracked-files=no", "--", *pathspecs)
    return head.stdout.strip(), bool(status is not None and status.stdout.strip())
