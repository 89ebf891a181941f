"""Aggregate trained variants into a report: the overview (summary.md/.html), one page per
study (studies/<study>.md/.html), summary.json, variants.parquet and figures."""

from textclf.report.build import build_report

__all__ = ["build_report"]
