"""Training, evaluation, the TF-IDF baseline and the train CLI, on tiny synthetic data."""

from __future__ import annotations

import copy
import importlib.util
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from textclf.baseline import train_tfidf
from textclf.config import REPO_ROOT, ParamsError
from textclf.errors import DataError
from textclf.machine import cpu_model
from textclf.metrics import HISTORY_COLUMNS, TIMING_KEYS, classification_metrics, never_learned
from textclf.models import build_model
from textclf.settings import QuickCaps, RNNConfig, Variant, from_dict, variant_from_dict
from textclf.splits import stratified_indices
from textclf.studies import apply_quick
from textclf.training import train_variant
from textclf.training import trainer as trainer_mod
from textclf.training.batching import (
    BUCKET_CHUNK_BATCHES,
    bucket_batches,
    collate,
    eval_batches,
    load_encoded,
)
from textclf.training.optim import build_optimization, sparse_embedding_choice, warmup_factor

VOCAB = 30
SIGNAL = 5  # label = whether token 5 occurs in the row
METRIC_KEYS = {
    "accuracy", "macro_f1", "loss", "confusion_matrix", "classes", "val", "trainable_params",
    "acc_per_mparam", "seconds_per_epoch", "tokens_per_second", "epochs_run", "best_epoch",
    "never_learned", "device", "n_train", "n_val", "n_test", "started_at", "finished_at", "wall_seconds",
}


# ---------------------------------------------------------------- fixtures


