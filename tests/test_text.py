"""Tokenizers, vocab and encode stages (library + CLIs) on tiny synthetic data."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textclf.config import REPO_ROOT, ParamsError
from textclf.errors import DataError
from textclf.text import (
    PAD_INDEX,
    UNK_INDEX,
    basic_english,
    build_vocab,
    decode,
    encode_split,
    encode_tokens,
    load_vocab,
    make_tokenizer,
    read_split,
    save_vocab,
    tokenize_many,
)

BASIC = {"name": "basic_english"}

# (text, tokens derived by hand from torchtext's rules: lower-case; ' -> " '  "; drop ";
#  . -> " . "; "<br />" -> " "; , ( ) ! ? spaced; ; : -> " "; split on whitespace)
BASIC_CASES = [
    ("Don't stop", ["don", "'", "t", "stop"]),
    ("it's 'quoted'", ["it", "'", "s", "'", "quoted", "'"]),
    ('He said "hello"', ["he", "said", "hello"]),
    ("The U.S. army", ["the", "u", ".", "s", ".", "army"]),
    ("wait...what", ["wait", ".", ".", ".", "what"]),
    ("e-mail me", ["e-mail", "me"]),
    ("$10 off!", ["$10", "off", "!"]),
    ("5,000 (yes), no; maybe?", ["5", ",", "000", "(", "yes", ")", ",", "no", "maybe", "?"]),
    ("at 3:30pm", ["at", "3", "30pm"]),
    ("ok:)", ["ok", ")"]),
    ("Great<br /><br />Movie", ["great", "movie"]),
    ("hello.<BR />world", ["hello", ".", "world"]),
    ('<br "/>', []),                 # removing the quote first creates a "<br />"
    ("<br/>", ["<br/>"]),            # no space: not torchtext's pattern
    ("a<br;/>b", ["a<br", "/>b"]),   # ";" becomes a space only after the "<br />" rule ran
    ("<i>great</i>", ["<i>great</i>"]),
    ("Café naïve ÉCOLE", ["café", "naïve", "école"]),
    ("ΣΊΣΥΦΟΣ", ["σίσυφος"]),
    ("a    b\t\nc\u00a0d\u2003e", ["a", "b", "c", "d", "e"]),
    ("", []),
    ("   ", []),
]

_TORCHTEXT_RULES = [(re.compile(p), r) for p, r in zip(
    [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"],
    [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "], strict=True)]


def torchtext_basic_english(line: str) -> list[str]:
    """torchtext.data.utils._basic_english_normalize, literally (the slow reference)."""
    line = line.lower()
    for pattern, repl in _TORCHTEXT_RULES:
        line = pattern.sub(repl, line)
    return line.split()


@pytest.mark.parametrize(("text", "expected"), BASIC_CASES)
def test_basic_english_hand_derived(text, expected):
    assert basic_english(text) == expected
    assert torchtext_basic_english(text) == expected
    assert make_tokenizer(BASIC)(text) == expected


def test_basic_english_matches_reference_on_random_strings():
    pieces = ["a", "B", "z", "'", '"', ".", ",", "(", ")", "!", "?", ";", ":", " ", "  ", "\t", "\n",
              "<br />", "<BR />", "<br ", "/>", "<", ">", "/", "-", "$", "1", "é", "İ", "Σ",
              "\u00a0", "\u2028", "\x1c", "\u3000", "<unk>", "<pad>"]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        assert basic_english(text) == torchtext_basic_english(text), repr(text)


def test_split_and_regex_whitespace_agree():
    """basic_english leaves torchtext's final \\s+ rule to str.split(): same characters."""
    ws = re.compile(r"\s")
    assert [c for c in range(0x3100) if bool(ws.match(chr(c))) != (len(f"a{chr(c)}b".split()) == 2)] == []


def test_whitespace_regex_and_lowercase():
    assert make_tokenizer({"name": "whitespace"})("Hello, World!  Foo") == ["hello,", "world!", "foo"]
    assert make_tokenizer({"name": "whitespace", "lowercase": False})("Hello World") == ["Hello", "World"]
    regex = make_tokenizer({"name": "regex", "pattern": "[a-z0-9]+"})
    assert regex("Hello, World! It's 3:30") == ["hello", "world", "it", "s", "3", "30"]


def test_stopwords_removed():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    tok = make_tokenizer({"name": "whitespace", "stopwords": True})
    out = tok("This is THE best movie of all")
    assert out == ["best", "movie"]
    assert not set(out) & ENGLISH_STOP_WORDS


