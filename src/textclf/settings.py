"""Typed, frozen settings of one variant: what the model, optimizer, trainer and report read.

params.yaml is parsed and checked once (textclf.config + textclf.studies); every variant then
travels as a `Variant`, to the train stage as a canonical JSON job file. `from_dict` is strict
(an unknown or missing key is an error naming it), so a job file written by another version of
the code is refused instead of half-read.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from textclf.config import ParamsError

# A field added after results exist carries this metadata: at its default it is left out of the
# serialised settings, so job files (whose content keys every cached result) stay byte-identical
# and adding a knob reruns only the jobs that set it.
OMIT_AT_DEFAULT = {"omit_at_default": True}

T = TypeVar("T")


@dataclass(frozen=True)
class EmbeddingConfig:
    source: str  # random, or an `embeddings` entry
    dim: int  # for a pre-trained source: the source's dimension (set by the plan)
    freeze: bool
    padding_idx: bool
    skip_missing: bool = False  # drop words the pre-trained vectors lack from the input (seed 003)


@dataclass(frozen=True)
class RNNConfig:
    """A recurrent classifier: embedding → encoder → sequence summary → head."""

    type: str
    cell: str
    layers: int
    bidirectional: bool
    hidden: int
    dropout: float
    pooling: str
    head: str
    head_dropout: float
    embedding: EmbeddingConfig
    # Faithful-reproduction switches (docs/FIDELITY.md); the defaults are the corrected model.
    init: str = "torch"  # torch (PyTorch's defaults) | reference (seed 001: xavier / orthogonal / zeros)
    embedding_dropout: float | None = None  # dropout on the embedding output; None: `dropout`
    pool_padding: bool = False  # max/mean/attention over every position, padding included (seed 002)
    output: str = "logits"  # logits | softmax (seed 000: softmax into cross-entropy) | binary_logit (seed 004)


@dataclass(frozen=True)
class TfidfConfig:
    """TF-IDF (word n-grams) + logistic regression baseline."""

    type: str
    ngram_max: int
    min_df: int
    max_features: int | None
    C: float


@dataclass(frozen=True)
class OptimizerConfig:
    name: str
    lr: float
    momentum: float
    weight_decay: float
    eps: float


@dataclass(frozen=True)
class TrainingConfig:
    seed: int
    epochs: int
    batch_size: int
    max_len: int
    padding: str
    optimizer: OptimizerConfig
    warmup_steps: int
    clip_grad_norm: float | None
    early_stopping_patience: int | None
    eval_split: str
    report_epoch: str
    device: str
    amp: bool
    sparse_embeddings: str | bool
    train_split: str = "train"  # train | train+val (the reference had no validation carve-out)
    train_loss_window: int | None = None  # lowest_train_loss over windows of this many batches (seed 003: 800)
    # a seeded, stratified sample of this fraction of the training rows: a learning-curve point
    train_fraction: float = dataclasses.field(default=1.0, metadata=OMIT_AT_DEFAULT)


@dataclass(frozen=True)
class QuickCaps:
    """The quick setting: caps applied to every variant (rows are sampled by the trainer)."""

    epochs: int
    train_rows: int
    eval_rows: int
    batch_size: int
    warmup_steps: int
    max_len: int | None = dataclasses.field(default=None, metadata=OMIT_AT_DEFAULT)  # None: each variant's own


@dataclass(frozen=True)
class Variant:
    """One trained replica: a study's variant on one dataset, under one seed and one mode."""

    dataset: str
    study: str
    name: str
    mode: str  # full | quick
    vocab: str | None
    model: RNNConfig | TfidfConfig
    training: TrainingConfig
    quick: QuickCaps | None = None

    @property
    def seed(self) -> int:
        return self.training.seed

    @property
    def id(self) -> str:
        """<dataset>/<study>/<name>: the variant, whatever its seed and mode."""
        return f"{self.dataset}/{self.study}/{self.name}"

    @property
    def run_id(self) -> str:
        """<mode>/<dataset>/<study>/<name>/seed<k>: this replica (its results folder under results/)."""
        return f"{self.mode}/{self.id}/seed{self.seed}"

    @property
    def is_neural(self) -> bool:
        return isinstance(self.model, RNNConfig)

    @property
    def embedding(self) -> str | None:
        """The `embeddings` entry this variant needs, or None (random init, baselines)."""
        if not isinstance(self.model, RNNConfig) or self.model.embedding.source == "random":
            return None
        return self.model.embedding.source

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def to_dict(obj: Any) -> dict[str, Any]:
    return _plain(obj)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_at_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def canonical_json(data: Any) -> str:
    """The one serialisation of settings: sorted keys, fixed spacing, trailing newline. Equal
    settings give equal bytes, so engines can key jobs on file content."""
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build a (nested) settings dataclass from a mapping; unknown or missing keys are errors."""
    if not isinstance(data, Mapping):
        raise ParamsError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {unknown}; allowed keys: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            no_default = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if no_default:
                raise ParamsError(f"{where}: missing key {name!r}")
            continue
        kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else ()
    models = [o for o in options if dataclasses.is_dataclass(o)]
    if value is None or not models:
        return value
    if len(models) == 1:  # QuickCaps | None
        return from_dict(models[0], value, where)
    return model_config(value, where)  # RNNConfig | TfidfConfig: `type` says which
    return value


def model_config(data: Mapping[str, Any], where: str) -> RNNConfig | TfidfConfig:
    """A merged `models` preset (after study overrides) as its typed config."""
    kind = data.get("type")
    cls = {"rnn": RNNConfig, "tfidf_logreg": TfidfConfig}.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ParamsError(f"{where}.type: {kind!r} is not allowed; allowed values: ['rnn', 'tfidf_logreg']")
    keys = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - keys)
    if extra:
        raise ParamsError(f"{where}: key(s) {extra} do not apply to model type {kind!r}; allowed keys: {sorted(keys)}")
    return from_dict(cls, data, where)


def variant_from_dict(data: Any, where: str) -> Variant:
    return from_dict(Variant, data, where)
