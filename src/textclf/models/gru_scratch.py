"""A GRU written from its gate equations, for the gru_scratch study (hand-written vs nn.GRU).

Same parameters, names and layout as `nn.GRU` (weight_ih_l{k}[_reverse] is [3H, in] with the
r, z, n gates in that order, plus b_ih and b_hh), so a state_dict moves between the two and
the numbers can be compared exactly:

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Variable lengths give the packed-sequence result: a step beyond a sequence's length leaves its
state unchanged (and outputs zeros, like pad_packed_sequence), so the reverse direction starts
at each sequence's own last valid token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from textclf.models.pooling import length_mask


def _run_direction(
    inputs: torch.Tensor,
    mask: torch.Tensor | None,
    params: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    reverse: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer, one direction over [B, T, in] → (outputs [B, T, H], final state [B, H])."""
    w_ih, w_hh, b_ih, b_hh = params
    batch, steps, _ = inputs.shape
    # The input projection has no recurrence: one matmul for all steps instead of T small ones.
    gates_x = F.linear(inputs, w_ih, b_ih)
    h = inputs.new_zeros(batch, w_hh.shape[1])
    outputs: list[torch.Tensor] = [h] * steps
    for t in reversed(range(steps)) if reverse else range(steps):
        x_r, x_z, x_n = gates_x[:, t].chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h_new = (1 - z) * n + z * h
        if mask is None:
            h = outputs[t] = h_new
        else:
            valid = mask[:, t].unsqueeze(-1)
            h = torch.where(valid, h_new, h)
            outputs[t] = h_new * valid.to(h_new.dtype)
    return torch.stack(outputs, dim=1), h


class ScratchGRU(nn.Module):
    """Drop-in for nn.GRU(batch_first=True): forward(x, lengths=None) -> (output, h_n)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self._suffixes = ("", "_reverse") if bidirectional else ("",)
        gates = 3 * hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * len(self._suffixes)
            for sfx in self._suffixes:
                for name, shape in (("weight_ih", (gates, in_size)), ("weight_hh", (gates, hidden_size)),
                                    ("bias_ih", (gates,)), ("bias_hh", (gates,))):
                    self.register_parameter(f"{name}_l{layer}{sfx}", nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.GRU's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def _layer_params(self, layer: int, sfx: str) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"{name}_l{layer}{sfx}")
                     for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, in]; lengths [B] or None (every step valid).

        Returns output [B, T, D*H] (zeros beyond each length) and h_n [L*D, B, H].
        """
        mask = None if lengths is None else length_mask(lengths.to(x.device), x.shape[1])
        finals: list[torch.Tensor] = []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
            outputs = []
            for direction, sfx in enumerate(self._suffixes):
                out, h = _run_direction(layer_input, mask, self._layer_params(layer, sfx),
                                        reverse=direction == 1)
                outputs.append(out)
                finals.append(h)
            layer_input = torch.cat(outputs, dim=-1)
        return layer_input, torch.stack(finals)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}")
