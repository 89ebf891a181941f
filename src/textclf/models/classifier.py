"""RNN text classifier: embedding → recurrent encoder → sequence summary → head.

One module covers every `models` preset of type `rnn`, so studies differ only in params.yaml.
`validate_model_config` turns a bad preset into a ParamsError before any data is loaded;
`build_model` checks the embedding matrix against the preset and builds the network.

Every path except the deliberate `padded_last` flaw gives the packed-sequence result; only
cuDNN (off-CPU, bidirectional) actually packs: see the section above run_padded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclf.config import ParamsError
from textclf.errors import DataError
from textclf.models.gru_scratch import ScratchGRU
from textclf.models.pooling import (
    POOLINGS,
    build_pooling,
    last_hidden,
    length_mask,
    reverse_index,
    reverse_within_length,
)

CELLS = ("rnn", "lstm", "gru", "gru_scratch")
HEADS = ("linear", "mlp")
_TORCH_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
MODEL_KEYS = ("type", "cell", "layers", "bidirectional", "hidden", "dropout", "pooling", "head",
              "head_dropout", "embedding")
EMBEDDING_KEYS = ("source", "dim", "freeze", "padding_idx")


def _keys_problem(cfg: Any, required: tuple[str, ...], prefix: str) -> str | None:
    if not isinstance(cfg, Mapping):
        return f"{prefix}: expected a mapping, got {type(cfg).__name__}"
    missing = [k for k in required if k not in cfg]
    unknown = sorted(set(cfg) - set(required))
    if missing:
        return f"{prefix}: missing key(s) {missing}"
    if unknown:
        return f"{prefix}: unknown key(s) {unknown}; allowed keys: {list(required)}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_fraction(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1


def validate_model_config(model_cfg: Mapping[str, Any], *, where: str) -> None:
    """Raise ParamsError naming `where` and every bad key of an rnn preset (after overrides)."""
    problem = _keys_problem(model_cfg, MODEL_KEYS, "model")
    if problem:
        raise ParamsError(f"{where}: {problem}")
    problems: list[str] = []
    if model_cfg["type"] != "rnn":
        problems.append(f"model.type: {model_cfg['type']!r} is not a neural model; "
                        "build_model only builds type 'rnn'")
    for key, allowed in (("cell", CELLS), ("pooling", POOLINGS), ("head", HEADS)):
        if model_cfg[key] not in allowed:
            problems.append(f"model.{key}: {model_cfg[key]!r} is not allowed; allowed values: {list(allowed)}")
    for key in ("layers", "hidden"):
        if not _is_int(model_cfg[key]) or model_cfg[key] < 1:
            problems.append(f"model.{key}: must be an integer >= 1, got {model_cfg[key]!r}")
    for key in ("dropout", "head_dropout"):
        if not _is_fraction(model_cfg[key]):
            problems.append(f"model.{key}: must be a number in [0, 1), got {model_cfg[key]!r}")
    if not isinstance(model_cfg["bidirectional"], bool):
        problems.append(f"model.bidirectional: must be true or false, got {model_cfg['bidirectional']!r}")
    emb = model_cfg["embedding"]
    problem = _keys_problem(emb, EMBEDDING_KEYS, "model.embedding")
    if problem:
        problems.append(problem)
    else:
        if not isinstance(emb["source"], str) or not emb["source"]:
            problems.append(f"model.embedding.source: must be 'random' or an embeddings name, got {emb['source']!r}")
        if not _is_int(emb["dim"]) or emb["dim"] < 1:
            problems.append(f"model.embedding.dim: must be an integer >= 1, got {emb['dim']!r}")
        for key in ("freeze", "padding_idx"):
            if not isinstance(emb[key], bool):
                problems.append(f"model.embedding.{key}: must be true or false, got {emb[key]!r}")
    if problems:
        raise ParamsError(f"{where}: {len(problems)} problem(s) in the model config:\n  - "
                          + "\n  - ".join(problems))


# ---------------------------------------------------------------- bidirectional layers, unpacked

# Bidirectional nn.RNN / nn.LSTM / nn.GRU on right-padded batches, without PackedSequence.
#
# A forward-direction layer's output at t depends on tokens 0..t only, so on a right-padded
# batch every valid position already equals the packed result. The backward direction reads
# each row reversed *within its own length* (reverse, run, reverse back): the padding then sits
# after the end of every reversed row, where it cannot reach a valid position. Both runs are
# plain dense kernels (oneDNN for LSTM on CPU), whose backward pass is several times faster on
# CPU than the packed one (which re-zeroes and re-slices the batch at every step).
#
# The weights stay in the caller's nn.RNNBase module (same parameters, same state_dict keys
# `weight_ih_l{k}[_reverse]`, ...): each layer and direction is run through the same ATen op
# that nn.LSTM itself calls (`torch.lstm` etc.), one layer and one direction at a time, so a
# bidirectional stack feeds layer k+1 both directions of layer k. Inter-layer dropout draws its
# mask in the packed layout and scatters it to the padded one, so training consumes the same
# random numbers, and gets the same masks, as the packed module. A batch without padding is
# one call of the module itself.

_OPS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


def _at_last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """outputs[b, length_b - 1] for every row: [B, H]."""
    rows = torch.arange(outputs.shape[0], device=outputs.device)
    return outputs[rows, lengths - 1]


def _weights(rnn: nn.RNNBase, layer: int, suffix: str) -> list[torch.Tensor]:
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if rnn.bias else ("weight_ih", "weight_hh")
    return [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]


def _zero_state(rnn: nn.RNNBase, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    h0 = x.new_zeros(1, x.shape[0], rnn.hidden_size)
    return (h0, h0) if rnn.mode == "LSTM" else h0


def _run(rnn: nn.RNNBase, x: torch.Tensor, weights: list[torch.Tensor],
         state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One layer, one direction, batch_first: (outputs [B, T, H], final states at T-1)."""
    result = _OPS[rnn.mode](x, state, weights, rnn.bias, 1, 0.0, rnn.training, False, True)
    return result[0], tuple(result[1:])


