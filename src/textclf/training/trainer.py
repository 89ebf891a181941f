"""Train one neural variant end to end: check, load, train with resume, evaluate, write results.

Policy lives here (quick mode, early stopping, which epoch is reported, checkpoints); the
mechanics live in batching / optim / loop / device, the results format in textclf.metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textclf.atomic import atomic_path
from textclf.config import ParamsError
from textclf.errors import DataError
from textclf.metrics import (
    classification_metrics,
    predictions_frame,
    run_summary,
    wall_clock,
    write_results,
)
from textclf.models import build_model, count_trainable_parameters
from textclf.settings import Variant, to_dict
from textclf.splits import SPLITS, read_classes, row_sample
from textclf.text.vocab import load_vocab
from textclf.training.batching import EncodedSplit, epoch_batches, load_encoded
from textclf.training.device import (
    configure_cpu,
    machine_info,
    make_precision,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from textclf.training.loop import predict_proba, train_epoch
from textclf.training.optim import build_optimization, sparse_embedding_choice

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
EpochHook = Callable[[int, Mapping[str, Any]], None]


# ---------------------------------------------------------------- checks (before any work)


def check_inputs(variant: Variant, embedding_path: str | Path | None) -> None:
    """The settings were checked when the plan resolved them; here only the files they name."""
    vid, emb = variant.id, variant.model.embedding  # type: ignore[union-attr]
    if emb.source == "random":
        if embedding_path is not None:
            raise ParamsError(f"{vid}: model.embedding.source is 'random' but an embedding file was given ({embedding_path})")
        return
    if embedding_path is None:
        raise ParamsError(f"{vid}: model.embedding.source is {emb.source!r} but the job names no embedding matrix")
    if not Path(embedding_path).is_file():
        raise DataError(f"{vid}: the {emb.source!r} embedding matrix {embedding_path} does not exist (run its stage)")
    shape = np.load(embedding_path, mmap_mode="r").shape
    if len(shape) != 2 or shape[1] != emb.dim:
        raise DataError(f"{vid}: model.embedding.dim is {emb.dim} but the {emb.source!r} matrix {embedding_path} "
                        f"has shape {shape} (rerun its embeddings stage)")


# ---------------------------------------------------------------- data


def missing_word_ids(embedding_path: str | Path) -> np.ndarray:
    """Vocabulary ids the pre-trained vectors had no vector for (the embeddings stage lists them
    in the matrix's coverage file), for `model.embedding.skip_missing`."""
    from textclf.embeddings import coverage_path

    path = coverage_path(embedding_path)
    try:
        return np.asarray(json.loads(path.read_text(encoding="utf-8"))["missing_rows"], dtype=np.int64)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: cannot read the list of words without a vector ({exc}); rerun its embeddings "
                        "stage") from None


@dataclass
class RunData:
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    classes: list[str]
    vocab_size: int
    vocab_sha256: str

    def split(self, name: str) -> EncodedSplit:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def _vocab_facts(vocab_file: str | Path, splits: list[EncodedSplit]) -> tuple[int, str]:
    """(vocab size, sha256) from the vocab file; the encode stage's recorded sha256 must agree."""
    vocab = load_vocab(vocab_file)
    encoded_sha = next((s.vocab_sha256 for s in splits if s.vocab_sha256), None)
    if encoded_sha and encoded_sha != vocab.sha256:
        raise DataError(f"the encoded splits were built with another vocabulary than {vocab_file} "
                        "(sha256 differs): rerun the encode stage")
    return len(vocab), vocab.sha256


