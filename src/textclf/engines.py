"""Snakemake's side of the plan: read --config overrides, build the plan, write the job files.

DVC's side is dvc.yaml (hand-written) over dvc-jobs.yaml (`textclf jobs`). Both engines run
the same scripts on the same job files, so they build the same files.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textclf.budget import BudgetChoice, choose, parse_budget, runs_to_train
from textclf.config import DEFAULT_PARAMS, ParamsError, load_params
from textclf.plan import Plan
from textclf.studies import MODES, mode_name

SNAKEMAKE_CONFIG_OVERRIDES = ("studies", "quick", "seeds", "budget")
TRAIN_LATER = "snakemake --cores 2 --config budget=none"  # + studies=[...]: what trains the deferred runs
Estimates = tuple[list[dict[str, Any]], str]  # estimate.study_estimates' rows and their source


@dataclass
class SnakemakeRun:
    """The plan Snakemake runs, and what the time budget let through per setting."""

    plan: Plan
    budgets: dict[str, BudgetChoice]
    cores: int
    estimates: Estimates | None = None  # the plan's setting's, when the budget made them already

    def summary(self, *, save: bool) -> str:
        """The first lines of a run (and of a dry run): per study what trains, what is reused,
        what the budget leaves for later, and how long it should take on this machine."""
        return plan_summary(self.plan, self.cores, self.budgets.get(self.plan.mode), save=save,
                            estimates=self.estimates)


def snakemake_plan(config: Mapping[str, Any], params_path: str = DEFAULT_PARAMS, cores: int = 1) -> SnakemakeRun:
    """The plan for Snakemake: params.yaml + --config studies=[..] quick=.. seeds=[..] budget=..,
    both modes planned (the target picks: reports/summary.md is full, reports/quick/summary.md
    quick). Runs over the time budget are left out of each report's dependencies. Writes the job
    files that changed, so rules see their settings as ordinary input files."""
    _use_this_python()
    params = load_params(params_path)  # relative to Snakemake's working directory
    selection, quick, seeds, budget = _overrides(config, params)
    plan = Plan(params, selection, quick=quick, modes=list(MODES), seeds=seeds, root=Path.cwd())
    cores = max(1, min(cores, os.cpu_count() or 1))  # --cores 4 on 2 CPUs trains no faster than 2
    budgets, estimates = {}, {}
    for mode in plan.modes:
        budgets[mode], estimates[mode] = apply_budget(plan, mode, budget, cores)
    plan.write_job_files()
    return SnakemakeRun(plan, budgets, cores, estimates.get(plan.mode))


def apply_budget(plan: Plan, mode: str, minutes: float | None, cores: int) -> tuple[BudgetChoice, Estimates | None]:
    """Defer the runs of `mode` that do not fit the budget (none: every run is trained); the
    estimates it priced them with, for the run's first lines."""
    if minutes is None:
        return BudgetChoice(None, cores), None
    from textclf.estimate import study_estimates

    rows, _, source = study_estimates(plan, mode=mode)
    choice = choose(runs_to_train(rows), minutes, cores)
    plan.defer(mode, choice.deferred)
    return choice, (rows, source)


