#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv from requirements.lock.
# Idempotent: a second run with an unchanged lock file only checks and returns.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "setup.sh: $PY not found. Install Python 3.11 (Debian/Ubuntu: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup.sh: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
stamp=.venv/.textclf-lock.sha256
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup.sh: installing pinned dependencies (requirements.lock)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$want" > "$stamp"
fi
# DVC needs a git repository; a clean clone is one already.
if [ ! -d .git ]; then
    echo "setup.sh: warning: not a git checkout; DVC commands will not work here" >&2
fi
echo "setup.sh: environment ready (.venv, $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
