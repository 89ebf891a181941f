"""Which training runs the main command starts: all it can reuse, plus the new runs whose
estimated cost on this machine fits the time budget (`run.budget`, minutes of wall time).

A report that waits for five-hour models is no report in the first hour. Runs over the budget
are left out of the report's dependencies (`Plan.defer`), so the report is written now and lists
them as not run, with their estimate and the command that trains them (`--config budget=none`).
Reused runs (published in reports/runs/, or already in results/) cost nothing and always count.
The cheapest runs are chosen first, so a budget trains as many runs as it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from textclf.config import ParamsError

NO_BUDGET = ("none", "null", "off", "inf")


@dataclass(frozen=True)
class BudgetChoice:
    """What the budget let through (`chosen`) and what it left for later (`deferred`):
    results folder -> estimated CPU seconds on this machine (one thread per run)."""

    minutes: float | None
    cores: int
    chosen: dict[str, float] = field(default_factory=dict)
    deferred: dict[str, float] = field(default_factory=dict)

    def line(self, command: str) -> str | None:
        """One line for the run's first output: what the budget left out and how to train it."""
        if not self.deferred:
            return None
        from textclf.estimate import format_duration

        n = len(self.deferred)
        return (f"time budget {self.minutes:g} min (run.budget): {n} run{'s' if n != 1 else ''} left for later "
                f"(est. {format_duration(sum(self.deferred.values()))} of CPU here), listed in the report; "
                f"train them with: {command}")


def parse_budget(value: Any, where: str) -> float | None:
    """Minutes (a positive number) or no budget (null / none): from params.yaml or --config."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NO_BUDGET):
        return None
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        minutes = -1.0
    if isinstance(value, bool) or not minutes > 0:
        raise ParamsError(f"{where}={value!r}: give minutes of training (a positive number, e.g. 20) or none "
                          "(train every run of the selected studies)")
    return minutes


def choose(runs: Mapping[str, float], minutes: float | None, cores: int) -> BudgetChoice:
    """Cheapest first: a run fits when it alone fits the budget and all chosen runs, spread over
    `cores` one-thread jobs, still do."""
    cores = max(int(cores), 1)
    if minutes is None:
        return BudgetChoice(None, cores, dict(runs), {})
    limit, total = minutes * 60.0, 0.0
    chosen: dict[str, float] = {}
    deferred: dict[str, float] = {}
    for out, seconds in sorted(runs.items(), key=lambda item: (item[1], item[0])):
        if seconds <= limit and (total + seconds) / cores <= limit:
            chosen[out] = seconds
            total += seconds
        else:
            deferred[out] = seconds
    return BudgetChoice(minutes, cores, chosen, deferred)


def runs_to_train(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """results folder -> estimated seconds of every run still to train (estimate.study_estimates rows)."""
    return {out: float(seconds) for row in rows for out, seconds in row.get("runs", {}).items()}
