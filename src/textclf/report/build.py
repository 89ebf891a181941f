"""Build a report folder (`out`: reports/ for the full report) in two steps: compute, then render.

    out/summary.md, summary.html   the overview: setting, one row per study (linking to its
                                   page), the headline, the rows used
    out/studies/<study>.{md,html}  each study's tables, statistics and figures
    out/summary.json               the per-study results (written from the same objects)
    out/variants.parquet           one row per run; out/figures/ the PNGs and curves data

Computing (report/overview.py, report/study.py) reads the runs and draws the figures into
typed results (report/result.py); rendering (report/render.py, report/html.py) reads nothing.
Everything the report prints carries the setting that produced it, read from the results
themselves (metrics.json: `quick`, `n_train`, `n_test`; the variant: seed and vectors).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from textclf import atomic
from textclf.checkout import commit_state
from textclf.machine import cpu_model
from textclf.report.collect import collect, load_predictions
from textclf.report.fmt import setting_of
from textclf.report.overview import datasets_prepared, datasets_used, headline_table, overview_table
from textclf.report.render import render_study, render_summary
from textclf.report.result import ReportResult, StudyResult
from textclf.report.study import compute_study
from textclf.report.summary_json import HEADLINE_KEYS, STUDY_KEYS

__all__ = ["HEADLINE_KEYS", "STUDY_KEYS", "build_report", "compute_report", "source_commit"]


def build_report(job: Mapping[str, Any], out: Path, job_sha256: str | None = None) -> dict[str, Any]:
    """Write the report files of a report job (see plan.py) under `out`; return summary.json's content."""
    report, table = compute_report(job, out, job_sha256)
    write_report(report, out)
    atomic.write_parquet(out / "variants.parquet", table.drop(columns=["confusion_matrix", "classes"], errors="ignore"))
    return report.summary


def compute_report(job: Mapping[str, Any], out: Path,
                   job_sha256: str | None = None) -> tuple[ReportResult, pd.DataFrame]:
    """Every study's result and the overview's tables, figures drawn under out/figures/;
    returns the report and the collected table (one row per run)."""
    table = collect(job)
    table["setting"] = [setting_of(r) for r in table.itertuples()]
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    # each run's predictions read once for the study statistics and the headline: a damaged
    # file gives one warning and counts as missing
    predictions = {r.results: load_predictions(r.results) for r in table[table["accuracy"].notna()].itertuples()}
    studies = [compute_study(job, study, table[table["study"] == study], figures, predictions)
               for study in job["studies"]]
    summary = {"mode": job["mode"], "job_sha256": job_sha256, "studies": {s.name: s.metrics for s in studies}}
    report = ReportResult(mode=job["mode"], title=f"textclf-pipeline report: {job['mode']} setting",
                          preamble=_preamble(job), studies=studies, overview=overview_table(table, studies),
                          headline=headline_table(table, studies, job, predictions),
                          datasets_used=datasets_used(table), datasets_prepared=datasets_prepared(job),
                          summary=summary)
    return report, table


def _preamble(job: Mapping[str, Any]) -> str:
    quick = job.get("quick")
    if quick:
        setting = (f"**quick setting**: every variant capped at {quick['epochs']} epoch{'s' if quick['epochs'] != 1 else ''}, "
                   f"{quick['train_rows']:,} training rows and {quick['eval_rows']:,} validation/test rows "
                   "(seeded, stratified samples). Quick numbers show that the pipeline works and the "
                   "trends; they are not the reference accuracies")
    else:
        setting = "**full setting**: every variant trained on its dataset's whole training split"
    return (f"Setting: {setting}. Generated {time.strftime('%Y-%m-%d %H:%M')} from `params.yaml` "
            f"({source_commit()}) on {cpu_model()}; "
            f"studies: {', '.join(job['studies'])}. Accuracy is test-set accuracy (fraction); reference = the "
            "number reported by the study we reproduce; Δ = ours − reference, with a caveat beside it "
            "when the reference was trained on a different number of rows. Every table row names its "
            "setting, the training and test rows it used (from its metrics.json), its seed and its "
            "vectors.")


def write_report(report: ReportResult, out: Path) -> None:
    """Render every page (Markdown and HTML) and write them with summary.json; remove the
    pages and figures of studies no longer in the report."""
    from textclf.report.html import render_html  # not at import: `python -m textclf.report.html`

    pages = out / "studies"
    pages.mkdir(parents=True, exist_ok=True)
    for study in report.studies:
        markdown = render_study(report, study)
        atomic.write_text(out / f"{study.page}.md", markdown)
        atomic.write_text(out / f"{study.page}.html",
                          render_html(markdown, f"{report.title}: {study.name}", _images(out, study)))
    markdown = render_summary(report)
    atomic.write_text(out / "summary.md", markdown)
    atomic.write_json(out / "summary.json", report.summary)
    atomic.write_text(out / "summary.html", render_html(markdown, f"textclf-pipeline report ({report.mode} setting)"))
    _remove_stale(out, report.studies)


def _images(out: Path, study: StudyResult) -> dict[str, bytes]:
    """The study's figures as its HTML page embeds them: figures/<name> -> bytes."""
    return {f"figures/{name}": (out / "figures" / name).read_bytes() for name in study.files if name.endswith(".png")}


def _remove_stale(out: Path, studies: list[StudyResult]) -> None:
    """Figures, plot data and pages of studies no longer selected would be shown as if current."""
    keep = {(out / "figures" / name).resolve() for s in studies for name in s.files}
    keep |= {(out / f"{s.page}{suffix}").resolve() for s in studies for suffix in (".md", ".html")}
    found = [*(out / "figures").glob("*.png"), *(out / "figures").glob("curves/*.json"),
             *(out / "studies").glob("*.md"), *(out / "studies").glob("*.html")]
    for path in found:
        if path.resolve() not in keep:
            path.unlink()


def source_commit() -> str:
    """'commit abc1234' (with '+ uncommitted changes' when tracked files other than the reports
    and dvc.lock differ), or 'not a git checkout': which code and params rendered this report."""
    state = commit_state([".", ":!reports", ":!dvc.lock"])
    if state is None:
        return "not a git checkout"
    return f"commit {state[0]}" + (" + uncommitted changes" if state[1] else "")
