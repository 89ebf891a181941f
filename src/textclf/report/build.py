"""Build reports/summary.md, reports/summary.json and reports/figures/*.png."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from textclf import atomic
from textclf.estimate import estimate_line
from textclf.report.collect import collect, load_history, load_predictions
from textclf.report.errors import error_analysis
from textclf.report.figures import accuracy_vs_params, confusion, learning_curves
from textclf.report.markdown import md_table
from textclf.report.stats import analyze_study, summary_metrics
from textclf.report.stats_render import render_study_section, stats_figure
from textclf.report.sweep import sweep_section

TABLE_COLUMNS = ["variant", "dataset", "seed", "cell", "layers", "bidirectional", "hidden", "pooling", "embedding",
                 "max_len", "optimizer", "accuracy", "reference", "delta", "macro_f1", "trainable_params",
                 "acc_per_mparam", "seconds_per_epoch", "epochs_run", "status"]


def build_report(job: Mapping[str, Any], out: Path, job_sha256: str | None = None) -> dict[str, Any]:
    """Write the report files of a report job (see plan.py); return the summary.json content.
    `job_sha256` (of the job file) is recorded so `textclf adopt` can tell which selection of
    studies a report was built for."""
    table = collect(job)
    studies = list(job["studies"])
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    quick = job.get("quick")
    setting = (f"**quick setting** (at most {quick['epochs']} epochs, {quick['train_rows']:,} training and "
               f"{quick['eval_rows']:,} validation/test rows per variant)" if quick else "**full setting**")
    lines = [
        "# textclf-pipeline report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} from `params.yaml`, {setting}. "
        f"Studies: {', '.join(studies)}. Accuracy is test-set accuracy (fraction); "
        "reference = the number reported by the study we reproduce; Δ = ours − reference.",
        "",
        *_datasets_section(job["datasets"]),
    ]
    summary: dict[str, Any] = {"mode": job["mode"], "job_sha256": job_sha256, "studies": {}}
    for study in studies:
        rows = table[table["study"] == study]
        section, metrics = _study_section(job, study, rows, figures)
        lines += section
        summary["studies"][study] = metrics
    atomic.write_text(out / "summary.md", "\n".join(lines) + "\n")
    atomic.write_json(out / "summary.json", summary)
    atomic.write_parquet(out / "variants.parquet", table.drop(columns=["confusion_matrix", "classes"], errors="ignore"))
    return summary


def _datasets_section(datasets: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, spec in datasets.items():
        path = Path(spec["stats"])
        if not path.exists():
            rows.append({"dataset": name, "train": "missing", "val": "", "test": "", "classes": ""})
            continue
        stats = json.loads(path.read_text(encoding="utf-8"))
        q = stats.get("token_length_quantiles", {}).get("train", {})
        rows.append({"dataset": name, **{s: stats["rows"].get(s) for s in ("train", "val", "test")},
                     "classes": len(stats.get("classes", [])),
                     "train tokens p50/p90": f"{q.get('p50', '')}/{q.get('p90', '')}",
                     "malformed dropped": sum(stats.get("malformed", {}).values())})
    return ["## Datasets", "", md_table(pd.DataFrame(rows)), ""]


def _study_section(job, study, rows, figures) -> tuple[list[str], dict[str, Any]]:
    spec = job["studies"][study]
    done = rows[rows["accuracy"].notna()].sort_values("accuracy", ascending=False)
    lines = [f"## {study}", "", spec.get("description", ""), ""]
    if spec.get("reference_source"):
        lines += [f"Reference: {spec['reference_source']}", ""]
    shown = [c for c in TABLE_COLUMNS if c in rows and rows[c].notna().any()]
    lines += [f"{len(done)} of {len(rows)} variants have results.", "",
              md_table(pd.concat([done, rows[rows["accuracy"].isna()]])[shown]), ""]
    for status, label in [("never learned", "**Never learned** (no better than the majority class)"),
                          (None, "**Missing or failed** (no usable results yet)")]:
        flagged = rows[rows["status"] == status] if status else rows[~rows["status"].isin(["ok", "never learned"])]
        if len(flagged):
            lines += [f"{label}: " + ", ".join(f"`{r.id}` ({r.status})" for r in flagged.itertuples()), ""]
    lines += _speed_ratio_lines(done)
    if len(done) > 1:
        by_eff = done.dropna(subset=["acc_per_mparam"]).sort_values("acc_per_mparam", ascending=False)
        if len(by_eff):
            lines += ["Ranking by accuracy per million trainable parameters:", "",
                      md_table(by_eff[["variant", "dataset", "accuracy", "trainable_params", "acc_per_mparam"]].head(10)), ""]
    label = "variant" if rows["dataset"].nunique() == 1 else "id"
    histories = {getattr(r, label) + (f" s{r.seed}" if rows["seed"].nunique() > 1 else ""): load_history(r.results)
                 for r in done.itertuples()}
    for path, caption in [
        (learning_curves(histories, f"{study}: learning curves", figures / f"{study}_curves.png"), "Learning curves"),
        (accuracy_vs_params(done, f"{study}: accuracy vs. parameters", figures / f"{study}_acc_vs_params.png"),
         "Accuracy vs. trainable parameters"),
    ]:
        if path:
            lines += [f"![{caption}](figures/{path.name})", ""]
    if len(done) and isinstance(done.iloc[0]["confusion_matrix"], list):
        best = done.iloc[0]
        path = confusion(best["confusion_matrix"], best["classes"] or [], f"best: {best['id']}",
                         figures / f"{study}_confusion.png")
        lines += [f"Confusion matrix of the best variant (`{best['id']}`):", "", f"![confusion](figures/{path.name})", ""]
    # each run's predictions read once: a damaged file gives one warning and counts as missing
    predictions = {r.results: load_predictions(r.results) for r in done.itertuples()}
    stat_lines, stat_metrics = _statistics(study, done, figures, predictions)
    lines += stat_lines
    if spec.get("sweep"):
        trials = [(run["variant"], json.loads((Path(run["results"]) / "metrics.json").read_text(encoding="utf-8")))
                  for run in job["runs"] if run["variant"]["study"] == study
                  and run["results"] in set(done["results"])]
        lines += sweep_section(study, trials, figures)
    measured = float((done["seconds_per_epoch"].fillna(0) * done["epochs_run"].fillna(0)).sum())
    estimate = estimate_line(job["mode"], study, measured)
    if estimate:
        lines += [estimate, ""]
    metrics: dict[str, Any] = {
        **stat_metrics,
        "variants_done": int(len(done)),
        "variants_missing": int(len(rows) - len(done)),
        "best_accuracy": _num(done["accuracy"].max()) if len(done) else None,
        "mean_accuracy": _num(done["accuracy"].mean()) if len(done) else None,
        "accuracy": {f"{r.id.replace('/', '.')}.seed{r.seed}": _num(r.accuracy) for r in done.itertuples()},
    }
    for dataset, group in done.groupby("dataset"):
        preds = {f"{r.id} s{r.seed}": predictions[r.results] for r in group.itertuples()}
        classes = job["datasets"][dataset]["classes"]
        analysis = error_analysis(preds, classes)
        if analysis:
            lines += _error_lines(dataset, analysis)
            metrics[f"ensemble_accuracy_{dataset}"] = analysis["ensemble_accuracy"]
            metrics[f"all_wrong_{dataset}"] = analysis["all_wrong"]
    return lines, metrics


def _statistics(study: str, done: pd.DataFrame, figures: Path,
                predictions_by_run: Mapping[str, pd.DataFrame | None]) -> tuple[list[str], dict[str, Any]]:
    """Seeds, intervals and paired tests (report/stats.py), once per test set of the study."""
    lines: list[str] = []
    metrics: dict[str, Any] = {}
    datasets = sorted(done["dataset"].unique())
    for dataset in datasets:
        group = done[done["dataset"] == dataset]
        runs = pd.DataFrame({"variant": group["variant"], "seed": group["seed"].astype(int),
                             "accuracy": group["accuracy"].astype(float), "n_test": group["n_test"].astype(int),
                             "reference": group["reference"].astype(float)})
        predictions = {(r.variant, int(r.seed)): _contract(predictions_by_run[r.results])
                       for r in group.itertuples()}
        analysis = analyze_study(runs, predictions)
        name = study if len(datasets) == 1 else f"{study}_{dataset}"
        title = study if len(datasets) == 1 else f"{study} ({dataset})"
        figure = stats_figure(analysis, figures / f"{name}_accuracy_ci.png", title)
        lines += [render_study_section(analysis, title=title, figure=f"figures/{figure.name}"), ""]
        flat = summary_metrics(analysis)
        metrics.update(flat if len(datasets) == 1 else {f"{dataset}.{k}": v for k, v in flat.items()})
    return lines, metrics


def _contract(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """id, label, pred as int64 (report/stats.py's predictions contract), or None."""
    return None if frame is None else frame[["id", "label", "pred"]].astype("int64").reset_index(drop=True)


def _speed_ratio_lines(done: pd.DataFrame) -> list[str]:
    """The hand-written GRU against nn.GRU (unidirectional), when a study has both."""
    if "cell" not in done or "bidirectional" not in done:
        return []
    uni = done[done["bidirectional"] != True]  # noqa: E712 (NaN for baselines)
    scratch = uni.loc[uni["cell"] == "gru_scratch", "seconds_per_epoch"].mean()
    native = uni.loc[uni["cell"] == "gru", "seconds_per_epoch"].mean()
    if not (scratch > 0 and native > 0):
        return []
    return [f"Hand-written GRU vs nn.GRU: {scratch:.1f} s vs {native:.1f} s per epoch, "
            f"**{scratch / native:.1f}x** slower (the reference measured ~21x: 8,075 s vs 388 s).", ""]


def _error_lines(dataset: str, a: Mapping[str, Any]) -> list[str]:
    by_class = ", ".join(f"{k} {v}" for k, v in a["all_wrong_by_class"].items()) or "none"
    return [f"### Error analysis ({dataset}, {a['models']} models, {a['items']} test items)", "",
            f"- Items every model gets wrong: **{a['all_wrong']}** (by true class: {by_class}).",
            f"- Majority-vote ensemble on the whole test set: accuracy **{a['ensemble_accuracy']:.4f}**, "
            f"macro-F1 {a['ensemble_macro_f1']:.4f} (best single model {a['best_single_accuracy']:.4f}).", ""]


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)
