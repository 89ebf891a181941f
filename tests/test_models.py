"""Unit tests for textclf.models: shapes, masking, packed `last`, the scratch GRU, embeddings,
plan-time checks of model values and parameter counts. Tiny sizes so the file runs in seconds
on a CPU."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers import fixture_params, with_studies
from textclf.config import ParamsError, validate_params
from textclf.errors import DataError
from textclf.models import (
    CELLS,
    POOLINGS,
    ScratchGRU,
    build_model,
    count_trainable_parameters,
)
from textclf.settings import RNNConfig, model_config
from textclf.studies import resolve_variants

VOCAB, CLASSES, DIM, HIDDEN = 20, 3, 5, 4


def cfg_dict(**overrides) -> dict:
    """A complete rnn preset (as after study overrides); `embedding` overrides merge."""
    base = {"type": "rnn", "cell": "lstm", "layers": 1, "bidirectional": False, "hidden": HIDDEN,
            "dropout": 0.0, "pooling": "last", "head": "linear", "head_dropout": 0.0,
            "embedding": {"source": "random", "dim": DIM, "freeze": False, "padding_idx": True}}
    base["embedding"].update(overrides.pop("embedding", {}))
    base.update(overrides)
    return base


def cfg(**overrides) -> RNNConfig:
    """The typed config build_model takes (textclf.settings.RNNConfig), from cfg_dict."""
    return model_config(cfg_dict(**overrides), "test model")


def batch(lengths=(7, 3, 1, 5), total=7, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (pad 0, real tokens 1..VOCAB-1) and their lengths."""
    gen = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    ids = torch.randint(1, VOCAB, (len(lengths), total), generator=gen)
    ids[torch.arange(total).unsqueeze(0) >= lengths_t.unsqueeze(1)] = 0
    return ids, lengths_t


def make(**overrides):
    torch.manual_seed(0)
    return build_model(cfg(**overrides), vocab_size=VOCAB, num_classes=CLASSES).eval()


@pytest.mark.parametrize(("cell", "pooling", "bidirectional"),
                         list(itertools.product(CELLS, POOLINGS, [False, True])))
def test_shapes_every_combination(cell, pooling, bidirectional):
    model = make(cell=cell, pooling=pooling, bidirectional=bidirectional, layers=2,
                 head="mlp" if pooling == "mean" else "linear")
    ids, lengths = batch()
    assert model.features(ids, lengths).shape == (4, HIDDEN * (2 if bidirectional else 1))
    logits = model(ids, lengths)
    assert logits.shape == (4, CLASSES)
    assert torch.isfinite(logits).all()
    logits.sum().backward()  # gradients flow through every path


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_never_changes_logits_except_padded_last(cell, pooling):
    model = make(cell=cell, pooling=pooling, bidirectional=True, embedding={"padding_idx": False})
    ids, lengths = batch()
    noisy = ids.clone()
    pads = ids == 0
    noisy[pads] = torch.randint(1, VOCAB, (int(pads.sum()),), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        same = torch.allclose(model(ids, lengths), model(noisy, lengths), atol=1e-6)
    assert same == (pooling != "padded_last")


def test_lengths_are_clamped_and_may_live_on_the_ids_device():
    model = make(pooling="mean")
    ids, lengths = batch()
    with torch.no_grad():
        ref = model(ids, lengths)
        too_long = lengths.clone()
        too_long[0] = 99
        assert torch.allclose(model(ids, too_long), ref)
        zero = lengths.clone()
        zero[2] = 0
        assert torch.allclose(model(ids, zero), ref)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "gru_scratch"])
def test_last_is_the_output_at_the_true_last_token(cell):
    model = make(cell=cell, layers=2)
    ids, lengths = batch()
    with torch.no_grad():
        feats = model.features(ids, lengths)
        for i, n in enumerate(lengths.tolist()):
            out, _ = model.encoder(model.embedding(ids[i : i + 1, :n]))
            assert torch.allclose(feats[i], out[0, n - 1], atol=1e-6)


def test_bidirectional_last_is_forward_end_and_backward_start():
    model = make(cell="gru", bidirectional=True)
    ids, lengths = batch()
    with torch.no_grad():
        feats = model.features(ids, lengths)
        for i, n in enumerate(lengths.tolist()):
            out, _ = model.encoder(model.embedding(ids[i : i + 1, :n]))
            expected = torch.cat([out[0, n - 1, :HIDDEN], out[0, 0, HIDDEN:]])
            assert torch.allclose(feats[i], expected, atol=1e-6)


