"""Faithful-reproduction switches (docs/FIDELITY.md): each computes what the source report's
code computed. One test (or a few) per switch, tiny sizes, CPU, seconds."""

from __future__ import annotations

import math
import string

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from test_training import (
    _rows,
    make_variant,
    run,
    typed,
    write_encoded,
    write_stats,
    write_vocab,
)
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclf.errors import DataError
from textclf.models import build_model, reference_init
from textclf.settings import model_config
from textclf.text.tokenize import make_tokenizer, stop_words
from textclf.training.device import make_precision
from textclf.training.loop import predict_proba, train_epoch
from textclf.training.optim import build_optimization
from textclf.training.trainer import Progress, concat_splits, load_run_data, selected_epoch

VOCAB, CLASSES, DIM, HIDDEN = 40, 4, 6, 5


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> tuple:
    """test_training's toy data: (prepared dir, encoded dir with 600 / 120 / 120 rows)."""
    root = tmp_path_factory.mktemp("data")
    rng, start = np.random.default_rng(0), 0
    for split, n in (("train", 600), ("val", 120), ("test", 120)):
        rows, labels = _rows(n, rng)
        write_encoded(root / "encoded" / f"{split}.parquet", rows, labels, start)
        start += n
    write_stats(root / "prepared")
    write_vocab(root / "encoded" / "vocab.json", 30)  # test_training's toy vocabulary
    return root / "prepared", root / "encoded"


def cfg(**overrides):
    base = {"type": "rnn", "cell": "lstm", "layers": 1, "bidirectional": False, "hidden": HIDDEN,
            "dropout": 0.0, "pooling": "last", "head": "linear", "head_dropout": 0.0,
            "embedding": {"source": "random", "dim": DIM, "freeze": False, "padding_idx": True}}
    base["embedding"].update(overrides.pop("embedding", {}))
    base.update(overrides)
    return model_config(base, "test model")


