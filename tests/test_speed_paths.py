"""The fast CPU paths compute what the packed reference computes: padded bidirectional layers
(reverse within length), the scratch GRU's hand-written backward, packed-layout dropout.
Random ragged batches, tiny sizes: the file runs in seconds."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclf.models import CELLS, ScratchGRU, build_model
from textclf.models.gru_scratch import _Recurrence
from textclf.models.padded_rnn import run_padded
from textclf.models.pooling import reverse_index, reverse_within_length
from textclf.settings import model_config

VOCAB, CLASSES, DIM, HIDDEN = 40, 3, 6, 5
TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TOL = 1e-5


def ragged(seed: int, batch: int = 7, total: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Random right-padded ids and lengths 1..total (the longest row always full)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, total + 1, (batch,), generator=gen)
    lengths[int(torch.randint(batch, (1,), generator=gen))] = total
    ids = torch.randint(1, VOCAB, (batch, total), generator=gen)
    ids[torch.arange(total).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return ids, lengths


def packed_reference(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h_n


def model(cell: str, pooling: str, layers: int, bidirectional: bool, dropout: float = 0.0):
    cfg = {"type": "rnn", "cell": cell, "layers": layers, "bidirectional": bidirectional, "hidden": HIDDEN,
           "dropout": dropout, "pooling": pooling, "head": "mlp", "head_dropout": 0.0,
           "embedding": {"source": "random", "dim": DIM, "freeze": False, "padding_idx": True}}
    torch.manual_seed(0)
    return build_model(model_config(cfg, "test model"), vocab_size=VOCAB, num_classes=CLASSES)


def test_reverse_index_reverses_each_row_within_its_length_and_is_an_involution():
    lengths = torch.tensor([3, 1, 4])
    index = reverse_index(lengths, 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    x = torch.randn(3, 4, 2)
    assert torch.equal(reverse_within_length(reverse_within_length(x, index), index), x)


@pytest.mark.parametrize(("cell", "layers"), list(itertools.product(TORCH_CELLS, [1, 2, 3])))
def test_run_padded_outputs_and_final_states_equal_packed(cell, layers):
    torch.manual_seed(layers)
    rnn = TORCH_CELLS[cell](DIM, HIDDEN, num_layers=layers, bidirectional=True, batch_first=True)
    for seed in range(3):
        _, lengths = ragged(seed)
        x = torch.randn(len(lengths), int(lengths.max()), DIM)
        ref_out, ref_h = packed_reference(rnn, x, lengths)
        out, h_n = run_padded(rnn, x, lengths, cell_state=True)
        assert torch.allclose(out, ref_out, atol=TOL)  # padding positions are zeros in both
        for got, want in zip(h_n if cell == "lstm" else [h_n], ref_h if cell == "lstm" else [ref_h], strict=True):
            assert torch.allclose(got, want, atol=TOL)


@pytest.mark.parametrize("cell", list(TORCH_CELLS))
def test_run_padded_gradients_equal_packed(cell):
    torch.manual_seed(1)
    rnn = TORCH_CELLS[cell](DIM, HIDDEN, num_layers=2, bidirectional=True, batch_first=True)
    _, lengths = ragged(3)
    x = torch.randn(len(lengths), int(lengths.max()), DIM, requires_grad=True)
    weight = torch.randn(len(lengths), int(lengths.max()), 2 * HIDDEN)

    def grads(run) -> list[torch.Tensor]:
        out, h_n = run()
        h = h_n[0] if isinstance(h_n, tuple) else h_n
        loss = (out * weight).sum() + h.pow(2).sum()
        return torch.autograd.grad(loss, [x, *rnn.parameters()])

    for got, want in zip(grads(lambda: run_padded(rnn, x, lengths)),
                         grads(lambda: packed_reference(rnn, x, lengths)), strict=True):
        assert torch.allclose(got, want, atol=TOL)


def test_inter_layer_dropout_uses_the_packed_modules_masks():
    rnn = nn.LSTM(DIM, HIDDEN, num_layers=3, bidirectional=True, batch_first=True, dropout=0.5).train()
    _, lengths = ragged(4)
    x = torch.randn(len(lengths), int(lengths.max()), DIM)
    torch.manual_seed(7)
    ref_out, _ = packed_reference(rnn, x, lengths)
    ref_next = torch.rand(3)
    torch.manual_seed(7)
    out, _ = run_padded(rnn, x, lengths)
    assert torch.allclose(out, ref_out, atol=TOL)
    assert torch.equal(torch.rand(3), ref_next)  # same random numbers consumed


@pytest.mark.parametrize(("cell", "pooling", "layers"),
                         list(itertools.product(CELLS, ["last", "last_output", "max", "mean", "attention"], [1, 2])))
def test_classifier_fast_path_equals_packed_for_every_cell_and_pooling(cell, pooling, layers):
    fast = model(cell, pooling, layers, bidirectional=True).eval()
    if cell == "gru_scratch":  # the reference is nn.GRU, packed, with the same weights
        reference = model("gru", pooling, layers, bidirectional=True).eval()
        reference.load_state_dict(fast.state_dict())
    else:
        reference = model(cell, pooling, layers, bidirectional=True).eval()
    reference.pack_bidirectional = True
    with torch.no_grad():
        for seed in range(3):
            ids, lengths = ragged(seed)
            assert torch.allclose(fast(ids, lengths), reference(ids, lengths), atol=TOL)


def test_padded_last_stays_unpacked_for_bidirectional_cells():
    net = model("lstm", "padded_last", 2, bidirectional=True).eval()
    ids, lengths = ragged(0)
    with torch.no_grad():
        out, _ = net.encoder(net.embedding(ids))
        assert torch.allclose(net.features(ids, lengths), out[:, -1])


def _train(net: nn.Module, steps: int = 6) -> torch.Tensor:
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    net.train()
    torch.manual_seed(11)
    for step in range(steps):
        ids, lengths = ragged(100 + step)
        labels = ids[:, 0] % CLASSES
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(ids, lengths), labels).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        return net(*ragged(999))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tiny_training_run_same_result_packed_and_padded(cell):
    # two layers with dropout: the masks must match too, not only the arithmetic
    padded = model(cell, "max", 2, bidirectional=True, dropout=0.3)
    packed = model(cell, "max", 2, bidirectional=True, dropout=0.3)
    packed.pack_bidirectional = True
    got, want = _train(padded), _train(packed)
    assert torch.allclose(got, want, atol=1e-4)
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_scratch_recurrence_backward_is_the_gradient_of_its_forward():
    torch.manual_seed(0)
    gx = torch.randn(5, 3, 12, dtype=torch.double, requires_grad=True)
    w_hh = torch.randn(12, 4, dtype=torch.double, requires_grad=True)
    b_hh = torch.randn(12, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: _Recurrence.apply(*a)[0], (gx, w_hh, b_hh))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_scratch_gru_gradients_equal_nn_gru_packed(bidirectional):
    torch.manual_seed(0)
    reference = nn.GRU(DIM, HIDDEN, num_layers=2, bidirectional=bidirectional, batch_first=True)
    scratch = ScratchGRU(DIM, HIDDEN, num_layers=2, bidirectional=bidirectional)
    scratch.load_state_dict(reference.state_dict())
    _, lengths = ragged(2)
    x = torch.randn(len(lengths), int(lengths.max()), DIM)

    def grads(run, module) -> list[torch.Tensor]:
        out, h_n = run()
        return torch.autograd.grad(out.pow(2).sum() + h_n.sum(), list(module.parameters()))

    for got, want in zip(grads(lambda: scratch(x, lengths), scratch),
                         grads(lambda: packed_reference(reference, x, lengths), reference), strict=True):
        assert torch.allclose(got, want, atol=TOL)


@pytest.mark.parametrize("cell", list(TORCH_CELLS))
def test_a_batch_without_padding_takes_one_module_call_and_still_equals_packed(cell, monkeypatch):
    import textclf.models.padded_rnn as classifier

    torch.manual_seed(2)
    rnn = TORCH_CELLS[cell](DIM, HIDDEN, num_layers=2, bidirectional=True, batch_first=True).eval()
    x, lengths = torch.randn(4, 6, DIM), torch.full((4,), 6)
    monkeypatch.setattr(classifier, "_run", None)  # the per-layer path would fail
    out, h_n = run_padded(rnn, x, lengths)
    ref_out, ref_h = packed_reference(rnn, x, lengths)
    assert torch.allclose(out, ref_out, atol=TOL)
    for got, want in zip(h_n if cell == "lstm" else [h_n], ref_h if cell == "lstm" else [ref_h], strict=True):
        assert torch.allclose(got, want, atol=TOL)
