"""The report in two layers: a small overview page (summary.md/.html) linking one page per study
(studies/<study>.md/.html) with its tables, statistics and figures; every pending variant named
on its study's page with its saved estimate and the command that trains it; and pages rendered
from the computed result objects alone, without reading the disk."""

import builtins
import pathlib
import re

import numpy as np
import pandas as pd
import pytest
from test_report import STUDY, _params, report_job, write_run, write_stats

from textclf.estimate import save_estimates
from textclf.report import build_report
from textclf.report.html import render_html
from textclf.report.pending import run_command
from textclf.report.render import render_study, render_summary
from textclf.report.result import (
    Figure,
    Pending,
    PendingVariant,
    ReportResult,
    StatsBlock,
    StudyResult,
)
from textclf.report.stats import analyze_study

OVERVIEW_LIMIT = 30_000  # bytes: the overview a reader takes in at once (issue 32)
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")  # Markdown links and images: ](target)


def _many_variants_study(n: int) -> dict:
    return {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base", "variants": {"a": {}},
            "grid": [{"name": "h", "key": "model.hidden", "values": list(range(8, 8 + n))}]}


@pytest.fixture
def paged_report(tmp_path, monkeypatch):
    """Three studies, one of them with 40 variants that all have results."""
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 4, 200)
    for h in range(8, 48):
        write_run(tmp_path / f"results/full/imdb/big/a-h{h}/seed1", labels, 0.1 + 0.004 * (h - 8), rng)
    for name, rate in (("a", 0.2), ("b", 0.1), ("c", 0.3)):
        for study in ("s", "u"):
            write_run(tmp_path / f"results/full/imdb/{study}/{name}/seed1", labels, rate, rng)
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"big": _many_variants_study(40), "s": STUDY, "u": STUDY})),
                           tmp_path / "reports")
    return tmp_path / "reports", summary


def test_the_overview_is_small_and_holds_no_study_table(paged_report):
    out, _ = paged_report
    overview = (out / "summary.md").read_bytes()
    assert len(overview) <= OVERVIEW_LIMIT
    text = overview.decode("utf-8")
    assert "| variant |" not in text and "a-h20" not in text  # the tables are on the study pages
    big = (out / "studies/big.md").read_text(encoding="utf-8")
    assert all(f"| a-h{h} |" in big for h in range(8, 48))  # every run's row, on its study's page
    assert len(big.encode("utf-8")) > len(overview) / 2  # the study's weight is on its page, not the overview's


def test_every_study_has_a_page_linked_both_ways_and_every_link_resolves(paged_report):
    out, summary = paged_report
    overview = (out / "summary.md").read_text(encoding="utf-8")
    overview_html = (out / "summary.html").read_text(encoding="utf-8")
    assert sorted(p.stem for p in (out / "studies").glob("*.md")) == sorted(summary["studies"]) == ["big", "s", "u"]
    for study in summary["studies"]:
        assert f"[{study}](studies/{study}.md)" in overview and f'href="studies/{study}.html"' in overview_html
        page = (out / f"studies/{study}.md").read_text(encoding="utf-8")
        assert page.splitlines()[2].startswith("[Overview](../summary.md)")
        assert 'href="../summary.html"' in (out / f"studies/{study}.html").read_text(encoding="utf-8")
    pages = [out / "summary.md", *(out / "studies").glob("*.md")]
    targets = [(page, target) for page in pages for target in LINK.findall(page.read_text(encoding="utf-8"))]
    assert any("figures/" in t for _, t in targets) and any(t.endswith(".md") for _, t in targets)
    for page, target in targets:  # relative to the page: the report folder can move as a whole
        assert not target.startswith(("/", "reports/")), (page, target)
        assert (page.parent / target).is_file(), f"{page.name} links {target}, which does not exist"


