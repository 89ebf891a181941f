"""How long a plan will take on this machine, before it runs.

Cost model: a recurrent layer does about 2·g·H·(I + H) multiply-adds per token and direction
(g = 1, 3, 4 gates for rnn, gru, lstm; I its input width), three times that with the backward
pass. A replica costs that × the tokens it trains on × epochs (+ one forward pass over the
evaluation splits per epoch). This machine's rate (work units per second) comes from earlier
runs' metrics.json (median of measured rates), else from a ~2 s calibration run, and is kept in
.textclf/throughput.json. The report compares the estimate with the measured time.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textclf import atomic
from textclf.machine import cpu_model
from textclf.settings import RNNConfig, Variant

GATES = {"rnn": 1, "gru": 3, "gru_scratch": 3, "lstm": 4}
TFIDF_SECONDS = 60.0  # a TF-IDF + logistic regression fit on ~25k documents, order of magnitude
DEFAULT_ROWS = {"train": 22_500, "val": 2_500, "test": 25_000}
DEFAULT_TOKENS_PER_ROW = 230.0  # IMDB-like; a prepared dataset's stats.json replaces it
CALIBRATION_FILE = Path(".textclf/throughput.json")


@dataclass(frozen=True)
class DataSize:
    rows: Mapping[str, int]
    tokens_per_row: float  # mean whitespace tokens per training row (before max_len)

    @classmethod
    def from_stats(cls, path: Path) -> DataSize | None:
        if not path.is_file():
            return None
        stats = json.loads(path.read_text(encoding="utf-8"))
        q = stats.get("token_length_quantiles", {}).get("train", {})
        typical = q.get("mean") or (1.15 * q["p50"] if "p50" in q else None)  # lengths are right-skewed
        return cls(rows=stats.get("rows", DEFAULT_ROWS), tokens_per_row=float(typical or DEFAULT_TOKENS_PER_ROW))


def _rows_used(variant: Variant, size: DataSize) -> tuple[int, int]:
    """(training rows, validation + test rows) a replica reads (quick caps applied)."""
    quick = variant.quick

    def capped(split: str, cap: int | None) -> int:
        rows = int(size.rows.get(split, 0))
        return min(rows, cap) if cap is not None else rows

    return (capped("train", quick.train_rows if quick else None),
            sum(capped(s, quick.eval_rows if quick else None) for s in ("val", "test")))


def work_per_token(model: RNNConfig) -> float:
    """Multiply-adds per token for forward + backward through the recurrent stack and the head."""
    gates, hidden, dirs = GATES[model.cell], model.hidden, 2 if model.bidirectional else 1
    total, width = 0.0, model.embedding.dim
    for _ in range(model.layers):
        total += dirs * gates * hidden * (width + hidden)
        width = hidden * dirs
    return 3.0 * total


def replica_work(variant: Variant, size: DataSize) -> float:
    """Work units (multiply-adds) to train and evaluate one replica."""
    if not isinstance(variant.model, RNNConfig):
        return 0.0
    training = variant.training
    train_rows, eval_rows = _rows_used(variant, size)
    tokens = min(size.tokens_per_row, training.max_len)
    if training.padding == "fixed":
        tokens = training.max_len
    per_token = work_per_token(variant.model)
    return training.epochs * (train_rows * tokens * per_token + eval_rows * tokens * per_token / 3.0)


def replica_steps(variant: Variant, size: DataSize) -> float:
    """Optimizer steps plus evaluation batches: each costs a fixed overhead besides its work."""
    training = variant.training
    train_rows, eval_rows = _rows_used(variant, size)
    return training.epochs * (math.ceil(train_rows / training.batch_size) + math.ceil(eval_rows / 256))


def replica_seconds(variant: Variant, size: DataSize, rate: float, step_seconds: float = 0.0) -> float:
    """Work at the machine's rate plus a per-step overhead (Python, optimizer, tiny kernels),
    which dominates small models."""
    if not isinstance(variant.model, RNNConfig):
        return TFIDF_SECONDS
    return replica_work(variant, size) / rate + replica_steps(variant, size) * step_seconds


def measured_rate(runs: Iterable[tuple[Variant, Path]]) -> float | None:
    """Median work/second of earlier runs on this machine's CPU (metrics.json: n_train,
    seconds_per_epoch, epochs_run); results computed elsewhere (a lent GPU, another CPU) say
    nothing about this machine's rate."""
    rates = []
    here = cpu_model()
    for variant, results in runs:
        path = results / "metrics.json"
        if not isinstance(variant.model, RNNConfig) or not path.is_file():
            continue
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
            if metrics.get("device", "cpu") != "cpu" or metrics.get("hardware", here) != here:
                continue
            seconds = float(metrics["seconds_per_epoch"]) * int(metrics["epochs_run"])
            tokens = float(metrics["tokens_per_second"]) * seconds  # training tokens actually seen
        except (KeyError, TypeError, ValueError):
            continue
        if seconds > 0 and tokens > 0:
            rates.append(tokens * work_per_token(variant.model) / seconds)
    return statistics.median(rates) if rates else None