def _overrides(config: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[Any, bool | None, list[int] | None,
                                                                             float | None]:
    """Accept only `studies`, `quick`, `seeds` and `budget` from --config (params.yaml is read by the plan,
    not as Snakemake's configfile, so YAML errors name their line); anything else would be
    ignored by the stage scripts, so it is an error, not a silent no-op."""
    config = dict(config)
    selection = config.pop("studies", None)
    quick = config.pop("quick", None)
    if isinstance(quick, str):
        quick = {"true": True, "false": False}.get(quick.lower(), quick)
    if quick is not None and not isinstance(quick, bool):
        raise ParamsError(f"--config quick={quick!r}: expected true or false")
    seeds = config.pop("seeds", None)
    if seeds is not None:
        items = seeds if isinstance(seeds, list) else [seeds]
        try:  # --config parses [1,2] as strings
            seeds = [int(str(s)) for s in items]
        except ValueError:
            raise ParamsError(f"--config seeds={seeds!r}: expected a list of integers, e.g. seeds=[1,2,3]") from None
    if "budget" in config:
        budget = parse_budget(config.pop("budget"), "--config budget")
    else:
        budget = parse_budget(params["run"].get("budget"), "run.budget")
    if config:
        raise ParamsError(
            f"--config may only set {list(SNAKEMAKE_CONFIG_OVERRIDES)}; it set {sorted(config)}. "
            "Edit params.yaml instead (the stage scripts read job files written from it)."
        )
    return selection, quick, seeds, budget


def partial_report_command(plan: Plan, targets: Iterable[str] = ()) -> str:
    """After failed jobs: report whatever results exist into reports/partial/ (listing every
    missing variant), when the run was for a report (no targets: the default rule; or a
    target under reports/, whose setting it takes) and some variant of it has results."""
    targets = [str(t) for t in targets]
    reports = [t for t in targets if t.startswith("reports/")]
    if targets and not reports:
        return "echo 'the failed targets were not a report: no partial report'"
    mode = plan.mode if not reports else ("quick" if any(t.startswith("reports/quick/") for t in reports) else "full")
    job = plan.job("report", {"mode": mode})
    if not any(Path(out).is_file() for out in job.deps if out.endswith("metrics.json")):
        return "echo 'no variant has results yet: no partial report'"
    out = "reports/partial" if mode == "full" else f"reports/partial/{mode}"
    return (shlex.join(["python", "workflow/scripts/report.py", job.job_file, "--out", out])
            + f" || true; echo 'partial report (failed or missing variants listed): {out}/summary.md'")


def report_mode(mode_dir: str) -> str:
    """The report rule's wildcard: '' (reports/) is the full setting, 'quick/' the quick one."""
    return mode_name(mode_dir == "quick/")


def _use_this_python() -> None:
    """Stage commands start with `python`: make that the interpreter running Snakemake, so
    `.venv/bin/snakemake` works without activating the environment first."""
    bindir = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def plan_summary(plan: Plan, cores: int, budget: BudgetChoice | None = None, *, save: bool = True,
                 estimates: Estimates | None = None) -> str:
    """Per study what trains, what is reused or left for later, and how long it should take here.
    `save` keeps the estimates for the report (the runs that never ran are priced from them);
    `estimates` are the plan's setting's, when already made (else made here)."""
    from textclf.estimate import format_duration, plan_table, save_estimates, study_estimates

    if estimates is None:
        rows, _, source = study_estimates(plan)
    else:
        rows, source = estimates
    if save:
        save_estimates(plan.mode, rows, source)
    deferred = budget.deferred if budget else {}
    wall = sum(s for r in rows for out, s in r["runs"].items() if out not in deferred) / max(cores, 1)
    lines = [plan_table(rows, deferred),
             f"estimated training time with --cores {cores}: {format_duration(wall)} ({source}); "
             "`textclf plan` prints this without running"]
    later = budget.line(train_later_command(plan)) if budget else None
    return "\n".join([*lines, *([later] if later else [])])


def train_later_command(plan: Plan) -> str:
    """The command that trains what the budget left out, for this run's selection of studies."""
    studies = "" if plan.subset is None else f" studies=[{','.join(plan.subset)}]"
    return TRAIN_LATER + studies


SNAKEMAKE_MARK = "snakemake"
"""Written after the pid into .dvc/tmp/lock while Snakemake holds it, so a refusal names the holder."""


class EngineLock:
    """Keeps DVC out of the workspace while Snakemake runs, and Snakemake out while DVC runs.

    DVC holds .dvc/tmp/lock (zc.lockfile) while it plans and records a stage, and lists the
    paths a running stage command reads and writes, with its pid, in .dvc/tmp/rwlock. Snakemake
    refuses to start while either shows a live DVC process, then takes .dvc/tmp/lock until it
    ends, so DVC cannot start (or record a stage) meanwhile: "Unable to acquire lock".
    """

    def __init__(self, root: Path = Path(".")) -> None:
        self.path = root / ".dvc" / "tmp" / "lock"
        self._lock: Any = None

    def acquire(self) -> None:
        if not self.path.parent.parent.is_dir():  # not a DVC project
            return
        import zc.lockfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        running = _dvc_stage_pids(self.path.parent / "rwlock")
        if running:
            raise ParamsError(f"DVC is running a stage in this workspace (pid {', '.join(map(str, running))}, "
                              f"{self.path.parent / 'rwlock'}): wait until it finishes (or stop it), then start "
                              "Snakemake again")
        try:
            self._lock = zc.lockfile.LockFile(str(self.path), content_template="{pid} " + SNAKEMAKE_MARK)
        except zc.lockfile.LockError:
            holder = self.path.read_text(errors="replace").split() if self.path.is_file() else []
            if SNAKEMAKE_MARK in holder:  # Snakemake's lock has one workspace per run too
                raise ParamsError(f"another Snakemake run (pid {holder[0]}) holds this workspace ({self.path}): "
                                  "wait until it finishes, or run this one in another clone") from None
            raise ParamsError(f"DVC is running in this workspace ({self.path} is locked): wait until it "
                              "finishes (or stop it), then start Snakemake again") from None

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def plan_cores(workflow: Any) -> int:
    """Parallel jobs for the estimate: --cores locally; a cluster run (no --cores) uses --jobs."""
    try:
        return int(workflow.cores)
    except Exception:  # Snakemake raises WorkflowError for workflow.cores under an executor plugin
        return int(getattr(workflow, "nodes", 1) or 1)


def _dvc_stage_pids(rwlock: Path) -> list[int]:
    """Live pids DVC's rwlock lists as reading or writing paths (a stage command running)."""
    try:
        info = json.loads(rwlock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = [e for item in info.get("read", {}).values() for e in (item if isinstance(item, list) else [item])]
    entries += [e for e in info.get("write", {}).values()]
    pids = sorted({int(e["pid"]) for e in entries if isinstance(e, dict) and "pid" in e})
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        alive.append(pid)
    return alive
