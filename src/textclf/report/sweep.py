"""What a W&B sweep page shows, for a study with a `search` space: trials ranked by validation
accuracy (test beside it: choosing by test is the reference's flaw), a parallel-coordinates
figure, and parameter importance (permutation importance of a random forest fitted on the
trials, and Spearman correlation with test accuracy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.inspection import permutation_importance  # noqa: E402

from textclf.atomic import atomic_path  # noqa: E402
from textclf.report.markdown import md_table  # noqa: E402

SKIP = {"training.seed", "training.device", "training.amp"}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def sweep_frame(trials: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> tuple[pd.DataFrame, list[str]]:
    """(one row per finished trial: name, varied settings, val and test accuracy; the varied keys).

    `trials`: (resolved variant as in the job file, its metrics.json) pairs."""
    rows = []
    for variant, metrics in trials:
        settings = _flatten({"model": variant["model"], "training": variant["training"]})
        rows.append({"trial": variant["name"], "seed": variant["training"]["seed"], **settings,
                     "val_accuracy": (metrics.get("val") or {}).get("accuracy"), "test_accuracy": metrics.get("accuracy")})
    frame = pd.DataFrame(rows)
    varied = [c for c in frame.columns if c not in ("trial", "seed", "val_accuracy", "test_accuracy")
              and c not in SKIP and frame[c].astype(str).nunique() > 1]
    return frame, varied


def _codes(frame: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Numeric axes: numbers as they are, anything else as ordered category codes."""
    out = pd.DataFrame(index=frame.index)
    for p in params:
        column = frame[p]
        numeric = pd.to_numeric(column, errors="coerce")
        out[p] = numeric if numeric.notna().all() else column.astype(str).astype("category").cat.codes
    return out.astype(float)


def parallel_coordinates(frame: pd.DataFrame, params: Sequence[str], path: Path, title: str) -> Path:
    """One line per trial across the varied parameters (each axis scaled to its range, ticks at
    its values) and test accuracy; colour = test accuracy."""
    axes_cols = [*params, "test_accuracy"]
    values = _codes(frame, params).assign(test_accuracy=frame["test_accuracy"].astype(float))
    low, high = values.min(), values.max()
    scaled = (values - low) / (high - low).replace(0, 1)
    cmap, norm = plt.get_cmap("viridis"), plt.Normalize(values["test_accuracy"].min(), values["test_accuracy"].max())
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(axes_cols)), 4.8))
    xs = np.arange(len(axes_cols))
    for i in values.sort_values("test_accuracy").index:  # best trials drawn last, on top
        ax.plot(xs, scaled.loc[i, axes_cols], color=cmap(norm(values.loc[i, "test_accuracy"])), lw=1.6, alpha=0.85)
    for x, col in enumerate(axes_cols):
        ax.axvline(x, color="0.6", lw=0.8)
        ticks = sorted(values[col].unique())
        shown = ticks if len(ticks) <= 6 else [ticks[0], ticks[len(ticks) // 2], ticks[-1]]
        for t in shown:
            y = (t - low[col]) / ((high[col] - low[col]) or 1)
            label = f"{t:.3f}" if col == "test_accuracy" else _tick_label(frame, col, t)
            ax.text(x + 0.03, y, label, fontsize=7, va="center")
    ax.set_xticks(xs, [c.split(".")[-1] for c in axes_cols], rotation=20)
    ax.set_yticks([])
    ax.set_title(title)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="test accuracy")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _tick_label(frame: pd.DataFrame, col: str, code: float) -> str:
    numeric = pd.to_numeric(frame[col], errors="coerce")
    if numeric.notna().all():
        return f"{code:g}"
    categories = frame[col].astype(str).astype("category").cat.categories
    return str(categories[int(code)])


def importance(frame: pd.DataFrame, params: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """Per varied parameter: permutation importance (mean drop in R² of a random forest fitted on
    the trials, scikit-learn) and Spearman correlation with test accuracy (scipy)."""
    x, y = _codes(frame, params), frame["test_accuracy"].astype(float).to_numpy()
    forest = RandomForestRegressor(n_estimators=300, random_state=seed, min_samples_leaf=1).fit(x, y)
    perm = permutation_importance(forest, x, y, n_repeats=30, random_state=seed)
    rows = []
    for i, p in enumerate(params):
        rho = spearmanr(x[p], y).statistic if x[p].nunique() > 1 else float("nan")
        rows.append({"parameter": p, "importance": perm.importances_mean[i], "correlation": rho})
    return pd.DataFrame(rows).sort_values("importance", ascending=False, ignore_index=True)


def sweep_section(study: str, trials: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
                  figures: Path) -> list[str]:
    """Markdown lines for a sweep study (nothing when fewer than 3 trials have results)."""
    if len(trials) < 3:
        return []
    frame, params = sweep_frame(trials)
    frame = frame.dropna(subset=["test_accuracy"])
    if len(frame) < 3 or not params:
        return []
    path = parallel_coordinates(frame, params, figures / f"{study}_parallel.png", f"{study}: {len(frame)} trials")
    ranked = frame.sort_values(["val_accuracy", "test_accuracy"], ascending=False)
    table = ranked[["trial", "val_accuracy", "test_accuracy", *params]].rename(
        columns={p: p.split(".")[-1] for p in params})
    best_val, best_test = ranked.iloc[0], frame.loc[frame["test_accuracy"].idxmax()]
    lines = [f"### Sweep: {study}", "",
             f"{len(frame)} trials, ranked by **validation** accuracy (the model one would pick), test beside it. "
             f"Picked by validation: `{best_val['trial']}` (test {best_val['test_accuracy']:.4f}); the best test "
             f"score, which the reference would report: `{best_test['trial']}` ({best_test['test_accuracy']:.4f}).", "",
             md_table(table.head(30)), "", f"![parallel coordinates](figures/{path.name})", ""]
    if len(frame) >= 5:
        imp = importance(frame, params)
        lines += ["Parameter importance (permutation importance of a random forest fitted on the trials; "
                  "Spearman correlation with test accuracy):", "", md_table(imp), ""]
    return lines
