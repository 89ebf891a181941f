"""One training epoch and one evaluation pass; no file I/O, no policy (the trainer decides).

Losses and accuracy are accumulated on the device and read back once per epoch (and every
few batches for the progress bar), so the loop does not synchronise with the GPU each step.
Lengths stay on the CPU: packing needs them there. Evaluation runs the model's same fast
paths under inference_mode, on length-sorted batches sized by a token budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from textclf.training.batching import EncodedSplit, collate, predict_batches
from textclf.training.device import Precision, to_device
from textclf.training.optim import Optimization

log = logging.getLogger(__name__)

BAR_EVERY = 20
"""Refresh the progress bar's loss/acc every this many batches."""
LOG_EVERY_SECONDS = 30.0
"""When stderr is not a terminal (the engines pipe it through tee into the job's log), tqdm is
off: a progress line with rate and ETA is logged at most this often instead."""


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    seconds: float
    tokens: int  # real tokens seen (after truncation, without padding)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class ProgressLog:
    """Periodic progress lines for logs: batches done, rows/s, tokens/s, running loss and
    accuracy, and the time left in the epoch."""

    def __init__(self, desc: str, total: int, start: float, every: float = LOG_EVERY_SECONDS) -> None:
        self.desc, self.total, self.start, self.every = desc, total, start, every
        self.last = start

    def due(self, step: int) -> bool:
        """Time for a line (not at the last batch: the epoch summary follows)."""
        now = time.perf_counter()
        if now - self.last < self.every or step == self.total:
            return False
        self.last = now
        return True

    def log(self, step: int, rows: int, tokens: int, loss: float, acc: float) -> None:
        elapsed = self.last - self.start
        eta = elapsed / step * (self.total - step)
        log.info("%s: %d/%d batches (%.0f%%), %.0f rows/s, %.0f tok/s, loss %.4f acc %.4f, ETA %s",
                 self.desc, step, self.total, 100 * step / self.total, rows / elapsed, tokens / elapsed,
                 loss, acc, _clock(eta))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def train_epoch(
    model: nn.Module,
    split: EncodedSplit,
    batches: list[np.ndarray],
    optim: Optimization,
    *,
    max_len: int,
    padding: str,
    device: torch.device,
    precision: Precision,
    clip_grad_norm: float | None = None,
    desc: str = "train",
    window: int | None = None,
    on_window: Callable[[int, float], None] | None = None,
) -> EpochStats:
    """One pass over `batches` (row indices into `split`), updating the model.

    With `window`, `on_window(step, mean loss of the last `window` batches)` is called after
    every `window`-th batch (seed 003's running-loss check); batches after the last full window
    of the epoch belong to none, as in the seed."""
    model.train()
    move = to_device(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = tokens = 0
    window_loss = 0.0
    start = time.perf_counter()
    bar = tqdm(batches, desc=desc, disable=None, leave=False, unit="batch")
    progress = ProgressLog(desc, len(batches), start)
    fixed = padding == "fixed"
    for step, index in enumerate(bar, 1):
        batch = collate(split, index, max_len, fixed)
        ids, labels = move(batch.ids), move(batch.labels)
        optim.zero_grad()
        with precision.autocast():
            logits = model(ids, batch.lengths)
        # With `model.output: softmax` the model returns probabilities and this is the
        # cross-entropy over them (seed 000's double softmax), on purpose.
        loss = F.cross_entropy(logits.float(), labels)
        optim.step(loss, scaler=precision.scaler, clip_grad_norm=clip_grad_norm)
        loss_sum += loss.detach() * len(index)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(index)
        tokens += batch.tokens
        if on_window is not None and window:
            window_loss += loss.item()
            if step % window == 0:
                on_window(step, window_loss / window)
                window_loss = 0.0
        if step % BAR_EVERY == 0 or step == len(batches):
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
        if bar.disable and progress.due(step):
            progress.log(step, seen, tokens, loss_sum.item() / seen, correct.item() / seen)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return EpochStats(
        loss=loss_sum.item() / max(seen, 1),
        accuracy=correct.item() / max(seen, 1),
        seconds=seconds,
        tokens=tokens,
    )


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    split: EncodedSplit,
    *,
    batch_size: int,
    max_len: int,
    padding: str,
    device: torch.device,
    precision: Precision,
    desc: str = "eval",
) -> np.ndarray:
    """Class probabilities [N, K] in the split's row order (batches: `predict_batches`).

    `batch_size` (the training batch size) is a floor on the rows per batch: what fits in
    training fits here."""
    model.eval()
    move = to_device(device)
    probabilities = getattr(model, "outputs_probabilities", False)  # `model.output: softmax`
    chunks: list[tuple[np.ndarray, torch.Tensor]] = []
    fixed = padding == "fixed"
    batches = predict_batches(split.lengths, padding, batch_size, max_len)
    bar = tqdm(batches, desc=desc, disable=None, leave=False, unit="batch")
    for index in bar:
        batch = collate(split, index, max_len, fixed)
        with precision.autocast():
            logits = model(move(batch.ids), batch.lengths)
        out = logits.float() if probabilities else torch.softmax(logits.float(), dim=1)
        chunks.append((index, out.cpu()))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    probs = np.empty((len(split), chunks[0][1].shape[1]), dtype=np.float32)
    for index, p in chunks:
        probs[index] = p.numpy()
    return probs
