"""Training memory under glibc's allocator settings: the resident size of one real job's first
training steps, with the pipeline's `mallopt` setting, the earlier "every block from the heap"
setting, and glibc's defaults (one mode per process: mallopt acts process-wide).

    python benchmarks/train_memory.py jobs/train/full/<dataset>/<study>/<variant>/seed<k>.json \
        --mode pipeline|heap|default --steps 60

Runs the job's own model, optimizer and length-bucketed batches of its encoded train split
(the train stage must have its inputs: run the data stages first), one thread, and prints the
resident size every 20 steps, its peak and the seconds taken.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import time
from pathlib import Path

import numpy as np
import torch

from textclf.models import build_model
from textclf.settings import variant_from_dict
from textclf.splits import read_classes
from textclf.training.batching import collate, epoch_batches, load_encoded
from textclf.training.device import keep_freed_memory
from textclf.training.optim import build_optimization


def resident_gib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job")
    parser.add_argument("--mode", choices=["pipeline", "heap", "default"], default="pipeline")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    if args.mode == "pipeline":
        keep_freed_memory()
    elif args.mode == "heap":  # the earlier setting: M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 1 GiB
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)
        libc.mallopt(-1, 1 << 30)
    torch.set_num_threads(1)
    job = json.loads(Path(args.job).read_text(encoding="utf-8"))
    variant = variant_from_dict(job["variant"], args.job)
    train = load_encoded(f"{job['inputs']['encoded']}/train.parquet")
    embedding = np.load(job["inputs"]["embedding"]) if job["inputs"].get("embedding") else None
    vocab_size = len(embedding) if embedding is not None else int(train.values.max()) + 1
    torch.manual_seed(variant.training.seed)
    model = build_model(variant.model, vocab_size=vocab_size, num_classes=len(read_classes(job["inputs"]["prepared"])),
                        embedding_matrix=embedding)
    optim = build_optimization(model, variant.training)
    batches = epoch_batches(train, variant.training.batch_size, seed=variant.training.seed, epoch=1,
                            padding=variant.training.padding)
    start, peak = time.perf_counter(), 0.0
    for step, index in enumerate(batches[: args.steps], 1):
        batch = collate(train, index, variant.training.max_len, variant.training.padding == "fixed")
        optim.step(torch.nn.functional.cross_entropy(model(batch.ids, batch.lengths), batch.labels))
        peak = max(peak, resident_gib())
        if step % 20 == 0:
            print(f"{args.mode}: step {step}, width {batch.ids.shape[1]}, resident {resident_gib():.2f} GiB", flush=True)
    print(f"{args.mode}: {min(args.steps, len(batches))} steps, peak resident {peak:.2f} GiB, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
