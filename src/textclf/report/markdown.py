"""Markdown tables from DataFrames (pandas' to_markdown needs the optional tabulate package)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

# How report columns are shown: header and number format.
HEADERS = {
    "bidirectional": "bi", "trainable_params": "params", "acc_per_mparam": "acc/Mparam",
    "seconds_per_epoch": "s/epoch", "epochs_run": "epochs", "delta": "Δ", "macro_f1": "macro-F1",
    "n_train": "train rows", "n_test": "test rows", "embedding": "vectors",
}
FORMATS: dict[str, Callable[[float], str]] = {
    "accuracy": "{:.4f}".format, "reference": "{:.4f}".format, "delta": "{:+.4f}".format,
    "macro_f1": "{:.4f}".format, "acc_per_mparam": "{:.3f}".format, "seconds_per_epoch": "{:.1f}".format,
    "trainable_params": lambda v: f"{int(v):,}", "epochs_run": lambda v: str(int(v)),
}


def _cell(value: object, fmt: Callable[[float], str] | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if fmt is not None and isinstance(value, int | float):
        return fmt(value)
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def md_table(frame: pd.DataFrame, formats: Mapping[str, Callable[[float], str]] = FORMATS) -> str:
    if frame.empty:
        return "_(no rows)_"
    columns = list(frame.columns)
    header = "| " + " | ".join(HEADERS.get(str(c), str(c)) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(v, formats.get(str(c))) for c, v in zip(columns, row, strict=True)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
