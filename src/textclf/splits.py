"""Split names, class names and the row samples (train_fraction, the quick setting): shared by
the neural trainer and the TF-IDF baseline without importing torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from textclf.errors import DataError
from textclf.settings import Variant

SPLITS = ("train", "val", "test")


def read_classes(prepared_dir: str | Path) -> list[str]:
    """Class names in label order, from the prepare stage's stats.json."""
    path = Path(prepared_dir) / "stats.json"
    if not path.is_file():
        raise DataError(f"{path} not found (run the prepare stage first)")
    classes = json.loads(path.read_text(encoding="utf-8")).get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise DataError(f"{path}: 'classes' must list at least two class names, got {classes!r}")
    return [str(c) for c in classes]


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted row indices of a seeded, class-stratified sample of at most n rows.

    Sorted so the sample keeps the split's deterministic row order. Falls back to a plain
    seeded sample when a class is too small to stratify.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    index = np.arange(len(labels))
    try:
        chosen, _ = train_test_split(index, train_size=n, stratify=labels, random_state=seed)
    except ValueError:
        chosen, _ = train_test_split(index, train_size=n, random_state=seed)
    return np.sort(chosen)


def row_sample(variant: Variant, split: str, labels: np.ndarray) -> np.ndarray | None:
    """Row indices to keep (seeded, stratified), or None to keep everything: the quick setting's
    caps, then the fraction of the training rows `training.train_fraction` asks for (after the
    cap, so a learning curve keeps its shape under quick)."""
    n = sampled_rows(variant, split, len(labels))
    return stratified_indices(labels, n, variant.seed) if n < len(labels) else None


def sampled_rows(variant: Variant, split: str, rows: int) -> int:
    """How many of a split's `rows` a replica trains or evaluates on (see row_sample)."""
    if variant.quick is not None:
        rows = min(rows, variant.quick.train_rows if split == "train" else variant.quick.eval_rows)
    if split == "train" and variant.training.train_fraction < 1.0:
        rows = max(1, round(rows * variant.training.train_fraction))
    return rows
