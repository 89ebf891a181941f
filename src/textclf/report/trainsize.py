"""Learning curves over training-set size: the same model trained on fractions of its rows
(`training.train_fraction`), so a reader can see how much of a gap to a reference trained on
more rows is train size alone."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from matplotlib.ticker import FuncFormatter

from textclf.report.figures import plt, save_figure, wrap_setting
from textclf.report.markdown import md_table
from textclf.report.stats import accuracy_interval


def curve_label(names: list[str]) -> str:
    """A curve's name: its variants' names without the '-' tokens that differ between them (the
    size's grid token: "m-frac0.25-lr0.01", "m-frac1-lr0.01" -> "m-lr0.01")."""
    split = [n.split("-") for n in names]
    if len({len(t) for t in split}) != 1:
        return names[-1]
    kept = [tokens[0] for tokens in zip(*split, strict=True) if len(set(tokens)) == 1]
    return "-".join(kept) or names[-1]


def size_curves(done: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """(dataset, model label) -> one row per training size (mean over seeds, its interval),
    for every model trained at two or more sizes; empty when the study varies no size."""
    if "curve_key" not in done or done["train_fraction"].nunique() < 2:
        return {}
    curves: dict[tuple[str, str], pd.DataFrame] = {}
    usable = done.dropna(subset=["accuracy", "n_train", "n_test"])
    for (dataset, _key), group in usable.groupby(["dataset", "curve_key"]):
        if group["n_train"].nunique() < 2:
            continue
        points = []
        for n_train, at in group.groupby("n_train"):
            ci = accuracy_interval(at["accuracy"].tolist(), int(at["n_test"].iloc[0]))
            points.append({"train rows": int(n_train), "accuracy": float(at["accuracy"].mean()),
                           "ci_low": ci.low, "ci_high": ci.high})
        ordered = group.sort_values("train_fraction")
        label = curve_label(list(dict.fromkeys(ordered["variant"])))
        while (dataset, label) in curves:  # two curves whose names differ only where sizes do
            label += "'"
        curves[(dataset, label)] = pd.DataFrame(points)
    return curves


def per_doubling(curve: pd.DataFrame) -> float:
    """Accuracy gained by the last doubling of the rows (from the slope between the two largest
    sizes, per factor of 2)."""
    a, b = curve.iloc[-2], curve.iloc[-1]
    return (b["accuracy"] - a["accuracy"]) / math.log2(b["train rows"] / a["train rows"])


def train_size_section(study: str, done: pd.DataFrame, figures: Path, setting: str,
                       reference_rows: Mapping[str, int] | None = None) -> tuple[list[str], Path | None]:
    """Markdown lines (a table per dataset, the gain per doubling, an extrapolation to the
    reference's rows per dataset when known) and the figure, or ([], None) when the study varies
    no size."""
    reference_rows = reference_rows or {}
    curves = size_curves(done)
    if not curves:
        return [], None
    datasets = sorted({d for d, _ in curves})
    fig, axes = plt.subplots(len(datasets), 1, figsize=(7, 4 * len(datasets)), squeeze=False)
    lines = ["### Accuracy by training-set size", ""]
    for dataset, ax in zip(datasets, axes[:, 0], strict=True):
        table, ref, extended = [], reference_rows.get(dataset), False
        for (d, label), curve in sorted(curves.items()):
            if d != dataset:
                continue
            ax.errorbar(curve["train rows"], curve["accuracy"],
                        yerr=[curve["accuracy"] - curve["ci_low"], curve["ci_high"] - curve["accuracy"]],
                        marker="o", capsize=3, label=label)
            gain = per_doubling(curve)
            row = {"model": label, **{f"{r:,} rows": f"{a:.4f}" for r, a in zip(curve["train rows"], curve["accuracy"],
                                                                                 strict=True)},
                   "gain per doubling (last)": f"{gain:+.4f}"}
            if ref and ref > curve["train rows"].iloc[-1]:
                extended = True
                doublings = math.log2(ref / curve["train rows"].iloc[-1])
                row[f"at {ref:,} rows if that gain held"] = f"{curve['accuracy'].iloc[-1] + doublings * gain:.4f}"
            table.append(row)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({int(r) for (d, _), c in curves.items() if d == dataset for r in c["train rows"]}))
        ax.get_xaxis().set_major_formatter(FuncFormatter(lambda v, _p: f"{int(v):,}"))
        ax.set(title=f"{dataset}: test accuracy by training rows (95 % interval)", xlabel="training rows (log scale)",
               ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        lines += [f"{dataset}: test accuracy by training rows (the same test rows throughout).", "",
                  md_table(pd.DataFrame(table)), ""]
        if extended:
            lines += [f"The last column extends each model's last per-doubling gain to the reference's {ref:,} "
                      "rows: a rough guide (gains usually shrink as rows grow), not a measurement.", ""]
    fig.suptitle(f"{study}: accuracy by training-set size\n{wrap_setting(setting)}", fontsize=10)
    fig.tight_layout()
    path = save_figure(fig, figures / f"{study}_train_size.png")
    lines += [f"![{study}: accuracy by training-set size](figures/{path.name})", ""]
    return lines, path