def test_strip_html():
    text = "Great<br /><br />movie <b>really</b>, 3 < 4 > 2"
    assert make_tokenizer({**BASIC, "strip_html": True})(text) == [
        "great", "movie", "really", ",", "3", "<", "4", ">", "2"]
    assert make_tokenizer(BASIC)(text)[:3] == ["great", "movie", "<b>really</b>"]


def test_tokenize_many_same_as_single():
    texts = [t for t, _ in BASIC_CASES]
    assert tokenize_many(texts, BASIC) == [e for _, e in BASIC_CASES]
    # a whole vocab block is accepted too
    assert tokenize_many(texts, {"tokenizer": BASIC, "min_freq": 1}) == [e for _, e in BASIC_CASES]


@pytest.mark.parametrize("cfg", [
    {"name": "moses"},
    {"name": "regex"},
    {"name": "regex", "pattern": "[a-"},
    {"name": "whitespace", "pattern": "x"},
    {"name": "whitespace", "lowercas": True},
])
def test_bad_tokenizer_config(cfg):
    with pytest.raises(ParamsError):
        make_tokenizer(cfg)


# ---------------------------------------------------------------- vocab

DOCS = [["b", "a", "c", "a"], ["c", "d"], ["e"]]


def vcfg(**over):
    return {"tokenizer": {"name": "whitespace"}, "min_freq": 1, **over}


def test_vocab_order_specials_and_counts():
    vocab = build_vocab(DOCS, vcfg())
    assert vocab.itos == ["<pad>", "<unk>", "a", "c", "b", "d", "e"]  # freq desc, then token asc
    assert vocab.itos[PAD_INDEX] == "<pad>" and vocab.itos[UNK_INDEX] == "<unk>"
    assert vocab.counts == [0, 0, 2, 2, 1, 1, 1]
    assert vocab.stats["size"] == 7
    assert vocab.stats["coverage"]["train"] == 1.0


def test_vocab_min_freq_and_max_size_counts_specials():
    assert build_vocab(DOCS, vcfg(min_freq=2)).itos == ["<pad>", "<unk>", "a", "c"]
    capped = build_vocab(DOCS, vcfg(max_size=5))
    assert len(capped) == 5 and capped.itos[2:] == ["a", "c", "b"]  # tie b/d/e -> b first
    assert build_vocab(DOCS, vcfg(max_size=100)).itos == build_vocab(DOCS, vcfg()).itos
    with pytest.raises(ParamsError, match="specials"):
        build_vocab(DOCS, vcfg(max_size=2))


def test_vocab_deterministic_under_shuffle():
    rng = random.Random(3)
    words = [f"w{rng.randint(0, 40)}" for _ in range(2000)]
    docs = [words[i:i + 7] for i in range(0, len(words), 7)]
    ref = build_vocab(docs, vcfg(min_freq=2))
    for seed in range(3):
        shuffled = [list(d) for d in docs]
        random.Random(seed).shuffle(shuffled)
        for d in shuffled:
            random.Random(seed).shuffle(d)
        again = build_vocab(shuffled, vcfg(min_freq=2))
        assert again.itos == ref.itos and again.sha256 == ref.sha256


def test_vocab_train_only_vs_train_plus_test():
    splits = {"train": [["a", "a", "b"]], "val": [["a", "v"]], "test": [["t", "t", "a"]]}
    train_only = build_vocab(splits, vcfg())
    assert train_only.itos[2:] == ["a", "b"]
    leaky = build_vocab(splits, vcfg(source="train+test"))
    assert leaky.itos[2:] == ["a", "t", "b", "v"]  # every labelled split counts, val included
    assert leaky.counts == [0, 0, 2, 0, 1, 0]  # counts stay train frequencies
    assert train_only.stats["coverage"] == {"train": 1.0, "val": 0.5, "test": pytest.approx(1 / 3)}
    assert leaky.stats["oov_rate"]["test"] == 0.0
    with pytest.raises(DataError, match="test"):
        build_vocab([["a"]], vcfg(source="train+test"))


def test_vocab_never_lists_literal_specials():
    vocab = build_vocab([["<pad>", "<unk>", "x", "<pad>"]], vcfg())
    assert vocab.itos == ["<pad>", "<unk>", "x"]
    (ids,) = encode_tokens([["<pad>", "x", "<unk>"]], vocab)
    assert ids.tolist() == [UNK_INDEX, 2, UNK_INDEX]  # literal "<pad>" text is not padding


