"""Error analysis across the variants of one study: items every model misses (≥ 2 models), and
a majority-vote ensemble (≥ 3 models: with two, a vote is a tie-break, not an ensemble) scored
on every test item the models share (the reference only looked at the rows every model got
wrong). Whether those items are the whole test set or a quick sample is the caller's to say:
`items` is how many there were."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

MIN_ENSEMBLE_MODELS = 3


def error_analysis(predictions: dict[str, pd.DataFrame], classes: Sequence[str]) -> dict[str, Any] | None:
    """Needs ≥ 2 variants with predictions on the same test ids; None otherwise. The ensemble
    keys (`ensemble_accuracy`, `ensemble_macro_f1`) are only there with ≥ 3 models."""
    frames = {k: v.set_index("id").sort_index() for k, v in predictions.items() if v is not None}
    if len(frames) < 2:
        return None
    ids = sorted(set.intersection(*(set(f.index) for f in frames.values())))
    if not ids:
        return None
    labels = next(iter(frames.values())).loc[ids, "label"].to_numpy()
    preds = np.stack([f.loc[ids, "pred"].to_numpy() for f in frames.values()])  # [models, items]
    wrong = preds != labels
    all_wrong = wrong.all(axis=0)
    per_class = pd.Series(labels[all_wrong]).map(dict(enumerate(classes))).value_counts()
    out: dict[str, Any] = {
        "models": len(frames),
        "items": len(ids),
        "all_wrong": int(all_wrong.sum()),
        "all_wrong_by_class": {str(k): int(v) for k, v in per_class.items()},
        "best_single_accuracy": float((~wrong).mean(axis=1).max()),
    }
    if len(frames) >= MIN_ENSEMBLE_MODELS:
        votes = np.apply_along_axis(np.bincount, 0, preds, minlength=len(classes))  # [classes, items]
        ensemble = votes.argmax(axis=0)  # ties → lowest class index (deterministic)
        out["ensemble_accuracy"] = float(accuracy_score(labels, ensemble))
        out["ensemble_macro_f1"] = float(f1_score(labels, ensemble, average="macro"))
    return out