def _states_at_lengths(rnn: nn.RNNBase, x: torch.Tensor, weights: list[torch.Tensor],
                       lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every state (LSTM: h and c) at each row's own last step, [B, H] each.

    The outputs give h at length-1, but not an LSTM's cell state: run the batch in segments
    that end at each distinct length and keep the rows that end there (opt-in: costs one
    call per distinct length)."""
    state = _zero_state(rnn, x)
    finals: list[torch.Tensor] | None = None
    start = 0
    for end in torch.unique(lengths).tolist():
        _, states = _run(rnn, x[:, start:end], weights, state)
        state = states if rnn.mode == "LSTM" else states[0]
        ends = (lengths == end).unsqueeze(1)
        now = [s[0] for s in states]
        finals = now if finals is None else [torch.where(ends, n, f) for n, f in zip(now, finals, strict=True)]
        start = end
    assert finals is not None
    return tuple(finals)


def _packed_layout_dropout(x: torch.Tensor, lengths: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout on padded [B, T, F] with the mask nn.RNNBase draws for the packed data.

    ATen's CPU dropout fills a noise tensor shaped like its input with bernoulli_(1-p); for a
    PackedSequence that input is the packed data [sum(lengths), F]. Drawing the same tensor
    and scattering it to the padded positions reproduces the packed module's masks exactly."""
    batch, total, features = x.shape
    order = torch.arange(batch * total, device=x.device).view(batch, total)
    positions = pack_padded_sequence(order, lengths.cpu(), batch_first=True, enforce_sorted=False).data
    noise = x.new_empty(len(positions), features).bernoulli_(1 - p).div_(1 - p)
    padded = x.new_zeros(batch * total, features)
    padded[positions] = noise
    return x * padded.view(batch, total, features)


def run_padded(
    rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, *, cell_state: bool = False
) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]]:
    """Packed-equivalent run of a batch_first `rnn` on right-padded x [B, T, F] (lengths ≥ 1).

    Returns outputs [B, T, D*H] (zeros beyond each length) and h_n [L*D, B, H] like the packed
    module: forward state at each row's last token, backward state after reading back to 0.
    For an LSTM h_n is (h_n, c_n); c_n is None unless `cell_state` (it costs extra calls)."""
    if not rnn.batch_first or getattr(rnn, "proj_size", 0):
        raise ValueError("run_padded needs a batch_first RNN without projections")
    lengths = lengths.to(x.device)
    if bool((lengths == x.shape[1]).all()) and not (rnn.training and rnn.dropout > 0 and rnn.num_layers > 1):
        # No padding (short max_len, or the longest bucket): reversing within the length is
        # reversing, so the module's own bidirectional kernel is exact and one call. Not with
        # inter-layer dropout, whose padded-layout mask would differ from the packed one.
        return rnn(x)
    directions = 2 if rnn.bidirectional else 1
    index = reverse_index(lengths, x.shape[1]) if directions == 2 else None
    h_finals: list[torch.Tensor] = []
    c_finals: list[torch.Tensor] = []
    layer_input = x
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.training and rnn.dropout > 0:
            layer_input = _packed_layout_dropout(layer_input, lengths, rnn.dropout)
        outputs = []
        for direction, suffix in enumerate(("", "_reverse")[:directions]):
            weights = _weights(rnn, layer, suffix)
            seq = layer_input if direction == 0 else reverse_within_length(layer_input, index)
            out, _ = _run(rnn, seq, weights, _zero_state(rnn, seq))
            h_finals.append(_at_last_valid(out, lengths))
            if cell_state and rnn.mode == "LSTM":
                c_finals.append(_states_at_lengths(rnn, seq, weights, lengths)[1])
            outputs.append(out if direction == 0 else reverse_within_length(out, index))
        layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
    mask = length_mask(lengths, x.shape[1]).unsqueeze(-1)
    outputs = layer_input * mask.to(layer_input.dtype)
    h_n = torch.stack(h_finals)
    if rnn.mode != "LSTM":
        return outputs, h_n
    return outputs, (h_n, torch.stack(c_finals) if cell_state else None)


