"""RNN text classifier: embedding → recurrent encoder → sequence summary → head.

One module covers every `models` preset of type `rnn` (a typed `RNNConfig`, checked once at
plan time by the schema and `textclf.studies.check_variant`), so studies differ only in
params.yaml. `build_model` checks the embedding matrix against the config and builds the
network.

Every path except the deliberate reference switches (`padded_last`, `pool_padding`,
`last_output` on a bidirectional net, `output: softmax`, `init: reference`; docs/FIDELITY.md)
gives the packed-sequence result; only cuDNN (off-CPU, bidirectional) actually packs: see
textclf.models.padded_rnn for why and how.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclf.config import ParamsError
from textclf.errors import DataError
from textclf.models.gru_scratch import ScratchGRU
from textclf.models.padded_rnn import run_padded
from textclf.models.pooling import POOLINGS, build_pooling, last_hidden, length_mask
from textclf.settings import RNNConfig

CELLS = ("rnn", "lstm", "gru", "gru_scratch")
HEADS = ("linear", "mlp", "mlp_tanh", "relu_linear")
INITS = ("torch", "reference")
OUTPUTS = ("logits", "softmax")
_TORCH_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
__all__ = ["CELLS", "HEADS", "INITS", "OUTPUTS", "POOLINGS", "RNNClassifier", "build_model",
           "count_trainable_parameters", "reference_init"]


def _make_encoder(cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool,
                  dropout: float) -> nn.Module:
    # nn.RNN's dropout only acts between layers and warns when there is one layer: pass 0 then.
    between = dropout if layers > 1 else 0.0
    if cell == "gru_scratch":
        return ScratchGRU(input_size, hidden, layers, bidirectional, between)
    kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    return _TORCH_CELLS[cell](input_size, hidden, num_layers=layers, bidirectional=bidirectional,
                              dropout=between, batch_first=True, **kwargs)


def _make_head(kind: str, features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """The classifier on the sequence summary [B, F]:

    - linear: dropout → Linear(F, K)
    - mlp: tanh → Linear(F, H) → dropout → Linear(H, K)
    - mlp_tanh: tanh → Linear(F, H) → dropout → tanh → Linear(H, K) (seed 002:371-372)
    - relu_linear: dropout → ReLU → Linear(F, K) (seed 003:361, `fc(F.relu(out[:, -1]))`;
      dropout and ReLU commute)

    Dropout is always a layer (identity at p=0) so state_dict keys do not depend on it.
    """
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
    if kind == "relu_linear":
        return nn.Sequential(nn.Dropout(dropout), nn.ReLU(), nn.Linear(features, num_classes))
    if kind == "mlp_tanh":
        return nn.Sequential(nn.Tanh(), nn.Linear(features, hidden), nn.Dropout(dropout), nn.Tanh(),
                             nn.Linear(hidden, num_classes))
    return nn.Sequential(nn.Tanh(), nn.Linear(features, hidden), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


def reference_init(model: nn.Module) -> None:
    """Seed 001's fixed initialisation ("DO NOT CHANGE", 001:920-931), applied to every module:
    xavier_normal_ for embedding and linear weights, zero linear biases, orthogonal_ for every
    recurrent weight matrix (weight_ih / weight_hh of each layer and direction, each as one
    matrix), zero recurrent biases. The seed's `init_weights` names nn.LSTM and nn.GRU; nn.RNN
    and the scratch GRU get the same treatment here. The embedding's padding row is
    overwritten too, as in the seed (its gradient stays zero with padding_idx)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Embedding):
                nn.init.xavier_normal_(module.weight)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.RNNBase | ScratchGRU):
                for name, param in module.named_parameters(recurse=False):
                    if "bias" in name:
                        nn.init.zeros_(param)
                    elif "weight" in name:
                        nn.init.orthogonal_(param)