def load_run_data(
    variant: Variant,
    *,
    prepared_dir: str | Path,
    encoded_dir: str | Path,
    vocab_file: str | Path,
    skip_ids: np.ndarray | None = None,
) -> RunData:
    """Encoded splits (sampled: train_fraction, quick mode; `skip_ids` removed), class names and vocabulary size,
    checked."""
    classes = read_classes(prepared_dir)
    loaded = {}
    for name in SPLITS:
        split = load_encoded(Path(encoded_dir) / f"{name}.parquet")
        if skip_ids is not None:
            split = split.without_tokens(skip_ids)
        if split.empty_rows:
            log.warning("%s: %d %s rows had no tokens; each was given a single <unk>", variant.id, split.empty_rows, name)
        loaded[name] = split
    if variant.training.train_split == "train+val":
        # The reference had no validation carve-out: train on the validation rows too.
        loaded["train"] = concat_splits(loaded["train"], loaded["val"])
    splits = []
    for name in SPLITS:
        split = loaded[name]
        keep = row_sample(variant, name, split.labels)
        if keep is not None:
            split = split.take(keep)  # empty_rows still counts the whole split
        bad = (split.labels < 0) | (split.labels >= len(classes))
        if bad.any():
            raise DataError(f"{encoded_dir}/{name}.parquet: labels outside 0..{len(classes) - 1} (stats.json lists {len(classes)} classes)")
        splits.append(split)
    vocab_size, sha = _vocab_facts(vocab_file, splits)
    for name, split in zip(SPLITS, splits, strict=True):
        if len(split.values) and int(split.values.max()) >= vocab_size:
            raise DataError(f"{encoded_dir}/{name}.parquet: token id {int(split.values.max())} ≥ vocabulary size {vocab_size} (encoded with another vocab?)")
    data = RunData(*splits, classes=classes, vocab_size=vocab_size, vocab_sha256=sha)
    if len(data.train) == 0:
        raise DataError(f"{variant.id}: the train split is empty ({encoded_dir}/train.parquet)")
    if len(data.test) == 0:
        raise DataError(f"{variant.id}: the test split is empty ({encoded_dir}/test.parquet)")
    if len(data.split(variant.training.eval_split)) == 0:
        raise DataError(f"{variant.id}: training.eval_split is {variant.training.eval_split!r} but "
                        f"{encoded_dir}/{variant.training.eval_split}.parquet is empty")
    return data


def concat_splits(first: EncodedSplit, second: EncodedSplit) -> EncodedSplit:
    """The rows of `first` then those of `second`, as one split."""
    if first.vocab_sha256 and second.vocab_sha256 and first.vocab_sha256 != second.vocab_sha256:
        raise DataError("cannot train on train+val: the two splits were encoded with different vocabularies")
    offsets = np.concatenate([first.offsets, second.offsets[1:] - second.offsets[0] + first.offsets[-1]])
    return EncodedSplit(
        row_ids=np.concatenate([first.row_ids, second.row_ids]),
        labels=np.concatenate([first.labels, second.labels]),
        values=np.concatenate([first.values, second.values[second.offsets[0]:second.offsets[-1]]]),
        offsets=offsets,
        empty_rows=first.empty_rows + second.empty_rows,
        vocab_sha256=first.vocab_sha256 or second.vocab_sha256,
    )


# ---------------------------------------------------------------- checkpoints


def _fingerprint(variant: Variant, data: RunData) -> str:
    """What a checkpoint must match to be resumed: the variant's settings and the data sizes."""
    facts: dict[str, Any] = to_dict(variant)
    facts["data"] = [len(data.train), len(data.val), len(data.test), data.vocab_size, data.vocab_sha256]
    return json.dumps(facts, sort_keys=True, default=str)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged checkpoint only costs the epochs it saved
        log.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: it was written for other settings or data", path)
        return None
    return state


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- training


@dataclass
class Progress:
    """Everything that changes from epoch to epoch (and is checkpointed)."""

    epoch: int = 0
    history: list[dict[str, Any]] | None = None
    best_epoch: int = 0
    best_accuracy: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None  # the weights report_epoch selects
    bad_epochs: int = 0
    stopped_early: bool = False
    lowest_train_loss: float = float("inf")
    lowest_loss_epoch: int = 0
    lowest_loss_step: int | None = None  # with training.train_loss_window: the window's last batch

    def __post_init__(self) -> None:
        self.history = self.history or []


