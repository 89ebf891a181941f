"""Training throughput: the pipeline's training step vs. a straightforward implementation.

Two implementations train the same model size on the same rows, with the same optimizer
(Adam 1e-3, dense embedding updates in both: `sparse_embeddings: auto` keeps Adam dense):

* pipeline: pre-encoded ids, length-bucketed batches padded to their own longest row, the
  model's true-last-token reading (gathered for one direction, reverse-within-length for two,
  gru_scratch's hand-written recurrence), train_variant's CPU settings: denormals flushed,
  freed memory kept for reuse (textclf.training);
* naive, as a user writes it without these fixes: tokenize in the DataLoader's collate
  function, shuffled batches padded to their longest row, dense embeddings, no packing (the
  RNN runs over the padding and the classifier reads the last position), denormals left as
  they are, glibc's default malloc; for gru_scratch a per-step GRU cell written with nn.Linear.

Suite (the default): a matrix of configs (see `suite_configs`; --full for every combination
of cell x direction x hidden 64/128/256 x batch 64/1024 x max_len 25/256 x random/GloVe-like
init), each measured for about --budget seconds per implementation after one warm-up batch,
--repeats times alternating (the best round counts: other jobs only ever slow a run down),
plus a matmul probe giving this machine's sgemm GFLOP/s in the same run. Prints a table and
writes JSON (--json): one object per config with config, pipeline_tokens_per_s,
naive_tokens_per_s, speedup, achieved_gflops (useful recurrent-layer FLOPs of the pipeline's
training step per second: real tokens only, 3x the forward matmuls), and top-level
sgemm_gflops.

    python benchmarks/train_throughput.py --threads 1 --json benchmarks/out/throughput.json
    # one config, one epoch of each implementation on the same rows:
    python benchmarks/train_throughput.py --cell lstm --hidden 128 --max-rows 2000 --threads 1
    python benchmarks/train_throughput.py --variant imdb/smoke_imdb/lstm-max-glove50 --max-rows 2000 ...
    # real data instead of the synthetic IMDB-like reviews (after prepare/vocab/encode):
    ... --prepared data/prepared/imdb --encoded data/encoded/imdb/basic_min10 \\
        --vocab-file data/vocab/imdb/basic_min10.json

The pipeline's CPU settings are process-wide and cannot be undone exactly, so the suite's
naive runs happen in a worker process of their own; the one-config mode runs the naive epoch
first, before them (a process that applied them earlier, like a test session, runs the naive
path with them, which can only flatter it).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from textclf.models import build_model
from textclf.settings import OptimizerConfig, RNNConfig, TrainingConfig, from_dict
from textclf.splits import stratified_indices
from textclf.text.tokenize import make_tokenizer, read_split
from textclf.text.vocab import UNK_INDEX, load_vocab
from textclf.training.batching import EncodedSplit, epoch_batches, load_encoded
from textclf.training.device import (
    flush_denormals,
    keep_freed_memory,
    make_precision,
    resolve_device,
    seed_everything,
)
from textclf.training.loop import train_epoch
from textclf.training.optim import build_optimization, make_optimizer, sparse_embedding_choice

EMBEDDING_DIM = 100
GLOVE_STD = 0.69
"""GloVe-like init: every component N(0, GLOVE_STD^2), the spread of glove.6B.50d's values
(first 50,000 words, measured from the offline mirror); the random init is nn.Embedding's N(0, 1)."""
BUILTIN_MODEL = {
    "type": "rnn", "cell": "lstm", "layers": 1, "bidirectional": False, "hidden": 64, "dropout": 0.0,
    "pooling": "last", "head": "linear", "head_dropout": 0.0,
    "embedding": {"source": "random", "dim": EMBEDDING_DIM, "freeze": False, "padding_idx": True},
}
BUILTIN_TRAINING = {
    "seed": 1, "epochs": 1, "batch_size": 64, "max_len": 256, "padding": "bucket",
    "optimizer": {"name": "adam", "lr": 0.001, "momentum": 0.0, "weight_decay": 0.0, "eps": 1.0e-8},
    "warmup_steps": 0, "clip_grad_norm": None, "early_stopping_patience": None, "eval_split": "val",
    "report_epoch": "best", "device": "auto", "amp": True, "sparse_embeddings": "auto",
}
TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "gru_scratch": 3}


