"""A study's figures, drawn from its runs while its result is computed: learning curves,
accuracy vs. parameters, confusion matrices, accuracy by training-set size, sweep trials.
Each function returns what the page shows (report/result.py) and the files it wrote."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textclf.report.collect import load_history
from textclf.report.figures import accuracy_vs_params, confusion, learning_curves
from textclf.report.result import Figure
from textclf.report.sweep import sweep_section
from textclf.report.trainsize import train_size_section


def _rel(path: Path, figures: Path) -> str:
    """A figure's path relative to the report folder (figures/ sits right under it)."""
    return f"figures/{path.relative_to(figures).as_posix()}"


def _curves(study: str, done: pd.DataFrame, figures: Path, colors: Mapping[str, tuple[str, str]],
            setting: str) -> tuple[list[Figure], list[Path]]:
    neural = done[done["model"] == "rnn"] if "model" in done else done.iloc[0:0]
    histories: dict[tuple[str, str], list] = {}
    for r in neural.itertuples():
        split = r.eval_split if isinstance(r.eval_split, str) else "val"
        histories.setdefault((r.dataset, r.variant), []).append((load_history(r.results), split))
    curves = learning_curves(histories, f"{study}: learning curves", setting, colors, figures / f"{study}_curves.png")
    if not curves:
        return [], []
    # imported here, not at import: `python -m textclf.report.html` must not find it loaded
    from textclf.report.html import write_curves_data

    data = write_curves_data(histories, figures / "curves" / f"{study}.json")
    tfidf = "" if len(neural) == len(done) else "; TF-IDF baselines have no epochs and are not drawn"
    caption = ("learning curves (solid = validation split, dashed = test split for variants with "
               f"`eval_split: test`, dotted = training split; one colour per variant{tfidf})")
    return [Figure(_rel(curves, figures), f"{study}: learning curves", caption)], [data]


def _confusions(study: str, done: pd.DataFrame, figures: Path, setting: str) -> list[Figure]:
    datasets = sorted(done["dataset"].unique())
    shown = []
    for dataset in datasets:
        best = done[done["dataset"] == dataset].iloc[0]
        if not isinstance(best["confusion_matrix"], list):
            continue
        name = f"{study}_confusion.png" if len(datasets) == 1 else f"{study}_{dataset}_confusion.png"
        title = f"{study} ({dataset}): best variant {best['variant']} seed {best['seed']}, accuracy {best['accuracy']:.4f}"
        path = confusion(best["confusion_matrix"], best["classes"] or [], title, setting, figures / name)
        shown.append(Figure(_rel(path, figures), f"{study}: confusion matrix on {dataset}",
                            f"confusion matrix of the best variant on {dataset} (`{best['variant']}`, seed "
                            f"{best['seed']}; row-normalised)"))
    return shown


def study_figures(study: str, done: pd.DataFrame, figures: Path, colors: Mapping[str, tuple[str, str]],
                  setting: str) -> tuple[list[Figure], list[Path]]:
    """The figures right under the study's table, in the order the page shows them."""
    shown, data = _curves(study, done, figures, colors, setting)
    scatter = accuracy_vs_params(done, f"{study}: accuracy vs. parameters", setting, colors,
                                 figures / f"{study}_acc_vs_params.png")
    if scatter:
        shown.append(Figure(_rel(scatter, figures), f"{study}: accuracy vs. trainable parameters",
                            "test accuracy vs. trainable parameters (one axis per dataset)"))
    shown += _confusions(study, done, figures, setting)
    return shown, [figures / Path(f.path).name for f in shown] + data


def train_size(study: str, done: pd.DataFrame, figures: Path, setting: str,
               reference_rows: Mapping[str, Any]) -> tuple[list[str], list[Path]]:
    """report/trainsize.py's lines and figure (nothing when the study varies no size)."""
    known = {d: n for d, n in reference_rows.items() if isinstance(n, int)}
    lines, figure = train_size_section(study, done, figures, setting, known)
    return (lines, [figure]) if figure else ([], [])


def sweep(study: str, runs: Sequence[Mapping[str, Any]], done: pd.DataFrame,
          figures: Path) -> tuple[list[str], list[Path]]:
    """A sweep study's trials (their metrics.json) ranked and drawn (report/sweep.py)."""
    results = set(done["results"])
    trials = [(run["variant"], json.loads((Path(run["results"]) / "metrics.json").read_text(encoding="utf-8")))
              for run in runs if run["results"] in results]
    lines = sweep_section(study, trials, figures)
    return lines, [figures / f"{study}_parallel.png"] if lines else []
