"""Bidirectional nn.RNN / nn.LSTM / nn.GRU on right-padded batches, without PackedSequence.

A forward-direction layer's output at t depends on tokens 0..t only, so on a right-padded
batch every valid position already equals the packed result. The backward direction reads
each row reversed *within its own length* (reverse, run, reverse back): the padding then sits
after the end of every reversed row, where it cannot reach a valid position. Both runs are
plain dense kernels (oneDNN for LSTM on CPU), whose backward pass is several times faster on
CPU than the packed one (which re-zeroes and re-slices the batch at every step).

The weights stay in the caller's nn.RNNBase module (same parameters, same state_dict keys
`weight_ih_l{k}[_reverse]`, ...): each layer and direction is run through the same ATen op
that nn.LSTM itself calls (`torch.lstm` etc.), one layer and one direction at a time, so a
bidirectional stack feeds layer k+1 both directions of layer k. Inter-layer dropout draws its
mask in the packed layout and scatters it to the padded one, so training consumes the same
random numbers, and gets the same masks, as the packed module. A batch without padding is
one call of the module itself.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from textclf.models.pooling import length_mask, reverse_index, reverse_within_length

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
