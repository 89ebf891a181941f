"""How long a plan will take on this machine, before it runs.

Cost model, per replica and epoch, three terms, plus one per replica:
- work: a recurrent layer does about 2·g·H·(I + H) multiply-adds per token and direction
  (g = 1, 3, 4 gates for rnn, gru, lstm; I its input width), three times that with the backward
  pass, × the tokens trained on (+ one forward pass over the evaluation splits), at this
  machine's rate (multiply-adds per second);
- steps: a fixed cost per optimizer step and evaluation batch (Python, optimizer, tiny kernels);
- recurrence: a fixed cost per time step of the recurrence, per layer and direction, whatever
  the batch size (each step is a chain of small kernels; for the hand-written GRU a Python
  loop). It dominates small batches: at batch size 1 a GRU's time is almost all this term;
- warm-up, once per replica: the first training step of a fresh process costs more than the
  steady ones (allocations, kernel set-up; ~20 ms for an LSTM here). Nothing for a real study,
  but most of a test-sized one.
The rate comes from earlier runs' metrics.json on this machine's CPU (median, after the other
two terms are taken off), else from a ~2 s calibration; the fixed costs always come from the
calibration. Both are kept in .textclf/throughput.json. The report compares the estimate with
the measured time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from textclf import atomic
from textclf.machine import cpu_model
from textclf.settings import RNNConfig, Variant

log = logging.getLogger(__name__)

GATES = {"rnn": 1, "gru": 3, "gru_scratch": 3, "lstm": 4}
# TF-IDF + logistic regression: ~2 s fixed + its training tokens at ~250k/s (measured on this
# project's 2-core EPYC: 5.5 s for AG News's 23k rows, 15-25 s for 22-36k IMDB reviews)
TFIDF_FIXED_SECONDS, TFIDF_TOKENS_PER_SECOND = 2.0, 250_000.0
DEFAULT_ROWS = {"train": 22_500, "val": 2_500, "test": 25_000}
DEFAULT_TOKENS_PER_ROW = 230.0  # IMDB-like; a prepared dataset's stats.json replaces it
CALIBRATION_FILE = Path(".textclf/throughput.json")
EVAL_ROWS, EVAL_TOKENS = 256, 16_384  # evaluation batch limits (training/batching.py EVAL_MAX_*)


@dataclass(frozen=True)
class MachineSpeed:
    """What a replica's time is made of on this machine (see the module docstring)."""

    rate: float  # multiply-adds per second
    step_seconds: float  # fixed cost of one optimizer step
    timestep_seconds: Mapping[str, Mapping[str, float]]  # cell -> {"train", "eval"}: s per recurrent step
    source: str  # where the rate came from, for the plan's last line
    warmup_seconds: Mapping[str, float] = field(default_factory=dict)  # cell -> extra s of a replica's first step


@dataclass(frozen=True)
class DataSize:
    rows: Mapping[str, int]
    tokens_per_row: float  # mean whitespace tokens per training row (before max_len)
    long_row: float | None = None  # p99 of the training rows' lengths: a shuffled batch's longest row

    def batch_width(self) -> float:
        """About the longest row of a shuffled batch (`padding: batch` pads every row to it)."""
        return self.long_row or 3.0 * self.tokens_per_row

    @classmethod
    def from_stats(cls, path: Path) -> DataSize | None:
        if not path.is_file():
            return None
        stats = json.loads(path.read_text(encoding="utf-8"))
        q = stats.get("token_length_quantiles", {}).get("train", {})
        typical = q.get("mean") or (1.15 * q["p50"] if "p50" in q else None)  # lengths are right-skewed
        return cls(rows=stats.get("rows", DEFAULT_ROWS), tokens_per_row=float(typical or DEFAULT_TOKENS_PER_ROW),
                   long_row=float(q["p99"]) if "p99" in q else None)