def _resume(path: Path, fingerprint: str, model: torch.nn.Module, optim, precision) -> Progress | None:
    """Load a matching checkpoint into model/optimizer/scaler/RNGs; its Progress, or None."""
    saved = _load_checkpoint(path, fingerprint)
    if saved is None:
        return None
    try:
        model.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        if precision.scaler is not None and saved.get("scaler"):
            precision.scaler.load_state_dict(saved["scaler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        # e.g. written on another device / optimizer layout: start over rather than crash
        log.warning("%s: checkpoint %s does not fit this run (%s); starting from epoch 1", path.parent, path, exc)
        return None
    set_rng_state(saved["rng"])
    return Progress(**saved["progress"])


def _fit(variant: Variant, data: RunData, model, optim, precision, device, progress: Progress, *,
         ckpt_path: Path, fingerprint: str, on_epoch_end: EpochHook | None) -> None:
    """The epoch loop: train, evaluate on eval_split, track the best epoch, early-stop,
    checkpoint after every epoch."""
    vid, cfg = variant.id, variant.training
    # quick mode already capped epochs/batch/warm-up in the resolved variant (studies.apply_quick)
    epochs, patience, eval_split = cfg.epochs, cfg.early_stopping_patience, cfg.eval_split
    while progress.epoch < epochs and not progress.stopped_early:
        epoch = progress.epoch + 1
        batches = epoch_batches(data.train, cfg.batch_size, seed=cfg.seed, epoch=epoch, padding=cfg.padding)

        def lowest_window(step: int, loss: float, epoch: int = epoch) -> None:
            # Seed 003 (003:441-452): every 800 batches, keep the weights if that window's
            # running training loss is the lowest so far.
            if loss < progress.lowest_train_loss:
                progress.lowest_train_loss, progress.lowest_loss_epoch, progress.lowest_loss_step = loss, epoch, step
                progress.best_state = _cpu_state(model)

        stats = train_epoch(model, data.train, batches, optim, max_len=cfg.max_len, padding=cfg.padding,
                            device=device, precision=precision, clip_grad_norm=cfg.clip_grad_norm,
                            desc=f"{vid} epoch {epoch}/{epochs}", window=cfg.train_loss_window,
                            on_window=lowest_window if cfg.train_loss_window else None)
        held_out = data.split(eval_split)
        ev = classification_metrics(held_out.labels, predict_proba(
            model, held_out, batch_size=cfg.batch_size, max_len=cfg.max_len, padding=cfg.padding,
            device=device, precision=precision, desc=f"eval {eval_split}"))
        row = {"epoch": epoch, "train_loss": stats.loss, "train_acc": stats.accuracy, "val_loss": ev["loss"],
               "val_acc": ev["accuracy"], "seconds": stats.seconds, "tokens_per_s": stats.tokens_per_s, "lr": optim.lr}
        progress.history.append(row)
        progress.epoch = epoch
        if ev["accuracy"] > progress.best_accuracy:
            progress.best_epoch, progress.best_accuracy, progress.bad_epochs = epoch, ev["accuracy"], 0
            if cfg.report_epoch == "best":
                progress.best_state = _cpu_state(model)
        else:
            progress.bad_epochs += 1
        if not cfg.train_loss_window and stats.loss < progress.lowest_train_loss:
            # Seed 003 kept the checkpoint with the lowest training loss (003:441-452).
            progress.lowest_train_loss, progress.lowest_loss_epoch = stats.loss, epoch
            if cfg.report_epoch == "lowest_train_loss":
                progress.best_state = _cpu_state(model)
        progress.stopped_early = bool(patience) and progress.bad_epochs >= patience and epoch < epochs
        log.info("%s epoch %d/%d: train loss %.4f acc %.4f | %s loss %.4f acc %.4f | %.1fs, %.0f tok/s",
                 vid, epoch, epochs, stats.loss, stats.accuracy, eval_split, ev["loss"], ev["accuracy"],
                 stats.seconds, stats.tokens_per_s)
        _save_checkpoint(ckpt_path, {
            "fingerprint": fingerprint, "model": _cpu_state(model), "optim": optim.state_dict(),
            "scaler": precision.scaler.state_dict() if precision.scaler else None,
            "rng": rng_state(), "progress": vars(progress),
        })
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    if progress.stopped_early:
        log.info("%s: early stopping after epoch %d (best %s accuracy %.4f at epoch %d)",
                 vid, progress.epoch, eval_split, progress.best_accuracy, progress.best_epoch)


def selected_epoch(report_epoch: str, progress: Progress) -> int:
    """The epoch whose weights are reported: best (eval-split accuracy), last, or
    lowest_train_loss (the lowest epoch-mean training loss, or with train_loss_window the epoch
    of the lowest window)."""
    if report_epoch == "best" and progress.best_state is not None:
        return progress.best_epoch
    if report_epoch == "lowest_train_loss" and progress.best_state is not None:
        return progress.lowest_loss_epoch
    return progress.epoch


def train_variant(
    variant: Variant,
    *,
    prepared_dir: str | Path,
    encoded_dir: str | Path,
    out_dir: str | Path,
    vocab_file: str | Path,
    embedding_path: str | Path | None = None,
    on_epoch_end: EpochHook | None = None,
) -> dict[str, Any]:
    """Train an rnn variant and write model.pt, history.csv, metrics.json, predictions.parquet.

    Resumes from out_dir/checkpoint.pt when it matches this variant and data. `on_epoch_end`
    (epoch, history row) is called after each epoch's checkpoint is written (tests use it to
    interrupt a run). Returns the metrics.json document.
    """
    started = time.time()
    check_inputs(variant, embedding_path)
    cpu_info = configure_cpu()  # denormals flushed, freed memory kept, job threads (device.py)
    vid, model_cfg, cfg = variant.id, variant.model, variant.training
    device = resolve_device(cfg.device)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT

    embedding = np.load(embedding_path) if embedding_path is not None else None
    skip_ids = missing_word_ids(embedding_path) if model_cfg.embedding.skip_missing else None  # type: ignore[union-attr]
    data = load_run_data(variant, prepared_dir=prepared_dir, encoded_dir=encoded_dir, vocab_file=vocab_file,
                         skip_ids=skip_ids)
    seed_everything(cfg.seed)
    sparse, sparse_why = sparse_embedding_choice(model_cfg, cfg, data.vocab_size, device)
    model = build_model(model_cfg, vocab_size=data.vocab_size, num_classes=len(data.classes),  # type: ignore[arg-type]
                        embedding_matrix=embedding, sparse=sparse, where=vid).to(device)
    optim = build_optimization(model, cfg)
    precision = make_precision(device, cfg.amp)
    log.info("%s: %d train / %d val / %d test rows, vocab %d, device %s (%s), sparse embeddings %s",
             vid, len(data.train), len(data.val), len(data.test), data.vocab_size, device, precision.name, sparse_why)

    fingerprint = _fingerprint(variant, data)
    progress = _resume(ckpt_path, fingerprint, model, optim, precision)
    resumed_from = progress.epoch if progress else None
    if progress:
        log.info("%s: resuming after epoch %d from %s", vid, progress.epoch, ckpt_path)
    progress = progress or Progress()
    _fit(variant, data, model, optim, precision, device, progress, ckpt_path=ckpt_path,
         fingerprint=fingerprint, on_epoch_end=on_epoch_end)

    reported_epoch = selected_epoch(cfg.report_epoch, progress)
    window_facts = {}
    if cfg.train_loss_window:
        window_facts = {"reported_step": progress.lowest_loss_step}
        if progress.lowest_loss_step is None:
            log.warning("%s: no epoch had %d batches (training.train_loss_window): reporting the last epoch",
                        vid, cfg.train_loss_window)
        else:
            log.info("%s: lowest %d-batch training loss %.4f at epoch %d, batch %d: reporting those weights",
                     vid, cfg.train_loss_window, progress.lowest_train_loss, reported_epoch, progress.lowest_loss_step)
    if cfg.report_epoch != "last" and progress.best_state is not None:
        model.load_state_dict(progress.best_state)
    eval_kw = {"batch_size": cfg.batch_size, "max_len": cfg.max_len, "padding": cfg.padding,
               "device": device, "precision": precision}
    test_probs = predict_proba(model, data.test, desc="eval test", **eval_kw)
    test = classification_metrics(data.test.labels, test_probs)
    # Trained on the validation rows (train_split train+val): they are no held-out split.
    val = (None if cfg.train_split == "train+val" else
           classification_metrics(data.val.labels, predict_proba(model, data.val, desc="eval val", **eval_kw)))
    metrics = run_summary(
        test=test, val=val, history=progress.history, train_labels=data.train.labels, classes=data.classes,
        trainable_params=count_trainable_parameters(model), best_epoch=progress.best_epoch,
        variant=vid, model_type="rnn", reported_epoch=reported_epoch, eval_split=cfg.eval_split,
        report_epoch=cfg.report_epoch, early_stopped=progress.stopped_early, device=str(device),
        precision=precision.name, sparse_embeddings=sparse_why, quick=variant.quick is not None,
        empty_rows={name: data.split(name).empty_rows for name in SPLITS}, resumed_from_epoch=resumed_from,
        vocab_size=data.vocab_size, **window_facts, **cpu_info, **machine_info(device), **wall_clock(started),
    )
    _write_model(out_dir / "model.pt", model, variant, data, sparse, reported_epoch)
    write_results(out_dir, metrics=metrics, history=progress.history,
                  predictions=predictions_frame(data.test.row_ids, data.test.labels, test_probs))
    ckpt_path.unlink(missing_ok=True)
    return metrics


def _write_model(path: Path, model: torch.nn.Module, variant: Variant, data: RunData,
                 sparse: bool, epoch: int) -> None:
    """model.pt: the reported weights plus what is needed to rebuild and trust them."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({
            "state_dict": _cpu_state(model),
            "variant": {**to_dict(variant), "id": variant.id, "run_id": variant.run_id},
            "vocab_size": data.vocab_size,
            "vocab_sha256": data.vocab_sha256,
            "classes": data.classes,
            "sparse_embeddings": sparse,
            "epoch": epoch,
        }, tmp)
