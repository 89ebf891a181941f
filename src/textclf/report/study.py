"""One study's result, computed from its runs (report/result.py's StudyResult): its table, the
statistics, the figures (drawn here), the pending variants and its summary.json entry.

Every disk read of a study happens here (metrics through the collected table, predictions,
histories, prepared stats, saved estimates); report/render.py only formats the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from textclf.report.collect import load_predictions
from textclf.report.errors import error_analysis
from textclf.report.figures import variant_colors
from textclf.report.fmt import has_values, setting_line, span
from textclf.report.numbers import json_number
from textclf.report.pending import pending_variants
from textclf.report.reference_gap import outside_reference, reference_train_rows, train_rows_gap
from textclf.report.result import ErrorBlock, StatsBlock, StudyResult
from textclf.report.same_settings import same_settings_groups, same_settings_lines
from textclf.report.stats import StudyStats, analyze_study, summary_metrics
from textclf.report.stats_render import stats_figure
from textclf.report.study_figures import study_figures, sweep, train_size
from textclf.report.study_notes import (
    efficiency,
    scratch_gru_lines,
    training_time_lines,
    validation_choice,
)
from textclf.report.summary_json import study_metrics

# the numbers a reader compares first, right after the variant's name (a wide table scrolls)
TABLE_COLUMNS = ["variant", "dataset", "rank", "accuracy", "reference", "delta", "seed", "setting", "n_train",
                 "n_test", "cell", "layers", "bidirectional", "hidden", "pooling", "embedding", "max_len",
                 "optimizer", "macro_f1", "trainable_params", "acc_per_mparam", "seconds_per_epoch", "epochs_run",
                 "hardware", "status"]

Predictions = Mapping[str, pd.DataFrame | None]  # results folder -> its test predictions (None: unreadable)


def compute_study(job: Mapping[str, Any], study: str, rows: pd.DataFrame, figures: Path,
                  predictions: Predictions) -> StudyResult:
    """The study's page and summary.json entry from its rows of the collected table."""
    spec = job["studies"][study]
    done = _rank(rows[rows["accuracy"].notna()])
    failed = rows[rows["status"].astype(str).str.startswith("failed")]
    result = StudyResult(name=study, mode=job["mode"], description=spec.get("description") or None,
                         reference_source=spec.get("reference_source") or None,
                         setting=setting_line(done) if len(done) else "",
                         n_variants=rows.groupby(["dataset", "variant"]).ngroups,
                         n_done=done.groupby(["dataset", "variant"]).ngroups if len(done) else 0, n_runs=len(done),
                         pending=pending_variants(job["mode"], study, pd.concat([rows[rows["status"] == "missing"],
                                                                                  failed])))
    result.table = _table(study, pd.concat([done, failed]))
    result.cross_size_notes = _cross_size_notes(study, done)
    result.chosen = validation_choice(done)
    same_entries = _same_settings(result, job, study, predictions)
    _draw(result, job, study, rows, done, figures)
    never = rows[rows["status"] == "never learned"]
    result.never_learned = [(str(r.id), int(r.seed)) for r in never.itertuples()]
    result.scratch_gru = scratch_gru_lines(done, predictions)
    result.efficiency = efficiency(done)
    stat_metrics, analyses = _statistics(result, done, figures, predictions)
    result.outside_reference = outside_reference(study, spec, done, analyses)
    result.training_time = training_time_lines(job["mode"], done)
    result.metrics = study_metrics(study, rows, done, stat_metrics, result.chosen)
    result.metrics["detail"]["outside_reference"] = result.outside_reference
    if same_entries:
        result.metrics["detail"]["same_settings"] = same_entries
    _errors(result, job, done, predictions)
    return result


def _rank(done: pd.DataFrame) -> pd.DataFrame:
    """Sorted by dataset, then accuracy; `rank` counts within the dataset (never across)."""
    done = done.sort_values(["dataset", "accuracy"], ascending=[True, False]).copy()
    done["rank"] = done.groupby("dataset").cumcount() + 1
    return done


def _delta_cell(study: str, row: Any) -> str:
    """Δ with the train-size caveat beside it when ours and the reference's differ."""
    if row.delta is None or (isinstance(row.delta, float) and pd.isna(row.delta)):
        return ""
    text = f"{row.delta:+.4f}"
    gap = train_rows_gap(study, row.dataset, row.n_train)
    return f"{text} ⚠ {gap}" if gap else text


def _table(study: str, shown_rows: pd.DataFrame) -> pd.DataFrame | None:
    """The comparison table: rows with results, then failed ones; only columns with a value."""
    if not len(shown_rows):
        return None
    shown_rows = shown_rows.assign(delta=[_delta_cell(study, r) for r in shown_rows.itertuples()])
    return shown_rows[[c for c in TABLE_COLUMNS if c in shown_rows and has_values(shown_rows[c])]]


