"""The overview page's tables, computed from the collected runs and the studies' results: one
row per study (linking to its page), the headline per study and dataset, the rows used."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textclf.estimate import format_duration
from textclf.report.collect import dataset_references
from textclf.report.fmt import (
    BASELINE_MODEL,
    hardware,
    seed_predictions,
    seeds,
    span,
    vectors,
    versus,
)
from textclf.report.reference_gap import UNKNOWN_ROWS, train_rows_gap
from textclf.report.result import Pending, StudyResult
from textclf.report.stats import paired_against

Predictions = Mapping[str, pd.DataFrame | None]


def overview_table(table: pd.DataFrame, studies: Sequence[StudyResult]) -> pd.DataFrame:
    """One row per study: its setting as the results say, its best variant, what is pending;
    the study's name links to its page."""
    rows = []
    for s in studies:
        m = s.metrics
        done = table[(table["study"] == s.name) & table["accuracy"].notna()]
        rows.append({"study": f"[{s.name}]({s.page}.md)", "setting": m["mode"] or "",
                     "datasets": ", ".join(sorted(done["dataset"].unique())) if len(done) else "",
                     "train rows": span(done["n_train"]) if len(done) else "",
                     "test rows": span(done["n_test"]) if len(done) else "",
                     "seeds": m["detail"]["seed_list"] or "", "variants run": f"{m['variants_done']} of "
                     f"{m['variants_done'] + m['detail']['variants_missing']}",
                     "pending (estimate)": _pending_cell(s.pending),
                     "best variant": m["best"] or ("one per dataset" if done["dataset"].nunique() > 1 else ""),
                     "best accuracy": m["acc"],
                     "wall time": _wall_cell(m["detail"], len(done))})
    return pd.DataFrame(rows)


def _pending_cell(pending: Pending | None) -> str:
    """'3 (2 h 10 min)': variants without results and their saved estimate on this machine."""
    if pending is None:
        return ""
    if pending.seconds is None:
        return f"{pending.n_variants} (no estimate)"
    part = "" if pending.estimated_runs == pending.n_runs else f" for {pending.estimated_runs} of {pending.n_runs} runs"
    return f"{pending.n_variants} ({format_duration(pending.seconds)}{part})"


def _wall_cell(detail: dict[str, Any], runs: int) -> str:
    """The overview's wall time: says when it covers only some runs, or none (runs made before
    metrics.json recorded its clock), and what resumed runs trained before their recorded start,
    instead of leaving the cell blank."""
    seconds, timed, resumed = detail["wall_seconds"], detail["wall_runs_timed"], detail["wall_runs_resumed"]
    if not runs:
        return ""
    if not seconds:
        return "not recorded"
    notes = ([f"{timed} of {runs} runs timed"] if timed < runs else []) + (
        [f"+ about {format_duration(detail['wall_seconds_before_resume'])} of {resumed} resumed "
         + ("run's" if resumed == 1 else "runs'") + " earlier epochs"] if resumed else [])
    return format_duration(seconds) + (f" ({'; '.join(notes)})" if notes else "")


def _neural_variants(table: pd.DataFrame, study: str, dataset: str) -> int:
    """How many of a study's variants on a dataset the headline ranks (its TF-IDF rows have their own column)."""
    rows = table[(table["study"] == study) & (table["dataset"] == dataset) & (table["model"] != BASELINE_MODEL)]
    return rows["variant"].nunique()


def _tfidf(done: pd.DataFrame, predictions: Predictions) -> tuple[dict, dict, dict]:
    """The baseline trained on every training row (a train_fraction study's smaller samples are
    not "the same rows"), per dataset: its accuracy, its train rows and its predictions."""
    whole = done[(done["model"] == BASELINE_MODEL) & (done["train_fraction"].fillna(1.0) == 1.0)]
    preds = {dataset: seed_predictions(group, predictions) for dataset, group in whole.groupby("dataset")}
    return (whole.groupby("dataset")["accuracy"].mean().to_dict(), whole.groupby("dataset")["n_train"].max().to_dict(),
            preds)


def headline_table(table: pd.DataFrame, studies: Sequence[StudyResult], job: Mapping[str, Any],
                   predictions: Predictions) -> pd.DataFrame | None:
    """Per study and dataset: the best variant (by test accuracy, as the references ranked) with
    its 95 % interval, its published number, the study's best published number and the TF-IDF
    baseline on the same split, with the train size, seeds, vectors and hardware behind it."""
    done = table[table["accuracy"].notna()]
    tfidf, tfidf_rows, tfidf_preds = _tfidf(done, predictions)
    rows = []
    for s in studies:
        ours = done[(done["study"] == s.name) & (done["model"] != BASELINE_MODEL)]
        for dataset, group in ours.groupby("dataset"):
            means = group.groupby("variant")["accuracy"].mean()
            best = str(means.idxmax())
            best_rows = group[group["variant"] == best]
            rows.append({
                "study": s.name, "dataset": dataset, "train rows": span(best_rows["n_train"]),
                "seeds": seeds(best_rows["seed"]), "vectors": vectors(best_rows), "hardware": hardware(best_rows),
                "best variant": f"`{best}`", "accuracy [95 % CI]": _accuracy_cell(s.metrics, dataset, means.max()),
                "its reference": _its_reference(s.name, dataset, best_rows),
                "study's best reference": _best_reference(s.name, dataset, job["studies"][s.name], group),
                "TF-IDF, same split": _tfidf_cell(tfidf.get(dataset), tfidf_rows.get(dataset), best_rows["n_train"]),
                "vs TF-IDF (paired p)": versus(paired_against(seed_predictions(best_rows, predictions),
                                                              tfidf_preds.get(dataset, {}))),
                "neural variants run": f"{group['variant'].nunique()} of {_neural_variants(table, s.name, dataset)}",
            })
    return pd.DataFrame(rows) if rows else None


