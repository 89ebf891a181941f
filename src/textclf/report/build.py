"""Build reports/summary.{md,json,html}, reports/variants.parquet and reports/figures/.

Everything the report prints carries the setting that produced it, read from the results
themselves (metrics.json: `quick`, `n_train`, `n_test`; the variant: seed and vectors): every
table row, every figure (under its title), every study's summary.json entry.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

# textclf.report.html is imported where it is used: `python -m textclf.report.html` (the DVC
# template) must not find it already imported through this package
from textclf import atomic
from textclf.checkout import commit_state
from textclf.estimate import estimate_line, format_duration, saved_estimates
from textclf.machine import cpu_model
from textclf.report.collect import collect, dataset_references, load_history, load_predictions
from textclf.report.errors import error_analysis
from textclf.report.figures import accuracy_vs_params, confusion, learning_curves, variant_colors
from textclf.report.markdown import md_table
from textclf.report.numbers import json_number
from textclf.report.reference_gap import (
    UNKNOWN_ROWS,
    outside_reference,
    outside_reference_lines,
    reference_train_rows,
    train_rows_gap,
)
from textclf.report.same_settings import same_settings_groups, same_settings_lines
from textclf.report.stats import (
    Comparison,
    StudyStats,
    analyze_study,
    paired_against,
    summary_metrics,
)
from textclf.report.stats_render import render_study_section, stats_figure
from textclf.report.sweep import sweep_section
from textclf.report.trainsize import train_size_section
from textclf.report.walltime import study_wall_time, wall_time_line

# the numbers a reader compares first, right after the variant's name (a wide table scrolls)
TABLE_COLUMNS = ["variant", "dataset", "rank", "accuracy", "reference", "delta", "seed", "setting", "n_train",
                 "n_test", "cell", "layers", "bidirectional", "hidden", "pooling", "embedding", "max_len",
                 "optimizer", "macro_f1", "trainable_params", "acc_per_mparam", "seconds_per_epoch", "epochs_run",
                 "hardware", "status"]


def build_report(job: Mapping[str, Any], out: Path, job_sha256: str | None = None) -> dict[str, Any]:
    """Write the report files of a report job (see plan.py); return the summary.json content."""
    table = collect(job)
    table["setting"] = [_setting(r) for r in table.itertuples()]
    studies = list(job["studies"])
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written: set[Path] = set()
    quick = job.get("quick")
    mode = job["mode"]
    if quick:
        setting = (f"**quick setting**: every variant capped at {quick['epochs']} epoch{'s' if quick['epochs'] != 1 else ''}, "
                   f"{quick['train_rows']:,} training rows and {quick['eval_rows']:,} validation/test rows "
                   "(seeded, stratified samples). Quick numbers show that the pipeline works and the "
                   "trends; they are not the reference accuracies")
    else:
        setting = "**full setting**: every variant trained on its dataset's whole training split"
    lines = [
        f"# textclf-pipeline report: {mode} setting",
        "",
        f"Setting: {setting}. Generated {time.strftime('%Y-%m-%d %H:%M')} from `params.yaml` "
        f"({source_commit()}) on {cpu_model()}; "
        f"studies: {', '.join(studies)}. Accuracy is test-set accuracy (fraction); reference = the "
        "number reported by the study we reproduce; Δ = ours − reference, with a caveat beside it "
        "when the reference was trained on a different number of rows. Every table row names its "
        "setting, the training and test rows it used (from its metrics.json), its seed and its "
        "vectors.",
        "",
    ]
    summary: dict[str, Any] = {"mode": mode, "job_sha256": job_sha256, "studies": {}}
    # each run's predictions read once for the study statistics and the headline: a damaged
    # file gives one warning and counts as missing
    predictions = {r.results: load_predictions(r.results) for r in table[table["accuracy"].notna()].itertuples()}
    sections: list[str] = []
    for study in studies:
        rows = table[table["study"] == study]
        section, metrics = _study_section(job, study, rows, figures, written, predictions)
        sections += section
        summary["studies"][study] = metrics
    lines += _overview(table, summary["studies"])
    lines += _headline_section(table, summary["studies"], job, predictions)
    lines += sections
    lines += _datasets_section(job, table)
    _remove_stale(figures, written)
    markdown = "\n".join(lines) + "\n"
    atomic.write_text(out / "summary.md", markdown)
    atomic.write_json(out / "summary.json", summary)
    atomic.write_parquet(out / "variants.parquet", table.drop(columns=["confusion_matrix", "classes"], errors="ignore"))
    from textclf.report.html import render_html

    atomic.write_text(out / "summary.html", render_html(markdown, out, title=f"textclf-pipeline report ({mode} setting)"))
    return summary


# --------------------------------------------------------------------------- setting


def _setting(row: Any) -> str:
    """full / quick, from the result itself (metrics.json `quick`), else from the variant."""
    quick = getattr(row, "quick", None)
    if isinstance(quick, bool):
        return "quick" if quick else "full"
    return str(getattr(row, "mode", "") or "")


def _span(values: Iterable[Any]) -> str:
    nums = sorted({int(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))})
    if not nums:
        return "?"
    return f"{nums[0]:,}" if len(nums) == 1 else f"{nums[0]:,}–{nums[-1]:,}"


def _largest(values: pd.Series) -> int | None:
    return int(values.max()) if values.notna().any() else None


def _range(values: pd.Series) -> list[int] | None:
    return [int(values.min()), int(values.max())] if values.notna().any() else None


def _seeds(values: Iterable[Any]) -> str:
    return ",".join(str(s) for s in sorted({int(v) for v in values}))


def _vectors(rows: pd.DataFrame) -> str:
    if "embedding" not in rows:
        return "tf-idf"
    labels = [("tf-idf" if (isinstance(v, float) and math.isnan(v)) or v is None else str(v)) for v in rows["embedding"]]
    return ", ".join(sorted(set(labels)))


def _hardware(rows: pd.DataFrame) -> str:
    if "hardware" not in rows:
        return "not recorded"
    torch_versions = rows["torch_version"] if "torch_version" in rows else [None] * len(rows)
    versions: dict[str, set[str]] = {}  # hardware -> torch versions (none for TF-IDF rows)
    for hw, tv in zip(rows["hardware"], torch_versions, strict=True):
        if isinstance(hw, str):
            versions.setdefault(hw, set()).update([tv] if isinstance(tv, str) else [])
    labels = [f"{hw} (torch {', '.join(sorted(tv))})" if tv else hw for hw, tv in sorted(versions.items())]
    return ", ".join(labels) if labels else "not recorded"


def setting_line(done: pd.DataFrame, *, markdown: bool = True) -> str:
    """One line: setting, rows used per dataset, seeds, vectors, hardware (of the rows with results)."""
    if done.empty:
        return ""
    settings = "/".join(dict.fromkeys(done["setting"]))
    parts = [f"{d}: {_span(g['n_train'])} train / {_span(g['n_test'])} test rows" for d, g in done.groupby("dataset")]
    seeds = _seeds(done["seed"])
    text = (f"{settings} setting · {'; '.join(parts)} · {'seeds' if ',' in seeds else 'seed'} {seeds} · "
            f"vectors {_vectors(done)}"
            f" · trained on {_hardware(done)}")
    return f"**Setting**: {text}" if markdown else text


def _delta_cell(study: str, row: Any) -> str:
    """Δ with the train-size caveat beside it when ours and the reference's differ."""
    if row.delta is None or (isinstance(row.delta, float) and math.isnan(row.delta)):
        return ""
    text = f"{row.delta:+.4f}"
    gap = train_rows_gap(study, row.dataset, row.n_train)
    return f"{text} ⚠ {gap}" if gap else text