def test_pending_variants_are_named_with_their_saved_estimate_and_the_command(tmp_path, monkeypatch):
    rng = np.random.default_rng(12)
    labels = rng.integers(0, 4, 200)
    for name in ("a", "b"):
        write_run(tmp_path / f"results/full/imdb/s/{name}/seed1", labels, 0.2, rng)
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)
    save_estimates("full", [{"study": "s", "runs": {"results/full/imdb/s/c/seed1": 5400.0,
                                                     "results/full/imdb/s/gone/seed1": 1800.0}}], "test")
    build_report(report_job(_params({"s": STUDY})), tmp_path / "reports")
    page = (tmp_path / "reports/studies/s.md").read_text(encoding="utf-8")
    (line,) = [line for line in page.splitlines() if line.startswith("**Missing or failed**")]
    assert "`imdb/s/c` (missing) est. 1.5 h, `imdb/s/gone` (missing) est. 30 min (estimated" in line
    assert "(estimated 2.0 h of CPU training on this machine, `textclf plan`)" in line
    assert line.endswith(f"to run them: `{run_command('full', 's')}`.")
    overview = (tmp_path / "reports/summary.md").read_text(encoding="utf-8")
    (row,) = [r for r in overview.splitlines() if r.startswith("| [s](studies/s.md) |")]
    assert "| 2 of 4 | 2 (2.0 h) |" in row


def _in_memory_report() -> ReportResult:
    """A report built by hand: nothing behind it on disk."""
    runs = pd.DataFrame({"variant": ["x", "y"], "seed": [1, 1], "accuracy": [0.8, 0.7], "n_test": [100, 100],
                         "reference": [float("nan")] * 2})
    analysis = analyze_study(runs, {})
    pending = Pending(mode="full", variants=(PendingVariant("imdb/m/z", "missing", "1", 1, 7200.0),),
                      n_variants=1, n_runs=1, seconds=7200.0, estimated_runs=1, command=run_command("full", "m"))
    study = StudyResult(name="m", mode="full", description="made in memory", setting="**Setting**: full",
                        n_variants=3, n_done=2, n_runs=2, pending=pending,
                        table=pd.DataFrame({"variant": ["x", "y"], "accuracy": [0.8, 0.7]}),
                        figures=[Figure("figures/m_curves.png", "m: learning curves", "learning curves")],
                        figures_setting="full", statistics=[StatsBlock("m", analysis, "figures/m_accuracy_ci.png")],
                        metrics={"mode": "full"}, files=["m_curves.png", "m_accuracy_ci.png"])
    overview = pd.DataFrame({"study": ["[m](studies/m.md)"], "best accuracy": [0.8]})
    return ReportResult(mode="full", title="textclf-pipeline report: full setting", preamble="In memory.",
                        studies=[study], overview=overview, headline=None, datasets_used=pd.DataFrame(),
                        datasets_prepared=pd.DataFrame(), summary={"studies": {"m": study.metrics}})


def _render(report: ReportResult, png: bytes) -> tuple[str, str, str]:
    (study,) = report.studies
    page = render_study(report, study)
    images = {"figures/m_curves.png": png, "figures/m_accuracy_ci.png": png}
    return render_summary(report), page, render_html(page, "m", images)


def test_pages_render_from_the_result_objects_without_reading_the_disk(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # an empty folder: nothing to find even by accident
    report = _in_memory_report()
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    first = _render(report, png)  # imports and template compilation happen here

    def no_disk(*args, **kwargs):
        raise AssertionError(f"rendering touched the disk: {args!r}")

    monkeypatch.setattr(builtins, "open", no_disk)
    for name in ("open", "read_text", "read_bytes", "exists", "is_file", "stat", "iterdir", "glob"):
        monkeypatch.setattr(pathlib.Path, name, no_disk)
    summary, page, html = _render(report, png)
    monkeypatch.undo()
    assert (summary, page, html) == first
    assert "[m](studies/m.md)" in summary and "## m\n" in page and "made in memory" in page
    assert "`imdb/m/z` (missing) est. 2.0 h" in page and f"`{run_command('full', 'm')}`" in page
    assert "![m: learning curves](../figures/m_curves.png)" in page
    assert "](../figures/m_accuracy_ci.png)" in page and "`x` is best" in page
    assert html.count("data:image/png;base64,") == 2 and 'data-file="figures/m_curves.png"' in html
    assert 'href="../summary.html"' in html and "missing-figure\">" not in html