def _accuracy_cell(metrics: Mapping[str, Any], dataset: str, accuracy: float) -> str:
    ci = metrics["detail"]["ci"].get(f"{dataset}/best") or metrics["detail"]["ci"].get("best") or \
        {"ci_low": metrics.get("acc_ci_low"), "ci_high": metrics.get("acc_ci_high")}
    low, high = ci.get("ci_low"), ci.get("ci_high")
    return f"{accuracy:.4f}" + (f" [{low:.4f}, {high:.4f}]" if isinstance(low, float) and isinstance(high, float) else "")


def _its_reference(study: str, dataset: str, best_rows: pd.DataFrame) -> str:
    its_ref = best_rows["reference"].iloc[0]
    return "" if pd.isna(its_ref) else f"{float(its_ref):.4f}{_warn(study, dataset, best_rows['n_train'].max())}"


def _warn(study: str, dataset: str, n_train: Any) -> str:
    """' ⚠' when the reference trained on other rows than these (or another corpus), as the
    study's Δ column says; an unknown reference size is no known difference."""
    gap = train_rows_gap(study, dataset, n_train)
    return " ⚠" if gap and gap != UNKNOWN_ROWS else ""


def _best_reference(study: str, dataset: str, spec: Mapping[str, Any], ran: pd.DataFrame) -> str:
    """'0.8800 (`variant`, not run here) ⚠': the highest published number on this dataset,
    named; ⚠ from that variant's own rows."""
    mine = dataset_references(spec, dataset)
    if not mine:
        return ""
    variant, value = max(mine.items(), key=lambda item: item[1])
    rows = ran[ran["variant"] == variant]
    n_train = rows["n_train"].max() if len(rows) else None
    return f"{value:.4f} (`{variant}`{'' if len(rows) else ', not run here'}){_warn(study, dataset, n_train)}"


def _tfidf_cell(accuracy: float | None, tfidf_rows: Any, best_rows: pd.Series) -> str:
    """TF-IDF's accuracy on the split, with its train rows when the best variant's differ."""
    if accuracy is None or pd.isna(accuracy):
        return ""
    ours = {int(v) for v in best_rows.dropna()}
    same = pd.isna(tfidf_rows) or not ours or ours == {int(tfidf_rows)}
    return f"{accuracy:.4f}" + ("" if same else f" ({int(tfidf_rows):,} train rows)")


def datasets_used(table: pd.DataFrame) -> pd.DataFrame:
    """Rows actually used per study and dataset (from the results)."""
    used = []
    for (study, dataset), group in table.groupby(["study", "dataset"], sort=False):
        done = group[group["accuracy"].notna()]
        used.append({"study": study, "dataset": dataset, "setting": "/".join(dict.fromkeys(done["setting"])) or "",
                     "train rows used": span(done["n_train"]) if len(done) else "",
                     "test rows used": span(done["n_test"]) if len(done) else "",
                     "seeds": seeds(done["seed"]) if len(done) else "",
                     "vectors": vectors(done) if len(done) else "",
                     "variants run": f"{done['variant'].nunique()} of {group['variant'].nunique()}"})
    return pd.DataFrame(used)


def datasets_prepared(job: Mapping[str, Any]) -> pd.DataFrame:
    """The prepared splits the runs were drawn from (data/prepared/<dataset>/stats.json)."""
    prepared = []
    for name, spec in job["datasets"].items():
        path = Path(spec["stats"])
        if not path.exists():
            prepared.append({"dataset": name, "prepared train": "missing", "val": "", "test": "", "classes": ""})
            continue
        stats = json.loads(path.read_text(encoding="utf-8"))
        q = stats.get("token_length_quantiles", {}).get("train", {})
        prepared.append({"dataset": name, "prepared train": stats["rows"].get("train"),
                         "val": stats["rows"].get("val"), "test": stats["rows"].get("test"),
                         "classes": len(stats.get("classes", [])),
                         "train tokens p50/p90": f"{q.get('p50', '')}/{q.get('p90', '')}",
                         "malformed dropped": sum(stats.get("malformed", {}).values())})
    return pd.DataFrame(prepared)
