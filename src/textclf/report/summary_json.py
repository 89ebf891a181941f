"""summary.json's entry of one study, from its rows: the headline DVC prints, and the rest under
`detail` (report/build.py writes it; docs/CONTRACTS.md and tests/test_report.py pin its keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from textclf.report.fmt import hardware, largest, seeds, value_range, vectors
from textclf.report.numbers import json_number
from textclf.report.walltime import study_wall_time

# summary.json, per study: a short headline (what `dvc exp show` can print, README "DVC views"),
# `best_accuracy` and `variants_done` (long-standing keys), and everything else under `detail`.
# None of these names is also a key of a study in params.yaml (description, datasets, vocab,
# model, set, variants, grid, seeds, reference), so a --drop pattern can tell these metrics from
# changed parameters (tests/test_report.py checks it against the schema).
HEADLINE_KEYS = ("acc", "best", "mode", "n_train", "n_test")
STUDY_KEYS = ("acc", "acc_ci_low", "acc_ci_high", *HEADLINE_KEYS[1:], "best_accuracy", "variants_done", "detail")


def study_metrics(study: str, rows: pd.DataFrame, done: pd.DataFrame, stat_metrics: dict[str, Any],
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
                      "n_train": largest(group["n_train"]), "n_test": largest(group["n_test"]),
                      "seed_list": seeds(group["seed"]), "vectors": vectors(group),
                      "hardware": hardware(group)})
        by_variant[name] = entry
    interval = nested.get("best", {})  # the best variant's 95 % interval (one test set)
    return {
        "acc": json_number(best["accuracy"]) if best is not None else None,
        "acc_ci_low": interval.get("ci_low"),
        "acc_ci_high": interval.get("ci_high"),
        "best": str(best["variant"]) if best is not None else None,
        "mode": "/".join(dict.fromkeys(done["setting"])) if len(done) else None,
        "n_train": largest(rows_of_best["n_train"]),  # the rows behind `acc`: ints, as any consumer reads them
        "n_test": largest(rows_of_best["n_test"]),
        "best_accuracy": json_number(best["accuracy"]) if best is not None else None,
        "variants_done": int(n_done),
        "detail": {
            "variants_missing": int(rows.groupby(["dataset", "variant"]).ngroups - n_done),
            "mean_accuracy": json_number(done["accuracy"].mean()) if len(done) else None,
            "n_train_range": value_range(done["n_train"]),  # [fewest, most] rows over all the study's runs
            "n_test_range": value_range(done["n_test"]),
            "seed_list": seeds(done["seed"]) if len(done) else None,
            "vectors": vectors(done) if len(done) else None,
            "hardware": hardware(done) if len(done) else None,
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