# ---------------------------------------------------------------- the classifier


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
    """linear: dropout → Linear(F, K); mlp: tanh → Linear(F, H) → dropout → Linear(H, K).

    Dropout is always a layer (identity at p=0) so state_dict keys do not depend on it.
    """
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
    return nn.Sequential(nn.Tanh(), nn.Linear(features, hidden), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


class RNNClassifier(nn.Module):
    """forward(ids [B, T] right-padded with 0, lengths [B]) -> logits [B, num_classes]."""

    def __init__(self, model_cfg: Mapping[str, Any], *, vocab_size: int, num_classes: int,
                 sparse: bool = False) -> None:
        super().__init__()
        emb = model_cfg["embedding"]
        self.cell = model_cfg["cell"]
        self.pooling = model_cfg["pooling"]
        self.num_directions = 2 if model_cfg["bidirectional"] else 1
        self.output_features = model_cfg["hidden"] * self.num_directions
        self.embedding = nn.Embedding(vocab_size, emb["dim"], sparse=sparse,
                                      padding_idx=0 if emb["padding_idx"] else None)
        self.embedding_dropout = nn.Dropout(model_cfg["dropout"])
        self.encoder = _make_encoder(self.cell, emb["dim"], model_cfg["hidden"], model_cfg["layers"],
                                     model_cfg["bidirectional"], model_cfg["dropout"])
        self.pool = build_pooling(self.pooling, self.output_features)
        self.head = _make_head(model_cfg["head"], self.output_features, model_cfg["hidden"],
                               num_classes, model_cfg["head_dropout"])
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
        if self.pooling == "padded_last":
            # Reference flaw, on purpose: no packing, read the (usually padded) position T-1.
            outputs, _ = self.encoder(x)
            return outputs[:, -1]
        if self.num_directions == 1 and not isinstance(self.encoder, ScratchGRU):
            # A forward-only RNN's output at t depends on tokens 0..t only, so on a right-padded
            # batch every position before a sequence's length equals the packed result. The
            # padded run is exact and, on CPU, 2-3x faster than packing (whose backward pass
            # re-zeroes the whole batch at every step); padding after the end is masked below.
            outputs, _ = self.encoder(x)
            if self.pool is None:
                rows = torch.arange(outputs.shape[0], device=outputs.device)
                return outputs[rows, lengths.to(outputs.device) - 1]
            return self.pool(outputs, length_mask(lengths.to(ids.device), total))
        outputs, h_n = self._encode(x, lengths, need_outputs=self.pool is not None)
        if self.pool is None:
            return last_hidden(h_n, self.num_directions)
        return self.pool(outputs, length_mask(lengths.to(ids.device), total))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids, lengths))


def _load_embedding(model: RNNClassifier, model_cfg: Mapping[str, Any],
                    matrix: np.ndarray | None, where: str) -> None:
    """Copy a pre-trained matrix in (checked against the preset) and apply `freeze`."""
    emb = model_cfg["embedding"]
    weight = model.embedding.weight
    if (emb["source"] == "random") != (matrix is None):
        given = "no embedding matrix" if matrix is None else "an embedding matrix"
        raise ParamsError(f"{where}: model.embedding.source is {emb['source']!r} but {given} was given")
    if matrix is not None:
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != emb["dim"]:
            raise ParamsError(f"{where}: model.embedding.dim is {emb['dim']} but the "
                              f"{emb['source']!r} matrix has shape {matrix.shape}")
        if matrix.shape[0] != weight.shape[0]:
            raise DataError(f"{where}: the {emb['source']!r} embedding matrix has {matrix.shape[0]} "
                            f"rows but the vocabulary has {weight.shape[0]} entries (built from another vocab?)")
        if not np.isfinite(matrix).all():
            raise DataError(f"{where}: the {emb['source']!r} embedding matrix has non-finite values")
        with torch.no_grad():
            weight.copy_(torch.from_numpy(matrix.astype(np.float32, copy=False)))
            if model.embedding.padding_idx is not None:
                weight[model.embedding.padding_idx].zero_()
    weight.requires_grad_(not emb["freeze"])


def build_model(model_cfg: Mapping[str, Any], *, vocab_size: int, num_classes: int,
                embedding_matrix: np.ndarray | None = None, sparse: bool = False,
                where: str = "model") -> RNNClassifier:
    """Validate the preset, build the network, load the embedding matrix (when not random)."""
    validate_model_config(model_cfg, where=where)
    if vocab_size < 2 or num_classes < 2:
        raise DataError(f"{where}: need vocab_size >= 2 and num_classes >= 2, "
                        f"got {vocab_size} and {num_classes}")
    model = RNNClassifier(model_cfg, vocab_size=vocab_size, num_classes=num_classes, sparse=sparse)
    _load_embedding(model, model_cfg, embedding_matrix, where)
    return model


def count_trainable_parameters(model: nn.Module) -> int:
    """Parameters the optimizer updates (a frozen embedding does not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