def _rows_used(variant: Variant, size: DataSize) -> tuple[int, int]:
    """(training rows, validation + test rows) a replica reads: quick caps and train_fraction
    applied as the trainer applies them (splits.sampled_rows)."""
    from textclf.splits import sampled_rows

    return (sampled_rows(variant, "train", int(size.rows.get("train", 0))),
            sum(sampled_rows(variant, s, int(size.rows.get(s, 0))) for s in ("val", "test")))


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
    tokens = _lengths(variant, size)
    per_token = work_per_token(variant.model)
    return training.epochs * (train_rows * tokens * per_token + eval_rows * tokens * per_token / 3.0)


def _lengths(variant: Variant, size: DataSize) -> float:
    """Positions per row a replica's recurrence runs over: max_len with fixed padding, a
    shuffled batch's longest row with `batch` padding, else about the mean row length (batches
    are length-bucketed); capped by max_len."""
    training = variant.training
    if training.padding == "fixed":
        return float(training.max_len)
    typical = size.batch_width() if training.padding == "batch" else size.tokens_per_row
    return min(typical, training.max_len)


def replica_steps(variant: Variant, size: DataSize) -> tuple[float, float]:
    """(optimizer steps, evaluation batches) over all epochs."""
    training = variant.training
    train_rows, eval_rows = _rows_used(variant, size)
    eval_batches = math.ceil(max(eval_rows / EVAL_ROWS, eval_rows * _lengths(variant, size) / EVAL_TOKENS))
    return (training.epochs * math.ceil(train_rows / training.batch_size), training.epochs * eval_batches)


def recurrent_depth(model: RNNConfig) -> int:
    """Recurrences run one after the other per batch: layers × directions."""
    return model.layers * (2 if model.bidirectional else 1)


def replica_seconds(variant: Variant, size: DataSize, speed: MachineSpeed) -> float:
    """Work at the machine's rate, plus the fixed cost of every step and of every recurrent
    time step (which dominates small models and small batches)."""
    if not isinstance(variant.model, RNNConfig):
        train_rows, _ = _rows_used(variant, size)
        return TFIDF_FIXED_SECONDS + train_rows * size.tokens_per_row / TFIDF_TOKENS_PER_SECOND
    steps, eval_batches = replica_steps(variant, size)
    per_timestep = speed.timestep_seconds.get(variant.model.cell, {"train": 0.0, "eval": 0.0})
    timesteps = _lengths(variant, size) * recurrent_depth(variant.model)
    return (replica_work(variant, size) / speed.rate + (steps + eval_batches) * speed.step_seconds
            + timesteps * (steps * per_timestep["train"] + eval_batches * per_timestep["eval"])
            + speed.warmup_seconds.get(variant.model.cell, 0.0))