def _rows(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    rows, labels = [], []
    for i in range(n):
        length = int(rng.integers(3, 15))
        row = rng.choice(np.setdiff1d(np.arange(2, VOCAB), [SIGNAL]), size=length)
        label = i % 2
        if label:
            row[rng.integers(length)] = SIGNAL
        rows.append(row.astype(np.int32))
        labels.append(label)
    return rows, np.array(labels)


def write_encoded(path: Path, rows: list[np.ndarray], labels: np.ndarray, start_id: int = 0) -> None:
    table = pa.table({
        "id": pa.array(np.arange(start_id, start_id + len(rows), dtype=np.int64)),
        "label": pa.array(np.asarray(labels, dtype=np.int64)),
        "ids": pa.array([r.tolist() for r in rows], type=pa.list_(pa.int32())),
        "length": pa.array([len(r) for r in rows], type=pa.int32()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_stats(prepared: Path, classes=("no", "yes")) -> None:
    prepared.mkdir(parents=True, exist_ok=True)
    (prepared / "stats.json").write_text(json.dumps({"classes": list(classes)}))


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(prepared dir with stats.json, encoded dir with train/val/test)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    start = 0
    for split, n in (("train", 600), ("val", 120), ("test", 120)):
        rows, labels = _rows(n, rng)
        write_encoded(root / "encoded" / f"{split}.parquet", rows, labels, start)
        start += n
    write_stats(root / "prepared")
    write_vocab(root / "encoded" / "vocab.json", VOCAB)
    return root / "prepared", root / "encoded"


def write_vocab(path: Path, size: int) -> Path:
    from textclf.text.vocab import Vocab, save_vocab

    itos = ["<pad>", "<unk>", *(f"w{i}" for i in range(2, size))]
    save_vocab(Vocab(itos=itos, counts=[0] * len(itos), config={}), path)
    return path


def make_variant(**training) -> dict:
    variant = {
        "id": "toy/unit/gru", "dataset": "toy", "study": "unit", "name": "gru", "vocab": "v",
        "model": {
            "type": "rnn", "cell": "gru", "layers": 1, "bidirectional": False, "hidden": 16,
            "dropout": 0.1, "pooling": "max", "head": "linear", "head_dropout": 0.0,
            "embedding": {"source": "random", "dim": 16, "freeze": False, "padding_idx": True},
        },
        "training": {
            "seed": 3, "epochs": 2, "batch_size": 32, "max_len": 12, "padding": "bucket",
            "optimizer": {"name": "adam", "lr": 0.01, "momentum": 0.0, "weight_decay": 0.0, "eps": 1.0e-8},
            "warmup_steps": 0, "clip_grad_norm": 1.0, "early_stopping_patience": None,
            "eval_split": "val", "report_epoch": "best", "device": "cpu", "amp": False,
            "sparse_embeddings": "auto",
        },
        "quick": None,
    }
    optimizer = {**variant["training"]["optimizer"], **training.pop("optimizer", {})}
    variant["training"].update(training, optimizer=optimizer)
    return variant


def typed(variant: dict) -> Variant:
    """The test's dict as the typed Variant the plan writes into a job file."""
    return variant_from_dict({k: v for k, v in variant.items() if k != "id"}
                             | {"mode": "quick" if variant["quick"] else "full"}, "test variant")


def run(variant, dirs, out: Path, **kw) -> dict:
    prepared, encoded = dirs
    kw.setdefault("vocab_file", encoded / "vocab.json")
    return train_variant(typed(variant), prepared_dir=prepared, encoded_dir=encoded, out_dir=out, **kw)


@pytest.fixture(scope="module")
def reference_run(data_dirs, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("ref")
    return run(make_variant(), data_dirs, out), out


def _numbers(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


# ---------------------------------------------------------------- batching


def test_bucket_batches_keep_every_row_once_and_are_seeded():
    lengths = np.random.default_rng(1).integers(1, 300, size=1000)
    batches = bucket_batches(lengths, 8, seed=1, epoch=1)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    assert all(len(b) <= 8 for b in batches)
    again = bucket_batches(lengths, 8, seed=1, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = bucket_batches(lengths, 8, seed=1, epoch=2)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))
    # bucketing: a batch's spread of lengths is far below the whole set's
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.1 * (lengths.max() - lengths.min())
    assert BUCKET_CHUNK_BATCHES * 8 < 1000  # several chunks were used


def test_collate_pads_to_batch_longest_and_fixed_to_max_len(tmp_path):
    rows = [np.arange(2, 2 + n, dtype=np.int32) for n in (3, 7, 20, 1)]
    write_encoded(tmp_path / "s.parquet", rows, np.zeros(4))
    split = load_encoded(tmp_path / "s.parquet")
    batch = collate(split, np.array([0, 1]), max_len=10)
    assert batch.ids.shape == (2, 7) and batch.lengths.tolist() == [3, 7]
    assert batch.ids[0].tolist() == [2, 3, 4, 0, 0, 0, 0] and batch.tokens == 10
    batch = collate(split, np.array([2, 3]), max_len=10)  # truncation keeps the first max_len tokens
    assert batch.ids.shape == (2, 10) and batch.ids[0].tolist() == list(range(2, 12))
    assert batch.lengths.tolist() == [10, 1]
    fixed = collate(split, np.array([0, 3]), max_len=10, fixed=True)
    assert fixed.ids.shape == (2, 10) and fixed.ids[1, 1:].eq(0).all()
    order = np.concatenate(eval_batches(split.lengths, 3))
    assert split.lengths[order].tolist() == sorted(split.lengths.tolist())


def test_empty_rows_become_one_unk_and_are_counted(tmp_path):
    rows = [np.array([4, 5], dtype=np.int32), np.array([], dtype=np.int32), np.array([7], dtype=np.int32)]
    write_encoded(tmp_path / "s.parquet", rows, np.array([0, 1, 0]))
    split = load_encoded(tmp_path / "s.parquet")
    assert split.empty_rows == 1 and split.lengths.tolist() == [2, 1, 1]
    assert split.values.tolist() == [4, 5, 1, 7]
    sub = split.take(np.array([2, 1]))
    assert sub.values.tolist() == [7, 1] and sub.labels.tolist() == [0, 1]


def test_stratified_indices_are_seeded_sorted_and_balanced():
    labels = np.array([0] * 80 + [1] * 20)
    idx = stratified_indices(labels, 10, seed=4)
    assert np.array_equal(idx, np.sort(idx)) and np.array_equal(idx, stratified_indices(labels, 10, seed=4))
    assert np.bincount(labels[idx]).tolist() == [8, 2]
    assert len(stratified_indices(labels, 500, seed=4)) == 100


# ---------------------------------------------------------------- optimizers


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam", "adamw", "rmsprop"])
def test_every_optimizer_constructs_and_steps(name, sparse):
    variant = make_variant(optimizer={"name": name, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "eps": 1e-6})
    model = build_model(typed(variant).model, vocab_size=VOCAB, num_classes=2, sparse=sparse)
    if sparse and name == "rmsprop":
        with pytest.raises(ValueError, match="sparse"):
            build_optimization(model, typed(variant).training)
        return
    optim = build_optimization(model, typed(variant).training)
    if sparse and name in ("adam", "adamw"):
        assert isinstance(optim.optimizers[-1], torch.optim.SparseAdam)
    before = [p.detach().clone() for p in model.parameters()]
    ids, lengths = torch.tensor([[2, 3, 5], [4, 6, 0]]), torch.tensor([3, 2])
    optim.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(ids, lengths), torch.tensor([1, 0]))
    optim.step(loss, clip_grad_norm=1.0)
    assert model.embedding.weight.grad.is_sparse == sparse
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(changed)


def test_sparse_embedding_choice():
    cpu = torch.device("cpu")
    big, small = 100_000, 100

    def training(**kw):
        return typed(make_variant(**kw)).training

    def model(freeze=False):
        cfg = copy.deepcopy(make_variant()["model"])
        cfg["embedding"] = {"source": "random", "dim": 100, "freeze": freeze, "padding_idx": True}
        return from_dict(RNNConfig, cfg, "model")

    # auto: only where the sparse update is exactly the dense one (adagrad, sgd without momentum)
    adagrad = training(optimizer={"name": "adagrad", "lr": 0.01})
    assert sparse_embedding_choice(model(), adagrad, big, cpu)[0]
    assert not sparse_embedding_choice(model(), adagrad, small, cpu)[0]
    assert sparse_embedding_choice(model(), training(optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.0}), big, cpu)[0]
    momentum = training(optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9}, sparse_embeddings=True)
    assert not sparse_embedding_choice(model(), momentum, big, cpu)[0]
    # adam's sparse form (lazy SparseAdam) is a different algorithm: never chosen by auto
    adam = training()
    assert adam.optimizer.name == "adam"
    on, why = sparse_embedding_choice(model(), adam, big, cpu)
    assert not on and "lazy Adam" in why
    assert sparse_embedding_choice(model(), training(sparse_embeddings=True), small, cpu)[0]
    assert not sparse_embedding_choice(model(), training(sparse_embeddings=False), big, cpu)[0]
    assert not sparse_embedding_choice(model(), training(optimizer={"name": "rmsprop", "lr": 0.001}), big, cpu)[0]
    wd = training(optimizer={"name": "adam", "lr": 0.001, "weight_decay": 0.01})
    assert not sparse_embedding_choice(model(), wd, big, cpu)[0]
    assert not sparse_embedding_choice(model(freeze=True), adam, big, cpu)[0]


def test_macro_f1_ignores_classes_absent_from_a_sample_and_nan_is_reported():
    probs = np.array([[0.9, 0.1, 0.0, 0.0], [0.1, 0.9, 0.0, 0.0]])
    assert classification_metrics(np.array([0, 1]), probs)["macro_f1"] == 1.0
    bad = classification_metrics(np.array([0, 1]), np.full((2, 4), np.nan))
    assert np.isnan(bad["loss"]) and bad["n"] == 2


def test_never_learned_uses_the_reported_test_result():
    labels = np.array([0, 1] * 50)
    assert never_learned(0.51, labels)
    test = {"accuracy": 0.505, "confusion_matrix": [[50, 0], [49, 1]]}
    assert never_learned(0.9, labels, test) and not never_learned(0.9, labels, {**test, "accuracy": 0.8})


def test_warmup_is_linear_then_constant():
    model = torch.nn.Linear(2, 2)
    optim = build_optimization(model, typed(make_variant(warmup_steps=4, optimizer={"name": "sgd", "lr": 0.1})).training)
    lrs = []
    for _ in range(6):
        lrs.append(optim.lr)
        optim.zero_grad()
        optim.step(model(torch.ones(1, 2)).sum())
    assert lrs == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])
    assert warmup_factor(0)(0) == 1.0


