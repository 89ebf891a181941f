"""The notes of a study page computed from its rows: the model chosen on validation, the
hand-written GRU against nn.GRU, the most accurate per parameter, what training took."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from textclf.estimate import estimate_line, format_duration
from textclf.report.fmt import runs_word, seed_predictions, versus
from textclf.report.numbers import json_number
from textclf.report.stats import paired_against
from textclf.report.walltime import wall_time_line


def efficiency(done: pd.DataFrame) -> pd.DataFrame | None:
    """Per dataset, the top 10 by accuracy per million trainable parameters (None: nothing to rank)."""
    if len(done) <= 1:
        return None
    by_eff = done.dropna(subset=["acc_per_mparam"])
    by_eff = by_eff.sort_values(["dataset", "acc_per_mparam"], ascending=[True, False]).groupby("dataset").head(10)
    if not len(by_eff):
        return None
    return by_eff[["variant", "dataset", "seed", "accuracy", "trainable_params", "acc_per_mparam"]]


# what must match for a hand-written GRU run and an nn.GRU run to be the same training
SCRATCH_TWIN_KEYS = ("dataset", "setting", "embedding", "max_len", "eval_split", "optimizer", "hidden", "layers",
                     "n_train")


def scratch_gru_lines(done: pd.DataFrame, predictions: Mapping[str, pd.DataFrame | None]) -> list[str]:
    """The hand-written GRU against nn.GRU trained the same way (same vectors, length, optimizer,
    split and rows; unidirectional): time per epoch and accuracy, with the paired test."""
    if "cell" not in done or "bidirectional" not in done:
        return []
    both = done[(done["bidirectional"] != True) & done["cell"].isin(["gru_scratch", "gru"])]  # noqa: E712
    keys = [k for k in SCRATCH_TWIN_KEYS if k in both]
    lines = []
    for _, group in both.groupby(keys, dropna=False, sort=True):
        scratch, native = group[group["cell"] == "gru_scratch"], group[group["cell"] == "gru"]
        seconds = scratch["seconds_per_epoch"].mean(), native["seconds_per_epoch"].mean()
        if scratch.empty or native.empty or not (seconds[0] > 0 and seconds[1] > 0):
            continue
        names = [", ".join(f"`{v}`" for v in dict.fromkeys(rows["variant"])) for rows in (scratch, native)]
        diff = versus(paired_against(seed_predictions(scratch, predictions), seed_predictions(native, predictions)))
        lines.append(f"- {names[0]} vs {names[1]}: {seconds[0]:.1f} s vs {seconds[1]:.1f} s per epoch, "
                     f"**{seconds[0] / seconds[1]:.1f}x**; accuracy {scratch['accuracy'].mean():.4f} vs "
                     f"{native['accuracy'].mean():.4f}" + (f", difference {diff}" if diff else ""))
    if not lines:
        return []
    return ["**Hand-written GRU vs nn.GRU**, trained the same way (the reference measured ~21x: 8,075 s vs "
            "388 s, with the input projection inside its step loop; ours computes it for all steps in one "
            "matmul, so the ratios are not comparable; difference = hand-written − nn.GRU on the same test "
            "items, with the exact paired test's p, which covers test-set sampling, not training randomness):",
            "", *lines, ""]


def training_time_lines(mode: str, done: pd.DataFrame) -> list[str]:
    """What training took, summed over the study's runs per hardware (metrics.json: seconds per
    epoch x epochs), and, for runs on this machine's CPU, the estimate made before them."""
    if done.empty:
        return []
    seconds = done["seconds_per_epoch"].fillna(0) * done["epochs_run"].fillna(0)
    recorded = done["hardware"] if "hardware" in done else pd.Series(None, index=done.index, dtype=object)
    hardware = recorded.astype(object).map(lambda v: v if isinstance(v, str) else "hardware not recorded")
    parts = [f"{format_duration(float(seconds[hardware == hw].sum()))} on {hw} ({runs_word(int((hardware == hw).sum()))})"
             for hw in sorted(hardware.unique())]
    lines = [f"Training time (sum over runs): {', '.join(parts)}.", wall_time_line(done)]
    on_gpu = hardware.str.endswith(" GPU")
    estimate = estimate_line(mode, dict(zip(done.loc[~on_gpu, "results"], seconds[~on_gpu], strict=True)))
    if estimate:
        lines += [estimate + (" (CPU runs only: the estimate is for this machine's CPU)" if on_gpu.any() else "")]
    return [line for line in lines if line] + [""]


def validation_choice(done: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per dataset, the variant with the highest mean validation accuracy over its seeds (when
    at least two variants have one): the choice a user makes without looking at test."""
    if "val_accuracy" not in done:
        return {}
    chosen = {}
    for dataset, group in done.dropna(subset=["val_accuracy"]).groupby("dataset"):
        means = group.groupby("variant")[["val_accuracy", "accuracy"]].mean()
        if len(means) >= 2:
            best = str(means["val_accuracy"].idxmax())
            chosen[str(dataset)] = {"variant": best, "val_accuracy": json_number(means.loc[best, "val_accuracy"]),
                                    "accuracy": json_number(means.loc[best, "accuracy"]),
                                    "n_seeds": int((group["variant"] == best).sum())}
    return chosen