# ---------------------------------------------------------------- inputs


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, training) from a params.yaml variant or the built-in config, with CLI overrides."""
    if args.variant:
        from textclf.config import load_params
        from textclf.settings import to_dict
        from textclf.studies import resolve_variants

        found = [v for v in resolve_variants(load_params(args.params), "all") if args.variant in (v.id, v.run_id)]
        if not found:
            raise SystemExit(f"unknown variant {args.variant!r}: `textclf variants` lists them")
        model, training = to_dict(found[0].model), to_dict(found[0].training)
        if model["type"] != "rnn":
            raise SystemExit(f"{args.variant} is a {model['type']} variant: nothing to benchmark")
        # A pre-trained matrix is replaced by a GloVe-like random one of the same width.
        if model["embedding"]["source"] != "random":
            model["embedding"]["source"] = "glove-like"
    else:
        model, training = copy.deepcopy(BUILTIN_MODEL), copy.deepcopy(BUILTIN_TRAINING)
    for key, value in (("cell", args.cell), ("hidden", args.hidden)):
        if value is not None:
            model[key] = value
    if args.bidirectional:
        model["bidirectional"] = True
    for key, value in (("max_len", args.max_len), ("batch_size", args.batch_size)):
        if value is not None:
            training[key] = value
    return model, training


def synthetic_data(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """IMDB-like reviews (Zipfian words, log-normal lengths, median ~165 tokens), turned into a
    vocab and encoded splits by the pipeline's own vocab and encode code."""
    from textclf.text.encode import encode_prepared
    from textclf.text.vocab import save_vocab, vocab_from_prepared

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(40_000)])
    zipf = 1.0 / np.arange(1, len(words) + 1) ** 1.05
    zipf /= zipf.sum()
    prepared = root / "prepared"
    prepared.mkdir(parents=True)
    start = 0
    for split, n in (("train", rows), ("val", 50), ("test", 50)):
        lengths = np.clip(rng.lognormal(5.1, 0.7, size=n).astype(int), 5, 2500)
        labels = rng.integers(0, 2, size=n)
        tokens = words[rng.choice(len(words), size=int(lengths.sum()), p=zipf)]
        ends = np.cumsum(lengths)
        texts = []
        for end, length, label in zip(ends, lengths, labels, strict=True):
            row = tokens[end - length : end]
            row[rng.integers(length)] = "great" if label else "awful"
            texts.append(" ".join(row))
        pd.DataFrame({"id": np.arange(start, start + n), "text": texts, "label": labels}).to_parquet(
            prepared / f"{split}.parquet", index=False)
        start += n
    cfg = {"tokenizer": {"name": "whitespace"}, "min_freq": 2, "max_size": None, "source": "train"}
    vocab = vocab_from_prepared(prepared, cfg)
    save_vocab(vocab, root / "vocab.json")
    encode_prepared(prepared, vocab, cfg, root / "encoded")
    return prepared, root / "encoded", root / "vocab.json"


IMDB_VOCAB = {"tokenizer": {"name": "basic_english", "strip_html": True, "stopwords": False}, "min_freq": 10,
              "max_size": None, "source": "train"}
"""params.yaml's basic_min10, the vocab of the IMDB studies."""