# ---------------------------------------------------------------- training runs


def test_training_learns_and_writes_the_contract(reference_run, data_dirs):
    metrics, out = reference_run
    assert metrics["accuracy"] >= 0.9 and metrics["val"]["accuracy"] >= 0.9
    assert set(metrics) >= METRIC_KEYS
    assert metrics["epochs_run"] == 2 and metrics["never_learned"] is False
    assert metrics["classes"] == ["no", "yes"] and metrics["n_train"] == 600
    assert np.array(metrics["confusion_matrix"]).sum() == 120
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["accuracy"] == metrics["accuracy"]
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS and len(history) == 2
    assert (history["tokens_per_s"] > 0).all()
    started, finished = (datetime.fromisoformat(metrics[k]) for k in ("started_at", "finished_at"))
    assert started <= finished and metrics["wall_seconds"] >= history["seconds"].sum()
    preds = pd.read_parquet(out / "predictions.parquet")
    assert list(preds.columns) == ["id", "label", "pred", "prob_0", "prob_1"]
    test = load_encoded(data_dirs[1] / "test.parquet")  # predictions in the split's own order
    assert preds["id"].tolist() == test.row_ids.tolist() and preds["label"].tolist() == test.labels.tolist()
    assert (preds["pred"] == preds["label"]).mean() == pytest.approx(metrics["accuracy"])
    saved = torch.load(out / "model.pt", weights_only=False)
    assert saved["variant"]["id"] == "toy/unit/gru" and "state_dict" in saved
    assert not (out / "checkpoint.pt").exists()


