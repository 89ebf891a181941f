"""Do two renders agree on their runs? Compares two per-run tables (`variants.parquet`) run by
run and column by column, exactly (floats bit for bit), leaving out the columns that are the
run's clock rather than its result: the check behind "this rerun reproduced that report"."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from textclf.config import ParamsError

KEY = "results"  # a run's results folder: the same run in any render
CLOCK_COLUMNS = ("seconds_per_epoch", "tokens_per_second", "started_at", "finished_at", "wall_seconds")


@dataclass
class RunsComparison:
    compared: int = 0
    columns: list[str] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    differing: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)  # column -> (run, old, new)


def read_runs(path: Path) -> pd.DataFrame:
    """The runs with results of a per-run table, indexed by their results folder."""
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ParamsError(f"{path}: not readable as a per-run table (variants.parquet): {exc}") from None
    for column in (KEY, "accuracy"):
        if column not in table:
            raise ParamsError(f"{path}: no `{column}` column: give a report's variants.parquet")
    done = table[table["accuracy"].notna() & table[KEY].notna()]
    if done[KEY].duplicated().any():
        raise ParamsError(f"{path}: run {done[KEY][done[KEY].duplicated()].iloc[0]!r} appears twice")
    return done.set_index(KEY)


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and pd.isna(a)):
        return b is None or (isinstance(b, float) and pd.isna(b))
    try:
        return bool(a == b)
    except ValueError:  # array-like cells
        return list(a) == list(b)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (printed as 0.4, not np.float64(0.4))."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def compare_runs(old: pd.DataFrame, new: pd.DataFrame) -> RunsComparison:
    """Every run present in both, in every column both have except the clock columns."""
    common = old.index.intersection(new.index)
    out = RunsComparison(compared=len(common),
                         columns=[c for c in old.columns if c in new.columns and c not in CLOCK_COLUMNS],
                         only_old=sorted(old.index.difference(new.index)),
                         only_new=sorted(new.index.difference(old.index)))
    for column in out.columns:
        for run in sorted(common):
            a, b = old.at[run, column], new.at[run, column]
            if not _same(a, b):
                out.differing.setdefault(column, []).append((run, _plain(a), _plain(b)))
    return out


def comparison_lines(result: RunsComparison, old: Path, new: Path) -> list[str]:
    lines = [f"{result.compared} run(s) in both {old} and {new}; compared {len(result.columns)} columns "
             f"exactly (the clock's left out: {', '.join(CLOCK_COLUMNS)})"]
    if not result.differing and result.compared:
        lines.append("every result equal")
    for column, runs in result.differing.items():
        run, a, b = runs[0]
        lines.append(f"{column}: {len(runs)} run(s) differ, e.g. {run}: {a!r} vs {b!r}")
    for label, runs in (("only in " + str(old), result.only_old), ("only in " + str(new), result.only_new)):
        if runs:
            lines.append(f"{label}: {len(runs)} run(s), e.g. {runs[0]}")
    return lines
