"""Read every variant's results (metrics, history, predictions) into tables for the report.

A variant without results is kept as a row with status "missing" (or "failed" when its
metrics file is unreadable): the report lists it instead of silently dropping it. An
unreadable results file (truncated or invalid metrics.json, history.csv, predictions.parquet)
gives one warning line naming the file and how to regenerate it; the report still builds.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from textclf.settings import canonical_json

log = logging.getLogger("textclf.report")

VARIANT_COLUMNS = ("cell", "layers", "bidirectional", "hidden", "pooling")


def describe_variant(variant: Mapping[str, Any]) -> dict[str, Any]:
    """The settings worth a column in the comparison table (a variant as the job file has it)."""
    model, training = variant["model"], variant["training"]
    row: dict[str, Any] = {"model": model["type"]}
    if model["type"] == "rnn":
        emb = model.get("embedding", {})
        row.update({k: model.get(k) for k in VARIANT_COLUMNS})
        # the vectors used: source and dimension ("glove50 50d", "random 100d"); glove100 switched to
        # the 50d member offline reads "glove100 50d"
        row["embedding"] = (f"{emb.get('source', 'random')} {emb['dim']}d" if emb.get("dim") else emb.get("source", "random")) \
            + (" frozen" if emb.get("freeze") else "")
        row["max_len"] = training["max_len"]
        row["eval_split"] = training.get("eval_split", "val")
        row["optimizer"] = f"{training['optimizer']['name']} {training['optimizer'].get('lr', '')}"
    return row


def dataset_references(study: Mapping[str, Any], dataset: str) -> dict[str, float]:
    """variant name -> published number on `dataset`, from the study's `reference` keys
    `<variant>` or `<dataset>/<variant>` (a plain key wins over a prefixed one)."""
    found: dict[str, float] = {}
    for key, value in sorted(study.get("reference", {}).items(), key=lambda item: "/" not in str(item[0])):
        prefix, _, name = str(key).rpartition("/")
        if prefix in ("", dataset):
            found[name] = float(value)
    return found


def reference_value(study: Mapping[str, Any], variant: Mapping[str, Any]) -> float:
    return dataset_references(study, variant["dataset"]).get(variant["name"], math.nan)


def curve_key(variant: Mapping[str, Any]) -> str:
    """What makes runs points of one training-size curve: every setting but the variant's name,
    seed and training.train_fraction."""
    training = {k: v for k, v in variant.get("training", {}).items() if k not in ("seed", "train_fraction")}
    return canonical_json({**{k: v for k, v in variant.items() if k != "name"}, "training": training})


def collect(job: Mapping[str, Any]) -> pd.DataFrame:
    """One row per replica (variant × seed) the report job lists: settings, headline metrics,
    reference and status."""
    rows = []
    for run in job["runs"]:
        variant = run["variant"]
        study = job["studies"][variant["study"]]
        row: dict[str, Any] = {
            "id": f"{variant['dataset']}/{variant['study']}/{variant['name']}",
            "study": variant["study"],
            "dataset": variant["dataset"],
            "variant": variant["name"],
            "seed": variant["training"]["seed"],
            "mode": variant.get("mode", job.get("mode")),
            "results": run["results"],
            **describe_variant(variant),
            "reference": reference_value(study, variant),
            "train_fraction": variant["training"].get("train_fraction", 1.0),
            "curve_key": curve_key(variant),
            "status": "missing",
        }
        path = Path(run["results"]) / "metrics.json"
        if path.exists():
            metrics, problem = read_metrics(path)
            if metrics is not None:
                row.update(_headline(metrics))
                row["status"] = "never learned" if metrics.get("never_learned") else "ok"
            else:
                row["status"] = f"failed: {problem}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in ("accuracy", "macro_f1", "loss", "trainable_params", "acc_per_mparam",
                "seconds_per_epoch", "tokens_per_second", "epochs_run", "n_train", "n_test", "n_val",
                "started_at", "finished_at", "wall_seconds", "resumed_from_epoch"):
        if col not in frame:
            frame[col] = math.nan
    frame["delta"] = frame["accuracy"] - frame["reference"]
    return frame


def hardware_label(hardware: str | None) -> str | None:
    """Short name of what trained a result: "NVIDIA H200" -> "H200 GPU", "AMD EPYC" -> "AMD EPYC
    CPU"; results written before metrics.json named the hardware have none."""
    if not hardware:
        return None
    return f"{hardware.removeprefix('NVIDIA ').strip()} GPU" if "NVIDIA" in hardware else f"{hardware} CPU"