def test_two_runs_are_identical(reference_run, data_dirs, tmp_path):
    metrics, out = reference_run
    again = run(make_variant(), data_dirs, tmp_path)
    assert _numbers(again) == _numbers(metrics)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "predictions.parquet"),
                                  pd.read_parquet(out / "predictions.parquet"))


def test_resumed_run_equals_uninterrupted(reference_run, data_dirs, tmp_path):
    metrics, out = reference_run

    def interrupt(epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(make_variant(), data_dirs, tmp_path, on_epoch_end=interrupt)
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "metrics.json").exists()
    resumed = run(make_variant(), data_dirs, tmp_path)
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_run"] == 2
    assert _numbers(resumed) == _numbers(metrics)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "predictions.parquet"),
                                  pd.read_parquet(out / "predictions.parquet"))
    assert not (tmp_path / "checkpoint.pt").exists()


def test_checkpoint_of_other_settings_is_not_resumed(data_dirs, tmp_path):
    def interrupt(epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(make_variant(epochs=1), data_dirs, tmp_path, on_epoch_end=interrupt)
    metrics = run(make_variant(epochs=1, seed=4), data_dirs, tmp_path)
    assert metrics["resumed_from_epoch"] is None


def test_early_stopping_stops_and_restores_best(data_dirs, tmp_path, monkeypatch):
    real = trainer_mod.classification_metrics
    scripted = iter([0.6, 0.8, 0.7])  # eval accuracy of epochs 1..3; then real metrics
    best_state = {}

    def fake(labels, probs):
        result = real(labels, probs)
        acc = next(scripted, None)
        return result if acc is None else result | {"accuracy": acc}

    def remember(epoch, row):
        if epoch == 2:
            best_state.update(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"])

    monkeypatch.setattr(trainer_mod, "classification_metrics", fake)
    metrics = run(make_variant(epochs=6, early_stopping_patience=1), data_dirs, tmp_path, on_epoch_end=remember)
    assert metrics["epochs_run"] == 3 and metrics["early_stopped"] and metrics["best_epoch"] == 2
    assert metrics["reported_epoch"] == 2
    saved = torch.load(tmp_path / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], best_state[k]) for k in best_state)


