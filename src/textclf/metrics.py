"""Classification metrics and the results files every trained variant writes.

Neural variants and the TF-IDF baseline both end here, so `metrics.json`, `history.csv` and
`predictions.parquet` have one format whichever model produced them (docs/CONTRACTS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss

from textclf.atomic import atomic_path, write_json, write_parquet

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "tokens_per_s", "lr"]
NEVER_LEARNED_MARGIN = 0.02
"""A run whose final train accuracy is within this of the majority-class rate never learned."""
TIMING_KEYS = frozenset({"seconds_per_epoch", "tokens_per_second", "resumed_from_epoch",
                         "started_at", "finished_at", "wall_seconds"})
"""The metrics.json fields that measure time, not results: two exact reruns differ only in these."""


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any] | None:
    """accuracy, macro-F1, mean cross-entropy and the confusion matrix (rows: true class),
    from class probabilities [N, K]. None for an empty split."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return None
    probs = np.asarray(probs, dtype=np.float64)
    finite = bool(np.isfinite(probs).all())
    if not finite:  # a diverged run: report it (loss NaN) instead of crashing in log_loss
        probs = np.nan_to_num(probs, nan=0.0, posinf=1.0, neginf=0.0) + 1e-12
    probs = probs / probs.sum(axis=1, keepdims=True)
    classes = np.arange(probs.shape[1])
    preds = probs.argmax(axis=1)
    # macro-F1 over the classes present in truth or predictions: a class absent from a small
    # (quick-mode) sample must not count as F1 = 0
    present = np.union1d(labels, preds)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, labels=present, average="macro", zero_division=0)),
        "loss": float(log_loss(labels, probs, labels=classes)) if finite else float("nan"),
        "confusion_matrix": confusion_matrix(labels, preds, labels=classes).tolist(),
        "n": int(len(labels)),
    }


def majority_rate(labels: np.ndarray) -> float:
    labels = np.asarray(labels)
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def never_learned(train_acc: float, train_labels: np.ndarray, test: Mapping[str, Any] | None = None) -> bool:
    """True when the model did no better than always predicting the most frequent class, on
    its final training epoch or on the reported test evaluation."""
    if train_acc <= majority_rate(train_labels) + NEVER_LEARNED_MARGIN:
        return True
    if test is not None and test.get("confusion_matrix"):
        per_class = np.asarray(test["confusion_matrix"]).sum(axis=1)
        return bool(test["accuracy"] <= per_class.max() / per_class.sum() + NEVER_LEARNED_MARGIN)
    return False


def acc_per_mparam(accuracy: float, trainable_params: int) -> float | None:
    return accuracy / (trainable_params / 1e6) if trainable_params else None


def wall_clock(started: float) -> dict[str, Any]:
    """When the run's process trained (UTC, ISO 8601) and for how long (time.time() at its start
    to now: loading, training and evaluation): the report's wall time of a study comes from these."""
    finished = datetime.now(UTC)
    return {"started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
            "wall_seconds": round(finished.timestamp() - started, 3)}


def run_summary(
    *,
    test: Mapping[str, Any],
    val: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    train_labels: np.ndarray,
    classes: Sequence[str],
    trainable_params: int,
    best_epoch: int,
    **extra: Any,
) -> dict[str, Any]:
    """The metrics.json document: test metrics at the top level, `val` beside them, cost
    figures from the per-epoch history, and whatever run facts the caller adds (`extra`)."""
    seconds = [float(h["seconds"]) for h in history]
    tokens = sum(float(h["tokens_per_s"]) * float(h["seconds"]) for h in history)
    final_train_acc = float(history[-1]["train_acc"])
    return {
        "accuracy": test["accuracy"],
        "macro_f1": test["macro_f1"],
        "loss": test["loss"],
        "confusion_matrix": test["confusion_matrix"],
        "classes": list(classes),
        "val": dict(val) if val is not None else None,
        "trainable_params": int(trainable_params),
        "acc_per_mparam": acc_per_mparam(test["accuracy"], trainable_params),
        "seconds_per_epoch": sum(seconds) / len(seconds),
        "tokens_per_second": tokens / sum(seconds) if sum(seconds) > 0 else 0.0,
        "epochs_run": len(history),
        "best_epoch": int(best_epoch),
        "final_train_acc": final_train_acc,
        "majority_rate": majority_rate(train_labels),
        "never_learned": never_learned(final_train_acc, train_labels, test),
        "n_train": int(len(train_labels)),
        "n_val": int(val["n"]) if val is not None else 0,
        "n_test": int(test["n"]),
        **extra,
    }


def predictions_frame(row_ids: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """id, label, pred, prob_<k> per row: enough for ensembles and error analysis."""
    probs = np.asarray(probs, dtype=np.float32)
    frame = pd.DataFrame(
        {
            "id": np.asarray(row_ids, dtype=np.int64),
            "label": np.asarray(labels, dtype=np.int64),
            "pred": probs.argmax(axis=1).astype(np.int64),
        }
    )
    for k in range(probs.shape[1]):
        frame[f"prob_{k}"] = probs[:, k]
    return frame


def write_results(
    out_dir: str | Path,
    *,
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    predictions: pd.DataFrame,
) -> None:
    """Write metrics.json, history.csv and predictions.parquet atomically."""
    out_dir = Path(out_dir)
    frame = pd.DataFrame(list(history), columns=HISTORY_COLUMNS)
    with atomic_path(out_dir / "history.csv", suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    write_parquet(out_dir / "predictions.parquet", predictions)
    write_json(out_dir / "metrics.json", dict(metrics))
