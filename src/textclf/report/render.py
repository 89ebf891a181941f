"""Render the report's results (report/result.py) to Markdown pages with Jinja2 (the
templates in report/templates.py): the overview (summary.md) and one page per study
(studies/<study>.md). Pure: nothing here reads the disk; report/build.py writes the pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jinja2

from textclf.estimate import format_duration
from textclf.report.markdown import md_table
from textclf.report.reference_gap import outside_reference_lines
from textclf.report.result import ErrorBlock, Pending, ReportResult, StatsBlock, StudyResult
from textclf.report.stats_render import render_study_section
from textclf.report.templates import STUDY, SUMMARY

# a study page sits in studies/: its figures are one folder up
STUDY_BASE = "../"
PENDING_NAMES = 8  # up to this many unrun variants are named in their study's one line
OVERVIEW_FORMATS = {"best accuracy": "{:.4f}".format}


def counts_line(s: StudyResult) -> str:
    n, done = s.n_variants, s.n_done
    return (f"{done} of {n} variant{'s' if n != 1 else ''} {'has' if done == 1 else 'have'} results"
            + (f" ({s.n_runs} runs over seeds)" if s.n_runs != done else "") + ".")


def _estimate(seconds: float | None) -> str:
    """' est. 2.2 h' after a pending variant's '(status)': its saved estimate, when there is one."""
    return f" est. {format_duration(seconds)}" if seconds is not None else ""


def pending_line(p: Pending) -> str:
    """ONE line for every variant of the study without usable results: how many, their names
    (with their estimates) when few, and the command that runs them."""
    what = f"{p.n_variants} variant{'s' if p.n_variants != 1 else ''}" + (
        f" ({p.n_runs} runs)" if p.n_runs != p.n_variants else "")
    names = ""
    if len(p.variants) <= PENDING_NAMES:
        names = ": " + ", ".join(f"`{v.id}` ({v.status}" + (f", seeds {v.seeds}" if v.runs > 1 else "") + ")"
                                 + _estimate(v.seconds) for v in p.variants)
    cost = ""
    if p.seconds is not None:
        share = "" if p.estimated_runs == p.n_runs else f" for {p.estimated_runs} of the {p.n_runs} runs"
        cost = f" (estimated {format_duration(p.seconds)} of CPU training on this machine{share}, `textclf plan`)"
    return (f"**Missing or failed** ({p.mode} setting): {what} without usable results{names}{cost}; "
            f"to run them: `{p.command}`.")


def pending_table(p: Pending | None) -> list[str]:
    """Every pending variant by name, when too many for the one line."""
    if p is None or len(p.variants) <= PENDING_NAMES:
        return []
    rows = [f"| `{v.id}` | {v.status} | {v.seeds} | {format_duration(v.seconds) if v.seconds is not None else ''} |"
            for v in p.variants]
    return ["| pending variant | status | seeds | estimate on this machine |", "|---|---|---|---|", *rows, ""]


def cross_size_lines(notes: Sequence[str]) -> list[str]:
    """Under the table: what the ⚠ beside Δ means for this study, once."""
    if not notes:
        return []
    return ["⚠ **Δ is not like for like**: " + "; ".join(notes) + ". A difference between runs on different "
            "training data says little about the models.", ""]


def chosen_lines(chosen: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [f"**Chosen on validation** ({dataset}): `{c['variant']}`, validation accuracy {c['val_accuracy']:.4f}, "
             f"test {c['accuracy']:.4f} ({'means over its seeds' if c.get('n_seeds', 1) > 1 else 'one seed'}; "
             "the table ranks by test accuracy, as the references did)."
             for dataset, c in chosen.items()]
    return [*lines, ""] if lines else []


def figure_lines(s: StudyResult, base: str) -> list[str]:
    """The study's figures right under its table: one caption line naming each, then the images
    (consecutive, so the HTML page lays them out side by side)."""
    if not s.figures:
        return []
    images = [line for f in s.figures for line in (f"![{f.alt}]({base}{f.path})", "")]
    return [f"Figures ({s.figures_setting}): " + "; ".join(f.caption for f in s.figures) + ".", "", *images]


def relink(lines: Iterable[str], base: str) -> list[str]:
    """Lines written for the report folder (images under figures/), as a page in a subfolder sees them."""
    return [line.replace("](figures/", f"]({base}figures/") for line in lines]


def stats_lines(blocks: Sequence[StatsBlock], base: str) -> list[str]:
    return [line for b in blocks for line in (render_study_section(b.analysis, title=b.title,
                                                                   figure=base + b.figure), "")]


def error_lines(blocks: Sequence[ErrorBlock]) -> list[str]:
    return [line for b in blocks for line in _error_lines(b)]


def _error_lines(b: ErrorBlock) -> list[str]:
    a, full_rows = b.analysis, b.full_rows
    by_class = ", ".join(f"{k} {int(v):,}" for k, v in a["all_wrong_by_class"].items()) or "none"
    items = a["items"]
    if full_rows is not None and items == full_rows:
        where = f"the whole test set ({items:,} items)"
    elif full_rows is not None and items < full_rows:
        where = f"the {items:,}-item quick sample of the test set (the full test set has {full_rows:,})"
    else:
        where = f"the {items:,} test items all models share"
    lines = [f"### Error analysis: {b.dataset}, {a['models']} models, {where}", "",
             f"- Items every model gets wrong: **{a['all_wrong']:,}** of {items:,} (by true class: {by_class})."]
    if "ensemble_accuracy" in a:
        lines.append(f"- Majority-vote ensemble of {a['models']} models on {where}: accuracy "
                     f"**{a['ensemble_accuracy']:.4f}**, macro-F1 {a['ensemble_macro_f1']:.4f} "
                     f"(best single model {a['best_single_accuracy']:.4f}).")
    else:
        lines.append(f"- No ensemble: a majority vote needs at least 3 models ({a['models']} here).")
    return [*lines, ""]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.DictLoader({"summary.md": SUMMARY, "study.md": STUDY}),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters.update(md_table=md_table, counts_line=counts_line, pending_line=pending_line,
                       pending_table=pending_table, cross_size_lines=cross_size_lines, chosen_lines=chosen_lines,
                       figure_lines=figure_lines, relink=relink, stats_lines=stats_lines,
                       outside_lines=outside_reference_lines, error_lines=error_lines)
    env.globals.update(OVERVIEW_FORMATS=OVERVIEW_FORMATS)
    return env


ENV = _environment()


def render_summary(report: ReportResult) -> str:
    """The overview page (summary.md)."""
    return ENV.get_template("summary.md").render(r=report)


def render_study(report: ReportResult, study: StudyResult) -> str:
    """A study's page (studies/<study>.md), linked to the overview and its sibling pages."""
    siblings = [s.name if s.name == study.name else f"[{s.name}]({s.name}.md)" for s in report.studies]
    return ENV.get_template("study.md").render(r=report, s=study, studies=siblings, base=STUDY_BASE)
