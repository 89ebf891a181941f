"""The report's typed results: what computing from the runs produces and rendering consumes.

Computing (report/study.py, report/overview.py) reads the runs, draws the figures and fills
these objects; rendering (report/render.py) turns them into Markdown and HTML without touching
the disk, and summary.json is written from the same objects (`StudyResult.metrics`).
Figures are named by their path relative to the report's folder (`figures/<name>.png`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from textclf.report.stats import StudyStats


@dataclass(frozen=True)
class Figure:
    """One figure of a study: its file (relative to the report folder), alt text and caption."""
    path: str
    alt: str
    caption: str


@dataclass(frozen=True)
class PendingVariant:
    """A variant without usable results: its id, why (missing / failed ...), its seeds, and the
    saved estimate of its CPU training on this machine (None when none was saved)."""
    id: str
    status: str
    seeds: str
    runs: int
    seconds: float | None


@dataclass(frozen=True)
class Pending:
    """A study's variants without usable results and the one command that trains them."""
    mode: str
    variants: tuple[PendingVariant, ...]
    n_variants: int  # (dataset, variant) pairs
    n_runs: int
    seconds: float | None  # the saved estimates' sum (None when none was saved)
    estimated_runs: int  # how many of the runs have a saved estimate
    command: str


@dataclass(frozen=True)
class StatsBlock:
    """The statistics of one test set of a study (report/stats.py) and its figure."""
    title: str
    analysis: StudyStats
    figure: str


@dataclass(frozen=True)
class ErrorBlock:
    """Error analysis of one dataset (report/errors.py); `full_rows`: its prepared test rows."""
    dataset: str
    analysis: dict[str, Any]
    full_rows: int | None


@dataclass
class StudyResult:
    """Everything one study's page shows, and its summary.json entry (`metrics`)."""
    name: str
    mode: str
    description: str | None = None
    reference_source: str | None = None
    setting: str = ""  # the Markdown setting line ('' without results)
    n_variants: int = 0
    n_done: int = 0
    n_runs: int = 0
    pending: Pending | None = None
    table: pd.DataFrame | None = None  # the comparison table (done and failed rows, shown columns)
    cross_size_notes: list[str] = field(default_factory=list)
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)  # chosen on validation, per dataset
    same_settings: list[str] = field(default_factory=list)  # Markdown lines (report/same_settings.py)
    figures: list[Figure] = field(default_factory=list)
    figures_setting: str = ""
    train_size: list[str] = field(default_factory=list)  # Markdown lines (report/trainsize.py)
    never_learned: list[tuple[str, int]] = field(default_factory=list)  # (variant id, seed)
    scratch_gru: list[str] = field(default_factory=list)  # Markdown lines: hand-written GRU vs nn.GRU
    efficiency: pd.DataFrame | None = None  # top 10 by accuracy per million parameters
    statistics: list[StatsBlock] = field(default_factory=list)
    outside_reference: dict[str, Any] = field(default_factory=dict)
    sweep: list[str] = field(default_factory=list)  # Markdown lines (report/sweep.py)
    training_time: list[str] = field(default_factory=list)
    errors: list[ErrorBlock] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # summary.json's entry of the study
    files: list[str] = field(default_factory=list)  # every file written under figures/ for it

    @property
    def page(self) -> str:
        """The study's page, relative to the report folder, without its suffix."""
        return f"studies/{self.name}"


@dataclass
class ReportResult:
    """The whole report: the overview's parts and one StudyResult per study."""
    mode: str
    title: str
    preamble: str  # the paragraph under the title: setting, date, commit, machine, studies
    studies: list[StudyResult]
    overview: pd.DataFrame
    headline: pd.DataFrame | None
    datasets_used: pd.DataFrame
    datasets_prepared: pd.DataFrame
    summary: dict[str, Any]  # summary.json
