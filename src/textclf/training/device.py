"""Where and how the computation runs: device choice, CPU threads and denormals, mixed
precision, seeding.

Kept apart from the loop so the same choices (and the same reproducibility guarantees) apply
to training, evaluation and the throughput benchmark.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import random
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.utils.deterministic

from textclf.config import ParamsError
from textclf.machine import cpu_model

log = logging.getLogger(__name__)

DEVICE_ENV = "TEXTCLF_DEVICE"
THREADS_ENV = "TEXTCLF_THREADS"


def resolve_device(requested: str = "auto") -> torch.device:
    """auto → cuda, then mps, then cpu. The TEXTCLF_DEVICE environment variable wins over
    params, so one machine can run the same pipeline on another device without editing it."""
    requested = os.environ.get(DEVICE_ENV) or requested
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if requested not in available:
        raise ParamsError(f"training.device: {requested!r} is not allowed; allowed: auto, cpu, cuda, mps")
    if not available[requested]:
        raise ParamsError(f"training.device: {requested!r} was requested (params or {DEVICE_ENV}) but is not available")
    return torch.device(requested)


def job_threads(environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(torch CPU threads for this job, where the number came from).

    TEXTCLF_THREADS wins; then OMP_NUM_THREADS, which Snakemake exports as the rule's
    `threads` to every job, so N parallel jobs use N x threads cores and never oversubscribe;
    otherwise (DVC, or a plain call) one thread, what Snakemake's train rule runs with: the
    thread count changes the order of some CPU sums (on an AVX2 EPYC, 1 and 2 threads gave the
    engine tests' tiny study different predictions), and a CPU result must not depend on which
    engine ran the job. Set TEXTCLF_THREADS for more.
    """
    environ = os.environ if environ is None else environ
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = environ.get(name, "").strip()
        if value:
            try:
                threads = int(value)
            except ValueError:
                raise ParamsError(f"{name}={value!r}: expected a whole number of threads") from None
            if threads < 1:
                raise ParamsError(f"{name}={value!r}: expected at least 1 thread")
            return threads, name
    return 1, "default"


def denormals_flushed() -> bool:
    """True when denormal floats read as zero in this thread and in every intra-op worker.

    Probed rather than trusted: set_flush_denormal changes only the calling thread's FPU
    flags; OpenMP workers inherit them only if they are created afterwards."""
    workers = max(torch.get_num_threads(), 1)
    tiny = torch.full((workers * 65_536,), 1e-39)
    return bool(((tiny * 1.0) == 0).all())


def flush_denormals() -> bool:
    """Flush denormal floats to zero; True when it reached this thread and every worker.

    Gradients that vanish through time become denormal floats, which many x86 CPUs handle in
    slow microcode (the issue measured an LSTM epoch 8x slower on one machine; this 2-core
    AMD EPYC showed no penalty). Flushing them changes no metric we measured."""
    supported = torch.set_flush_denormal(True)
    flushed = supported and denormals_flushed()
    if supported and not flushed:
        log.warning("denormals are flushed in the main thread only: torch's worker threads started "
                    "before training did (run training in a fresh process, or use 1 thread)")
    return flushed


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
MMAP_THRESHOLD = 64 << 20
"""Blocks from this size up are still mapped from the kernel (and unmapped on free)."""


def keep_freed_memory() -> bool:
    """glibc: serve blocks under 64 MiB from the heap and keep up to 1 GiB of freed heap.

    By default glibc maps blocks over 32 MiB (and smaller ones until its threshold adapts)
    straight from the kernel and unmaps them on free, so every training step page-faults its
    activations in again: ~40,000 faults and ~70 ms of kernel time per LSTM step (hidden 128,
    batch 64, 256 tokens), about half the step. Keeping them halves that step (RSS +5-40%).
    Blocks from 64 MiB up stay mapped: serving every block from the heap (M_MMAP_MAX=0, the
    earlier setting) fragmented it under batches of very different widths. sweep_imdb's
    lstm-best004 (batch 128, full reviews up to 2,789 tokens) grew to 6.5 GiB RSS in 60 steps
    and was OOM-killed at 22.5 GiB in epoch 3 on the 24 GiB machine; with this setting the same
    60 steps held 1.2 GiB (glibc's defaults: 0.8 GiB, about 20 % slower; benchmarks/train_memory.py). True
    when set."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def configure_cpu() -> dict[str, Any]:
    """Process-wide CPU policy for training and evaluation; returns the run-info fields:
    denormals flushed, freed memory kept for reuse, torch threads = `job_threads`. Call it
    first thing in a process: worker threads started earlier keep their old FPU flags."""
    flushed = flush_denormals()
    threads, source = job_threads()
    torch.set_num_threads(threads)
    return {"flush_denormal": flushed, "malloc_keep_freed": keep_freed_memory(), "cpu_threads": threads,
            "cpu_threads_from": source}


def machine_info(device: torch.device) -> dict[str, Any]:
    """What a result was computed on, for metrics.json: the report says which hardware and
    library versions produced each number (results from a lent GPU beside CPU ones)."""
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {"hardware": hardware, "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda if device.type == "cuda" else None,
            "host_cpus": os.cpu_count()}


@dataclass
class Precision:
    """Autocast settings for one run: on CUDA with amp, bf16 where supported, else fp16 with
    a gradient scaler; everywhere else full float32."""

    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    @property
    def name(self) -> str:
        return "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")


def make_precision(device: torch.device, amp: bool) -> Precision:
    """Mixed precision on CUDA only. Always float16 with a GradScaler: torch's autocast runs
    cuDNN RNN/LSTM/GRU in float16 whatever dtype is asked for, so bfloat16 without loss
    scaling would really be float16 without it (small gradients underflow)."""
    if not amp or device.type != "cuda":
        return Precision(None, None, device.type)
    return Precision(torch.float16, torch.amp.GradScaler("cuda"), "cuda")


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels (warn-only, since a few
    CUDA kernels have no deterministic version).

    torch's deterministic mode also fills every new tensor with NaN (a debugging aid against
    reading uninitialised memory); that fill more than doubled a CPU LSTM epoch and changes no
    result of correct code, so it is switched off.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Every RNG state a checkpoint needs so a resumed run continues the same random stream."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_device(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """Tensor mover: a no-op on CPU, a non-blocking copy elsewhere."""
    if device.type == "cpu":
        return lambda t: t
    return lambda t: t.to(device, non_blocking=True)
