"""Run as `python -m textclf.warmup_probe CELL...` by the estimate's calibration: prints, as
JSON, how much longer each cell's first training step is than its steady ones in a fresh
process (a replica's warm-up). The first cell's number includes the process-wide set-up;
the others add that set-up to their own first-use cost."""

from __future__ import annotations

import json
import sys
import time

import torch

from textclf.models.classifier import _make_encoder


def first_step_extra(cell: str, steps: int = 12, width: int = 16) -> float:
    """Seconds the first of `steps` training steps of a fresh one-layer encoder takes beyond
    the median of the others (varying batch widths, as bucketed batches have)."""
    torch.manual_seed(0)
    emb, head = torch.nn.Embedding(100, width), torch.nn.Linear(width, 2)
    encoder = _make_encoder(cell, width, width, 1, False, 0.0)
    optim = torch.optim.Adam([*emb.parameters(), *encoder.parameters(), *head.parameters()], lr=1e-3)
    y, times = torch.zeros(16, dtype=torch.long), []
    for i in range(steps):
        ids = torch.randint(0, 100, (16, (16, 12, 9)[i % 3]))
        start = time.perf_counter()
        optim.zero_grad()
        args = (emb(ids), torch.full((16,), ids.shape[1])) if cell == "gru_scratch" else (emb(ids),)
        out, _ = encoder(*args)
        torch.nn.functional.cross_entropy(head(out[:, -1]), y).backward()
        optim.step()
        times.append(time.perf_counter() - start)
    return max(times[0] - sorted(times[1:])[(steps - 1) // 2], 0.0)


def main(cells: list[str]) -> dict[str, float]:
    torch.set_num_threads(1)
    process = first_step_extra(cells[0])  # the process's first step: process-wide set-up + its cell's
    again = first_step_extra(cells[0])  # a fresh model of the same cell in a warm process
    return {cells[0]: process, **{c: max(process - again, 0.0) + first_step_extra(c) for c in cells[1:]}}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