def _cross_size_notes(study: str, done: pd.DataFrame) -> list[str]:
    """What the ⚠ beside Δ means for this study, per dataset."""
    notes = []
    for dataset, group in done[done["reference"].notna()].groupby("dataset"):
        ref_rows = reference_train_rows(study, dataset)
        ours = span(group["n_train"])
        if isinstance(ref_rows, str):
            notes.append(f"on {dataset} the reference ran on {ref_rows}; ours on {ours} {dataset} training rows")
        elif ref_rows is None:
            notes.append(f"on {dataset} the reference's training-set size is not recorded; ours used {ours} rows")
        elif ours != f"{ref_rows:,}":
            notes.append(f"on {dataset} ours trained on {ours} rows, the reference on {ref_rows:,}")
    return notes


def _same_settings(result: StudyResult, job: Mapping[str, Any], study: str,
                   predictions: Predictions) -> list[dict[str, Any]]:
    groups = same_settings_groups([r for r in job["runs"] if r["variant"]["study"] == study])
    whole = {r: load_predictions(r, probabilities=True)  # classes and probabilities, of readable files only
             for g in groups for r in g.results if predictions.get(r) is not None}
    result.same_settings, entries = same_settings_lines(groups, whole)
    return entries


def _draw(result: StudyResult, job: Mapping[str, Any], study: str, rows: pd.DataFrame, done: pd.DataFrame,
          figures: Path) -> None:
    """The figures under the table, the training-size curves and a sweep's trials."""
    setting = result.figures_setting = setting_line(done, markdown=False)
    result.figures, files = study_figures(study, done, figures, variant_colors(rows["variant"]), setting)
    references = {d: reference_train_rows(study, d) for d in done["dataset"].unique()}
    result.train_size, size_files = train_size(study, done, figures, setting, references)
    result.sweep, sweep_files = ([], [])
    if job["studies"][study].get("sweep"):
        result.sweep, sweep_files = sweep(study, [r for r in job["runs"] if r["variant"]["study"] == study],
                                          done, figures)
    result.files += [p.relative_to(figures).as_posix() for p in files + size_files + sweep_files]


def _contract(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A run's predictions as the statistics take them (id, label, pred as int64)."""
    return None if frame is None else frame[["id", "label", "pred"]].astype("int64")


def _statistics(result: StudyResult, done: pd.DataFrame, figures: Path,
                predictions: Predictions) -> tuple[dict[str, Any], dict[str, StudyStats]]:
    """Seeds, intervals and paired tests (report/stats.py), once per test set of the study:
    its summary.json metrics and the analysis per dataset."""
    metrics: dict[str, Any] = {}
    analyses: dict[str, StudyStats] = {}
    datasets = sorted(done["dataset"].unique())
    for dataset in datasets:
        group = done[done["dataset"] == dataset]
        runs = pd.DataFrame({"variant": group["variant"], "seed": group["seed"].astype(int),
                             "accuracy": group["accuracy"].astype(float), "n_test": group["n_test"].astype(int),
                             "reference": group["reference"].astype(float)})
        preds = {(r.variant, int(r.seed)): _contract(predictions[r.results]) for r in group.itertuples()}
        analysis = analyses[dataset] = analyze_study(runs, preds)
        name = result.name if len(datasets) == 1 else f"{result.name}_{dataset}"
        title = result.name if len(datasets) == 1 else f"{result.name} ({dataset})"
        figure = stats_figure(analysis, figures / f"{name}_accuracy_ci.png", f"{title} [{result.figures_setting}]")
        result.files.append(figure.name)
        result.statistics.append(StatsBlock(title=title, analysis=analysis, figure=f"figures/{figure.name}"))
        flat = summary_metrics(analysis)
        metrics.update(flat if len(datasets) == 1 else {f"{dataset}.{k}": v for k, v in flat.items()})
    return metrics, analyses


def _prepared_rows(job: Mapping[str, Any], dataset: str, split: str) -> int | None:
    path = Path(job["datasets"][dataset]["stats"])
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("rows", {}).get(split)
    return int(value) if value is not None else None


def _errors(result: StudyResult, job: Mapping[str, Any], done: pd.DataFrame, predictions: Predictions) -> None:
    """Items every model misses and the majority vote, per dataset (report/errors.py)."""
    for dataset, group in done.groupby("dataset"):
        preds = {f"{r.id} s{r.seed}": predictions[r.results] for r in group.itertuples()}
        analysis = error_analysis(preds, job["datasets"][dataset]["classes"])
        if not analysis:
            continue
        full_rows = _prepared_rows(job, dataset, "test")
        result.errors.append(ErrorBlock(str(dataset), analysis, full_rows))
        entry = {"models": analysis["models"], "items": analysis["items"], "all_wrong": analysis["all_wrong"],
                 "full_test_set": full_rows is not None and analysis["items"] == full_rows}
        if "ensemble_accuracy" in analysis:
            entry["ensemble_accuracy"] = json_number(analysis["ensemble_accuracy"])
        result.metrics["detail"].setdefault("errors", {})[dataset] = entry
