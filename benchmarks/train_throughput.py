"""Training throughput: the pipeline's training epoch vs. a straightforward implementation.

Trains ONE epoch of a variant (or a small built-in LSTM config) on the same rows twice:

* pipeline: pre-encoded ids (no tokenizing), length-bucketed batches padded to their longest
  row, the model's true-last-token reading (gathered for one direction, packed for two),
  sparse embedding updates when the table is large (textclf.training);
* naive: tokenize in the DataLoader's collate function with the vocab's tokenizer, randomly
  shuffled batches padded to their longest row, dense embedding updates, no packing (the RNN
  runs over the padding and the classifier reads the last position).

Both use the same rows, truncation, model size, optimizer and device; the script prints
seconds and real (non-padding) tokens per second of each, and the speed ratio.

    # real data (after the prepare/vocab/encode stages):
    python benchmarks/train_throughput.py --prepared data/prepared/imdb \\
        --encoded data/encoded/imdb/basic_min10 --vocab-file data/vocab/imdb/basic_min10.json --max-rows 5000
    # a params.yaml variant's model and training settings:
    python benchmarks/train_throughput.py --params params.yaml --variant imdb/smoke_imdb/lstm-glove50 ...
    # no data at hand: IMDB-like synthetic reviews, built through the vocab and encode code:
    python benchmarks/train_throughput.py --synthetic 5000
"""

from __future__ import annotations

import argparse
import copy
import json
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
from textclf.text.tokenize import make_tokenizer, read_split
from textclf.text.vocab import UNK_INDEX, load_vocab
from textclf.training.batching import epoch_batches, load_encoded, stratified_indices
from textclf.training.device import make_precision, resolve_device, seed_everything
from textclf.training.loop import train_epoch
from textclf.training.optim import build_optimization, make_optimizer, sparse_embedding_choice

BUILTIN_MODEL = {
    "type": "rnn", "cell": "lstm", "layers": 1, "bidirectional": False, "hidden": 64, "dropout": 0.0,
    "pooling": "last", "head": "linear", "head_dropout": 0.0,
    "embedding": {"source": "random", "dim": 100, "freeze": False, "padding_idx": True},
}
BUILTIN_TRAINING = {
    "seed": 1, "epochs": 1, "batch_size": 64, "max_len": 256, "padding": "bucket",
    "optimizer": {"name": "adam", "lr": 0.001, "momentum": 0.0, "weight_decay": 0.0, "eps": 1.0e-8},
    "warmup_steps": 0, "clip_grad_norm": None, "device": "auto", "amp": True, "sparse_embeddings": "auto",
}
TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


# ---------------------------------------------------------------- inputs


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, training) from a params.yaml variant or the built-in config, with CLI overrides."""
    if args.variant:
        from textclf.config import load_params
        from textclf.studies import variant_by_id

        variant = variant_by_id(load_params(args.params), args.variant, quick=False)
        model, training = copy.deepcopy(variant["model"]), copy.deepcopy(variant["training"])
        if model["type"] != "rnn":
            raise SystemExit(f"{args.variant} is a {model['type']} variant: nothing to benchmark")
        # A pre-trained matrix only changes the initial weights, not the cost of a step.
        model["embedding"]["source"] = "random"
    else:
        model, training = copy.deepcopy(BUILTIN_MODEL), copy.deepcopy(BUILTIN_TRAINING)
    for key, value in (("cell", args.cell), ("hidden", args.hidden)):
        if value is not None:
            model[key] = value
    for key, value in (("max_len", args.max_len), ("batch_size", args.batch_size)):
        if value is not None:
            training[key] = value
    return model, training


def synthetic_data(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """IMDB-like reviews (Zipfian words, log-normal lengths, median ~170 tokens), turned into a
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
        texts = []
        for length, label in zip(lengths, labels, strict=True):
            tokens = rng.choice(words, size=length, p=zipf)
            tokens[rng.integers(length)] = "great" if label else "awful"
            texts.append(" ".join(tokens))
        pd.DataFrame({"id": np.arange(start, start + n), "text": texts, "label": labels}).to_parquet(
            prepared / f"{split}.parquet", index=False)
        start += n
    cfg = {"tokenizer": {"name": "whitespace"}, "min_freq": 2, "max_size": None, "source": "train"}
    vocab = vocab_from_prepared(prepared, cfg)
    save_vocab(vocab, root / "vocab.json")
    encode_prepared(prepared, vocab, cfg, root / "encoded")
    return prepared, root / "encoded", root / "vocab.json"


# ---------------------------------------------------------------- the two implementations


def pipeline_epoch(model_cfg, training, split, vocab_size, num_classes, device) -> dict[str, Any]:
    seed_everything(training["seed"])
    sparse, why = sparse_embedding_choice(model_cfg, training, vocab_size, device)
    model = build_model(model_cfg, vocab_size=vocab_size, num_classes=num_classes, sparse=sparse).to(device)
    optim = build_optimization(model, training)
    precision = make_precision(device, training.get("amp", False))
    batches = epoch_batches(split, training["batch_size"], seed=training["seed"], epoch=1, padding="bucket")
    kw = {"max_len": training["max_len"], "fixed": False, "device": device, "precision": precision,
          "clip_grad_norm": training.get("clip_grad_norm")}
    train_epoch(model, split, batches[:2], optim, desc="warm-up", **kw)
    stats = train_epoch(model, split, batches, optim, desc="pipeline", **kw)
    return {"seconds": stats.seconds, "tokens": stats.tokens, "tokens_per_s": stats.tokens_per_s,
            "detail": f"bucketed batches, true last token, sparse embeddings {why}, {precision.name}"}