class RNNClassifier(nn.Module):
    """forward(ids [B, T] right-padded with 0, lengths [B]) -> logits [B, num_classes]
    (class probabilities with `output: softmax`, see `outputs_probabilities`)."""

    def __init__(self, model: RNNConfig, *, vocab_size: int, num_classes: int,
                 sparse: bool = False) -> None:
        super().__init__()
        emb = model.embedding
        self.cell = model.cell
        self.pooling = model.pooling
        self.pool_padding = model.pool_padding
        self.num_directions = 2 if model.bidirectional else 1
        self.output_features = model.hidden * self.num_directions
        self.outputs_probabilities = model.output == "softmax"
        self.binary_logit = model.output == "binary_logit"
        if self.binary_logit and num_classes != 2:
            raise DataError(f"model.output 'binary_logit' is for two classes; this dataset has {num_classes}")
        self.embedding = nn.Embedding(vocab_size, emb.dim, sparse=sparse,
                                      padding_idx=0 if emb.padding_idx else None)
        embedding_dropout = model.dropout if model.embedding_dropout is None else model.embedding_dropout
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = _make_encoder(self.cell, emb.dim, model.hidden, model.layers,
                                     model.bidirectional, model.dropout)
        self.pool = build_pooling(self.pooling, self.output_features)
        self.head = _make_head(model.head, self.output_features, model.hidden,
                               1 if self.binary_logit else num_classes, model.head_dropout)
        if model.init == "reference":
            reference_init(self)
        # Bidirectional torch cells: None packs off-CPU only (cuDNN's packed kernels, unmeasured
        # here); on CPU the padded reverse-within-length run is exact and several times faster.
        self.pack_bidirectional: bool | None = None

    def _pack(self, device: torch.device) -> bool:
        """Whether a bidirectional torch cell runs on a PackedSequence on this device."""
        return self.pack_bidirectional if self.pack_bidirectional is not None else device.type != "cpu"

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor,
                need_outputs: bool) -> tuple[torch.Tensor | None, Any]:
        """(outputs [B, T, F] zero beyond each length, or None if not needed; h_n)."""
        if isinstance(self.encoder, ScratchGRU):
            return self.encoder(x, lengths)
        if not self._pack(x.device):
            return run_padded(self.encoder, x, lengths)
        packed = pack_padded_sequence(x, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
        packed_out, h_n = self.encoder(packed)
        if not need_outputs:
            return None, h_n
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
        return outputs, h_n

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The sequence summary [B, F] that the head classifies (F = hidden * directions)."""
        total = ids.shape[1]
        lengths = lengths.clamp(min=1, max=total)
        x = self.embedding_dropout(self.embedding(ids))
        if self.pooling == "padded_last" or self.pool_padding:
            # Reference flaws, on purpose: no packing, every position of the padded batch is
            # run (a backward direction starts in the padding). padded_last reads position T-1
            # (seed 000); pool_padding pools over all T positions, padding included (seed 002).
            outputs, _ = self.encoder(x)
            if self.pool is None:
                return outputs[:, -1]
            return self.pool(outputs, torch.ones(ids.shape, dtype=torch.bool, device=ids.device))
        rows = torch.arange(ids.shape[0], device=ids.device)
        if self.num_directions == 1 and not isinstance(self.encoder, ScratchGRU):
            # A forward-only RNN's output at t depends on tokens 0..t only, so on a right-padded
            # batch every position before a sequence's length equals the packed result. The
            # padded run is exact and, on CPU, 2-3x faster than packing (whose backward pass
            # re-zeroes the whole batch at every step); padding after the end is masked below.
            outputs, _ = self.encoder(x)
            if self.pool is None:  # last, last_output: the same for one direction
                return outputs[rows.to(outputs.device), lengths.to(outputs.device) - 1]
            return self.pool(outputs, length_mask(lengths.to(ids.device), total))
        need_outputs = self.pool is not None or self.pooling == "last_output"
        outputs, h_n = self._encode(x, lengths, need_outputs=need_outputs)
        if self.pooling == "last_output":
            # Seeds 001/003: out[length-1] for both directions; the backward half there has
            # read only the last token (h_n's backward state has read the whole sequence).
            assert outputs is not None
            return outputs[rows.to(outputs.device), lengths.to(outputs.device) - 1]
        if self.pool is None:
            return last_hidden(h_n, self.num_directions)
        return self.pool(outputs, length_mask(lengths.to(ids.device), total))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(ids, lengths))
        if self.outputs_probabilities:
            # Seed 000 (000:348): `return F.softmax(out, dim=1)`, then nn.CrossEntropyLoss on it.
            return torch.softmax(logits, dim=1)
        if self.binary_logit:
            # Seed 004: one logit z and BCEWithLogitsLoss(z, y). The logits [0, z] give the same
            # loss under cross-entropy (softmax([0, z])[1] = sigmoid(z)) and the same predictions.
            return torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits


def _load_embedding(model: RNNClassifier, config: RNNConfig, matrix: np.ndarray | None, where: str) -> None:
    """Copy a pre-trained matrix in (checked against the config) and apply `freeze`."""
    emb = config.embedding
    weight = model.embedding.weight
    if (emb.source == "random") != (matrix is None):
        given = "no embedding matrix" if matrix is None else "an embedding matrix"
        raise ParamsError(f"{where}: model.embedding.source is {emb.source!r} but {given} was given")
    if matrix is not None:
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != emb.dim:
            raise ParamsError(f"{where}: model.embedding.dim is {emb.dim} but the "
                              f"{emb.source!r} matrix has shape {matrix.shape}")
        if matrix.shape[0] != weight.shape[0]:
            raise DataError(f"{where}: the {emb.source!r} embedding matrix has {matrix.shape[0]} "
                            f"rows but the vocabulary has {weight.shape[0]} entries (built from another vocab?)")
        if not np.isfinite(matrix).all():
            raise DataError(f"{where}: the {emb.source!r} embedding matrix has non-finite values")
        with torch.no_grad():
            weight.copy_(torch.from_numpy(matrix.astype(np.float32, copy=False)))
            if model.embedding.padding_idx is not None:
                weight[model.embedding.padding_idx].zero_()
    weight.requires_grad_(not emb.freeze)


def build_model(model: RNNConfig, *, vocab_size: int, num_classes: int,
                embedding_matrix: np.ndarray | None = None, sparse: bool = False,
                where: str = "model") -> RNNClassifier:
    """Build the network of a typed rnn config and load its embedding matrix (when not random).

    The config's values were checked when the plan resolved it (schema + studies.check_variant);
    here only its type and the data-dependent sizes."""
    if not isinstance(model, RNNConfig):
        raise TypeError(f"{where}: build_model takes an RNNConfig (textclf.settings), got {type(model).__name__}")
    if vocab_size < 2 or num_classes < 2:
        raise DataError(f"{where}: need vocab_size >= 2 and num_classes >= 2, "
                        f"got {vocab_size} and {num_classes}")
    network = RNNClassifier(model, vocab_size=vocab_size, num_classes=num_classes, sparse=sparse)
    _load_embedding(network, model, embedding_matrix, where)
    return network


def count_trainable_parameters(model: nn.Module) -> int:
    """Parameters the optimizer updates (a frozen embedding does not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