def regenerate_hint(path: Path) -> str:
    """How to rebuild one results file: remove it, and either engine reruns the train job."""
    return f"regenerate it: rm {path} and rerun (snakemake --cores 1 {path}, or dvc repro)"


def read_metrics(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(metrics, None), or (None, one line naming the file, the problem and the fix); the
    line is also logged as a warning."""
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problem = (f"{path} is truncated or not valid JSON ({exc.msg}: line {exc.lineno} "
                   f"column {exc.colno})")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"{path} cannot be read ({type(exc).__name__}: {exc})"
    else:
        if isinstance(metrics, dict):
            return metrics, None
        problem = f"{path} holds a JSON {type(metrics).__name__}, not the metrics object"
    line = f"{problem}; {regenerate_hint(path)}"
    log.warning("%s", line)
    return None, line


def _headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Test-set numbers are at the top level of metrics.json (see metrics.run_summary)."""
    return {
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "loss": metrics.get("loss"),
        "trainable_params": metrics.get("trainable_params"),
        "acc_per_mparam": metrics.get("acc_per_mparam"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "tokens_per_second": metrics.get("tokens_per_second"),
        "epochs_run": metrics.get("epochs_run"),
        "n_train": metrics.get("n_train"),
        "n_test": metrics.get("n_test"),
        "n_val": metrics.get("n_val"),
        "quick": metrics.get("quick"),
        "hardware": hardware_label(metrics.get("hardware")),
        "torch_version": metrics.get("torch_version"),
        "started_at": metrics.get("started_at"),
        "finished_at": metrics.get("finished_at"),
        "wall_seconds": metrics.get("wall_seconds"),
        # the epoch checkpoint a stopped run resumed from (None: it ran in one go); its epochs up to
        # there trained before `started_at`, in an earlier process
        "resumed_from_epoch": metrics.get("resumed_from_epoch"),
        "best_epoch": metrics.get("best_epoch"),
        # validation accuracy of the reported weights, for choosing a variant without test (None
        # for variants that train on their validation rows or evaluate on test)
        "val_accuracy": (metrics.get("val") or {}).get("accuracy") if metrics.get("eval_split", "val") == "val" else None,
        "confusion_matrix": metrics.get("confusion_matrix"),
        "classes": metrics.get("classes"),
    }


def load_history(results: str | Path) -> pd.DataFrame | None:
    return _read_or_warn(Path(results) / "history.csv", pd.read_csv)


def load_predictions(results: str | Path, *, probabilities: bool = False) -> pd.DataFrame | None:
    """A run's test predictions: id, label, pred (and its prob_* columns when asked)."""
    columns = None if probabilities else ["id", "label", "pred"]
    return _read_or_warn(Path(results) / "predictions.parquet", lambda p: pd.read_parquet(p, columns=columns))


def _read_or_warn(path: Path, read) -> pd.DataFrame | None:
    """read(path), or None (with one warning line naming the file and the fix) when the file
    is missing or unreadable, so one damaged file never stops the whole report."""
    if not path.exists():
        return None
    try:
        return read(path)
    except (OSError, ValueError, KeyError) as exc:  # pandas/pyarrow parse errors are ValueErrors
        log.warning("%s cannot be read (%s: %s); %s", path, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "", regenerate_hint(path))
        return None