class NaiveRNN(nn.Module):
    """Embedding → RNN over the padded batch → linear on the output at the last position."""

    def __init__(self, model_cfg: dict[str, Any], vocab_size: int, num_classes: int) -> None:
        super().__init__()
        dim, hidden = model_cfg["embedding"]["dim"], model_cfg["hidden"]
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.rnn = TORCH_CELLS[model_cfg["cell"]](dim, hidden, num_layers=model_cfg["layers"], batch_first=True,
                                                  bidirectional=model_cfg["bidirectional"])
        self.out = nn.Linear(hidden * (2 if model_cfg["bidirectional"] else 1), num_classes)

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


def naive_epoch(model_cfg, training, texts, labels, vocab, oov, num_classes, device) -> dict[str, Any]:
    seed_everything(training["seed"])
    model = NaiveRNN(model_cfg, len(vocab), num_classes).to(device)
    opt_cfg = training["optimizer"]
    optimizer = make_optimizer(opt_cfg["name"], list(model.parameters()), opt_cfg)
    loader = DataLoader(list(zip(texts, labels.tolist(), strict=True)), batch_size=training["batch_size"],
                        shuffle=True, generator=torch.Generator().manual_seed(training["seed"]),
                        collate_fn=naive_collate(vocab, vocab.config["tokenizer"], oov, training["max_len"]))
    model.train()

    def step(ids, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids.to(device)), y.to(device))
        loss.backward()
        if training.get("clip_grad_norm"):
            nn.utils.clip_grad_norm_(model.parameters(), training["clip_grad_norm"])
        optimizer.step()

    for i, (ids, y) in enumerate(loader):  # warm-up, untimed
        step(ids, y)
        if i == 1:
            break
    tokens = 0
    start = time.perf_counter()
    for ids, y in loader:
        step(ids, y)
        tokens += int((ids != 0).sum())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
            "detail": "tokenize in collate, shuffled batches, no packing, dense embeddings, float32"}


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--variant", help="take model + training from this params.yaml variant (default: built-in LSTM)")
    parser.add_argument("--prepared", help="data/prepared/D (text for the naive path)")
    parser.add_argument("--encoded", help="data/encoded/D/V")
    parser.add_argument("--vocab-file", help="data/vocab/D/V.json")
    parser.add_argument("--synthetic", type=int, metavar="ROWS", help="use ROWS synthetic IMDB-like reviews instead")
    parser.add_argument("--max-rows", type=int, default=5000, help="train rows used (stratified sample; default 5000)")
    parser.add_argument("--max-len", type=int)
    parser.add_argument("--cell", choices=sorted(TORCH_CELLS))
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_cfg, training = settings(args)
    if model_cfg["cell"] not in TORCH_CELLS:
        raise SystemExit(f"cell {model_cfg['cell']!r} has no naive counterpart; pass --cell rnn|lstm|gru")

    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            prepared, encoded, vocab_file = synthetic_data(Path(tmp), args.synthetic)
        elif args.prepared and args.encoded and args.vocab_file:
            prepared, encoded, vocab_file = Path(args.prepared), Path(args.encoded), Path(args.vocab_file)
        else:
            parser.error("give --prepared, --encoded and --vocab-file, or --synthetic ROWS")
        vocab = load_vocab(vocab_file)
        split = load_encoded(encoded / "train.parquet")
        keep = stratified_indices(split.labels, args.max_rows, training["seed"])
        split = split.take(keep)
        text_split = read_split(prepared, "train")
        position = pd.Index(text_split.ids).get_indexer(split.row_ids)
        texts = [text_split.texts[i] for i in position]
        meta = pq.read_schema(encoded / "train.parquet").metadata or {}
        oov = meta.get(b"textclf.oov", b"unk").decode()
        device = resolve_device(training.get("device", "auto"))
        num_classes = max(int(split.labels.max()) + 1, 2)

        print(f"{len(split):,} rows, max_len {training['max_len']}, batch {training['batch_size']}, "
              f"{model_cfg['cell']} hidden {model_cfg['hidden']} x{model_cfg['layers']}"
              f"{' bi' if model_cfg['bidirectional'] else ''}, emb {model_cfg['embedding']['dim']}, "
              f"vocab {len(vocab):,}, {training['optimizer']['name']}, device {device}, "
              f"{torch.get_num_threads()} threads")
        fast = pipeline_epoch(model_cfg, training, split, len(vocab), num_classes, device)
        naive = naive_epoch(model_cfg, training, texts, split.labels, vocab, oov, num_classes, device)

    ratio = fast["tokens_per_s"] / naive["tokens_per_s"]
    for name, r in (("pipeline", fast), ("naive", naive)):
        print(f"  {name:9s} {r['seconds']:8.2f} s  {r['tokens_per_s']:12,.0f} tokens/s  ({r['detail']})")
    print(f"  speed-up: {ratio:.2f}x tokens/s (same {fast['tokens']:,} real tokens: {fast['tokens'] == naive['tokens']})")
    result = {"pipeline": fast, "naive": naive, "speedup": ratio, "rows": len(split),
              "model": model_cfg, "training": training, "device": str(device)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
