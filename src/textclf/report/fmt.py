"""How the report names a setting, a span of rows, seeds, vectors and hardware: one place, so
the overview, the study pages and summary.json say it the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from textclf.report.stats import Comparison

# the study model of a TF-IDF baseline: the headline ranks the neural variants apart from it
BASELINE_MODEL = "tfidf_logreg"


def setting_of(row: Any) -> str:
    """full / quick, from the result itself (metrics.json `quick`), else from the variant."""
    quick = getattr(row, "quick", None)
    if isinstance(quick, bool):
        return "quick" if quick else "full"
    return str(getattr(row, "mode", "") or "")


def span(values: Iterable[Any]) -> str:
    """'100' or '100–25,000' (thousands separated), '?' when nothing is known."""
    nums = sorted({int(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})
    if not nums:
        return "?"
    return f"{nums[0]:,}" if len(nums) == 1 else f"{nums[0]:,}–{nums[-1]:,}"


def largest(values: pd.Series) -> int | None:
    return int(values.max()) if values.notna().any() else None


def value_range(values: pd.Series) -> list[int] | None:
    return [int(values.min()), int(values.max())] if values.notna().any() else None


def seeds(values: Iterable[Any]) -> str:
    return ",".join(str(s) for s in sorted({int(v) for v in values}))


def vectors(rows: pd.DataFrame) -> str:
    if "embedding" not in rows:
        return "tf-idf"
    labels = [("tf-idf" if (isinstance(v, float) and math.isnan(v)) or v is None else str(v)) for v in rows["embedding"]]
    return ", ".join(sorted(set(labels)))


def hardware(rows: pd.DataFrame) -> str:
    if "hardware" not in rows:
        return "not recorded"
    torch_versions = rows["torch_version"] if "torch_version" in rows else [None] * len(rows)
    versions: dict[str, set[str]] = {}  # hardware -> torch versions (none for TF-IDF rows)
    for hw, tv in zip(rows["hardware"], torch_versions, strict=True):
        if isinstance(hw, str):
            versions.setdefault(hw, set()).update([tv] if isinstance(tv, str) else [])
    labels = [f"{hw} (torch {', '.join(sorted(tv))})" if tv else hw for hw, tv in sorted(versions.items())]
    return ", ".join(labels) if labels else "not recorded"


def setting_line(done: pd.DataFrame, *, markdown: bool = True) -> str:
    """One line: setting, rows used per dataset, seeds, vectors, hardware (of the rows with results)."""
    if done.empty:
        return ""
    settings = "/".join(dict.fromkeys(done["setting"]))
    parts = [f"{d}: {span(g['n_train'])} train / {span(g['n_test'])} test rows" for d, g in done.groupby("dataset")]
    seed_list = seeds(done["seed"])
    text = (f"{settings} setting · {'; '.join(parts)} · {'seeds' if ',' in seed_list else 'seed'} {seed_list} · "
            f"vectors {vectors(done)}"
            f" · trained on {hardware(done)}")
    return f"**Setting**: {text}" if markdown else text


def has_values(column: pd.Series) -> bool:
    return bool(column.map(lambda v: not (v is None or v == "" or (isinstance(v, float) and math.isnan(v)))).any())


def runs_word(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def seed_predictions(runs: pd.DataFrame, predictions: Mapping[str, pd.DataFrame | None]) -> dict[int, pd.DataFrame]:
    """seed -> test predictions of these runs (those whose predictions.parquet could be read)."""
    found = {int(r.seed): predictions.get(r.results) for r in runs.itertuples()}
    return {seed: frame for seed, frame in found.items() if frame is not None}


def versus(comparison: Comparison | None) -> str:
    """'+0.0123 (p 0.04)': a paired difference with its p value, '' when untested."""
    if comparison is None:
        return ""
    p = comparison.p_value
    return f"{comparison.diff:+.4f} " + ("(p < 0.0001)" if p < 1e-4 else f"(p {p:.2g})")