def test_padded_last_reads_position_t_minus_1_without_packing():
    model = make(cell="rnn", pooling="padded_last")
    ids, lengths = batch()
    with torch.no_grad():
        out, _ = model.encoder(model.embedding(ids))
        assert torch.allclose(model.features(ids, lengths), out[:, -1])


def test_masked_max_and_mean_ignore_padding():
    model = make(cell="gru", pooling="max")
    ids, lengths = batch()
    with torch.no_grad():
        packed = pack_padded_sequence(model.embedding(ids), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, _ = pad_packed_sequence(model.encoder(packed)[0], batch_first=True)
        expected_max = torch.stack([out[i, :n].max(0).values for i, n in enumerate(lengths.tolist())])
        expected_mean = torch.stack([out[i, :n].mean(0) for i, n in enumerate(lengths.tolist())])
        assert torch.allclose(model.features(ids, lengths), expected_max, atol=1e-6)
        model.pooling, model.pool = "mean", make(pooling="mean").pool
        assert torch.allclose(model.features(ids, lengths), expected_mean, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_scratch_gru_matches_nn_gru(bidirectional):
    torch.manual_seed(0)
    reference = nn.GRU(DIM, HIDDEN, num_layers=2, bidirectional=bidirectional, batch_first=True)
    scratch = ScratchGRU(DIM, HIDDEN, num_layers=2, bidirectional=bidirectional)
    scratch.load_state_dict(reference.state_dict())  # same names and layout
    assert count_trainable_parameters(scratch) == count_trainable_parameters(reference)
    x = torch.randn(4, 7, DIM)
    lengths = torch.tensor([7, 3, 1, 5])
    with torch.no_grad():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        ref_packed, ref_h = reference(packed)
        ref_out, _ = pad_packed_sequence(ref_packed, batch_first=True, total_length=7)
        out, h = scratch(x, lengths)
        assert torch.allclose(out, ref_out, atol=1e-5)  # valid positions equal, padding zeros
        assert torch.allclose(h, ref_h, atol=1e-5)
        full_ref, full_ref_h = reference(x)
        full, full_h = scratch(x)
        assert torch.allclose(full, full_ref, atol=1e-5)
        assert torch.allclose(full_h, full_ref_h, atol=1e-5)


def _one_step(model, ids, lengths):
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model.train()
    nn.functional.cross_entropy(model(ids, lengths), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()


def test_pretrained_matrix_is_copied_and_freeze_keeps_it():
    matrix = np.random.default_rng(0).normal(size=(VOCAB, DIM)).astype(np.float32)
    matrix[0] = 0
    model = build_model(cfg(embedding={"source": "glove5", "freeze": True}), vocab_size=VOCAB,
                        num_classes=CLASSES, embedding_matrix=matrix)
    assert np.array_equal(model.embedding.weight.detach().numpy(), matrix)
    assert not model.embedding.weight.requires_grad
    _one_step(model, *batch())
    assert np.array_equal(model.embedding.weight.detach().numpy(), matrix)


@pytest.mark.parametrize("padding_idx", [True, False])
def test_padding_idx_keeps_row_zero_gradient_zero(padding_idx):
    # padded_last feeds pad tokens to the RNN, so row 0 would get a gradient without padding_idx.
    model = make(pooling="padded_last", embedding={"padding_idx": padding_idx})
    ids, lengths = batch()
    model(ids, lengths).sum().backward()
    row0 = model.embedding.weight.grad[0]
    assert bool((row0 == 0).all()) == padding_idx


def test_sparse_embedding_gradients():
    torch.manual_seed(0)
    model = build_model(cfg(), vocab_size=VOCAB, num_classes=CLASSES, sparse=True)
    model(*batch()).sum().backward()
    assert model.embedding.weight.grad.is_sparse


def test_dropout_between_layers_only_when_stacked():
    assert make(layers=1, dropout=0.5).encoder.dropout == 0.0
    assert make(layers=2, dropout=0.5).encoder.dropout == 0.5
    assert make(layers=2, dropout=0.5, cell="gru_scratch").encoder.dropout == 0.5


def test_parameter_count_matches_hand_count_for_small_lstm():
    model = make()
    embedding = VOCAB * DIM
    lstm = 4 * HIDDEN * DIM + 4 * HIDDEN * HIDDEN + 2 * 4 * HIDDEN
    head = HIDDEN * CLASSES + CLASSES
    assert count_trainable_parameters(model) == embedding + lstm + head
    frozen = make(embedding={"freeze": True})
    assert count_trainable_parameters(frozen) == lstm + head
    mlp = make(head="mlp", bidirectional=True)
    bi_lstm = 2 * (4 * HIDDEN * DIM + 4 * HIDDEN * HIDDEN + 2 * 4 * HIDDEN)
    mlp_head = (2 * HIDDEN * HIDDEN + HIDDEN) + (HIDDEN * CLASSES + CLASSES)
    assert count_trainable_parameters(mlp) == embedding + bi_lstm + mlp_head


def _plan(**model_overrides) -> None:
    """Validate and resolve a one-variant study whose model preset takes the overrides."""
    emb = model_overrides.pop("embedding", {})
    params = with_studies(fixture_params(), {"s": {
        "datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base",
        "variants": {"v": {"model": {**model_overrides, **({"embedding": emb} if emb else {})}}}}})
    validate_params(params)
    resolve_variants(params)


@pytest.mark.parametrize(("overrides", "key"), [
    ({"hidden": 0}, "hidden"),
    ({"layers": 0}, "layers"),
    ({"cell": "transformer"}, "cell"),
    ({"pooling": "first"}, "pooling"),
    ({"head": "deep"}, "head"),
    ({"dropout": 1.0}, "dropout"),
    ({"head_dropout": -0.1}, "head_dropout"),
    ({"embedding_dropout": 1.5}, "embedding_dropout"),
    ({"bidirectional": "yes"}, "bidirectional"),
    ({"init": "xavier"}, "init"),
    ({"output": "probs"}, "output"),
    ({"pool_padding": "yes"}, "pool_padding"),
    ({"embedding": {"dim": 0}}, "embedding.dim"),
    ({"embedding": {"freeze": 1}}, "embedding.freeze"),
])
def test_bad_model_values_are_refused_at_plan_time_naming_the_key(overrides, key):
    # validate_model_config is gone: the schema and studies.check_variant check values once.
    with pytest.raises(ParamsError) as info:
        _plan(**overrides)
    assert key in str(info.value)


def test_pool_padding_needs_a_pooling_layer():
    _plan(pooling="mean", pool_padding=True)
    with pytest.raises(ParamsError, match="pool_padding .* needs pooling max, mean or attention"):
        _plan(pooling="last", pool_padding=True)


def test_typed_config_refuses_missing_and_unknown_keys():
    broken = cfg_dict()
    del broken["pooling"]
    with pytest.raises(ParamsError, match=r"v: missing key 'pooling'"):
        model_config(broken, "v")
    with pytest.raises(ParamsError, match=r"\['ngram_max'\] do not apply to model type 'rnn'"):
        model_config({**cfg_dict(), "ngram_max": 2}, "v")
    with pytest.raises(TypeError, match="build_model takes an RNNConfig"):
        build_model(cfg_dict(), vocab_size=VOCAB, num_classes=CLASSES)  # type: ignore[arg-type]


def test_build_model_checks_the_embedding_matrix():
    glove = cfg(embedding={"source": "glove5"})
    with pytest.raises(ParamsError, match=r"ag/s/n: model.embedding.dim is 5 .* shape \(20, 3\)"):
        build_model(glove, vocab_size=VOCAB, num_classes=CLASSES,
                    embedding_matrix=np.zeros((VOCAB, 3), np.float32), where="ag/s/n")
    with pytest.raises(ParamsError, match="model.embedding.source is 'glove5' but no embedding matrix"):
        build_model(glove, vocab_size=VOCAB, num_classes=CLASSES, where="ag/s/n")
    with pytest.raises(ParamsError, match="source is 'random' but an embedding matrix"):
        build_model(cfg(), vocab_size=VOCAB, num_classes=CLASSES,
                    embedding_matrix=np.zeros((VOCAB, DIM), np.float32))
    with pytest.raises(DataError, match="has 19 rows but the vocabulary has 20"):
        build_model(glove, vocab_size=VOCAB, num_classes=CLASSES,
                    embedding_matrix=np.zeros((VOCAB - 1, DIM), np.float32))
