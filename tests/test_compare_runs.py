"""`textclf compare-runs`: two renders' per-run tables agree run by run, the clock aside."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from textclf.cli import main
from textclf.report.compare_runs import _same


def _table(path, runs):
    """A per-run table like report/build.py's variants.parquet (the columns that matter here)."""
    pd.DataFrame([{"results": f"results/full/imdb/s/{name}/seed1", "variant": name, "accuracy": acc,
                   "loss": loss, "seconds_per_epoch": secs, "started_at": "2026-12-06T10:00:00+00:00"}
                  for name, acc, loss, secs in runs]).to_parquet(path)
    return path


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exit_:
        main(["compare-runs", *map(str, args)])
    return exit_.value.code, capsys.readouterr()


def test_equal_results_pass_whatever_the_clock_says(tmp_path, capsys):
    old = _table(tmp_path / "old.parquet", [("a", 0.9, 0.3, 10.0), ("b", 0.8, 0.4, 12.0), ("gone", 0.7, 0.5, 1.0)])
    new = _table(tmp_path / "new.parquet", [("a", 0.9, 0.3, 55.0), ("b", 0.8, 0.4, 9.0), ("c", float("nan"), 0, 1)])
    code, out = _run(capsys, old, new)
    assert code == 0
    assert out.out.splitlines()[1:] == [
        "every result equal", f"only in {old}: 1 run(s), e.g. results/full/imdb/s/gone/seed1"]  # c has no result
    assert out.out.startswith(f"2 run(s) in both {old} and {new}; compared 3 columns exactly")


def test_a_result_that_differs_in_the_last_bit_fails(tmp_path, capsys):
    old = _table(tmp_path / "old.parquet", [("a", 0.9, 0.3, 10.0), ("b", 0.8, 0.4, 12.0)])
    new = _table(tmp_path / "new.parquet", [("a", 0.9, 0.3, 10.0), ("b", 0.8, math.nextafter(0.4, 1), 12.0)])
    code, out = _run(capsys, old, new)
    assert code == 1
    assert "loss: 1 run(s) differ, e.g. results/full/imdb/s/b/seed1: 0.4 vs 0.4000000000000001" in out.out


def test_no_run_in_common_is_not_a_pass(tmp_path, capsys):
    old = _table(tmp_path / "old.parquet", [("a", 0.9, 0.3, 10.0)])
    new = _table(tmp_path / "new.parquet", [("b", 0.9, 0.3, 10.0)])
    code, out = _run(capsys, old, new)
    assert code == 1 and "no run in common: nothing compared" in out.out


def test_a_file_that_is_no_per_run_table_is_one_line(tmp_path, capsys):
    good = _table(tmp_path / "old.parquet", [("a", 0.9, 0.3, 10.0)])
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    for bad, says in ((tmp_path / "other.parquet", "no `results` column"), (tmp_path / "text.parquet", "not readable"),
                      (tmp_path / "missing.parquet", "not readable")):
        code, out = _run(capsys, good, bad)
        assert code == 2 and out.err.startswith(f"error: {bad}: {says}") and len(out.err.splitlines()) == 1


def test_a_result_column_the_new_table_lacks_fails(tmp_path, capsys):
    old = _table(tmp_path / "old.parquet", [("a", 0.9, 0.3, 10.0)])
    pd.read_parquet(old).drop(columns=["loss"]).to_parquet(tmp_path / "new.parquet")
    code, out = _run(capsys, old, tmp_path / "new.parquet")
    assert code == 1 and f"result columns only in {old} (not compared, a failure): loss" in out.out


@pytest.mark.parametrize(("a", "b", "same"), [
    (None, float("nan"), True), (np.float32("nan"), None, True), (pd.NaT, pd.NaT, True), (pd.NA, None, True),
    ([1, 2], np.array([1, 2]), True), ([[1, 0], [0, 1]], [[1, 0], [0, 1]], True), ([1.0, float("nan")], [1.0, None], True),
    ([[1, 0], [0, 1]], [[1, 0], [1, 0]], False), ([1, 2], None, False), (np.array([1, 2]), [1, 2, 3], False),
    (pd.NA, 0.5, False), (0.5, 0.5, True), ("gru", "lstm", False),
])
def test_cells_compare_by_value_with_missing_equal_to_missing(a, b, same):
    assert _same(a, b) is same and _same(b, a) is same