def test_empty_train_is_an_error():
    with pytest.raises(DataError, match="no tokens"):
        build_vocab([[], []], vcfg())


def test_vocab_save_load_round_trip(tmp_path):
    vocab = build_vocab(DOCS, vcfg())
    path = tmp_path / "v.json"
    save_vocab(vocab, path)
    obj = json.loads(path.read_text())
    assert {"itos", "specials", "pad_index", "unk_index", "config", "counts", "stats", "sha256"} <= set(obj)
    loaded = load_vocab(path)
    assert loaded.itos == vocab.itos and loaded.counts == vocab.counts and loaded.config == vocab.config


@pytest.mark.parametrize("corrupt", [
    lambda text, obj: text[: len(text) // 2],                                     # truncated
    lambda text, obj: json.dumps([1, 2]),                                         # not an object
    lambda text, obj: json.dumps({**obj, "itos": [*obj["itos"][:-1], "zzz"]}),    # edited -> sha
    lambda text, obj: json.dumps({**obj, "itos": obj["itos"][1:]}),               # specials gone
    lambda text, obj: json.dumps({k: v for k, v in obj.items() if k != "counts"}),
    lambda text, obj: json.dumps({**obj, "counts": obj["counts"][:-1]}),
])
def test_corrupt_vocab_file_is_data_error(tmp_path, corrupt):
    path = tmp_path / "v.json"
    save_vocab(build_vocab(DOCS, vcfg()), path)
    text = path.read_text()
    path.write_text(corrupt(text, json.loads(text)))
    with pytest.raises(DataError, match="vocab"):
        load_vocab(path)


def test_missing_vocab_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_vocab(tmp_path / "nope.json")


# ---------------------------------------------------------------- encode

def test_encode_decode_round_trip_and_oov():
    texts = ["a b c a", "b d", "zzz a", "zzz"]
    cfg = vcfg(min_freq=1)
    vocab = build_vocab(tokenize_many(texts[:2], cfg), cfg)
    rows, lengths = encode_split(texts, vocab, cfg)
    assert [decode(r, vocab) for r in rows[:2]] == [["a", "b", "c", "a"], ["b", "d"]]
    assert decode(rows[2], vocab) == ["<unk>", "a"]
    assert all(r.dtype == np.int32 for r in rows)
    assert lengths.dtype == np.int32 and lengths.tolist() == [4, 2, 2, 1]
    rows_drop, lengths_drop = encode_split(texts, vocab, {**cfg, "oov": "drop"})
    assert decode(rows_drop[2], vocab) == ["a"]
    assert lengths_drop.tolist() == [4, 2, 1, 0]


# ---------------------------------------------------------------- stage CLIs

def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO_ROOT / "workflow" / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_prepared(folder: Path) -> None:
    texts = {
        "train": ["A good movie.", "A bad movie!", "Good, good<br />acting.", "bad plot"],
        "val": ["good film", "???"],
        "test": ["bad film, good actors", "unknown words only"],
    }
    folder.mkdir(parents=True)
    start = 0
    for split, items in texts.items():
        table = pa.table({"id": pa.array(range(start, start + len(items)), pa.int64()),
                          "text": items, "label": pa.array([i % 2 for i in range(len(items))], pa.int64())})
        pq.write_table(table, folder / f"{split}.parquet")
        start += len(items)


@pytest.fixture
def stage_env(tmp_path):
    vocabs = {"tiny": {"tokenizer": {"name": "basic_english", "strip_html": True},
                       "min_freq": 1, "max_size": None, "source": "train"}}
    vocabs["tiny_drop"] = {**vocabs["tiny"], "oov": "drop"}
    prepared = tmp_path / "prepared" / "toy"
    _write_prepared(prepared)
    return {"vocabs": vocabs, "dataset": "toy", "prepared": str(prepared), "tmp": tmp_path}


def _job(env, name: str, settings: dict) -> str:
    """A job file as the plan writes it (jobs/<stage>/...json)."""
    path = env["tmp"] / "jobs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings))
    return str(path)


def _run_vocab(env, vocab="tiny"):
    out = env["tmp"] / "vocab" / env["dataset"] / f"{vocab}.json"
    _script("vocab").main([_job(env, f"vocab-{vocab}", {
        "dataset": env["dataset"], "vocab": vocab, "spec": env["vocabs"][vocab], "prepared": env["prepared"],
        "out": str(out)})])
    return out


def _run_encode(env, vocab_file, vocab="tiny"):
    out = env["tmp"] / "encoded" / env["dataset"] / vocab
    _script("encode").main([_job(env, f"encode-{vocab}", {
        "dataset": env["dataset"], "vocab": vocab, "spec": env["vocabs"][vocab], "prepared": env["prepared"],
        "vocab_file": str(vocab_file), "out": str(out)})])
    return out


def test_stage_clis_end_to_end(stage_env, capsys):
    vocab_file = _run_vocab(stage_env)
    vocab = load_vocab(vocab_file)
    assert "film" not in vocab.itos and "acting" in vocab.itos  # train split only
    assert vocab.stats["coverage"]["train"] == 1.0
    out = _run_encode(stage_env, vocab_file)
    assert sorted(p.name for p in out.iterdir()) == ["test.parquet", "train.parquet", "val.parquet"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
    table = pq.read_table(out / "test.parquet")
    assert table.schema.field("ids").type == pa.list_(pa.int32())
    assert table.schema.field("length").type == pa.int32()
    assert table.schema.field("id").type == pa.int64() and table.schema.field("label").type == pa.int64()
    assert table["id"].to_pylist() == [6, 7]
    assert decode(table["ids"][0].as_py(), vocab) == ["bad", "<unk>", ",", "good", "<unk>"]
    assert table["length"].to_pylist() == [5, 3]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("vocab ") and lines[1].startswith("encoded ")


def test_encode_drop_keeps_empty_rows(stage_env, caplog):
    vocab_file = _run_vocab(stage_env, "tiny_drop")
    out = _run_encode(stage_env, vocab_file, "tiny_drop")
    test = pq.read_table(out / "test.parquet")
    assert test["length"].to_pylist() == [3, 0] and test["ids"][1].as_py() == []
    assert "no tokens" in caplog.text


def test_encode_refuses_stale_vocab(stage_env):
    vocab_file = _run_vocab(stage_env)
    stage_env["vocabs"]["tiny"]["min_freq"] = 2
    with pytest.raises(DataError, match="min_freq"):
        _run_encode(stage_env, vocab_file)


def test_job_file_of_another_stage_is_refused(stage_env):
    job = _job(stage_env, "wrong", {"dataset": "toy"})
    with pytest.raises(ParamsError, match=r"wrong.json: not a job file of this stage \(missing \['vocab'"):
        _script("vocab").main([job])


def test_missing_prepared_split(stage_env):
    (Path(stage_env["prepared"]) / "val.parquet").unlink()
    with pytest.raises(DataError, match="val.parquet"):
        _run_vocab(stage_env)


@pytest.mark.parametrize(("table", "match"), [
    (pa.table({"id": [1], "text": ["x"]}), "missing column"),
    (pa.table({"id": [1], "text": [3], "label": [0]}), "type"),
    (pa.table({"id": [1], "text": pa.array([None], pa.string()), "label": [0]}), "null"),
])
def test_bad_prepared_split(tmp_path, table, match):
    pq.write_table(table, tmp_path / "train.parquet")
    with pytest.raises(DataError, match=match):
        read_split(tmp_path, "train")


def test_stopwords_setting_names_a_list():
    assert make_tokenizer({"name": "whitespace", "stopwords": "nltk"})("Nothing is as it should be") == ["nothing"]
    assert make_tokenizer({"name": "whitespace", "stopwords": "sklearn"})("Nothing is as it should be") == []
    with pytest.raises(ParamsError, match="tokenizer.stopwords: 'spacy' is not allowed"):
        make_tokenizer({"name": "whitespace", "stopwords": "spacy"})


def test_bos_eos_wraps_every_text_after_stop_words():
    tokenize = make_tokenizer({"name": "whitespace", "stopwords": "nltk", "bos_eos": True})
    assert tokenize("The end") == ["<bos>", "end", "<eos>"]
    assert tokenize("") == ["<bos>", "<eos>"]
    vocab = build_vocab([tokenize("a b"), tokenize("b c")], {"tokenizer": {"name": "whitespace"}, "min_freq": 2})
    assert vocab.itos[:2] == ["<pad>", "<unk>"] and {"<bos>", "<eos>"} <= set(vocab.itos)


def test_train_plus_val_vocab_counts_the_validation_rows():
    cfg = {"tokenizer": {"name": "whitespace"}, "min_freq": 1, "source": "train+val"}
    vocab = build_vocab({"train": [["a"]], "val": [["b"]], "test": [["c"]]}, cfg)
    assert vocab.itos == ["<pad>", "<unk>", "a", "b"]
