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
# Stage commands start with `python` or `textclf`, which the shell looks up on PATH: every
# process of this environment (`.venv/bin/dvc`, its queue workers) puts .venv/bin first on
# PATH at start-up, as `activate` would, so DVC runs them with this environment.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$site/textclf-env-path.pth" <<'PTH'
import os, sys; _b = os.path.dirname(sys.executable); _p = os.environ.get("PATH", ""); os.environ["PATH"] = _p if _p.split(os.pathsep)[0] == _b else os.pathsep.join(filter(None, [_b, _p]))
PTH
# `dvc plots show` (.dvc/config: plots.html_template) renders offline with this page template
if [ ! -s .venv/dvc-plots.html ] || [ .venv/dvc-plots.html -ot "$stamp" ]; then
    .venv/bin/python -m textclf.report.html --dvc-template .venv/dvc-plots.html >/dev/null
fi
# DVC needs a git repository; a clean clone is one already (a worktree's .git is a file).
if [ ! -e .git ]; then
    echo "setup.sh: warning: not a git checkout; DVC commands will not work here" >&2
fi
echo "setup.sh: environment ready (.venv, $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
