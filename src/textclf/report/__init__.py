"""Aggregate trained variants into reports/summary.md, summary.json and figures."""

from textclf.report.build import build_report

__all__ = ["build_report"]