def step_overhead(seconds: float = 0.5) -> float:
    """Seconds per optimizer step of a tiny model: the fixed cost every step pays."""
    import torch

    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(8, 8, batch_first=True), torch.nn.Linear(8, 2)
    emb = torch.nn.Embedding(100, 8)
    optim = torch.optim.Adam([*lstm.parameters(), *head.parameters(), *emb.parameters()], lr=1e-3)
    ids, y = torch.randint(0, 100, (16, 16)), torch.randint(0, 2, (16,))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 5:
        optim.zero_grad()
        out, _ = lstm(emb(ids))
        torch.nn.functional.cross_entropy(head(out[:, -1]), y).backward()
        optim.step()
        steps += 1
    return (time.perf_counter() - start) / steps


def calibrate(seconds: float = 2.0) -> float:
    """Work/second of a small one-thread LSTM training loop on synthetic batches."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    batch, length, emb, hidden = 64, 128, 100, 128
    lstm, head = torch.nn.LSTM(emb, hidden, batch_first=True), torch.nn.Linear(hidden, 2)
    params = [*lstm.parameters(), *head.parameters()]
    optim = torch.optim.Adam(params, lr=1e-3)
    x, y = torch.randn(batch, length, emb), torch.randint(0, 2, (batch,))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 2:
        optim.zero_grad()
        out, _ = lstm(x)
        torch.nn.functional.cross_entropy(head(out[:, -1]), y).backward()
        optim.step()
        steps += 1
    elapsed = time.perf_counter() - start
    return steps * batch * length * 3.0 * 4 * hidden * (emb + hidden) / elapsed


def machine_rate(runs: Iterable[tuple[Variant, Path]], cache: Path = CALIBRATION_FILE) -> tuple[float, str]:
    """(work/second, where it came from): earlier runs, else a cached or fresh calibration."""
    rate = measured_rate(runs)
    if rate:
        return rate, "measured on earlier runs here"
    saved = _calibration(cache)
    return float(saved["rate"]), saved["source"]


def machine_step_seconds(cache: Path = CALIBRATION_FILE) -> float:
    """The per-step overhead of this machine (calibrated once, cached with the rate)."""
    return float(_calibration(cache)["step_seconds"])


def _calibration(cache: Path) -> dict[str, Any]:
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("host") == os.uname().nodename and "step_seconds" in saved:
            return {**saved, "source": "calibration run (cached)"}
    saved = {"rate": calibrate(), "step_seconds": step_overhead(), "host": os.uname().nodename,
             "when": time.strftime("%Y-%m-%d %H:%M")}
    atomic.write_json(cache, saved)
    return {**saved, "source": "calibration run"}


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'study':<18} {'replicas':>8} {'cached':>7} {'to train':>8} {'est. CPU time':>14}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['study']:<18} {r['replicas']:>8} {r['cached']:>7} {r['to_train']:>8} "
                     f"{format_duration(r['seconds']):>14}")
    return "\n".join(lines)


def study_estimates(plan: Any, root: Path = Path(".")) -> tuple[list[dict[str, Any]], float, str]:
    """Per study of a plan (its selected mode): replicas, cached, to train, estimated CPU seconds."""
    from textclf.plan import prepared_dir, results_dir

    runs = [(v, root / results_dir(v)) for v in plan.variants]
    rate, source = machine_rate(runs, root / CALIBRATION_FILE)
    step_seconds = machine_step_seconds(root / CALIBRATION_FILE)
    sizes: dict[str, DataSize] = {}
    rows: dict[str, dict[str, Any]] = {}
    for variant, results in runs:
        if variant.dataset not in sizes:
            found = DataSize.from_stats(root / prepared_dir(variant.dataset) / "stats.json")
            sizes[variant.dataset] = found or DataSize(DEFAULT_ROWS, DEFAULT_TOKENS_PER_ROW)
            if found is None:
                source += f"; {variant.dataset} not prepared yet, its size guessed"
        row = rows.setdefault(variant.study, {"study": variant.study, "replicas": 0, "cached": 0, "to_train": 0,
                                              "seconds": 0.0, "runs": {}})
        row["replicas"] += 1
        if (results / "metrics.json").is_file():
            row["cached"] += 1
        else:
            row["to_train"] += 1
            seconds = replica_seconds(variant, sizes[variant.dataset], rate, step_seconds)
            row["seconds"] += seconds
            row["runs"][str(results_dir(variant))] = seconds
    return list(rows.values()), rate, source


ESTIMATES_DIR = Path(".textclf/estimates")


def save_estimates(mode: str, rows: list[dict[str, Any]], source: str, root: Path = Path(".")) -> None:
    """What each replica still to train was expected to take, for the report to compare with
    its measured time (and to price the replicas that never ran). Merged into the saved file:
    a replica trained since keeps the estimate made before its run, so a later `textclf plan`
    never erases it."""
    path = root / ESTIMATES_DIR / f"{mode}.json"
    saved = _saved_estimates(path)
    runs = saved.get("runs", {})
    for row in rows:
        for results, seconds in row.get("runs", {}).items():
            runs[results] = {"seconds": seconds, "study": row["study"], "when": time.strftime("%Y-%m-%d %H:%M"),
                             "source": source}
    atomic.write_json(path, {"runs": dict(sorted(runs.items()))})


def _saved_estimates(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) and isinstance(saved.get("runs"), dict) else {}


def saved_estimates(mode: str, results: Iterable[str], root: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """The saved estimate of each of these results folders that has one."""
    runs = _saved_estimates(root / ESTIMATES_DIR / f"{mode}.json").get("runs", {})
    return {r: runs[r] for r in results if isinstance(runs.get(r), dict)}


def estimate_line(mode: str, measured: Mapping[str, float], root: Path = Path(".")) -> str | None:
    """'Training time: estimated X for N replicas before their runs; measured Y (ratio)' over the
    replicas (results folder -> measured training seconds) that have a saved estimate."""
    found = saved_estimates(mode, measured, root)
    done = {r: s for r, s in measured.items() if r in found and s > 0}
    if not done:
        return None
    estimated = sum(found[r]["seconds"] for r in done)
    actual = sum(done.values())
    when = sorted({found[r]["when"] for r in done})
    sources = sorted({found[r]["source"] for r in done})
    return (f"Training time: estimated {format_duration(estimated)} for {len(done)} replica(s) before their runs "
            f"({when[0] if len(when) == 1 else f'{when[0]} to {when[-1]}'}; {'; '.join(sources)}); measured "
            f"{format_duration(actual)} of training, {actual / estimated:.2f}x the estimate.")
