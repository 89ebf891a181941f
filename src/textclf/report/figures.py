"""Matplotlib figures for the report (headless Agg backend, PNG files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from textclf.atomic import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def learning_curves(histories: Mapping[str, pd.DataFrame], title: str, path: Path) -> Path | None:
    """Train/val accuracy and loss per epoch, one line per variant."""
    histories = {k: h for k, h in histories.items() if h is not None and len(h)}
    if not histories:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, hist in histories.items():
        line = axes[0].plot(hist["epoch"], hist["val_acc"], marker="o", ms=3, label=name)[0]
        if "train_acc" in hist:
            axes[0].plot(hist["epoch"], hist["train_acc"], ls=":", color=line.get_color())
        if "val_loss" in hist:
            axes[1].plot(hist["epoch"], hist["val_loss"], marker="o", ms=3, color=line.get_color())
        if "train_loss" in hist:
            axes[1].plot(hist["epoch"], hist["train_loss"], ls=":", color=line.get_color())
    axes[0].set(title="accuracy (solid: eval split, dotted: train)", xlabel="epoch", ylabel="accuracy")
    axes[1].set(title="loss (solid: eval split, dotted: train)", xlabel="epoch", ylabel="loss")
    if len(histories) <= 16:
        axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    return _save(fig, path)


def accuracy_vs_params(table: pd.DataFrame, title: str, path: Path) -> Path | None:
    done = table.dropna(subset=["accuracy", "trainable_params"])
    done = done[done["trainable_params"] > 0]
    if done.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    kind = done["cell"].fillna(done["model"]) if "cell" in done else done["model"]
    for cell, group in done.groupby(kind):
        ax.scatter(group["trainable_params"], group["accuracy"], label=str(cell), s=25)
    ax.set_xscale("log")
    ax.set(title=title, xlabel="trainable parameters (log)", ylabel="test accuracy")
    ax.legend(fontsize=8)
    return _save(fig, path)


def confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str, path: Path) -> Path:
    cm = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.2 * len(classes) + 2))
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > cm.max() / 2 else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)
