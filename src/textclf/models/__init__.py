"""Neural text classifiers built from a `models` preset of params.yaml (type rnn)."""

from textclf.models.classifier import (
    CELLS,
    HEADS,
    RNNClassifier,
    build_model,
    count_trainable_parameters,
    validate_model_config,
)
from textclf.models.gru_scratch import ScratchGRU
from textclf.models.pooling import POOLINGS

__all__ = [
    "CELLS",
    "HEADS",
    "POOLINGS",
    "RNNClassifier",
    "ScratchGRU",
    "build_model",
    "count_trainable_parameters",
    "validate_model_config",
]