def test_quick_mode_fixed_padding_and_sparse_sgd(data_dirs, tmp_path):
    variant = make_variant(epochs=5, padding="fixed", sparse_embeddings=True,
                           optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.0})
    variant["model"]["pooling"] = "padded_last"
    variant["quick"] = {"epochs": 1, "train_rows": 100, "eval_rows": 50, "batch_size": 16, "warmup_steps": 0}
    variant["training"] = apply_quick(variant["training"], from_dict(QuickCaps, variant["quick"], "quick"))
    metrics = run(variant, data_dirs, tmp_path)
    assert metrics["epochs_run"] == 1 and metrics["n_train"] == 100 and metrics["n_test"] == 50
    assert metrics["sparse_embeddings"] == "on" and metrics["quick"] is True


def test_vocab_file_sizes_the_table_and_is_recorded(data_dirs, tmp_path):
    from textclf.text.vocab import Vocab, save_vocab

    itos = ["<pad>", "<unk>", *(f"w{i}" for i in range(2, VOCAB + 10))]
    vocab = Vocab(itos=itos, counts=[0] * len(itos), config={})
    save_vocab(vocab, tmp_path / "v.json")
    variant = make_variant(epochs=1)
    run(variant, data_dirs, tmp_path / "out", vocab_file=tmp_path / "v.json")
    saved = torch.load(tmp_path / "out" / "model.pt", weights_only=False)
    assert saved["vocab_size"] == VOCAB + 10 and saved["vocab_sha256"] == vocab.sha256


# ---------------------------------------------------------------- errors before work


def test_embedding_file_checks(tmp_path):
    variant = make_variant()
    variant["model"]["embedding"]["source"] = "glove50"
    kw = {"prepared_dir": tmp_path, "encoded_dir": tmp_path, "out_dir": tmp_path, "vocab_file": tmp_path / "v.json"}
    with pytest.raises(ParamsError, match="toy/unit/gru.*model.embedding.source.*no embedding matrix"):
        train_variant(typed(variant), **kw)
    with pytest.raises(DataError, match="does not exist"):
        train_variant(typed(variant), embedding_path=tmp_path / "missing.npy", **kw)
    np.save(tmp_path / "e.npy", np.zeros((VOCAB, 8), dtype=np.float32))
    with pytest.raises(DataError, match=r"toy/unit/gru.*model.embedding.dim is 16"):
        train_variant(typed(variant), embedding_path=tmp_path / "e.npy", **kw)


def test_empty_train_split_is_a_data_error(tmp_path):
    rows, labels = _rows(10, np.random.default_rng(0))
    write_encoded(tmp_path / "enc" / "train.parquet", [], np.zeros(0))
    write_encoded(tmp_path / "enc" / "val.parquet", rows, labels)
    write_encoded(tmp_path / "enc" / "test.parquet", rows, labels)
    write_stats(tmp_path / "prep")
    write_vocab(tmp_path / "enc" / "vocab.json", VOCAB)
    with pytest.raises(DataError, match="train split is empty"):
        run(make_variant(), (tmp_path / "prep", tmp_path / "enc"), tmp_path / "out")


# ---------------------------------------------------------------- baseline and CLI


def write_prepared_text(prepared: Path) -> None:
    rng = np.random.default_rng(0)
    filler = [f"word{i}" for i in range(40)]
    start = 0
    for split, n in (("train", 200), ("val", 60), ("test", 60)):
        labels = np.arange(n) % 2
        texts = [" ".join([*rng.choice(filler, 8), "great" if y else "awful", *rng.choice(filler, 4)]) for y in labels]
        frame = pd.DataFrame({"id": np.arange(start, start + n), "text": texts, "label": labels})
        start += n
        prepared.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(prepared / f"{split}.parquet", index=False)
    write_stats(prepared, ("neg", "pos"))


def test_tfidf_baseline_learns(tmp_path):
    write_prepared_text(tmp_path / "prep")
    variant = make_variant()
    variant["model"] = {"type": "tfidf_logreg", "ngram_max": 2, "min_df": 1, "max_features": None, "C": 10.0}
    metrics = train_tfidf(typed(variant), prepared_dir=tmp_path / "prep", out_dir=tmp_path / "out")
    assert metrics["accuracy"] >= 0.9 and set(metrics) >= METRIC_KEYS
    assert metrics["model_type"] == "tfidf_logreg" and metrics["epochs_run"] == 1
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "model.pkl", "metrics.json", "history.csv", "predictions.parquet"}


