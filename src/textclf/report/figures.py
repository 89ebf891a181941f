"""Matplotlib figures for the report (headless Agg backend, PNG files).

Conventions shared by every figure of a study:
- one colour per variant, the same in every figure of the study (`variant_colors`);
- one dataset per axis (a study over several datasets gets one row of axes per dataset);
- the setting that produced the numbers (full/quick, rows used, seeds) under the title;
- legends outside the axes, so they never hide a curve or a point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from textclf.atomic import atomic_path  # noqa: E402

# Line style of a curve by the split it was measured on (history.csv's val_* columns hold the
# variant's eval_split: `val`, or `test` for the reference-protocol variants).
SPLIT_STYLES = {"val": "-", "test": "--", "train": ":"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def wrap_setting(setting: str, width: int = 110) -> str:
    """The setting line under a title, broken at its ' · ' separators so it never runs into the
    colour bar or past the figure's edge."""
    lines, line = [], ""
    for part in setting.split(" · "):
        candidate = f"{line} · {part}" if line else part
        if line and len(candidate) > width:
            lines.append(line)
            candidate = part
        line = candidate
    return "\n".join([*lines, line])

def save_figure(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def variant_colors(names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """A stable (colour, marker) per variant name: sorted names over tab10, then tab20, with a
    marker that changes every 10 (20) names so even long studies stay distinguishable."""
    names = sorted(set(names))
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors
    return {name: (matplotlib.colors.to_hex(palette[i % len(palette)]), MARKERS[(i // len(palette)) % len(MARKERS)])
            for i, name in enumerate(names)}


def _params_formatter(value: float, _pos: int) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _legend_outside(fig: plt.Figure, handles: list, title: str | None = None) -> None:
    if not handles:
        return
    ncol = 1 if len(handles) <= 18 else 2 if len(handles) <= 40 else 3
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=7, ncol=ncol,
               title=title, title_fontsize=8, frameon=False)


def learning_curves(histories: Mapping[tuple[str, str], Sequence[tuple[pd.DataFrame, str]]], title: str,
                    setting: str, colors: Mapping[str, tuple[str, str]], path: Path) -> Path | None:
    """Accuracy and loss per epoch, one row of axes per dataset, one colour per variant.

    `histories[(dataset, variant)]` lists (history, eval_split) per seed. The held-out curve is
    named by the split it was measured on (solid: validation, dashed: test); dotted: training.
    Only epoch-wise trained models belong here (a TF-IDF baseline has no epochs)."""
    histories = {k: [(h, s) for h, s in v if h is not None and len(h)] for k, v in histories.items()}
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return None
    datasets = sorted({d for d, _ in histories})
    fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 3.6 * len(datasets)), squeeze=False)
    splits_seen: set[str] = set()
    max_epoch = 1
    for (dataset, variant), runs in sorted(histories.items()):
        row = axes[datasets.index(dataset)]
        color, marker = colors.get(variant, ("#333333", "o"))
        for hist, split in runs:
            held = "test" if split == "test" else "val"
            splits_seen.add(held)
            epochs = hist["epoch"].to_numpy()
            max_epoch = max(max_epoch, int(epochs.max()))
            for ax, metric in ((row[0], "acc"), (row[1], "loss")):
                if f"val_{metric}" in hist:
                    ax.plot(epochs, hist[f"val_{metric}"], ls=SPLIT_STYLES[held], marker=marker, ms=3.5,
                            color=color, lw=1.4)
                if f"train_{metric}" in hist:
                    splits_seen.add("train")
                    ax.plot(epochs, hist[f"train_{metric}"], ls=SPLIT_STYLES["train"], color=color, lw=1.0,
                            alpha=0.8)
    for dataset, row in zip(datasets, axes, strict=True):
        for ax, what in zip(row, ("accuracy", "loss"), strict=True):
            ax.set(title=f"{dataset}: {what} per epoch", xlabel="epoch", ylabel=what)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.set_xlim(0.8, max_epoch + 0.2)
            ax.grid(alpha=0.3)
    variants = sorted({v for _, v in histories})
    handles = [Line2D([], [], color=colors.get(v, ("#333333", "o"))[0], marker=colors.get(v, ("", "o"))[1],
                      ms=4, lw=1.4, label=v) for v in variants]
    names = {"val": "validation", "test": "test (eval_split: test)", "train": "training"}
    handles += [Line2D([], [], color="black", ls=SPLIT_STYLES[s], label=names[s])
                for s in ("val", "test", "train") if s in splits_seen]
    _legend_outside(fig, handles)
    fig.suptitle(f"{title}\n{wrap_setting(setting)}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _pareto(points: pd.DataFrame) -> set[int]:
    """Rows no other row beats on both fewer parameters and higher accuracy."""
    keep, best = set(), -np.inf
    for idx, r in points.sort_values(["trainable_params", "accuracy"], ascending=[True, False]).iterrows():
        if r["accuracy"] > best:
            keep.add(idx)
            best = r["accuracy"]
    return keep


def accuracy_vs_params(table: pd.DataFrame, title: str, setting: str, colors: Mapping[str, tuple[str, str]],
                       path: Path, max_labels: int = 16) -> Path | None:
    """Test accuracy against trainable parameters, one axis per dataset, every point labelled
    with its variant (long studies: the Pareto front and the most accurate ones)."""
    done = table.dropna(subset=["accuracy", "trainable_params"])
    done = done[done["trainable_params"] > 0]
    if done.empty:
        return None
    # one point per variant: the mean over its seeds
    points = (done.groupby(["dataset", "variant"], as_index=False)
              .agg(accuracy=("accuracy", "mean"), trainable_params=("trainable_params", "first"),
                   seeds=("seed", "nunique")))
    datasets = sorted(points["dataset"].unique())
    fig, axes = plt.subplots(len(datasets), 1, figsize=(8, 4.2 * len(datasets)), squeeze=False)
    for dataset, ax in zip(datasets, axes[:, 0], strict=True):
        group = points[points["dataset"] == dataset]
        labelled = set(group.index) if len(group) <= max_labels else (
            _pareto(group) | set(group.nlargest(max_labels // 2, "accuracy").index))
        for idx, r in group.iterrows():
            color, marker = colors.get(r["variant"], ("#333333", "o"))
            ax.scatter(r["trainable_params"], r["accuracy"], color=color, marker=marker, s=36, zorder=3)
            if idx in labelled:
                ax.annotate(r["variant"], (r["trainable_params"], r["accuracy"]), xytext=(4, 3),
                            textcoords="offset points", fontsize=7, color="#222222")
        lo, hi = group["trainable_params"].min(), group["trainable_params"].max()
        if hi / lo >= 10:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(NullFormatter())
            xlabel = "trainable parameters (log scale)"
        else:
            ax.xaxis.set_major_locator(MaxNLocator(6))
            pad = max((hi - lo) * 0.1, hi * 0.05)
            ax.set_xlim(lo - pad, hi + pad * 2.5)
            xlabel = "trainable parameters"
        ax.xaxis.set_major_formatter(FuncFormatter(_params_formatter))
        ax.set(title=f"{dataset}: test accuracy vs. trainable parameters", xlabel=xlabel, ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.margins(y=0.12)
    fig.suptitle(f"{title}\n{wrap_setting(setting)}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str, setting: str,
              path: Path) -> Path:
    """scikit-learn's ConfusionMatrixDisplay, normalised over the true class (each row sums to
    1: the diagonal is the recall), counts beside the shares, text colour chosen against the
    cell colour, and a colour bar."""
    cm = np.asarray(matrix, dtype=float)
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    labels = list(classes) if len(classes) == len(cm) else [str(i) for i in range(len(cm))]
    size = 1.1 * len(labels) + 3
    fig, ax = plt.subplots(figsize=(size + 1, size + 0.6), layout="constrained")
    display = ConfusionMatrixDisplay(share, display_labels=labels)
    display.plot(ax=ax, cmap="Blues", values_format=".2f", colorbar=True, im_kw={"vmin": 0.0, "vmax": 1.0})
    for (i, j), text in np.ndenumerate(display.text_):
        text.set_text(f"{share[i, j]:.2f}\n({int(cm[i, j]):,})")
        text.set_fontsize(8 if len(labels) > 3 else 9)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set(xlabel="predicted class", ylabel="true class")
    # over the whole figure (matrix and colour bar), wrapped to its width: never under the bar
    fig.suptitle(f"{title}\nrow-normalised (share of each true class), counts in brackets\n"
                 f"{wrap_setting(setting, int(11 * (size + 1)))}", fontsize=9)
    return save_figure(fig, path)
