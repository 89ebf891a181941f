"""Sequence summaries: turn per-step RNN outputs [B, T, F] into one vector [B, F]; and the
index helpers every path over right-padded batches shares (masks, reversal within length).

Every summary looks at valid positions only (t < length), so a batch's padding never changes
a sequence's logits. The exceptions are reference flaws reproduced on purpose and live in the
classifier (they need an unpacked run): `padded_last`, and `pool_padding: true`, which hands
these layers an all-true mask. `last_output` (the output at each row's last valid step, for
both directions) is read in the classifier too.
"""

from __future__ import annotations

import torch
from torch import nn

POOLINGS = ("last", "last_output", "max", "mean", "attention", "padded_last")


def length_mask(lengths: torch.Tensor, total_length: int) -> torch.Tensor:
    """Bool [B, T]: True at valid positions (t < length) of right-padded sequences."""
    steps = torch.arange(total_length, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def reverse_index(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """int64 [B, T]: position t of row b reads position length_b-1-t (t < length_b), else t.

    Applying it twice is the identity, so the same index reverses and restores."""
    steps = torch.arange(total, device=lengths.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


def reverse_within_length(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [B, T, F] with each row's first length_b steps reversed (padding stays in place)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def last_hidden(h_n: torch.Tensor | tuple[torch.Tensor, ...], num_directions: int) -> torch.Tensor:
    """Top layer's final state(s) [B, D*H] from h_n [L*D, B, H] (LSTM: the (h, c) tuple).

    From packed sequences h_n is the state at each sequence's true last token (forward) and
    after reading back to position 0 (backward), concatenated in the same order as the outputs.
    """
    if isinstance(h_n, tuple):
        h_n = h_n[0]
    return torch.cat(list(h_n[-num_directions:]), dim=-1)


class MaskedMax(nn.Module):
    """Max over valid steps; padded steps are -inf so they never win."""

    def forward(self, outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


class MaskedMean(nn.Module):
    """Mean over valid steps; padded steps neither add to the sum nor to the count."""

    def forward(self, outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(outputs.dtype)
        count = weights.sum(dim=1).clamp(min=1.0)
        return (outputs * weights).sum(dim=1) / count


class AttentionPool(nn.Module):
    """Additive attention: score_t = v . tanh(W h_t + b), softmax over valid steps only."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(features, features)
        self.score = nn.Linear(features, 1, bias=False)

    def forward(self, outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(outputs))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights.unsqueeze(1).to(outputs.dtype), outputs).squeeze(1)


def build_pooling(name: str, features: int) -> nn.Module | None:
    """The pooling layer for `name`, or None for summaries read at one position (last,
    last_output, padded_last)."""
    if name == "max":
        return MaskedMax()
    if name == "mean":
        return MaskedMean()
    if name == "attention":
        return AttentionPool(features)
    return None
