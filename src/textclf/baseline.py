"""TF-IDF + logistic regression baseline (model type `tfidf_logreg`).

The row every neural variant should beat. It reads the prepared text directly (scikit-learn's
own tokenizer, word 1..ngram_max grams, sublinear tf) and writes the same metrics.json,
history.csv (a single "epoch") and predictions.parquet as the neural trainer, so the report
treats both alike. The fitted pipeline is saved as model.pkl (joblib), not model.pt.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from textclf.atomic import atomic_path
from textclf.config import ParamsError
from textclf.errors import DataError
from textclf.machine import cpu_model
from textclf.metrics import (
    classification_metrics,
    predictions_frame,
    run_summary,
    wall_clock,
    write_results,
)
from textclf.settings import TfidfConfig, Variant
from textclf.splits import SPLITS, read_classes, row_sample
from textclf.text.tokenize import PreparedSplit, read_split

log = logging.getLogger(__name__)

MAX_ITER = 2000


def build_pipeline(model_cfg: TfidfConfig, seed: int) -> Pipeline:
    return Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, model_cfg.ngram_max), min_df=model_cfg.min_df,
                                  max_features=model_cfg.max_features, sublinear_tf=True, dtype=np.float32)),
        ("logreg", LogisticRegression(C=model_cfg.C, max_iter=MAX_ITER, random_state=seed)),
    ])


def _probs(pipe: Pipeline, texts: list[str], num_classes: int) -> np.ndarray:
    """predict_proba with one column per class, also for classes absent from training."""
    out = np.zeros((len(texts), num_classes), dtype=np.float64)
    if texts:
        out[:, pipe.classes_] = pipe.predict_proba(texts)
    return out


def _load(variant: Variant, prepared_dir: str | Path) -> dict[str, PreparedSplit]:
    splits = {}
    for name in SPLITS:
        split = read_split(prepared_dir, name)
        keep = row_sample(variant, name, split.labels)
        if keep is not None:
            split = PreparedSplit(split.ids[keep], split.labels[keep], [split.texts[i] for i in keep])
        splits[name] = split
    return splits


def train_tfidf(variant: Variant, *, prepared_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Fit on train, score val and test, write model.pkl + the common results files."""
    started = time.time()
    vid, cfg = variant.id, variant.model
    if not isinstance(cfg, TfidfConfig):
        raise ParamsError(f"{vid}: train_tfidf needs model type 'tfidf_logreg', got {cfg.type!r}")
    classes = read_classes(prepared_dir)
    data = _load(variant, prepared_dir)
    train = data["train"]
    if len(train.labels) == 0:
        raise DataError(f"{vid}: the train split is empty ({prepared_dir}/train.parquet)")
    if len(data["test"].labels) == 0:
        raise DataError(f"{vid}: the test split is empty ({prepared_dir}/test.parquet)")

    pipe = build_pipeline(cfg, variant.seed)
    start = time.perf_counter()
    try:
        pipe.fit(train.texts, train.labels)
    except ValueError as exc:  # e.g. "empty vocabulary" when min_df removes every term
        raise DataError(f"{vid}: TF-IDF baseline could not be fitted: {exc}") from exc
    seconds = time.perf_counter() - start

    probs = {name: _probs(pipe, data[name].texts, len(classes)) for name in SPLITS}
    scores = {name: classification_metrics(data[name].labels, probs[name]) for name in SPLITS}
    tokens = sum(len(t.split()) for t in train.texts)
    history = [{
        "epoch": 1, "train_loss": scores["train"]["loss"], "train_acc": scores["train"]["accuracy"],
        "val_loss": scores["val"]["loss"] if scores["val"] else None,
        "val_acc": scores["val"]["accuracy"] if scores["val"] else None,
        "seconds": seconds, "tokens_per_s": tokens / seconds if seconds > 0 else 0.0, "lr": None,
    }]
    logreg = pipe.named_steps["logreg"]
    metrics = run_summary(
        test=scores["test"], val=scores["val"], history=history, train_labels=train.labels, classes=classes,
        trainable_params=int(logreg.coef_.size + logreg.intercept_.size), best_epoch=1,
        variant=vid, model_type="tfidf_logreg", reported_epoch=1, eval_split="val", report_epoch="last",
        early_stopped=False, device="cpu", precision="float64", sparse_embeddings=None,
        quick=variant.quick is not None, empty_rows=None, resumed_from_epoch=None,
        vocab_size=len(pipe.named_steps["tfidf"].vocabulary_), hardware=cpu_model(), **wall_clock(started),
    )
    log.info("%s: test accuracy %.4f, macro-F1 %.4f (%d features, %.1fs)", vid, metrics["accuracy"],
             metrics["macro_f1"], metrics["vocab_size"], seconds)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "model.pkl", suffix=".pkl") as tmp:
        joblib.dump({"pipeline": pipe, "variant": variant.to_dict(), "classes": classes}, tmp)
    write_results(out_dir, metrics=metrics, history=history,
                  predictions=predictions_frame(data["test"].ids, data["test"].labels, probs["test"]))
    return metrics