def _train_script():
    spec = importlib.util.spec_from_file_location("train_script", REPO_ROOT / "workflow" / "scripts" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _job(tmp_path: Path, variant: dict, inputs: dict, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"variant": typed(variant).to_dict() if "id" in variant else variant,
                                "inputs": {"prepared": None, "encoded": None, "vocab_file": None,
                                           "embedding": None} | inputs,
                                "out": str(tmp_path / name)}))
    return path


def test_cli_trains_a_job_file(tmp_path, data_dirs, capsys):
    script = _train_script()
    write_prepared_text(tmp_path / "prep")
    tfidf = make_variant()
    tfidf["model"] = {"type": "tfidf_logreg", "ngram_max": 2, "min_df": 1, "max_features": None, "C": 10.0}
    script.main([str(_job(tmp_path, tfidf, {"prepared": str(tmp_path / "prep")}, "tfidf"))])
    assert json.loads((tmp_path / "tfidf" / "metrics.json").read_text())["variant"] == "toy/unit/gru"
    job = _job(tmp_path, make_variant(epochs=1), {"prepared": str(data_dirs[0]), "encoded": str(data_dirs[1]),
                                                  "vocab_file": str(data_dirs[1] / "vocab.json")}, "gru")
    script.main([str(job)])
    assert "full/toy/unit/gru/seed3: test accuracy" in capsys.readouterr().out


def test_cli_bad_job_file_exit_2(tmp_path, capsys):
    script = _train_script()
    bad = typed(make_variant()).to_dict()
    bad["model"]["colour"] = "blue"
    from textclf.stage import run_stage

    with pytest.raises(SystemExit) as exc:
        run_stage(script.main, [str(_job(tmp_path, bad, {}, "bad"))])
    assert exc.value.code == 2
    assert "['colour']" in capsys.readouterr().err


def test_throughput_benchmark_runs_on_synthetic_data(capsys):
    spec = importlib.util.spec_from_file_location("bench", REPO_ROOT / "benchmarks" / "train_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--synthetic", "200", "--max-rows", "150", "--max-len", "32", "--hidden", "8",
                         "--batch-size", "32", "--cell", "gru"])
    assert result["rows"] == 150 and result["speedup"] > 0
    assert result["pipeline"]["tokens"] == result["naive"]["tokens"]
    assert "speed-up" in capsys.readouterr().out


def test_device_env_overrides_params(monkeypatch):
    from textclf.training.device import resolve_device

    monkeypatch.setenv("TEXTCLF_DEVICE", "cpu")
    assert resolve_device("cuda").type == "cpu"
    monkeypatch.delenv("TEXTCLF_DEVICE")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match="training.device"):
            resolve_device("cuda")


def test_never_learned_flag():
    from textclf.metrics import never_learned

    labels = np.array([0] * 70 + [1] * 30)
    assert never_learned(0.71, labels) and not never_learned(0.85, labels)


# ---------------------------------------------------------------- CPU policy and fast evaluation


@pytest.fixture
def restore_cpu_state():
    """configure_cpu changes process-wide state: put threads and denormal handling back."""
    threads = torch.get_num_threads()
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


def test_train_variant_flushes_denormals_and_records_the_cpu_policy(data_dirs, tmp_path, monkeypatch,
                                                                     restore_cpu_state):
    from textclf.training.device import denormals_flushed

    torch.set_flush_denormal(False)
    assert not denormals_flushed()
    # one thread: this process's worker threads already exist and keep their old FPU flags
    monkeypatch.setenv("TEXTCLF_THREADS", "1")
    seen = []
    real_epoch = trainer_mod.train_epoch

    def spy(*args, **kwargs):
        seen.append((denormals_flushed(), torch.get_num_threads()))
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "train_epoch", spy)
    metrics = run(make_variant(epochs=1), data_dirs, tmp_path)
    assert seen == [(True, 1)]
    assert metrics["flush_denormal"] is True and metrics["cpu_threads"] == 1
    assert metrics["cpu_threads_from"] == "TEXTCLF_THREADS"
    # what computed the result, for the report's "trained on" (here the CPU, read from /proc/cpuinfo)
    assert metrics["hardware"] == cpu_model() and metrics["hardware"]
    assert metrics["torch_version"] == torch.__version__ and metrics["cuda_version"] is None


