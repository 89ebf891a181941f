"""A GRU written from its gate equations, for the gru_scratch study (hand-written vs nn.GRU).

Same parameters, names and layout as `nn.GRU` (weight_ih_l{k}[_reverse] is [3H, in] with the
r, z, n gates in that order, plus b_ih and b_hh), so a state_dict moves between the two and
the numbers can be compared exactly:

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h         (computed as n + z * (h - n), like nn.GRU)

Not needlessly slow: the input projection has no recurrence, so it is one matmul over all
steps; the recurrence is a small autograd Function whose backward pass is the hand-derived
gradient of the equations above (one Python loop each way, a handful of fused ops per step,
and the W_hh gradient as one matmul over all steps), instead of an autograd graph of ~10
nodes per step. Not TorchScript (deprecated in torch 2.13): it ran these loops 0-5% faster,
within noise, and its rewrites (addmm -> mm + add) change the last bits between its first
calls and later ones, which would break bit-identical resume. Not torch.compile: it unrolls
the loop and would recompile for every batch length.

Variable lengths give the packed-sequence result without masking: the forward direction runs
over the padded batch (a step only depends on earlier ones) and its final state is read at
each row's last token; the reverse direction reads each row reversed within its own length.
Outputs beyond a row's length are zeros, like pad_packed_sequence.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from textclf.models.pooling import length_mask, reverse_index, reverse_within_length


class _Recurrence(torch.autograd.Function):
    """h_t for t = 0..T-1 from the precomputed input gates gx [T, B, 3H] (time-major), h_0 = 0."""

    @staticmethod
    def forward(gx: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, ...]:
        steps, batch, gates = gx.shape
        hidden = gates // 3
        out = gx.new_empty(steps, batch, hidden)
        rz = gx.new_empty(steps, batch, 2 * hidden)  # saved for backward
        n = gx.new_empty(steps, batch, hidden)
        gh_n = gx.new_empty(steps, batch, hidden)
        w_t = w_hh.t()
        h = gx.new_zeros(batch, hidden)
        for t in range(steps):
            gh = torch.addmm(b_hh, h, w_t)
            torch.sigmoid(gx[t, :, : 2 * hidden] + gh[:, : 2 * hidden], out=rz[t])
            gh_n[t] = gh[:, 2 * hidden :]
            torch.tanh(torch.addcmul(gx[t, :, 2 * hidden :], rz[t, :, :hidden], gh_n[t]), out=n[t])
            h = torch.addcmul(n[t], rz[t, :, hidden:], h - n[t], out=out[t])
        return out, rz, n, gh_n

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        _, w_hh, _ = inputs
        out, rz, n, gh_n = output
        ctx.save_for_backward(w_hh, out, rz, n, gh_n)
        ctx.mark_non_differentiable(rz, n, gh_n)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor, *_: Any) -> tuple[torch.Tensor, ...]:
        w_hh, out, rz, n, gh_n = ctx.saved_tensors
        steps, batch, hidden = out.shape
        d_gx = out.new_empty(steps, batch, 3 * hidden)
        d_gh = out.new_empty(steps, batch, 3 * hidden)
        d_next = out.new_zeros(batch, hidden)  # dL/dh_t through h_{t+1}
        zero = out.new_zeros(batch, hidden)
        for t in reversed(range(steps)):
            dh = grad_out[t] + d_next
            h_prev = out[t - 1] if t > 0 else zero
            r, z = rz[t, :, :hidden], rz[t, :, hidden:]
            # h' = n + z (h - n):  dn = dh (1 - z),  dz = dh (h - n),  dh_prev (direct) = dh z
            d_a_n = dh * (1 - z) * (1 - n[t] * n[t])  # through tanh
            d_rz = d_gx[t, :, : 2 * hidden]
            torch.mul(d_a_n * gh_n[t], r * (1 - r), out=d_rz[:, :hidden])  # through sigmoid
            torch.mul(dh * (h_prev - n[t]), z * (1 - z), out=d_rz[:, hidden:])
            d_gx[t, :, 2 * hidden :] = d_a_n
            d_gh[t, :, : 2 * hidden] = d_rz
            torch.mul(d_a_n, r, out=d_gh[t, :, 2 * hidden :])
            d_next = torch.addmm(dh * z, d_gh[t], w_hh)
        h_prev_all = torch.cat([zero.unsqueeze(0), out[:-1]]).reshape(-1, hidden)
        d_w_hh = d_gh.reshape(-1, 3 * hidden).t() @ h_prev_all
        return d_gx, d_w_hh, d_gh.sum(dim=(0, 1))


def _run_direction(
    inputs: torch.Tensor, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """One layer, one direction over every step of [B, T, in] → outputs [B, T, H]."""
    w_ih, w_hh, b_ih, b_hh = params
    # The input projection has no recurrence: one matmul for all steps instead of T small ones.
    gates_x = F.linear(inputs.transpose(0, 1), w_ih, b_ih).contiguous()
    out, *_ = _Recurrence.apply(gates_x, w_hh, b_hh)
    return out.transpose(0, 1)


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
        """x [B, T, in]; lengths [B] (1..T) or None (every step valid).

        Returns output [B, T, D*H] (zeros beyond each length) and h_n [L*D, B, H].
        """
        batch, total, _ = x.shape
        lengths = (torch.full((batch,), total, device=x.device) if lengths is None
                   else lengths.to(x.device).clamp(1, total))
        index = reverse_index(lengths, total) if self.bidirectional else None
        rows = torch.arange(batch, device=x.device)
        finals: list[torch.Tensor] = []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
            outputs = []
            for direction, sfx in enumerate(self._suffixes):
                seq = layer_input if direction == 0 else reverse_within_length(layer_input, index)
                out = _run_direction(seq, self._layer_params(layer, sfx))
                finals.append(out[rows, lengths - 1])
                outputs.append(out if direction == 0 else reverse_within_length(out, index))
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        mask = length_mask(lengths, total).unsqueeze(-1).to(layer_input.dtype)
        return layer_input * mask, torch.stack(finals)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}")
