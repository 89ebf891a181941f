"""A study's wall time, from its runs' own clocks (metrics.json `started_at`, `finished_at`).

The time during which at least one of its runs was in progress: a study run alone with
`--cores 2` gets exactly its elapsed time, and one that ran across several sessions is not
charged for the hours between them. A run stopped and resumed from an epoch checkpoint records
only its last process's clock: the line says how much training ran before that."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from textclf.estimate import format_duration


@dataclass(frozen=True)
class WallTime:
    seconds: float  # union of the timed runs' [started, finished] intervals
    timed: int  # runs with both timestamps
    runs: int  # all runs with results
    first: pd.Timestamp
    last: pd.Timestamp
    resumed: int = 0  # timed runs that resumed from an epoch checkpoint
    before_resume: float = 0.0  # about how long their epochs before the resume trained (s)


def study_wall_time(done: pd.DataFrame) -> WallTime | None:
    """Wall time of the runs in `done` (one row per run with results), or None when none of
    them recorded its clock (results written before metrics.json had one)."""
    if "started_at" not in done or "finished_at" not in done:
        return None
    start = pd.to_datetime(done["started_at"], utc=True, errors="coerce")
    end = pd.to_datetime(done["finished_at"], utc=True, errors="coerce")
    timed = start.notna() & end.notna() & (end >= start)
    if not timed.any():
        return None
    spans = sorted(zip(start[timed], end[timed], strict=True))
    total, (open_start, open_end) = 0.0, spans[0]
    for s, e in spans[1:]:
        if s > open_end:  # a gap: close the busy stretch so far
            total += (open_end - open_start).total_seconds()
            open_start, open_end = s, e
        else:
            open_end = max(open_end, e)
    total += (open_end - open_start).total_seconds()
    resumed, before = _resumed(done[timed])
    return WallTime(seconds=total, timed=int(timed.sum()), runs=len(done), first=spans[0][0],
                    last=max(e for _, e in spans), resumed=resumed, before_resume=before)


def _resumed(timed: pd.DataFrame) -> tuple[int, float]:
    """How many runs resumed from a checkpoint, and their epochs before it x their mean epoch time."""
    if "resumed_from_epoch" not in timed or "seconds_per_epoch" not in timed:
        return 0, 0.0
    epochs = pd.to_numeric(timed["resumed_from_epoch"], errors="coerce").fillna(0)
    per_epoch = pd.to_numeric(timed["seconds_per_epoch"], errors="coerce").fillna(0)
    return int((epochs > 0).sum()), float((epochs * per_epoch).sum())


def wall_time_line(done: pd.DataFrame) -> str | None:
    """'Wall time: X with at least one of its runs in progress (...)' for a study's section."""
    if done.empty:
        return None
    wall = study_wall_time(done)
    if wall is None:
        return (f"Wall time: not recorded ({_runs(len(done))} made before metrics.json recorded when "
                "each run started and finished).")
    day = "%Y-%m-%d %H:%M"
    last = wall.last.strftime("%H:%M" if wall.last.date() == wall.first.date() else day)
    untimed = wall.runs - wall.timed
    return (f"Wall time: {format_duration(wall.seconds)} with at least one of its runs in progress "
            f"({_runs(wall.timed)}, {wall.first.strftime(day)} to {last} UTC; "
            "runs of other studies may have shared the machine"
            + (f"; {_runs(untimed)} without a recorded start and finish left out" if untimed else "")
            + (f"; {_runs(wall.resumed)} resumed from an epoch checkpoint after a stop: about "
               f"{format_duration(wall.before_resume)} of training ran before that and is not counted"
               if wall.resumed else "") + ").")


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")