def source_commit() -> str:
    """'commit abc1234' (with '+ uncommitted changes' when tracked files other than the reports
    and dvc.lock differ), or 'not a git checkout': which code and params rendered this report."""
    state = commit_state([".", ":!reports", ":!dvc.lock"])
    if state is None:
        return "not a git checkout"
    return f"commit {state[0]}" + (" + uncommitted changes" if state[1] else "")


# --------------------------------------------------------------------------- sections


def _overview(table: pd.DataFrame, studies: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One row per study: its setting as the results say, and its best variant."""
    from textclf.report.html import _slug

    rows = []
    for study, m in studies.items():
        done = table[(table["study"] == study) & table["accuracy"].notna()]
        rows.append({"study": f"[{study}](#study-{_slug(study)})", "setting": m["mode"] or "",
                     "datasets": ", ".join(sorted(done["dataset"].unique())) if len(done) else "",
                     "train rows": _span(done["n_train"]) if len(done) else "",
                     "test rows": _span(done["n_test"]) if len(done) else "",
                     "seeds": m["detail"]["seed_list"] or "", "variants run": f"{m['variants_done']} of "
                     f"{m['variants_done'] + m['detail']['variants_missing']}",
                     "best variant": m["best"] or ("one per dataset" if done["dataset"].nunique() > 1 else ""),
                     "best accuracy": m["acc"],
                     "wall time": _wall_cell(m["detail"], len(done))})
    return ["## Overview", "", md_table(pd.DataFrame(rows), formats={"best accuracy": "{:.4f}".format}), ""]


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


BASELINE_MODEL = "tfidf_logreg"


def _neural_variants(table: pd.DataFrame, study: str, dataset: str) -> int:
    """How many of a study's variants on a dataset the headline ranks (its TF-IDF rows have their own column)."""
    rows = table[(table["study"] == study) & (table["dataset"] == dataset) & (table["model"] != BASELINE_MODEL)]
    return rows["variant"].nunique()


def _headline_section(table: pd.DataFrame, studies: Mapping[str, Mapping[str, Any]],
                      job: Mapping[str, Any], predictions: Mapping[str, pd.DataFrame | None]) -> list[str]:
    """Per study and dataset: the best variant (by test accuracy, as the references ranked) with
    its 95 % interval, its published number, the study's best published number and the TF-IDF
    baseline on the same split, with the train size, seeds, vectors and hardware behind it."""
    done = table[table["accuracy"].notna()]
    # the baseline trained on every training row (a train_fraction study's smaller samples are not "the same rows")
    whole = done[(done["model"] == BASELINE_MODEL) & (done["train_fraction"].fillna(1.0) == 1.0)]
    tfidf = whole.groupby("dataset")["accuracy"].mean().to_dict()
    tfidf_rows = whole.groupby("dataset")["n_train"].max().to_dict()
    tfidf_preds = {dataset: _seed_predictions(group, predictions) for dataset, group in whole.groupby("dataset")}
    rows = []
    for study, metrics in studies.items():
        ours = done[(done["study"] == study) & (done["model"] != BASELINE_MODEL)]
        for dataset, group in ours.groupby("dataset"):
            means = group.groupby("variant")["accuracy"].mean()
            best = str(means.idxmax())
            best_rows = group[group["variant"] == best]
            its_ref = best_rows["reference"].iloc[0]
            ci = metrics["detail"]["ci"].get(f"{dataset}/best") or metrics["detail"]["ci"].get("best") or \
                {"ci_low": metrics.get("acc_ci_low"), "ci_high": metrics.get("acc_ci_high")}
            low, high = ci.get("ci_low"), ci.get("ci_high")
            rows.append({
                "study": study, "dataset": dataset, "train rows": _span(best_rows["n_train"]),
                "seeds": _seeds(best_rows["seed"]), "vectors": _vectors(best_rows), "hardware": _hardware(best_rows),
                "best variant": f"`{best}`", "accuracy [95 % CI]": f"{means.max():.4f}" + (
                    f" [{low:.4f}, {high:.4f}]" if isinstance(low, float) and isinstance(high, float) else ""),
                "its reference": "" if pd.isna(its_ref) else
                f"{float(its_ref):.4f}{_warn(study, dataset, best_rows['n_train'].max())}",
                "study's best reference": _best_reference(study, dataset, job["studies"][study],
                                                          group),
                "TF-IDF, same split": _tfidf_cell(tfidf.get(dataset), tfidf_rows.get(dataset), best_rows["n_train"]),
                "vs TF-IDF (paired p)": _versus(paired_against(_seed_predictions(best_rows, predictions),
                                                               tfidf_preds.get(dataset, {}))),
                "neural variants run": f"{group['variant'].nunique()} of {_neural_variants(table, study, dataset)}",
            })
    if not rows:
        return []
    return ["## Headline", "",
            "Best variant per study and dataset (by test accuracy, the references' ranking; a sweep "
            "study's view below also ranks by validation). *its reference*: the published number for "
            "that variant; *study's best reference*: the highest published number in the study, with "
            "its variant (which may not have run here, or ran at another setting). ⚠: the reference "
            "trained on other rows than ours (the study's Δ column says which). *seeds* lists the "
            "seeds' numbers (`5`: one run, seed 5); the vectors column says which vectors each row used. "
            "*TF-IDF, same split*: TF-IDF + logistic regression on the same train/test split (its "
            "train rows named when they differ from the best variant's). "
            "*vs TF-IDF*: the best variant's accuracy minus the TF-IDF row's on the same test items "
            "(seed-averaged), with the exact paired sign-flip test's two-sided p (McNemar's test for "
            "one seed); p ≥ 0.05 means the data do not tell the two apart.", "",
            md_table(pd.DataFrame(rows)), ""]


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


def _seed_predictions(runs: pd.DataFrame, predictions: Mapping[str, pd.DataFrame | None]) -> dict[int, pd.DataFrame]:
    """seed -> test predictions of these runs (those whose predictions.parquet could be read)."""
    found = {int(r.seed): predictions.get(r.results) for r in runs.itertuples()}
    return {seed: frame for seed, frame in found.items() if frame is not None}


def _versus(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    p = comparison.p_value
    return f"{comparison.diff:+.4f} " + ("(p < 0.0001)" if p < 1e-4 else f"(p {p:.2g})")


def _datasets_section(job: Mapping[str, Any], table: pd.DataFrame) -> list[str]:
    """Rows actually used per study and dataset (from the results), then the prepared splits
    they were drawn from (the quick setting samples from these)."""
    used = []
    for (study, dataset), group in table.groupby(["study", "dataset"], sort=False):
        done = group[group["accuracy"].notna()]
        used.append({"study": study, "dataset": dataset, "setting": "/".join(dict.fromkeys(done["setting"])) or "",
                     "train rows used": _span(done["n_train"]) if len(done) else "",
                     "test rows used": _span(done["n_test"]) if len(done) else "",
                     "seeds": _seeds(done["seed"]) if len(done) else "",
                     "vectors": _vectors(done) if len(done) else "",
                     "variants run": f"{done['variant'].nunique()} of {group['variant'].nunique()}"})
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
    lines = ["## Datasets: rows used", "",
             "Rows each study's results were trained and tested on (metrics.json `n_train` / `n_test`):", "",
             md_table(pd.DataFrame(used)), "",
             "The prepared splits they come from (all rows; the quick setting samples from them):", "",
             md_table(pd.DataFrame(prepared)), ""]
    return lines


def _rank(done: pd.DataFrame) -> pd.DataFrame:
    """Sorted by dataset, then accuracy; `rank` counts within the dataset (never across)."""
    done = done.sort_values(["dataset", "accuracy"], ascending=[True, False]).copy()
    done["rank"] = done.groupby("dataset").cumcount() + 1
    return done


def _run_command(job: Mapping[str, Any], study: str) -> str:
    """The command that trains a study's missing runs, whatever the time budget (run.budget)."""
    quick = " quick=true" if job["mode"] == "quick" else ""
    return f"snakemake --cores 2 --config budget=none studies=[{study}]{quick}"


def _study_section(job, study, rows, figures, written, predictions) -> tuple[list[str], dict[str, Any]]:
    spec = job["studies"][study]
    done = _rank(rows[rows["accuracy"].notna()])
    failed = rows[rows["status"].astype(str).str.startswith("failed")]
    missing = rows[rows["status"] == "missing"]
    lines = [f"## {study}", ""] + ([spec["description"], ""] if spec.get("description") else [])
    if spec.get("reference_source"):
        lines += [f"Reference: {spec['reference_source']}", ""]
    if len(done):
        lines += [setting_line(done), ""]
    n_variants = rows.groupby(["dataset", "variant"]).ngroups
    n_done = done.groupby(["dataset", "variant"]).ngroups if len(done) else 0
    lines += [f"{n_done} of {n_variants} variant{'s' if n_variants != 1 else ''} "
              f"{'has' if n_done == 1 else 'have'} results"
              + (f" ({len(done)} runs over seeds)" if len(done) != n_done else "") + "."]
    pending = pd.concat([missing, failed])
    if len(pending):
        lines += ["", _pending_line(job, study, pending)]
    lines += [""]
    shown_rows = pd.concat([done, failed])
    if len(shown_rows):
        shown_rows = shown_rows.assign(delta=[_delta_cell(study, r) for r in shown_rows.itertuples()])
        shown = [c for c in TABLE_COLUMNS if c in shown_rows and _has_values(shown_rows[c])]
        lines += [md_table(shown_rows[shown]), ""]
    lines += _cross_size_note(study, done)
    chosen = validation_choice(done)
    lines += _validation_choice_lines(chosen)
    groups = same_settings_groups([r for r in job["runs"] if r["variant"]["study"] == study])
    whole = {r: load_predictions(r, probabilities=True)  # classes and probabilities, of readable files only
             for g in groups for r in g.results if predictions.get(r) is not None}
    same_lines, same_entries = same_settings_lines(groups, whole)
    lines += same_lines
    colors = variant_colors(rows["variant"])
    setting = setting_line(done, markdown=False)
    lines += _figures(study, done, figures, colors, setting, written)
    reference_rows = {d: reference_train_rows(study, d) for d in done["dataset"].unique()}
    size_lines, size_figure = train_size_section(study, done, figures, setting,
                                                 {d: n for d, n in reference_rows.items() if isinstance(n, int)})
    if size_figure:
        written.add(size_figure)
        lines += size_lines
    never = rows[rows["status"] == "never learned"]
    if len(never):
        lines += ["**Never learned** (no better than the majority class): "
                  + ", ".join(f"`{r.id}` seed {r.seed}" for r in never.itertuples()), ""]
    lines += _scratch_gru_lines(done, predictions)
    if len(done) > 1:
        by_eff = done.dropna(subset=["acc_per_mparam"])
        by_eff = by_eff.sort_values(["dataset", "acc_per_mparam"], ascending=[True, False]).groupby("dataset").head(10)
        if len(by_eff):
            lines += ["Ranking by accuracy per million trainable parameters (per dataset, top 10):", "",
                      md_table(by_eff[["variant", "dataset", "seed", "accuracy", "trainable_params", "acc_per_mparam"]]),
                      ""]
    stat_lines, stat_metrics, analyses = _statistics(study, done, figures, setting, written, predictions)
    lines += stat_lines
    gaps = outside_reference(study, spec, done, analyses)
    lines += outside_reference_lines(gaps)
    if spec.get("sweep"):
        trials = [(run["variant"], json.loads((Path(run["results"]) / "metrics.json").read_text(encoding="utf-8")))
                  for run in job["runs"] if run["variant"]["study"] == study and run["results"] in set(done["results"])]
        sweep_lines = sweep_section(study, trials, figures)
        written.update(figures / f"{study}_parallel.png" for _ in sweep_lines[:1])
        lines += sweep_lines
    lines += _training_time_lines(job["mode"], done)
    metrics = _headline(study, rows, done, stat_metrics, chosen)
    metrics["detail"]["outside_reference"] = gaps
    if same_entries:
        metrics["detail"]["same_settings"] = same_entries
    for dataset, group in done.groupby("dataset"):
        preds = {f"{r.id} s{r.seed}": predictions[r.results] for r in group.itertuples()}
        classes = job["datasets"][dataset]["classes"]
        analysis = error_analysis(preds, classes)
        if analysis:
            full_rows = _prepared_rows(job, dataset, "test")
            lines += _error_lines(dataset, analysis, full_rows)
            entry = {"models": analysis["models"], "items": analysis["items"], "all_wrong": analysis["all_wrong"],
                     "full_test_set": full_rows is not None and analysis["items"] == full_rows}
            if "ensemble_accuracy" in analysis:
                entry["ensemble_accuracy"] = json_number(analysis["ensemble_accuracy"])
            metrics["detail"].setdefault("errors", {})[dataset] = entry
    return lines, metrics


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def _training_time_lines(mode: str, done: pd.DataFrame) -> list[str]:
    """What training took, summed over the study's runs per hardware (metrics.json: seconds per
    epoch x epochs), and, for runs on this machine's CPU, the estimate made before them."""
    if done.empty:
        return []
    seconds = done["seconds_per_epoch"].fillna(0) * done["epochs_run"].fillna(0)
    recorded = done["hardware"] if "hardware" in done else pd.Series(None, index=done.index, dtype=object)
    hardware = recorded.astype(object).map(lambda v: v if isinstance(v, str) else "hardware not recorded")
    parts = [f"{format_duration(float(seconds[hardware == hw].sum()))} on {hw} ({_runs(int((hardware == hw).sum()))})"
             for hw in sorted(hardware.unique())]
    lines = [f"Training time (sum over runs): {', '.join(parts)}.", wall_time_line(done)]
    on_gpu = hardware.str.endswith(" GPU")
    estimate = estimate_line(mode, dict(zip(done.loc[~on_gpu, "results"], seconds[~on_gpu], strict=True)))
    if estimate:
        lines += [estimate + (" (CPU runs only: the estimate is for this machine's CPU)" if on_gpu.any() else "")]
    return [line for line in lines if line] + [""]


def _pending_cost(mode: str, pending: pd.DataFrame) -> str:
    """' (estimated X of CPU training here)' from the estimates `textclf plan` or a run saved."""
    found = saved_estimates(mode, pending["results"])
    if not found:
        return ""
    total = format_duration(sum(e["seconds"] for e in found.values()))
    share = "" if len(found) == len(pending) else f" for {len(found)} of the {len(pending)} runs"
    return f" (estimated {total} of CPU training on this machine{share}, `textclf plan`)"


PENDING_NAMES = 8  # up to this many unrun variants are named in their study's one line


def _pending_line(job: Mapping[str, Any], study: str, pending: pd.DataFrame) -> str:
    """ONE line for every variant of the study without usable results: how many, their names
    when few (all of them are in variants.parquet), and the command that runs them."""
    groups = list(pending.groupby(["id", "status"], sort=False))
    n = pending.groupby(["dataset", "variant"]).ngroups
    what = f"{n} variant{'s' if n != 1 else ''}" + (f" ({len(pending)} runs)" if len(pending) != n else "")
    names = ""
    if len(groups) <= PENDING_NAMES:
        names = ": " + ", ".join(f"`{vid}` ({status}" + (f", seeds {_seeds(g['seed'])}" if len(g) > 1 else "") + ")"
                                 for (vid, status), g in groups)
    return (f"**Missing or failed** ({job['mode']} setting): {what} without usable results{names}"
            f"{_pending_cost(job['mode'], pending)}; to run them: `{_run_command(job, study)}`.")


def validation_choice(done: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per dataset, the variant with the highest mean validation accuracy over its seeds (when
    at least two variants have one): the choice a user makes without looking at test."""
    if "val_accuracy" not in done:
        return {}
    chosen = {}
    for dataset, group in done.dropna(subset=["val_accuracy"]).groupby("dataset"):
        means = group.groupby("variant")[["val_accuracy", "accuracy"]].mean()
        if len(means) >= 2:
            best = str(means["val_accuracy"].idxmax())
            chosen[str(dataset)] = {"variant": best, "val_accuracy": json_number(means.loc[best, "val_accuracy"]),
                                    "accuracy": json_number(means.loc[best, "accuracy"]),
                                    "n_seeds": int((group["variant"] == best).sum())}
    return chosen


def _validation_choice_lines(chosen: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [f"**Chosen on validation** ({dataset}): `{c['variant']}`, validation accuracy {c['val_accuracy']:.4f}, "
             f"test {c['accuracy']:.4f} ({'means over its seeds' if c.get('n_seeds', 1) > 1 else 'one seed'}; "
             "the table ranks by test accuracy, as the references did)."
             for dataset, c in chosen.items()]
    return [*lines, ""] if lines else []


def _has_values(column: pd.Series) -> bool:
    return bool(column.map(lambda v: not (v is None or v == "" or (isinstance(v, float) and math.isnan(v)))).any())


def _cross_size_note(study: str, done: pd.DataFrame) -> list[str]:
    """Under the table: what the ⚠ beside Δ means for this study, once."""
    with_ref = done[done["reference"].notna()]
    notes = []
    for dataset, group in with_ref.groupby("dataset"):
        ref_rows = reference_train_rows(study, dataset)
        ours = _span(group["n_train"])
        if isinstance(ref_rows, str):
            notes.append(f"on {dataset} the reference ran on {ref_rows}; ours on {ours} {dataset} training rows")
        elif ref_rows is None:
            notes.append(f"on {dataset} the reference's training-set size is not recorded; ours used {ours} rows")
        elif ours != f"{ref_rows:,}":
            notes.append(f"on {dataset} ours trained on {ours} rows, the reference on {ref_rows:,}")
    if not notes:
        return []
    return ["⚠ **Δ is not like for like**: " + "; ".join(notes) + ". A difference between runs on different "
            "training data says little about the models.", ""]


def _figures(study, done, figures, colors, setting, written) -> list[str]:
    """The study's figures right under its table: one caption line naming each, then the images
    (consecutive, so the HTML page lays them out side by side)."""
    captions: list[str] = []
    images: list[str] = []
    neural = done[done["model"] == "rnn"] if "model" in done else done.iloc[0:0]
    histories: dict[tuple[str, str], list] = {}
    for r in neural.itertuples():
        split = r.eval_split if isinstance(r.eval_split, str) else "val"
        histories.setdefault((r.dataset, r.variant), []).append((load_history(r.results), split))
    curves = learning_curves(histories, f"{study}: learning curves", setting, colors, figures / f"{study}_curves.png")
    if curves:
        written.add(curves)
        from textclf.report.html import write_curves_data

        written.add(write_curves_data(histories, figures / "curves" / f"{study}.json"))
        tfidf = "" if len(neural) == len(done) else "; TF-IDF baselines have no epochs and are not drawn"
        captions.append("learning curves (solid = validation split, dashed = test split for variants with "
                        f"`eval_split: test`, dotted = training split; one colour per variant{tfidf})")
        images.append(f"![{study}: learning curves](figures/{curves.name})")
    scatter = accuracy_vs_params(done, f"{study}: accuracy vs. parameters", setting, colors,
                                 figures / f"{study}_acc_vs_params.png")
    if scatter:
        written.add(scatter)
        captions.append("test accuracy vs. trainable parameters (one axis per dataset)")
        images.append(f"![{study}: accuracy vs. trainable parameters](figures/{scatter.name})")
    datasets = sorted(done["dataset"].unique())
    for dataset in datasets:
        best = done[done["dataset"] == dataset].iloc[0]
        if not isinstance(best["confusion_matrix"], list):
            continue
        name = f"{study}_confusion.png" if len(datasets) == 1 else f"{study}_{dataset}_confusion.png"
        title = f"{study} ({dataset}): best variant {best['variant']} seed {best['seed']}, accuracy {best['accuracy']:.4f}"
        path = confusion(best["confusion_matrix"], best["classes"] or [], title, setting, figures / name)
        written.add(path)
        captions.append(f"confusion matrix of the best variant on {dataset} (`{best['variant']}`, seed "
                        f"{best['seed']}; row-normalised)")
        images.append(f"![{study}: confusion matrix on {dataset}](figures/{path.name})")
    if not images:
        return []
    return [f"Figures ({setting}): " + "; ".join(captions) + ".", "", *(line for img in images for line in (img, ""))]


# summary.json, per study: a short headline (what `dvc exp show` can print, README "DVC views"),
# `best_accuracy` and `variants_done` (long-standing keys), and everything else under `detail`.
# None of these names is also a key of a study in params.yaml (description, datasets, vocab,
# model, set, variants, grid, seeds, reference), so a --drop pattern can tell these metrics from
# changed parameters (tests/test_report.py checks it against the schema).
HEADLINE_KEYS = ("acc", "best", "mode", "n_train", "n_test")
STUDY_KEYS = ("acc", "acc_ci_low", "acc_ci_high", *HEADLINE_KEYS[1:], "best_accuracy", "variants_done", "detail")


def _headline(study: str, rows: pd.DataFrame, done: pd.DataFrame, stat_metrics: dict[str, Any],
              chosen: Mapping[str, Any]) -> dict[str, Any]:
    """summary.json's entry of one study: `acc` (best test accuracy, mean over seeds), `best` (its variant),
    `mode`, and `n_train`, `n_test` (the best's rows, ints) as the results say; under `detail` the
    rest (every run's rows as `n_train_range`), with per-variant numbers under `detail.by_variant`."""
    # the best variant by its mean over seeds, as the headline and the statistics rank it; none
    # across datasets (that would compare accuracies on different test sets: see the per-dataset CIs)
    means = done.groupby(["dataset", "variant"])["accuracy"].mean() if done["dataset"].nunique() == 1 else None
    best = {"variant": means.idxmax()[1], "accuracy": means.max()} if means is not None else None
    rows_of_best = done[(done["variant"] == best["variant"])] if best is not None else done.iloc[:0]
    n_done = done.groupby(["dataset", "variant"]).ngroups if len(done) else 0
    wall = study_wall_time(done) if len(done) else None
    nested: dict[str, Any] = {}
    for key, value in stat_metrics.items():  # "[<dataset>.]<variant>.mean" -> nested dicts
        head, _, leaf = key.rpartition(".")
        nested.setdefault(head, {})[leaf] = value
    multi = done["dataset"].nunique() > 1
    by_variant: dict[str, Any] = {}
    for (dataset, variant), group in done.groupby(["dataset", "variant"]):
        name = f"{dataset}/{variant}" if multi else variant
        entry = dict(nested.pop(f"{dataset}.{variant}" if multi else variant, {}))
        entry.update({"setting": "/".join(dict.fromkeys(group["setting"])),
                      "n_train": _largest(group["n_train"]), "n_test": _largest(group["n_test"]),
                      "seed_list": _seeds(group["seed"]), "vectors": _vectors(group),
                      "hardware": _hardware(group)})
        by_variant[name] = entry
    interval = nested.get("best", {})  # the best variant's 95 % interval (one test set)
    return {
        "acc": json_number(best["accuracy"]) if best is not None else None,
        "acc_ci_low": interval.get("ci_low"),
        "acc_ci_high": interval.get("ci_high"),
        "best": str(best["variant"]) if best is not None else None,
        "mode": "/".join(dict.fromkeys(done["setting"])) if len(done) else None,
        "n_train": _largest(rows_of_best["n_train"]),  # the rows behind `acc`: ints, as any consumer reads them
        "n_test": _largest(rows_of_best["n_test"]),
        "best_accuracy": json_number(best["accuracy"]) if best is not None else None,
        "variants_done": int(n_done),
        "detail": {
            "variants_missing": int(rows.groupby(["dataset", "variant"]).ngroups - n_done),
            "mean_accuracy": json_number(done["accuracy"].mean()) if len(done) else None,
            "n_train_range": _range(done["n_train"]),  # [fewest, most] rows over all the study's runs
            "n_test_range": _range(done["n_test"]),
            "seed_list": _seeds(done["seed"]) if len(done) else None,
            "vectors": _vectors(done) if len(done) else None,
            "hardware": _hardware(done) if len(done) else None,
            "wall_seconds": round(wall.seconds, 1) if wall else None,  # report/walltime.py
            "wall_runs_timed": wall.timed if wall else 0,
            "wall_runs_resumed": wall.resumed if wall else 0,  # their epochs before the resume:
            "wall_seconds_before_resume": round(wall.before_resume, 1) if wall else 0.0,  # not in wall_seconds
            "chosen_on_validation": dict(chosen),
            # what is left of the statistics: the best's interval ("best", or "<dataset>/best")
            "ci": {head.replace(".", "/"): value for head, value in nested.items()},
            "by_variant": by_variant,
        },
    }


def _statistics(study: str, done: pd.DataFrame, figures: Path, setting: str, written: set[Path],
                predictions_by_run: Mapping[str, pd.DataFrame | None]
                ) -> tuple[list[str], dict[str, Any], dict[str, StudyStats]]:
    """Seeds, intervals and paired tests (report/stats.py), once per test set of the study:
    its lines, its summary.json metrics and the analysis per dataset."""
    lines: list[str] = []
    metrics: dict[str, Any] = {}
    analyses: dict[str, StudyStats] = {}
    datasets = sorted(done["dataset"].unique())
    for dataset in datasets:
        group = done[done["dataset"] == dataset]
        runs = pd.DataFrame({"variant": group["variant"], "seed": group["seed"].astype(int),
                             "accuracy": group["accuracy"].astype(float), "n_test": group["n_test"].astype(int),
                             "reference": group["reference"].astype(float)})
        predictions = {(r.variant, int(r.seed)): _contract(predictions_by_run[r.results]) for r in group.itertuples()}
        analysis = analyses[dataset] = analyze_study(runs, predictions)
        name = study if len(datasets) == 1 else f"{study}_{dataset}"
        title = study if len(datasets) == 1 else f"{study} ({dataset})"
        figure = stats_figure(analysis, figures / f"{name}_accuracy_ci.png", f"{title} [{setting}]")
        written.add(figure)
        lines += [render_study_section(analysis, title=title, figure=f"figures/{figure.name}"), ""]
        flat = summary_metrics(analysis)
        metrics.update(flat if len(datasets) == 1 else {f"{dataset}.{k}": v for k, v in flat.items()})
    return lines, metrics, analyses


def _contract(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A run's predictions as the statistics take them (id, label, pred as int64)."""
    return None if frame is None else frame[["id", "label", "pred"]].astype("int64")


def _prepared_rows(job: Mapping[str, Any], dataset: str, split: str) -> int | None:
    path = Path(job["datasets"][dataset]["stats"])
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("rows", {}).get(split)
    return int(value) if value is not None else None


# what must match for a hand-written GRU run and an nn.GRU run to be the same training
SCRATCH_TWIN_KEYS = ("dataset", "setting", "embedding", "max_len", "eval_split", "optimizer", "hidden", "layers",
                     "n_train")


def _scratch_gru_lines(done: pd.DataFrame, predictions: Mapping[str, pd.DataFrame | None]) -> list[str]:
    """The hand-written GRU against nn.GRU trained the same way (same vectors, length, optimizer,
    split and rows; unidirectional): time per epoch and accuracy, with the paired test."""
    if "cell" not in done or "bidirectional" not in done:
        return []
    both = done[(done["bidirectional"] != True) & done["cell"].isin(["gru_scratch", "gru"])]  # noqa: E712
    keys = [k for k in SCRATCH_TWIN_KEYS if k in both]
    lines = []
    for _, group in both.groupby(keys, dropna=False, sort=True):
        scratch, native = group[group["cell"] == "gru_scratch"], group[group["cell"] == "gru"]
        seconds = scratch["seconds_per_epoch"].mean(), native["seconds_per_epoch"].mean()
        if scratch.empty or native.empty or not (seconds[0] > 0 and seconds[1] > 0):
            continue
        names = [", ".join(f"`{v}`" for v in dict.fromkeys(rows["variant"])) for rows in (scratch, native)]
        versus = _versus(paired_against(_seed_predictions(scratch, predictions), _seed_predictions(native, predictions)))
        lines.append(f"- {names[0]} vs {names[1]}: {seconds[0]:.1f} s vs {seconds[1]:.1f} s per epoch, "
                     f"**{seconds[0] / seconds[1]:.1f}x**; accuracy {scratch['accuracy'].mean():.4f} vs "
                     f"{native['accuracy'].mean():.4f}" + (f", difference {versus}" if versus else ""))
    if not lines:
        return []
    return ["**Hand-written GRU vs nn.GRU**, trained the same way (the reference measured ~21x: 8,075 s vs "
            "388 s, with the input projection inside its step loop; ours computes it for all steps in one "
            "matmul, so the ratios are not comparable; difference = hand-written − nn.GRU on the same test "
            "items, with the exact paired test's p, which covers test-set sampling, not training randomness):",
            "", *lines, ""]


def _error_lines(dataset: str, a: Mapping[str, Any], full_rows: int | None) -> list[str]:
    by_class = ", ".join(f"{k} {int(v):,}" for k, v in a["all_wrong_by_class"].items()) or "none"
    items = a["items"]
    if full_rows is not None and items == full_rows:
        where = f"the whole test set ({items:,} items)"
    elif full_rows is not None and items < full_rows:
        where = f"the {items:,}-item quick sample of the test set (the full test set has {full_rows:,})"
    else:
        where = f"the {items:,} test items all models share"
    lines = [f"### Error analysis: {dataset}, {a['models']} models, {where}", "",
             f"- Items every model gets wrong: **{a['all_wrong']:,}** of {items:,} (by true class: {by_class})."]
    if "ensemble_accuracy" in a:
        lines.append(f"- Majority-vote ensemble of {a['models']} models on {where}: accuracy "
                     f"**{a['ensemble_accuracy']:.4f}**, macro-F1 {a['ensemble_macro_f1']:.4f} "
                     f"(best single model {a['best_single_accuracy']:.4f}).")
    else:
        lines.append(f"- No ensemble: a majority vote needs at least 3 models ({a['models']} here).")
    return [*lines, ""]


def _remove_stale(figures: Path, written: set[Path]) -> None:
    """Figures and plot data of studies no longer selected would be shown as if current."""
    keep = {p.resolve() for p in written}
    for path in list(figures.glob("*.png")) + list(figures.glob("curves/*.json")):
        if path.resolve() not in keep:
            path.unlink()
