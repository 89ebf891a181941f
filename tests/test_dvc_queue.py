"""DVC's experiment queue on the tiny project: a small -S grid queued with
`dvc exp run --queue`, run by `dvc queue start -j 2`, and every experiment listed, with its
parameter value and its metrics, by `dvc exp show --json`.

The project comes from tests/cluster/tiny_project.py (which builds it the way
tests/test_engines.py does), so this test follows changes of the engine layer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
HELPER = Path(__file__).resolve().parent / "cluster" / "tiny_project.py"
GRID = {"studies.tiny.set.model.hidden": [6, 10]}
QUEUE_STATES = {"Queued", "Running", "Success", "Failed"}
QUEUE_TIMEOUT = 20 * 60  # seconds; the two experiments take about 1.5 min on 2 cores


def _helper():
    spec = importlib.util.spec_from_file_location("tiny_project", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTCLF_MIRROR", "TEXTCLF_DEVICE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONHASHSEED"] = "0"
    return env


def dvc(root: Path, *args: str) -> str:
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=root, env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def start_queue(root: Path, workers: int) -> None:
    """`dvc queue start`, its output into a file rather than a pipe.

    dvc-task forks a process per worker that keeps the caller's stdout and stderr until the
    worker exits, so with captured (piped) output the call would only return once the whole
    queue had run; with a file it returns at once and the polling below owns the wait.
    """
    log = root.parent / "queue-start.log"  # outside the repository: its workspace stays clean
    with log.open("w") as out:
        proc = subprocess.run([str(BIN / "dvc"), "queue", "start", "-j", str(workers)], cwd=root,
                              env=_env(), stdout=out, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, f"dvc queue start failed:\n{log.read_text()}"


def _worker_logs(root: Path) -> str:
    """The queue workers' own output files, for a failure message."""
    logs = sorted((root / ".dvc" / "tmp" / "exps" / "celery").glob("*.out"))
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs) or "(no worker logs)"


def _queue_status(root: Path) -> tuple[dict[str, str], int]:
    """`dvc queue status` read as (experiment name -> Queued/Running/Success/Failed, number of
    workers alive, active or idle)."""
    states, workers = {}, 0
    for line in dvc(root, "queue", "status").splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in QUEUE_STATES:
            states[parts[1]] = parts[-1]
        elif line.startswith("Worker status:"):  # "Worker status: 1 active, 0 idle"
            workers = sum(int(word) for word in line.split(":", 1)[1].replace(",", " ").split()
                          if word.isdigit())
    return states, workers


def _queue_states(root: Path) -> dict[str, str]:
    return _queue_status(root)[0]


def _param(data: dict, dotted: str):
    node = data["params"]["params.yaml"]["data"]
    for key in dotted.split("."):
        node = node[key]
    return node


def test_queued_grid_runs_two_at_a_time_and_exp_show_lists_every_experiment(tmp_path):
    root = _helper().build(tmp_path / "queue")
    (key, values), = GRID.items()
    names = {f"hidden-{v}": v for v in values}
    for name, value in names.items():
        dvc(root, "exp", "run", "--queue", "-S", f"{key}={value}", "-n", name)
    assert set(_queue_states(root)) == set(names)
    assert set(_queue_states(root).values()) == {"Queued"}

    start_queue(root, workers=2)
    deadline = time.monotonic() + QUEUE_TIMEOUT
    restarts = 0
    try:
        while True:
            states, workers = _queue_status(root)
            if states and all(s in ("Success", "Failed") for s in states.values()):
                break
            assert time.monotonic() < deadline, (
                f"queue not done after {QUEUE_TIMEOUT} s ({restarts} worker restarts): {states}\n"
                f"{_worker_logs(root)}")
            done = sum(s in ("Success", "Failed") for s in states.values())
            if workers == 0 and done and "Queued" in states.values() and "Running" not in states.values():
                # treeverse/dvc#10562: workers that ran some experiments exit while others are
                # still queued; the workaround the README gives users is to start them again.
                time.sleep(15)  # a worker idles up to 10 s before it exits; be sure none is left
                if _queue_status(root)[1] == 0:
                    start_queue(root, workers=2)
                    restarts += 1
            time.sleep(3)
    finally:
        dvc(root, "queue", "stop")  # workers exit on their own once the queue is empty
    assert states == dict.fromkeys(names, "Success"), dvc(root, "queue", "logs", next(
        (n for n, s in states.items() if s != "Success"), next(iter(names))))

    shown = json.loads(dvc(root, "exp", "show", "--json"))
    experiments = {exp["name"]: exp["revs"][0] for base in shown
                   for exp in base.get("experiments") or []}
    assert set(experiments) == set(names)
    for name, value in names.items():
        data = experiments[name]["data"]
        assert _param(data, key) == value
        accuracy = data["metrics"]["reports/metrics.json"]["data"]["tiny"]  # {study: best accuracy}
        assert 0.0 <= accuracy <= 1.0, data["metrics"]