def imdb_data(root: Path, archive: Path, rows: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Real reviews from aclImdb_v1.tar.gz (no network): the vocab from all 25,000 training
    reviews (basic_min10), `rows` of them (stratified) to train on, through the pipeline's
    own reader, vocab and encode code."""
    from textclf.sources.imdb import read_aclimdb
    from textclf.text.encode import encode_prepared
    from textclf.text.tokenize import iter_tokenize
    from textclf.text.vocab import build_vocab, save_vocab

    frame, _ = read_aclimdb({"archive": archive}, ["neg", "pos"], "drop")
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    vocab = build_vocab(iter_tokenize(train["text"].tolist(), IMDB_VOCAB["tokenizer"]), IMDB_VOCAB)
    save_vocab(vocab, root / "vocab.json")
    prepared = root / "prepared"
    prepared.mkdir(parents=True)
    picks = {"train": (train, rows), "val": (test, 50), "test": (test.iloc[::-1], 50)}
    for split, (part, n) in picks.items():
        keep = stratified_indices(part["label"].to_numpy(), n, seed)
        part.iloc[keep][["id", "text", "label"]].to_parquet(prepared / f"{split}.parquet", index=False)
    encode_prepared(prepared, vocab, IMDB_VOCAB, root / "encoded")
    return prepared, root / "encoded", root / "vocab.json"


def glove_like(vocab_size: int, dim: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(0.0, GLOVE_STD, size=(vocab_size, dim)).astype(np.float32)
    matrix[0] = 0.0
    return matrix


class Data:
    """The rows both implementations train on: encoded ids (pipeline) and texts (naive)."""

    def __init__(self, prepared: Path, encoded: Path, vocab_file: Path, max_rows: int, seed: int) -> None:
        self.paths = (str(prepared), str(encoded), str(vocab_file), max_rows, seed)
        self.vocab = load_vocab(vocab_file)
        split = load_encoded(encoded / "train.parquet")
        self.split: EncodedSplit = split.take(stratified_indices(split.labels, max_rows, seed))
        text_split = read_split(prepared, "train")
        position = pd.Index(text_split.ids).get_indexer(self.split.row_ids)
        self.texts = [text_split.texts[i] for i in position]
        meta = pq.read_schema(encoded / "train.parquet").metadata or {}
        self.oov = meta.get(b"textclf.oov", b"unk").decode()
        self.num_classes = max(int(self.split.labels.max()) + 1, 2)


# ---------------------------------------------------------------- the pipeline


def pipeline_run(model_cfg, training, data: Data, device, *, budget: float | None,
                 matrix: np.ndarray | None, pack: bool | None = None) -> dict[str, Any]:
    """The pipeline's training epoch (textclf.training.loop.train_epoch) on bucketed batches:
    the whole epoch when budget is None, else batches until about `budget` seconds.
    pack=True: bidirectional torch cells on PackedSequence (the pipeline before the padded
    reverse-within-length path)."""
    flush_denormals()  # what train_variant's configure_cpu does (threads: --threads)
    keep_freed_memory()
    seed_everything(training["seed"])
    vocab_size = len(data.vocab)
    typed_model = from_dict(RNNConfig, {**model_cfg, "embedding": {**model_cfg["embedding"], "source": "random"}},
                            "benchmark model")
    typed_training = from_dict(TrainingConfig, training, "benchmark training")
    sparse, why = sparse_embedding_choice(typed_model, typed_training, vocab_size, device)
    model = build_model(from_dict(RNNConfig, model_cfg, "benchmark model"), vocab_size=vocab_size,
                        num_classes=data.num_classes, embedding_matrix=matrix,
                        sparse=sparse).to(device)
    model.pack_bidirectional = pack
    optim = build_optimization(model, typed_training)
    precision = make_precision(device, training.get("amp", False))
    batches = epoch_batches(data.split, training["batch_size"], seed=training["seed"], epoch=1, padding="bucket")
    kw = {"max_len": training["max_len"], "padding": "bucket", "device": device, "precision": precision,
          "clip_grad_norm": training.get("clip_grad_norm")}
    train_epoch(model, data.split, batches[:1], optim, desc="warm-up", **kw)
    seconds = tokens = 0.0
    if budget is None:
        stats = train_epoch(model, data.split, batches, optim, desc="pipeline", **kw)
        seconds, tokens = stats.seconds, stats.tokens
    else:
        for index in itertools.cycle(batches[1:] or batches):
            stats = train_epoch(model, data.split, [index], optim, desc="pipeline", **kw)
            seconds, tokens = seconds + stats.seconds, tokens + stats.tokens
            if seconds >= budget:
                break
    return {"seconds": seconds, "tokens": int(tokens), "tokens_per_s": tokens / seconds,
            "detail": f"bucketed batches, true last token, sparse embeddings {why}, {precision.name}, "
                      "denormals flushed"}


# ---------------------------------------------------------------- the straightforward implementation


class NaiveScratchGRU(nn.Module):
    """A GRU cell from its equations, stepped over the padded batch with two nn.Linear."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.x2h = nn.Linear(input_size, 3 * hidden)
        self.h2h = nn.Linear(hidden, 3 * hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        h = x.new_zeros(x.shape[0], self.hidden)
        outputs = []
        for t in range(x.shape[1]):
            x_r, x_z, x_n = self.x2h(x[:, t]).chunk(3, dim=-1)
            h_r, h_z, h_n = self.h2h(h).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            h = (1 - z) * n + z * h
            outputs.append(h)
        return torch.stack(outputs, dim=1), None


class NaiveBiScratchGRU(nn.Module):
    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.fwd, self.bwd = NaiveScratchGRU(input_size, hidden), NaiveScratchGRU(input_size, hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        backward = self.bwd(x.flip(1))[0].flip(1)
        return torch.cat([self.fwd(x)[0], backward], dim=-1), None


class NaiveRNN(nn.Module):
    """Embedding → RNN over the padded batch → linear on the output at the last position."""

    def __init__(self, model_cfg: dict[str, Any], vocab_size: int, num_classes: int) -> None:
        super().__init__()
        dim, hidden, bi = model_cfg["embedding"]["dim"], model_cfg["hidden"], model_cfg["bidirectional"]
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        if model_cfg["cell"] == "gru_scratch":
            self.rnn = NaiveBiScratchGRU(dim, hidden) if bi else NaiveScratchGRU(dim, hidden)
        else:
            self.rnn = TORCH_CELLS[model_cfg["cell"]](dim, hidden, num_layers=model_cfg["layers"],
                                                      batch_first=True, bidirectional=bi)
        self.out = nn.Linear(hidden * (2 if bi else 1), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.embedding(ids))
        return self.out(outputs[:, -1])


def naive_collate(vocab, tokenizer_cfg: dict[str, Any], oov: str, max_len: int):
    tokenize = make_tokenizer(tokenizer_cfg)
    lookup = vocab.lookup.get
    default = UNK_INDEX if oov == "unk" else None

    def collate(items):
        rows = []
        for text, _ in items:
            ids = [i for i in (lookup(t, default) for t in tokenize(text)) if i is not None][:max_len]
            rows.append(torch.tensor(ids or [UNK_INDEX], dtype=torch.long))
        return pad_sequence(rows, batch_first=True), torch.tensor([y for _, y in items])

    return collate


def naive_run(model_cfg, training, data: Data, device, *, budget: float | None,
              matrix: np.ndarray | None) -> dict[str, Any]:
    """The straightforward loop: the whole epoch when budget is None, else about `budget` s."""
    torch.set_flush_denormal(False)  # the default; reaches worker threads only if they start later
    seed_everything(training["seed"])
    model = NaiveRNN(model_cfg, len(data.vocab), data.num_classes)
    if matrix is not None:
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(matrix))
    model = model.to(device)
    opt_cfg = training["optimizer"]
    optimizer = make_optimizer(opt_cfg["name"], list(model.parameters()),
                               from_dict(OptimizerConfig, opt_cfg, "benchmark optimizer"))
    loader = DataLoader(list(zip(data.texts, data.split.labels.tolist(), strict=True)),
                        batch_size=training["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(training["seed"]),
                        collate_fn=naive_collate(data.vocab, data.vocab.config["tokenizer"], data.oov,
                                                 training["max_len"]))
    model.train()

    def step(ids, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids.to(device)), y.to(device))
        loss.backward()
        if training.get("clip_grad_norm"):
            nn.utils.clip_grad_norm_(model.parameters(), training["clip_grad_norm"])
        optimizer.step()

    for ids, y in loader:  # warm-up, untimed
        step(ids, y)
        break
    tokens = 0
    start = time.perf_counter()
    while True:
        for ids, y in loader:  # the timed part includes the collate (tokenizing), as in an epoch
            step(ids, y)
            tokens += int((ids != 0).sum())
            if budget is not None and time.perf_counter() - start >= budget:
                break
        if budget is None or time.perf_counter() - start >= budget:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
            "detail": "tokenize in collate, shuffled batches, no packing, dense embeddings, float32"}


class NaiveWorker:
    """The naive runs in a process of their own: none of the pipeline's process-wide CPU
    settings (flushed denormals, kept memory) can leak into them, and a naive and a pipeline
    measurement of one config can alternate, seconds apart, so load from other jobs on the
    machine hits both alike. One JSON line per request and per answer."""

    def __init__(self, data: Data) -> None:
        args = [sys.executable, __file__, "--naive-worker", json.dumps(data.paths),
                "--threads", str(torch.get_num_threads())]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, config: dict[str, Any], budget: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"config": config, "budget": budget}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the naive worker stopped (exit status {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def naive_worker(paths: str) -> None:
    """--naive-worker: answer {config, budget} lines on stdin with naive_run results."""
    prepared, encoded, vocab_file, max_rows, seed = json.loads(paths)
    data = Data(Path(prepared), Path(encoded), Path(vocab_file), max_rows, seed)
    device = resolve_device("auto")
    for line in sys.stdin:
        request = json.loads(line)
        model_cfg, training = _model_training(request["config"])
        matrix = _matrix(request["config"], data)
        result = naive_run(model_cfg, training, data, device, budget=request["budget"], matrix=matrix)
        print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- the machine's matmul rate


def _rate(f, flops: float, seconds: float) -> float:
    f()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        f()
        reps += 1
    return flops * reps / (time.perf_counter() - start) / 1e9


def sgemm_gflops(n: int, k: int, m: int, seconds: float = 0.5) -> dict[str, float]:
    """float32 [n, k] @ [k, m] GFLOP/s at the current torch thread count, by each GEMM torch
    has: torch.mm (MKL: what nn.Linear, nn.GRU and nn.RNN use on CPU) and oneDNN (what nn.LSTM's
    CPU kernel uses). They differ: MKL takes its AVX2 path on AMD CPUs, oneDNN uses AVX-512."""
    a, b = torch.randn(n, k), torch.randn(k, m)
    rates = {"mkl": _rate(lambda: a @ b, 2.0 * n * k * m, seconds)}
    if torch.backends.mkldnn.is_available():
        try:
            a_dnn, b_dnn = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
            rates["onednn"] = _rate(lambda: torch._C._nn.mkldnn_linear(a_dnn, b_dnn, None), 2.0 * n * k * m, seconds)
        except (AttributeError, RuntimeError):  # a private entry point: report MKL alone without it
            pass
    return rates


def flops_per_token(model_cfg: dict[str, Any]) -> float:
    """Recurrent-layer FLOPs of one training step per token: forward 2*G*H*(in+H) per layer
    and direction; backward ~2x forward (input and weight gradients)."""
    gates, hidden = GATES[model_cfg["cell"]], model_cfg["hidden"]
    directions = 2 if model_cfg["bidirectional"] else 1
    total, in_size = 0.0, model_cfg["embedding"]["dim"]
    for _ in range(model_cfg["layers"]):
        total += directions * 2.0 * gates * hidden * (in_size + hidden)
        in_size = directions * hidden
    return 3.0 * total


# ---------------------------------------------------------------- the suite


def _cfg(cell: str, bi: bool, hidden: int, batch: int, max_len: int, init: str) -> dict[str, Any]:
    return {"cell": cell, "bidirectional": bi, "hidden": hidden, "batch_size": batch, "max_len": max_len,
            "init": init}


def suite_configs(full: bool) -> list[dict[str, Any]]:
    """The measured matrix. Default subset (37 configs, ~10 min on 2 cores): every cell and
    direction at hidden 128, batch 64, max_len 25 and 256, random init; hidden 64 and 256 for
    lstm and gru (batch 64, max_len 256); batch 1024 at max_len 25 for rnn/lstm/gru and at 256
    for the uni LSTM; GloVe-like init for rnn/lstm/gru at hidden 128, batch 64, max_len 256."""
    cells, directions = ("rnn", "lstm", "gru", "gru_scratch"), (False, True)
    if full:
        return [_cfg(*c) for c in itertools.product(cells, directions, (64, 128, 256), (64, 1024), (25, 256),
                                                    ("random", "glove-like"))]
    configs = [_cfg(c, d, 128, 64, n, "random") for c in cells for d in directions for n in (256, 25)]
    configs += [_cfg(c, d, h, 64, 256, "random") for c in ("lstm", "gru") for d in directions for h in (64, 256)]
    configs += [_cfg(c, d, 128, 1024, 25, "random") for c in ("rnn", "lstm", "gru") for d in directions]
    configs += [_cfg("lstm", False, 128, 1024, 256, "random")]
    configs += [_cfg(c, d, 128, 64, 256, "glove-like") for c in ("rnn", "lstm", "gru") for d in directions]
    return configs


def _model_training(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    model, training = copy.deepcopy(BUILTIN_MODEL), copy.deepcopy(BUILTIN_TRAINING)
    model.update(cell=config["cell"], bidirectional=config["bidirectional"], hidden=config["hidden"])
    if config["init"] != "random":
        model["embedding"]["source"] = config["init"]
    training.update(batch_size=config["batch_size"], max_len=config["max_len"])
    return model, training


def _label(config: dict[str, Any]) -> str:
    cell = ("bi" if config["bidirectional"] else "") + config["cell"]
    return f"{cell:14s} h{config['hidden']:<4d} b{config['batch_size']:<5d} L{config['max_len']:<4d} {config['init']}"


def _matrix(config: dict[str, Any], data: Data) -> np.ndarray | None:
    return None if config["init"] == "random" else glove_like(len(data.vocab), EMBEDDING_DIM, BUILTIN_TRAINING["seed"])


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of the repeats: other jobs on the machine only ever slow a run down."""
    return max(runs, key=lambda r: r["tokens_per_s"])


def run_suite(data: Data, configs: list[dict[str, Any]], budget: float, device: torch.device,
              repeats: int = 2) -> dict[str, Any]:
    """Each config: `repeats` rounds of naive (worker process) then pipeline (here, with
    train_variant's CPU settings), plus the packed pipeline for bidirectional torch cells;
    the best round of each counts."""
    probe_start = sgemm_gflops(2048, 2048, 2048)
    peak_start = max(probe_start.values())
    wall = time.perf_counter()
    print(f"sgemm (2048^3, {torch.get_num_threads()} threads): "
          + ", ".join(f"{k} {v:.1f}" for k, v in probe_start.items()) + " GFLOP/s")
    print(f"{'config':44s} {'pipeline tok/s':>14s} {'naive tok/s':>12s} {'speed-up':>8s} {'GFLOP/s':>8s} "
          f"{'of sgemm':>8s} {'vs packed':>9s}")
    worker = NaiveWorker(data)
    results = []
    try:
        for config in configs:
            model_cfg, training = _model_training(config)
            matrix = _matrix(config, data)
            bidirectional_torch = config["bidirectional"] and config["cell"] in TORCH_CELLS
            naive_runs, fast_runs, packed_runs = [], [], []
            for _ in range(repeats):
                naive_runs.append(worker.run(config, budget))
                fast_runs.append(pipeline_run(model_cfg, training, data, device, budget=budget, matrix=matrix))
                if bidirectional_torch:
                    packed_runs.append(pipeline_run(model_cfg, training, data, device, budget=budget,
                                                    matrix=matrix, pack=True))
            naive, fast = _best(naive_runs), _best(fast_runs)
            flops = flops_per_token(model_cfg)
            row = {
                "config": config,
                "pipeline_tokens_per_s": fast["tokens_per_s"],
                "naive_tokens_per_s": naive["tokens_per_s"],
                "speedup": fast["tokens_per_s"] / naive["tokens_per_s"],
                "achieved_gflops": fast["tokens_per_s"] * flops / 1e9,
                "flops_per_token": flops,
                "pipeline_runs_tokens_per_s": [r["tokens_per_s"] for r in fast_runs],
                "naive_runs_tokens_per_s": [r["tokens_per_s"] for r in naive_runs],
            }
            if packed_runs:
                row["packed_tokens_per_s"] = _best(packed_runs)["tokens_per_s"]
                row["speedup_vs_packed"] = fast["tokens_per_s"] / row["packed_tokens_per_s"]
            results.append(row)
            print(f"{_label(config):44s} {row['pipeline_tokens_per_s']:14,.0f} {row['naive_tokens_per_s']:12,.0f} "
                  f"{row['speedup']:7.1f}x {row['achieved_gflops']:8.1f} {row['achieved_gflops'] / peak_start:8.0%}"
                  + (f" {row['speedup_vs_packed']:8.1f}x" if packed_runs else ""), flush=True)
    finally:
        worker.close()
    wall = time.perf_counter() - wall
    probe_end = sgemm_gflops(2048, 2048, 2048)
    sgemm = max(*probe_start.values(), *probe_end.values())
    for row in results:
        row["sgemm_fraction"] = row["achieved_gflops"] / sgemm
        if row["config"]["cell"] == "gru_scratch":  # its real comparison: nn.GRU in the same pipeline
            twin = next((r for r in results if r["config"] == row["config"] | {"cell": "gru"}), None)
            if twin is not None:
                row["nn_gru_tokens_per_s"] = twin["pipeline_tokens_per_s"]
                row["time_ratio_to_nn_gru"] = twin["pipeline_tokens_per_s"] / row["pipeline_tokens_per_s"]
    print("sgemm at the end: " + ", ".join(f"{k} {v:.1f}" for k, v in probe_end.items())
          + f" GFLOP/s; suite {wall:.0f} s; load average {os.getloadavg()}")
    for row in results:
        if "time_ratio_to_nn_gru" in row:
            print(f"{_label(row['config'])}: {row['time_ratio_to_nn_gru']:.2f}x the time of nn.GRU")
    lstm_shape = sgemm_gflops(64, 128, 512, seconds=0.3)
    return {
        "sgemm_gflops": sgemm,  # the best float32 GEMM rate this machine gave torch in this run
        "repeats": repeats, "budget_s": budget,
        "sgemm_probes": {"2048x2048x2048 start": probe_start, "2048x2048x2048 end": probe_end,
                         "64x128x512 (one LSTM step, batch 64, hidden 128)": lstm_shape},
        "results": results,
        "suite_seconds": wall,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown_table(result: dict[str, Any]) -> str:
    """A saved suite result as the README's markdown table."""
    sgemm = result["sgemm_gflops"]
    lines = ["| cell | dir | hidden | batch | max_len | init | pipeline tok/s | naive tok/s | speed-up "
             "| GFLOP/s | % of sgemm | vs packed |", "|" + "---|" * 12]
    for row in result["results"]:
        c = row["config"]
        packed = f"{row['speedup_vs_packed']:.1f}x" if "speedup_vs_packed" in row else ""
        if "time_ratio_to_nn_gru" in row:
            packed = f"({row['time_ratio_to_nn_gru']:.2f}x nn.GRU's time)"
        lines.append(f"| {c['cell']} | {'bi' if c['bidirectional'] else 'uni'} | {c['hidden']} | {c['batch_size']} "
                     f"| {c['max_len']} | {c['init']} | {row['pipeline_tokens_per_s']:,.0f} "
                     f"| {row['naive_tokens_per_s']:,.0f} | {row['speedup']:.1f}x | {row['achieved_gflops']:.0f} "
                     f"| {row['achieved_gflops'] / sgemm:.0%} | {packed} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--variant", help="one config: model + training from this params.yaml variant")
    parser.add_argument("--prepared", help="data/prepared/D (text for the naive path)")
    parser.add_argument("--encoded", help="data/encoded/D/V")
    parser.add_argument("--vocab-file", help="data/vocab/D/V.json")
    parser.add_argument("--imdb", type=Path, metavar="TAR_GZ",
                        help="real reviews from aclImdb_v1.tar.gz, e.g. $TEXTCLF_MIRROR/imdb/aclImdb_v1.tar.gz")
    parser.add_argument("--synthetic", type=int, metavar="ROWS",
                        help="synthetic IMDB-like reviews (the default: --max-rows of them)")
    parser.add_argument("--max-rows", type=int, default=4096, help="train rows used (stratified sample)")
    parser.add_argument("--max-len", type=int)
    parser.add_argument("--cell", choices=sorted(GATES))
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--budget", type=float, default=2.0, help="suite: seconds measured per implementation")
    parser.add_argument("--full", action="store_true", help="suite: the full matrix (192 configs, hours)")
    parser.add_argument("--configs", type=int, metavar="N", help="suite: only the first N configs (smoke test)")
    parser.add_argument("--repeats", type=int, default=2, help="suite: rounds per config; the best counts")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--table", metavar="JSON", help="print a saved suite result as a markdown table and stop")
    parser.add_argument("--naive-worker", metavar="DATA", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text(encoding="utf-8"))))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.naive_worker:
        naive_worker(args.naive_worker)
        return {}
    single = any(v is not None for v in (args.variant, args.cell, args.hidden, args.max_len, args.batch_size))
    device = resolve_device("auto")

    with tempfile.TemporaryDirectory() as tmp:
        if args.prepared and args.encoded and args.vocab_file:
            prepared, encoded, vocab_file = Path(args.prepared), Path(args.encoded), Path(args.vocab_file)
        elif args.prepared or args.encoded or args.vocab_file:
            parser.error("give all of --prepared, --encoded and --vocab-file, or none (synthetic data)")
        elif args.imdb:
            prepared, encoded, vocab_file = imdb_data(Path(tmp), args.imdb, args.max_rows)
        else:
            prepared, encoded, vocab_file = synthetic_data(Path(tmp), args.synthetic or args.max_rows)
        data = Data(prepared, encoded, vocab_file, args.max_rows, BUILTIN_TRAINING["seed"])
        source = ("imdb" if args.imdb else "synthetic") if not args.prepared else str(args.prepared)
        info = {"data": source, "rows": len(data.split), "vocab": len(data.vocab), "device": str(device),
                "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": _cpu_model(),
                "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()}
        if single:
            result = run_single(args, data, device) | info
        else:
            print(f"{len(data.split):,} rows, vocab {len(data.vocab):,}, emb {EMBEDDING_DIM}, adam, device {device}, "
                  f"{torch.get_num_threads()} threads, load average {os.getloadavg()}")
            configs = suite_configs(args.full)[: args.configs]
            result = run_suite(data, configs, args.budget, device, args.repeats) | info
    result["load_average_end"] = os.getloadavg()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result


def run_single(args: argparse.Namespace, data: Data, device: torch.device) -> dict[str, Any]:
    """One config: one full epoch of each implementation over the same rows."""
    model_cfg, training = settings(args)
    matrix = (glove_like(len(data.vocab), model_cfg["embedding"]["dim"], training["seed"])
              if model_cfg["embedding"]["source"] != "random" else None)
    print(f"{len(data.split):,} rows, max_len {training['max_len']}, batch {training['batch_size']}, "
          f"{model_cfg['cell']} hidden {model_cfg['hidden']} x{model_cfg['layers']}"
          f"{' bi' if model_cfg['bidirectional'] else ''}, emb {model_cfg['embedding']['dim']} "
          f"{model_cfg['embedding']['source']}, vocab {len(data.vocab):,}, {training['optimizer']['name']}, "
          f"device {device}, {torch.get_num_threads()} threads")
    naive = naive_run(model_cfg, training, data, device, budget=None, matrix=matrix)  # first: see the docstring
    fast = pipeline_run(model_cfg, training, data, device, budget=None, matrix=matrix)
    ratio = fast["tokens_per_s"] / naive["tokens_per_s"]
    for name, r in (("pipeline", fast), ("naive", naive)):
        print(f"  {name:9s} {r['seconds']:8.2f} s  {r['tokens_per_s']:12,.0f} tokens/s  ({r['detail']})")
    print(f"  speed-up: {ratio:.2f}x tokens/s (same {fast['tokens']:,} real tokens: {fast['tokens'] == naive['tokens']})")
    return {"pipeline": fast, "naive": naive, "speedup": ratio, "model": model_cfg, "training": training}


if __name__ == "__main__":
    main()