def make(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(cfg(**overrides), vocab_size=VOCAB, num_classes=CLASSES).eval()


def ragged(seed: int = 0, batch: int = 6, total: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, total + 1, (batch,), generator=gen)
    lengths[0] = total
    ids = torch.randint(1, VOCAB, (batch, total), generator=gen)
    ids[torch.arange(total).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return ids, lengths


# ------------------------------------------------------------- output: softmax (seed 000)


def test_double_softmax_loss_is_cross_entropy_over_softmax_outputs():
    probs_model = make(output="softmax", cell="rnn")
    logits_model = make(output="logits", cell="rnn")  # same seed: same weights
    ids, lengths = ragged()
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    logits = logits_model(ids, lengths)
    out = probs_model(ids, lengths)
    # 000:348 `return F.softmax(out, dim=1)`, 000:417 nn.CrossEntropyLoss() on that output
    assert torch.allclose(out, torch.softmax(logits, dim=1), atol=1e-6)
    seed_loss = nn.CrossEntropyLoss()(F.softmax(logits, dim=1), labels)
    assert torch.allclose(F.cross_entropy(out, labels), seed_loss, atol=1e-6)
    # its floor: a confident model still pays -log(e / (e + K - 1)) per row
    floor = -math.log(math.e / (math.e + CLASSES - 1))
    assert float(seed_loss.detach()) > floor


def test_binary_logit_is_one_logit_under_bce_with_logits():
    """Seed 004 (004:11): `nn.Linear(H, 1)` and `BCEWithLogitsLoss`; the pipeline's cross-entropy
    over the returned [0, z] is the same loss, and softmax gives sigmoid(z)."""
    torch.manual_seed(0)
    model = build_model(cfg(cell="lstm", output="binary_logit"), vocab_size=VOCAB, num_classes=2).eval()
    assert model.head[-1].out_features == 1
    ids, lengths = ragged(5)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    with torch.no_grad():
        z = model.head(model.features(ids, lengths)).squeeze(1)
        out = model(ids, lengths)
    assert torch.allclose(F.cross_entropy(out, labels), F.binary_cross_entropy_with_logits(z, labels.float()), atol=1e-6)
    assert torch.allclose(torch.softmax(out, dim=1)[:, 1], torch.sigmoid(z), atol=1e-6)
    with pytest.raises(DataError, match="'binary_logit' is for two classes"):
        build_model(cfg(output="binary_logit"), vocab_size=VOCAB, num_classes=4)


def test_double_softmax_trains_on_that_loss_and_reports_the_model_probabilities(data_dirs):
    variant = make_variant()
    variant["model"].update(output="softmax", pooling="padded_last", dropout=0.0)
    variant["training"].update(padding="fixed")
    typed_variant = typed(variant)
    data = load_run_data(typed_variant, prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                         vocab_file=data_dirs[1] / "vocab.json")
    torch.manual_seed(0)
    model = build_model(typed_variant.model, vocab_size=data.vocab_size, num_classes=2)
    precision = make_precision(torch.device("cpu"), False)
    kw = {"max_len": 12, "padding": "fixed", "device": torch.device("cpu"), "precision": precision}
    probs = predict_proba(model, data.test, batch_size=32, **kw)
    model.eval()
    from textclf.training.batching import collate
    batch = collate(data.test, np.arange(len(data.test)), 12, True)
    with torch.no_grad():
        direct = model(batch.ids, batch.lengths).numpy()
    np.testing.assert_allclose(probs, direct, atol=1e-6)  # not softmax(softmax(...))
    batches = [np.arange(len(data.train))]
    with torch.no_grad():
        first = collate(data.train, batches[0], 12, True)
        expected = F.cross_entropy(model(first.ids, first.lengths), first.labels)
    stats = train_epoch(model, data.train, batches, build_optimization(model, typed_variant.training), **kw)
    assert stats.loss == pytest.approx(float(expected), abs=1e-5)


# ------------------------------------------------------------- pooling: last_output (001, 003)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "gru_scratch"])
@pytest.mark.parametrize("layers", [1, 2])
def test_last_output_is_out_at_length_minus_one_for_both_directions(cell, layers):
    model = make(cell=cell, pooling="last_output", bidirectional=True, layers=layers)
    ids, lengths = ragged(1)
    reference = model.encoder
    if cell == "gru_scratch":  # nn.GRU with the same weights stands in for the packed run
        reference = nn.GRU(DIM, HIDDEN, num_layers=layers, bidirectional=True, batch_first=True)
        reference.load_state_dict(model.encoder.state_dict())
    with torch.no_grad():
        # 001:1019-1039: pack -> rnn -> pad_packed -> out[range(B), length - 1]
        packed = pack_padded_sequence(model.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(reference(packed)[0], batch_first=True)
        expected = out[torch.arange(len(lengths)), lengths - 1]
        got = model.features(ids, lengths)
        assert torch.allclose(got, expected, atol=1e-5)
        # one layer: the backward half has read one token, it equals a run over that token alone
        for i, n in enumerate(lengths.tolist() if layers == 1 else []):
            alone, _ = reference(model.embedding(ids[i : i + 1, n - 1 : n]))
            assert torch.allclose(got[i, HIDDEN:], alone[0, 0, HIDDEN:], atol=1e-5)
        # ... which is not what `last` (h_n: backward over the whole sequence) reads
        last = make(cell=cell, pooling="last", bidirectional=True, layers=layers)
        assert not torch.allclose(last.features(ids, lengths)[:, HIDDEN:], got[:, HIDDEN:])


def test_last_output_equals_last_for_one_direction():
    a, b = make(cell="gru", pooling="last_output"), make(cell="gru", pooling="last")
    ids, lengths = ragged(2)
    with torch.no_grad():
        assert torch.equal(a(ids, lengths), b(ids, lengths))


# ------------------------------------------------------------- pool_padding (002)


@pytest.mark.parametrize("pooling", ["mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pool_padding_pools_every_position_of_an_unpacked_run(pooling, bidirectional):
    model = make(cell="gru", pooling=pooling, pool_padding=True, bidirectional=bidirectional,
                 embedding={"padding_idx": False})
    ids, lengths = ragged(3)
    with torch.no_grad():
        # 002:364-368: output, _ = self.rnn(embeddings); output.mean(dim=1) / output.max(dim=1)[0]
        output, _ = model.encoder(model.embedding(ids))
        expected = output.mean(dim=1) if pooling == "mean" else output.max(dim=1)[0]
        assert torch.allclose(model.features(ids, lengths), expected, atol=1e-6)
        masked = make(cell="gru", pooling=pooling, bidirectional=bidirectional, embedding={"padding_idx": False})
        if pooling == "mean" or bidirectional:  # diluted by padding / backward run starts in it
            assert not torch.allclose(masked.features(ids, lengths), expected)
        else:  # a max over more positions
            assert bool((expected >= masked.features(ids, lengths) - 1e-6).all())
        # more padding changes the summary (the reference's flaw), unlike the masked pooling
        padded = torch.cat([ids, torch.zeros(len(ids), 20, dtype=ids.dtype)], dim=1)
        if pooling == "mean":
            assert not torch.allclose(model.features(padded, lengths), expected)
        assert torch.allclose(masked.features(padded, lengths), masked.features(ids, lengths), atol=1e-6)


def test_batch_padding_trains_and_evaluates_like_a_dataloader_with_pad_sequence(data_dirs):
    """`padding: batch` (seeds 001, 002): shuffled training batches and test batches in dataset
    order, each padded to its own longest row; with pool_padding a row's output depends on its
    batch, so predictions equal the reference's DataLoader loop, not a length-sorted one."""
    from torch.nn.utils.rnn import pad_sequence

    from textclf.training.batching import epoch_batches, predict_batches

    test = load_run_data(typed(make_variant()), prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                         vocab_file=data_dirs[1] / "vocab.json").test
    batches = epoch_batches(test, 16, seed=3, epoch=1, padding="batch")
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(test)))  # every row once
    assert np.concatenate(batches).tolist() == np.random.default_rng([3, 1]).permutation(len(test)).tolist()
    in_order = predict_batches(test.lengths, "batch", 16, 20)
    assert [b.tolist() for b in in_order] == [list(range(i, min(i + 16, len(test)))) for i in range(0, len(test), 16)]

    model = make(cell="gru", pooling="mean", pool_padding=True, embedding={"padding_idx": False})
    kw = {"batch_size": 16, "max_len": 20, "device": torch.device("cpu"),
          "precision": make_precision(torch.device("cpu"), False)}
    probs = predict_proba(model, test, padding="batch", **kw)
    expected = []
    with torch.no_grad():  # for ids, labels in DataLoader(test, batch_size=16, collate_fn=pad_sequence)
        for start in range(0, len(test), 16):
            rows = [torch.from_numpy(test.values[test.offsets[i]:test.offsets[i + 1]].astype(np.int64))
                    for i in range(start, min(start + 16, len(test)))]
            ids = pad_sequence(rows, batch_first=True)
            expected.append(torch.softmax(model(ids, torch.tensor([len(r) for r in rows])), dim=1))
    np.testing.assert_allclose(probs, torch.cat(expected).numpy(), atol=1e-6)
    bucketed = predict_proba(model, test, padding="bucket", **kw)
    assert not np.allclose(probs, bucketed, atol=1e-4)  # one sorted batch, other padding, other means


# ------------------------------------------------------------- skip_missing (003)


def test_coverage_lists_the_words_without_a_vector():
    from gensim.models import KeyedVectors

    from textclf.embeddings import build_matrix

    kv = KeyedVectors(2)
    kv.add_vectors(["good", "film"], np.ones((2, 2), np.float32))
    itos = ["<pad>", "<unk>", "good", "dreadful", "Film", "meh"]
    _, coverage = build_matrix(itos, kv, {"type": "glove", "archive": "a.zip", "member": "m.txt", "dim": 2,
                                          "oov_init": "zeros", "seed": 0})
    assert coverage["missing_rows"] == [3, 5]  # specials are never listed; "Film" found as "film"


def test_skip_missing_drops_those_words_as_seed_003s_dataset_did(data_dirs, tmp_path):
    """003:179-184 builds each review from `[vectors[w] for w in words if w in vectors]`: with
    skip_missing the model reads exactly the in-vocabulary-of-the-vectors words, in order."""
    from textclf.training.trainer import missing_word_ids

    variant = typed(make_variant())
    data = load_run_data(variant, prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                         vocab_file=data_dirs[1] / "vocab.json")
    missing = np.arange(2, 20)  # ids 20..29 have vectors, SIGNAL among them
    skipped = load_run_data(variant, prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                            vocab_file=data_dirs[1] / "vocab.json", skip_ids=missing)
    for name in ("train", "test"):
        full, kept = data.split(name), skipped.split(name)
        emptied = 0
        for i in range(len(full)):
            words = full.values[full.offsets[i] : full.offsets[i + 1]].tolist()
            expected = [w for w in words if w not in set(missing.tolist())]
            emptied += not expected
            assert kept.values[kept.offsets[i] : kept.offsets[i + 1]].tolist() == (expected or [1])  # <unk>
        assert kept.empty_rows == emptied and kept.row_ids.tolist() == full.row_ids.tolist()
    (tmp_path / "E.coverage.json").write_text('{"missing_rows": [2, 5]}')
    assert missing_word_ids(tmp_path / "E.npy").tolist() == [2, 5]
    (tmp_path / "E.coverage.json").write_text('{"found": 3}')  # written before the switch existed
    with pytest.raises(DataError, match="E.coverage.json: cannot read the list of words without a vector"):
        missing_word_ids(tmp_path / "E.npy")


# ------------------------------------------------------------- heads (002, 003) and dropout placement


def test_mlp_tanh_head_is_tanh_linear_dropout_tanh_linear():
    model = make(head="mlp_tanh", head_dropout=0.1, pooling="mean")
    ids, lengths = ragged(4)
    with torch.no_grad():
        feats = model.features(ids, lengths)
        first, second = model.head[1], model.head[4]
        # 002:371-372: output = dropout(linear(tanh(output))); prediction = projection(tanh(output))
        expected = second(torch.tanh(first(torch.tanh(feats))))
        assert torch.allclose(model(ids, lengths), expected, atol=1e-6)
    assert first.in_features == HIDDEN and first.out_features == HIDDEN and second.out_features == CLASSES
    assert model.head[2].p == 0.1


def test_relu_linear_head_is_fc_of_relu():
    model = make(cell="gru", head="relu_linear")
    ids, lengths = ragged(5)
    with torch.no_grad():
        # 003:361: self.fc(F.relu(out[:, -1]))
        expected = model.head[-1](F.relu(model.features(ids, lengths)))
        assert torch.allclose(model(ids, lengths), expected, atol=1e-6)


def test_embedding_dropout_is_its_own_setting():
    assert make(dropout=0.3, layers=2).embedding_dropout.p == 0.3  # null: follows dropout
    seed001 = make(dropout=0.2, embedding_dropout=0.0, layers=2, head_dropout=0.2)
    assert seed001.embedding_dropout.p == 0.0  # 001: no embedding dropout ...
    assert seed001.encoder.dropout == 0.2  # ... nn.LSTM(dropout=rate) between layers ...
    assert seed001.head[0].p == 0.2  # ... and nn.Dropout on the last output before fc
    assert make(dropout=0.0, embedding_dropout=0.4).embedding_dropout.p == 0.4


# ------------------------------------------------------------- init: reference (001)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_scratch"])
def test_reference_init_distributions_and_orthogonality(cell):
    torch.manual_seed(0)
    config = cfg(cell=cell, layers=2, bidirectional=True, hidden=64, head="mlp", init="reference",
                 embedding={"dim": 32})
    model = build_model(config, vocab_size=5000, num_classes=2)
    emb = model.embedding.weight.detach()
    # xavier_normal_: std = sqrt(2 / (fan_in + fan_out)); an embedding's fan_in is its dim
    assert emb.std().item() == pytest.approx(math.sqrt(2 / (32 + 5000)), rel=0.05)
    assert abs(emb.mean().item()) < 0.01 * emb.std().item() * 100
    assert emb[0].abs().sum() > 0  # the padding row too, as the seed's init_weights did
    for linear in (m for m in model.modules() if isinstance(m, nn.Linear)):
        w = linear.weight.detach()
        assert w.std().item() == pytest.approx(math.sqrt(2 / sum(w.shape)), rel=0.25)
        assert torch.count_nonzero(linear.bias) == 0
    for name, param in model.encoder.named_parameters():
        p = param.detach()
        if "bias" in name:
            assert torch.count_nonzero(p) == 0, name
        else:  # [G*H, in]: more rows than columns, so the columns are orthonormal
            assert torch.allclose(p.t() @ p, torch.eye(p.shape[1]), atol=1e-4), name


def test_torch_init_is_untouched_and_reference_init_is_seed_001s_function():
    default = make(cell="lstm")
    assert torch.count_nonzero(default.encoder.bias_ih_l0) > 0  # PyTorch: U(-1/sqrt(H), 1/sqrt(H))
    model = make(cell="lstm", head="mlp")

    def init_weights(m):  # 001:920-931, verbatim
        if isinstance(m, nn.Embedding):
            nn.init.xavier_normal_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM) or isinstance(m, nn.GRU):  # noqa: SIM101 (verbatim)
            for name, param in m.named_parameters():
                if "bias" in name:
                    nn.init.zeros_(param)
                elif "weight" in name:
                    nn.init.orthogonal_(param)

    ours = make(cell="lstm", head="mlp")
    torch.manual_seed(1)
    reference_init(ours)
    torch.manual_seed(1)
    model.apply(init_weights)
    # the same initialisers in the same module order: the same numbers
    for (name, a), (_, b) in zip(ours.named_parameters(), model.named_parameters(), strict=True):
        assert torch.equal(a, b), name


# ------------------------------------------------------------- model selection (001, 002, 003)


def test_selected_epoch_per_policy():
    progress = Progress(epoch=5, best_epoch=2, lowest_loss_epoch=4, best_state={"w": torch.zeros(1)})
    assert selected_epoch("best", progress) == 2
    assert selected_epoch("last", progress) == 5
    assert selected_epoch("lowest_train_loss", progress) == 4


def test_lowest_train_loss_reports_that_epochs_weights(data_dirs, tmp_path):
    variant = make_variant(epochs=4, report_epoch="lowest_train_loss", eval_split="test",
                           optimizer={"lr": 0.3})  # a large step: the training loss is not monotone
    metrics = run(variant, data_dirs, tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    assert metrics["reported_epoch"] == int(history["epoch"][history["train_loss"].idxmin()])
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    assert saved["epoch"] == metrics["reported_epoch"]
    last = run(make_variant(epochs=4, report_epoch="last", eval_split="test", optimizer={"lr": 0.3}),
               data_dirs, tmp_path / "last")
    assert last["reported_epoch"] == 4


# ------------------------------------------------------------- train_split: train+val (000, 002, 003)


def test_train_loss_window_keeps_the_weights_of_the_lowest_window(data_dirs, tmp_path):
    """Seed 003 (003:441-452): every `log` batches, the mean running loss of those batches; the
    weights are kept when it is the lowest so far; batches after an epoch's last full window
    count for none."""
    variant = typed(make_variant(report_epoch="lowest_train_loss", eval_split="test", train_split="train+val",
                                 train_loss_window=5))
    data = load_run_data(variant, prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                         vocab_file=data_dirs[1] / "vocab.json")
    batches = [np.arange(i, min(i + 32, len(data.train))) for i in range(0, len(data.train), 32)]  # 23 batches
    kw = {"max_len": 12, "padding": "bucket", "device": torch.device("cpu"),
          "precision": make_precision(torch.device("cpu"), False)}
    seen: dict[int, list] = {1: [], 5: []}
    for window in (1, 5):
        torch.manual_seed(0)
        model = build_model(variant.model, vocab_size=data.vocab_size, num_classes=2)
        train_epoch(model, data.train, batches, build_optimization(model, variant.training), window=window,
                    on_window=lambda step, loss, w=window: seen[w].append((step, loss)), **kw)
    per_step = [loss for _, loss in seen[1]]
    assert [s for s, _ in seen[5]] == [5, 10, 15, 20]  # batches 21-23 belong to no window
    np.testing.assert_allclose([loss for _, loss in seen[5]],
                               [np.mean(per_step[i - 5 : i]) for i in (5, 10, 15, 20)], rtol=1e-6)

    metrics = run(make_variant(epochs=3, report_epoch="lowest_train_loss", eval_split="test",
                               train_split="train+val", train_loss_window=5, optimizer={"lr": 0.3}),
                  data_dirs, tmp_path)
    assert metrics["reported_step"] in (5, 10, 15, 20) and 1 <= metrics["reported_epoch"] <= 3
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    assert saved["epoch"] == metrics["reported_epoch"]


def test_train_plus_val_trains_on_every_training_row(data_dirs, tmp_path):
    variant = typed(make_variant(train_split="train+val", eval_split="test", report_epoch="last"))
    data = load_run_data(variant, prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                         vocab_file=data_dirs[1] / "vocab.json")
    assert len(data.train) == 600 + 120
    assert data.train.row_ids[600:].tolist() == data.val.row_ids.tolist()
    for i in (0, 599, 600, 719):  # the rows keep their tokens
        source, j = (data.val, i - 600) if i >= 600 else (data.train, i)
        got = data.train.values[data.train.offsets[i] : data.train.offsets[i + 1]]
        assert got.tolist() == source.values[source.offsets[j] : source.offsets[j + 1]].tolist()
    metrics = run(make_variant(train_split="train+val", eval_split="test", report_epoch="last"),
                  data_dirs, tmp_path)
    assert metrics["n_train"] == 720 and metrics["val"] is None  # no held-out validation


def test_concat_splits_handles_sliced_offsets(data_dirs):
    variant = typed(make_variant())
    data = load_run_data(variant, prepared_dir=data_dirs[0], encoded_dir=data_dirs[1],
                         vocab_file=data_dirs[1] / "vocab.json")
    part = data.val.take(np.array([5, 2, 7]))
    both = concat_splits(data.test, part)
    assert len(both) == len(data.test) + 3
    assert both.lengths[-3:].tolist() == part.lengths.tolist()


# ------------------------------------------------------------- tokenization (001, 002, 004)


def test_nltk_stop_word_list_is_shipped_with_its_179_words():
    nltk = stop_words("nltk")
    assert len(nltk) == 179
    assert {"i", "me", "the", "not", "no", "don't", "isn't", "should've", "mightn't", "y"} <= nltk
    # scikit-learn's list (318 words) removes sentiment-bearing words NLTK keeps, and vice versa
    sklearn = stop_words("sklearn")
    assert len(sklearn) == 318
    assert {"never", "nothing", "well", "less", "cannot"} <= sklearn - nltk
    assert {"don't", "isn't", "didn't"} <= nltk - sklearn
    tokenize = make_tokenizer({"name": "whitespace", "stopwords": "nltk"})
    assert tokenize("I never said it wasn't GOOD") == ["never", "said", "good"]
    assert make_tokenizer({"name": "whitespace", "stopwords": True})("never said") == ["said"]


def test_punctuation_regex_equals_the_seed_002_preprocessing():
    tokenize = make_tokenizer({"name": "regex", "pattern": r"[^\s!-/:-@\[-`{-~]+", "bos_eos": True})
    text = "Bose's new system: plays #151; songs (you like) -- worth $99.99? Été, naïve…"
    seed = text.lower().translate(str.maketrans(string.punctuation, " " * len(string.punctuation))).split()
    assert tokenize(text) == ["<bos>", *seed, "<eos>"]  # 002:215-218: [bos] + words + [eos]


def test_punct_nltk_is_seed_002s_translate_then_word_tokenize():
    tokenize = make_tokenizer({"name": "punct_nltk", "bos_eos": True})
    # 002's printed example (index 921): the text before and after its preprocessing
    text = "A Stereo with a Brain You can train Bose's new system to play songs you like. Is it worth the price?"
    after = "a stereo with a brain you can train bose s new system to play songs you like is it worth the price"
    assert tokenize(text) == ["<bos>", *after.split(), "<eos>"]
    # where word_tokenize differs from a plain split of the punctuation-free text (Treebank rules)
    assert tokenize("I cannot, we're gonna win #39;em") == [
        "<bos>", "i", "can", "not", "we", "re", "gon", "na", "win", "39", "em", "<eos>"]
    from nltk.tokenize import NLTKWordTokenizer  # word_tokenize's own word splitter

    words = "they cannot wanna gimme more of it"
    assert tokenize(words)[1:-1] == NLTKWordTokenizer().tokenize(words)


def test_spacy_tokenizer_is_spacys_rule_based_english_tokenizer():
    spacy = pytest.importorskip("spacy")
    text = "This movie wasn't good.<br /><br />I'd  give it 2/10... (U.S. release)"
    expected = [t.text for t in spacy.blank("en").tokenizer(text)]
    tokenize = make_tokenizer({"name": "spacy", "lowercase": False})
    assert tokenize(text) == expected
    assert "was" in expected and "n't" in expected and "U.S." in expected