def measured_rate(runs: Iterable[tuple[Variant, Path]], fixed: MachineSpeed | None = None) -> float | None:
    """Median work/second of earlier runs on this machine's CPU (metrics.json: n_train,
    seconds_per_epoch, epochs_run, tokens_per_second), after the fixed costs of `fixed`
    (steps, recurrent time steps) are taken off each run's training time; results computed
    elsewhere (a lent GPU, another CPU) say nothing about this machine's rate."""
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
            epochs = int(metrics["epochs_run"])
            seconds = float(metrics["seconds_per_epoch"]) * epochs
            tokens = float(metrics["tokens_per_second"]) * seconds  # training tokens actually seen
            n_train = int(metrics.get("n_train") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        if seconds <= 0 or tokens <= 0:
            continue
        if fixed is not None and n_train > 0:
            steps = epochs * math.ceil(n_train / variant.training.batch_size)
            length = (variant.training.max_len if variant.training.padding == "fixed"
                      else tokens / (epochs * n_train))
            per_timestep = fixed.timestep_seconds.get(variant.model.cell, {}).get("train", 0.0)
            overhead = (steps * (fixed.step_seconds + length * recurrent_depth(variant.model) * per_timestep)
                        + fixed.warmup_seconds.get(variant.model.cell, 0.0))
            seconds = max(seconds - overhead, 0.2 * seconds)  # the model is rough: never below a fifth
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


def timestep_costs(seconds: float = 0.05, width: int = 64) -> dict[str, dict[str, float]]:
    """Per cell: seconds per recurrent time step of a one-row batch (training: forward +
    backward + update; evaluation: forward), from the difference between 16- and 128-step runs
    of a small one-thread encoder (input and hidden `width`) built by the classifier's own code.
    At batch size 1 a step's work is mostly this latency, so the estimate is about right there
    and a little high for large models at large batches."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return {cell: {kind: _timestep_cost(cell, kind == "train", seconds, width) for kind in ("train", "eval")}
            for cell in GATES}


def _timestep_cost(cell: str, train: bool, seconds: float, width: int) -> float:
    import torch

    from textclf.models.classifier import _make_encoder

    encoder, head = _make_encoder(cell, width, width, 1, False, 0.0), torch.nn.Linear(width, 2)
    optim = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    y = torch.zeros(1, dtype=torch.long)

    def call(x: torch.Tensor) -> None:
        with torch.inference_mode(mode=not train):
            args = (x, torch.tensor([x.shape[1]])) if cell == "gru_scratch" else (x,)
            out, _ = encoder(*args)
            if train:
                optim.zero_grad()
                torch.nn.functional.cross_entropy(head(out[:, -1]), y).backward()
                optim.step()

    def seconds_per_call(x: torch.Tensor) -> float:
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or calls < 3:
            call(x)
            calls += 1
        return (time.perf_counter() - start) / calls

    short, long = torch.randn(1, 16, width), torch.randn(1, 128, width)
    call(short), call(long)  # first calls: allocations, kernel selection
    slopes = [(seconds_per_call(long) - seconds_per_call(short)) / (128 - 16) for _ in range(3)]
    return max(statistics.median(slopes), 0.0)


def warmup_costs() -> dict[str, float]:
    """Per cell: how much longer a replica's first training step takes than its steady ones,
    measured in a fresh Python process (every replica is one): the process-wide first-step cost
    (first cell's first step, minus a second fresh model's) plus each cell's own first-use cost
    (an LSTM's is most of it on CPU)."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cells = ["rnn", *[c for c in GATES if c != "rnn"]]
    try:
        out = subprocess.run([sys.executable, "-m", "textclf.warmup_probe", *cells],
                             capture_output=True, text=True, check=True, env=env, timeout=300)
        return {cell: float(s) for cell, s in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        # an estimate without warm-up is a few ms per replica short: never a reason to stop a run
        log.warning("warm-up probe failed (%s: %s); estimating without it", type(exc).__name__, exc)
        return {}


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


def machine_speed(runs: Iterable[tuple[Variant, Path]] = (), cache: Path = CALIBRATION_FILE) -> MachineSpeed:
    """This machine's speed: the calibration's fixed costs, and the rate of earlier runs here
    (else the calibration's)."""
    saved = _calibration(cache)
    fixed = MachineSpeed(rate=float(saved["rate"]), step_seconds=float(saved["step_seconds"]),
                         timestep_seconds=saved["timestep_seconds"], warmup_seconds=saved["warmup_seconds"],
                         source=saved["source"])
    rate = measured_rate(runs, fixed)
    if rate:
        return replace(fixed, rate=rate, source="measured on earlier runs here")
    return fixed


CALIBRATION_KEYS = ("rate", "step_seconds", "timestep_seconds", "warmup_seconds")


def _calibration(cache: Path) -> dict[str, Any]:
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("host") == os.uname().nodename and all(k in saved for k in CALIBRATION_KEYS):
            return {**saved, "source": "calibration run (cached)"}
    saved = {"rate": calibrate(), "step_seconds": step_overhead(), "timestep_seconds": timestep_costs(),
             "host": os.uname().nodename, "when": time.strftime("%Y-%m-%d %H:%M")}
    warmup = warmup_costs()
    if warmup:  # a failed probe is not cached: the next plan tries again
        saved["warmup_seconds"] = warmup
    atomic.write_json(cache, saved)
    return {**saved, "warmup_seconds": warmup, "source": "calibration run"}


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_table(rows: list[dict[str, Any]], deferred: Mapping[str, float] | None = None) -> str:
    """Per study: replicas, already trained, published, to train now and its CPU time, and what
    the time budget leaves for later (`deferred`: results folder -> seconds) with its CPU time."""
    deferred = deferred or {}
    header = f"{'study':<18} {'replicas':>8} {'cached':>7} {'published':>9} {'to train':>8} {'est. CPU time':>14}"
    if deferred:
        header += f" {'later':>6} {'est. later':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        runs = r.get("runs", {})
        later = [s for out, s in runs.items() if out in deferred]
        line = (f"{r['study']:<18} {r['replicas']:>8} {r['cached']:>7} {r.get('published', 0):>9} "
                f"{r['to_train'] - len(later):>8} {format_duration(r['seconds'] - sum(later)):>14}")
        if deferred:
            line += f" {len(later):>6} {format_duration(sum(later)) if later else '':>11}"
        lines.append(line)
    if any(r.get("published") for r in rows):
        lines.append("published: in reports/runs/ with these settings and training code; copied instead of "
                     "trained when the inputs, device and instruction set match too")
    if deferred:
        lines.append("later: over the time budget (run.budget); not trained by this run, listed in the report")
    return "\n".join(lines)


def earlier_runs(root: Path = Path(".")) -> Iterable[tuple[Variant, Path]]:
    """Every trained replica of this workspace, whichever study or setting is selected now:
    (its variant, read back from its job file; its results folder)."""
    from textclf.plan import JOBS_DIR
    from textclf.settings import variant_from_dict

    for job in sorted((root / JOBS_DIR / "train").rglob("seed*.json")):
        try:
            settings = json.loads(job.read_text(encoding="utf-8"))
            results = root / settings["out"]
            if (results / "metrics.json").is_file():
                yield variant_from_dict(settings["variant"], str(job)), results
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a job file from an older version: it says nothing reliable here


def _reusable_published(plan: Any, root: Path) -> set[str]:
    """Results folders the train stage would copy from reports/runs/ rather than train: a
    record of the same settings, training code and instruction set (inputs and device are
    checked when the job runs: the data may not be prepared yet)."""
    from textclf.isa import instruction_set
    from textclf.published import CurrentProvenance, published_record, reuse_mode

    mode = reuse_mode()
    if mode == "0":
        return set()
    current = CurrentProvenance(root)
    isa = instruction_set()
    found = set()
    for job in plan.jobs("train"):
        record = published_record(job.settings["out"], root)
        if (record and record.get("settings_sha256") == job.digest and record.get("isa") == isa
                and (mode == "ignore-code" or record.get("code_sha256") == current.code(job.settings["variant"]["model"]["type"]))):
            found.add(job.settings["out"])
    return found


def study_estimates(plan: Any, root: Path = Path("."), mode: str | None = None) -> tuple[list[dict[str, Any]], float, str]:
    """Per study of a plan (its selected mode, or `mode`): replicas, cached, to train, estimated CPU seconds."""
    from textclf.plan import prepared_dir, results_dir

    variants = plan.variants if mode is None else plan.variants_by_mode[mode]
    runs = [(v, root / results_dir(v)) for v in variants]
    digests = {job.settings["out"]: job.digest for job in plan.jobs("train")}
    reusable = _reusable_published(plan, root)
    speed = machine_speed([*earlier_runs(root)] or runs, root / CALIBRATION_FILE)
    sizes: dict[str, DataSize] = {}
    guessed: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    for variant, results in runs:
        if variant.dataset not in sizes:
            found = DataSize.from_stats(root / prepared_dir(variant.dataset) / "stats.json")
            sizes[variant.dataset] = found or DataSize(DEFAULT_ROWS, DEFAULT_TOKENS_PER_ROW)
            if found is None:
                guessed.append(variant.dataset)
        row = rows.setdefault(variant.study, {"study": variant.study, "replicas": 0, "cached": 0, "published": 0,
                                              "to_train": 0, "seconds": 0.0, "runs": {}, "settings": {}})
        row["replicas"] += 1
        if (results / "metrics.json").is_file():
            row["cached"] += 1
        elif results_dir(variant) in reusable:
            row["published"] += 1
        else:
            row["to_train"] += 1
            seconds = replica_seconds(variant, sizes[variant.dataset], speed)
            row["seconds"] += seconds
            out = str(results_dir(variant))
            row["runs"][out] = seconds
            row["settings"][out] = digests.get(out)
    source = speed.source + (f"; sizes guessed for {', '.join(guessed)} (not prepared yet)" if guessed else "")
    return list(rows.values()), speed.rate, source


ESTIMATES_DIR = Path(".textclf/estimates")
RESUME_CHECKPOINT = "checkpoint.pt"  # training.trainer.CHECKPOINT, named here without importing torch


def save_estimates(mode: str, rows: list[dict[str, Any]], source: str, root: Path = Path(".")) -> None:
    """What each replica still to train was expected to take, for the report to compare with
    its measured time (and to price the replicas that never ran). Merged into the saved file:
    a replica trained since keeps the estimate made before its run, so a later `textclf plan`
    never erases it; so does one stopped part-way (it left a checkpoint) and resumed with the
    same settings, whose measured time counts its earlier epochs too."""
    path = root / ESTIMATES_DIR / f"{mode}.json"
    runs = read_estimates(path)
    for row in rows:
        for results, seconds in row.get("runs", {}).items():
            digest = row.get("settings", {}).get(results)
            before = runs.get(results)
            if (isinstance(before, dict) and digest is not None and before.get("settings_sha256") == digest
                    and (root / results / RESUME_CHECKPOINT).is_file()):
                continue  # started under these settings: its estimate from before that start stands
            runs[results] = {"seconds": seconds, "study": row["study"], "when": time.strftime("%Y-%m-%d %H:%M"),
                             "source": source, "settings_sha256": digest}
    atomic.write_json(path, {"runs": dict(sorted(runs.items()))})


def read_estimates(path: Path) -> dict[str, Any]:
    """results folder -> its saved estimate, from one estimates file ({} when there is none)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    runs = saved.get("runs") if isinstance(saved, dict) else None
    return runs if isinstance(runs, dict) else {}


def saved_estimates(mode: str, results: Iterable[str], root: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """The saved estimate of each of these results folders that has one: this workspace's, else
    the one its published run carries (reports/runs/: a run published from another machine)."""
    from textclf.published import published_estimate

    runs = read_estimates(root / ESTIMATES_DIR / f"{mode}.json")
    found = {}
    for r in results:
        estimate = runs.get(r) if isinstance(runs.get(r), dict) else published_estimate(r, root)
        if estimate is not None:
            found[r] = estimate
    return found


def estimate_line(mode: str, measured: Mapping[str, float], root: Path = Path(".")) -> str | None:
    """'Estimate check: X estimated for N runs before they ran; measured Y (ratio)' over the
    runs (results folder -> measured training seconds) that have a saved estimate."""
    found = saved_estimates(mode, measured, root)
    done = {r: s for r, s in measured.items() if r in found and s > 0}
    if not done:
        return None
    estimated = sum(found[r]["seconds"] for r in done)
    actual = sum(done.values())
    when = sorted({found[r]["when"] for r in done})
    sources = sorted({found[r]["source"] for r in done})
    return (f"Estimate check: {format_duration(estimated)} estimated for {len(done)} run{'s' if len(done) != 1 else ''} "
            "before they ran "
            f"({when[0] if len(when) == 1 else f'{when[0]} to {when[-1]}'}; {'; '.join(sources)}); measured "
            f"{format_duration(actual)} of training, {actual / estimated:.2f}x the estimate.")
