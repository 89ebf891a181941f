"""Neural text classifiers built from a typed `RNNConfig` (a `models` preset of type rnn)."""

from textclf.models.classifier import (
    CELLS,
    HEADS,
    INITS,
    OUTPUTS,
    RNNClassifier,
    build_model,
    count_trainable_parameters,
    reference_init,
)
from textclf.models.gru_scratch import ScratchGRU
from textclf.models.pooling import POOLINGS

__all__ = [
    "CELLS",
    "HEADS",
    "INITS",
    "OUTPUTS",
    "POOLINGS",
    "RNNClassifier",
    "ScratchGRU",
    "build_model",
    "count_trainable_parameters",
    "reference_init",
]
