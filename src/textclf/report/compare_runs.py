"""Do two renders agree on their runs? Compares two per-run tables (`variants.parquet`) run by
run and column by column, exactly (floats by value: no tolerance), leaving out the columns that
are the run's clock rather than its result: the check behind "this rerun reproduced that report".
The machine (`hardware`, `torch_version`) counts as a result: exact reruns are claimed on the
same kind of machine and torch build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textclf.config import ParamsError
from textclf.metrics import TIMING_KEYS

KEY = "results"  # a run's results folder: the same run in any render
# metrics.json's timing fields, the per-run table's columns of the same names
CLOCK_COLUMNS = tuple(sorted(TIMING_KEYS))


@dataclass
class RunsComparison:
    compared: int = 0
    columns: list[str] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)  # runs
    only_new: list[str] = field(default_factory=list)
    columns_lost: list[str] = field(default_factory=list)  # result columns the new table lacks
    columns_added: list[str] = field(default_factory=list)
    differing: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)  # column -> (run, old, new)

    @property
    def agree(self) -> bool:
        return bool(self.compared) and not self.differing and not self.columns_lost


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


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # not a scalar
        return False


def _same(a: Any, b: Any) -> bool:
    """Equal cells: missing equals missing (None, NaN, NaT, pd.NA), sequences element by element."""
    a_seq, b_seq = isinstance(a, (list, tuple, np.ndarray)), isinstance(b, (list, tuple, np.ndarray))
    if a_seq or b_seq:
        return a_seq and b_seq and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (printed as 0.4, not np.float64(0.4))."""
    return value.item() if isinstance(value, np.generic) else value


def compare_runs(old: pd.DataFrame, new: pd.DataFrame) -> RunsComparison:
    """Every run present in both, in every column both have except the clock columns."""
    common = old.index.intersection(new.index)
    out = RunsComparison(compared=len(common),
                         columns=[c for c in old.columns if c in new.columns and c not in CLOCK_COLUMNS],
                         only_old=sorted(old.index.difference(new.index)),
                         only_new=sorted(new.index.difference(old.index)),
                         columns_lost=[c for c in old.columns if c not in new.columns and c not in CLOCK_COLUMNS],
                         columns_added=[c for c in new.columns if c not in old.columns and c not in CLOCK_COLUMNS])
    for column in out.columns:
        for run in sorted(common):
            a, b = old.at[run, column], new.at[run, column]
            if not _same(a, b):
                out.differing.setdefault(column, []).append((run, _plain(a), _plain(b)))
    return out


def comparison_lines(result: RunsComparison, old: Path, new: Path) -> list[str]:
    lines = [f"{result.compared} run(s) in both {old} and {new}; compared {len(result.columns)} columns "
             f"exactly (the clock's left out: {', '.join(CLOCK_COLUMNS)})"]
    if not result.compared:
        lines.append("no run in common: nothing compared")
    elif result.agree:
        lines.append("every result equal")
    for column, runs in result.differing.items():
        run, a, b = runs[0]
        lines.append(f"{column}: {len(runs)} run(s) differ, e.g. {run}: {a!r} vs {b!r}")
    if result.columns_lost:
        lines.append(f"result columns only in {old} (not compared, a failure): {', '.join(result.columns_lost)}")
    if result.columns_added:
        lines.append(f"columns only in {new} (not compared): {', '.join(result.columns_added)}")
    for label, runs in (("only in " + str(old), result.only_old), ("only in " + str(new), result.only_new)):
        if runs:
            lines.append(f"{label}: {len(runs)} run(s), e.g. {runs[0]}")
    return lines