def test_job_threads_follow_snakemake_then_one():

    from textclf.training.device import job_threads

    assert job_threads({"OMP_NUM_THREADS": "3"}) == (3, "OMP_NUM_THREADS")
    assert job_threads({"OMP_NUM_THREADS": "3", "TEXTCLF_THREADS": "2"}) == (2, "TEXTCLF_THREADS")
    assert job_threads({}) == (1, "default")  # as Snakemake's train rule: the same bits under DVC
    for bad in ("two", "0"):
        with pytest.raises(ParamsError, match="OMP_NUM_THREADS"):
            job_threads({"OMP_NUM_THREADS": bad})


def test_configure_cpu_in_a_fresh_process_flushes_every_worker_thread():
    import subprocess
    import sys

    code = ("import json, torch; from textclf.training.device import configure_cpu; "
            "info = configure_cpu(); x = torch.full((4 * 65536,), 1e-39); "
            "print(json.dumps(info | {'zeros': bool(((x * 1.0) == 0).all())}))")
    env = {**__import__("os").environ, "TEXTCLF_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    info = json.loads(out.stdout)
    assert info.pop("malloc_keep_freed") is (__import__("platform").libc_ver()[0] == "glibc")
    assert info == {"flush_denormal": True, "cpu_threads": 2, "cpu_threads_from": "TEXTCLF_THREADS", "zeros": True}


def test_eval_batches_respect_the_token_budget_and_cover_every_row_once():
    lengths = np.random.default_rng(0).integers(1, 300, size=500)
    batches = eval_batches(lengths, 64, max_tokens=2048)
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(500))
    assert lengths[order].tolist() == sorted(lengths.tolist())
    for index in batches:
        assert len(index) <= 64 and (len(index) == 1 or len(index) * lengths[index].max() <= 2048)


def test_predict_proba_does_not_depend_on_how_rows_are_batched(data_dirs, monkeypatch):
    from textclf.training import batching, loop
    from textclf.training.device import make_precision

    split = load_encoded(data_dirs[1] / "test.parquet")
    variant = make_variant()
    variant["model"].update(cell="lstm", bidirectional=True, layers=2)
    torch.manual_seed(0)
    model = build_model(typed(variant).model, vocab_size=VOCAB, num_classes=2)
    kw = {"batch_size": 1, "max_len": 12, "padding": "bucket", "device": torch.device("cpu"),
          "precision": make_precision(torch.device("cpu"), False)}
    big = loop.predict_proba(model, split, **kw)
    monkeypatch.setattr(batching, "EVAL_MAX_ROWS", 1)
    monkeypatch.setattr(batching, "EVAL_MAX_TOKENS", 1)
    one_by_one = loop.predict_proba(model, split, **kw)
    np.testing.assert_allclose(big, one_by_one, atol=1e-6)


def test_progress_lines_when_stderr_is_not_a_terminal(caplog):
    from textclf.training.loop import ProgressLog

    clock = iter([1.0])
    progress = ProgressLog("epoch 1/3", total=10, start=0.0, every=0.5)
    import textclf.training.loop as loop

    real = loop.time.perf_counter
    loop.time.perf_counter = lambda: next(clock)
    try:
        with caplog.at_level("INFO"):
            assert progress.due(2)
            progress.log(2, rows=64, tokens=6400, loss=0.5, acc=0.75)
    finally:
        loop.time.perf_counter = real
    line = caplog.records[-1].getMessage()
    assert "epoch 1/3: 2/10 batches (20%)" in line and "64 rows/s" in line and "ETA 0:04" in line
