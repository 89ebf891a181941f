"""Embeddings: GloVe parsing + cache, matrix building and coverage, word2vec, the two stage CLIs."""

from __future__ import annotations

import gzip
import json
import os
import runpy
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gensim.models import KeyedVectors

from helpers import REPO, SHARED_DATA
from textclf.config import ParamsError
from textclf.embeddings import (
    build_cache,
    build_matrix,
    embedding_config,
    load_cache,
    read_glove,
)
from textclf.embeddings.word2vec import read_word2vec_file, train_word2vec
from textclf.errors import DataError
from textclf.text.vocab import VOCAB_KEYS, Vocab, itos_sha256, resolve_vocab_config, save_vocab

MEMBER = "tiny.3d.txt"
GOOD = ["the 0.1 0.2 0.3", ", -1 0 1", "hello 1.5 2.5 -3.5", "\" 7 8 9"]
ITOS = ["<pad>", "<unk>", "the", "Hello", "zzz"]


def write_zip(path: Path, lines: list[str], member: str = MEMBER) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, "\n".join(lines) + "\n")
        zf.writestr("other.txt", "not vectors\n")
    return path


def tiny_vectors() -> KeyedVectors:
    kv = KeyedVectors(3)
    kv.add_vectors(["the", "hello", "world"], np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32))
    return kv


def cfg(**over):
    base = {"type": "glove", "archive": "glove/glove.6B.zip", "member": MEMBER, "dim": 3,
            "oov_init": "zeros", "seed": 0}
    return {**base, **over}


# --- GloVe reader -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zip", "txt", "gz"])
def test_read_glove_all_containers(tmp_path, kind):
    text = "\n".join(GOOD) + "\n"
    if kind == "zip":
        source, member = write_zip(tmp_path / "g.zip", GOOD), MEMBER
    elif kind == "gz":
        source, member = tmp_path / "g.txt.gz", None
        source.write_bytes(gzip.compress(text.encode()))
    else:
        source, member = tmp_path / "g.txt", None
        source.write_text(text)
    kv = read_glove(source, member, 3)
    assert kv.index_to_key == ["the", ",", "hello", '"']
    assert kv.vectors.dtype == np.float32 and kv.vectors.shape == (4, 3)
    np.testing.assert_array_equal(kv["hello"], np.array([1.5, 2.5, -3.5], np.float32))


@pytest.mark.parametrize("bad", ["oops 1 2", "oops 1 2 3 4", "oops 1 x 3", "", "oops 1  3"])
def test_malformed_line_names_member_and_line(tmp_path, bad):
    source = write_zip(tmp_path / "g.zip", [*GOOD[:2], bad, *GOOD[2:]])
    with pytest.raises(DataError, match=rf"g\.zip:{MEMBER}: malformed line 3\b"):
        read_glove(source, MEMBER, 3)


def test_dimension_mismatch_names_both_dims(tmp_path):
    source = write_zip(tmp_path / "g.zip", GOOD)
    with pytest.raises(DataError, match=r"dim=4.*3-dimensional"):
        read_glove(source, MEMBER, 4)


def test_missing_member_lists_members(tmp_path):
    source = write_zip(tmp_path / "g.zip", GOOD)
    with pytest.raises(DataError, match=r"'glove\.6B\.100d\.txt'.*\['tiny\.3d\.txt', 'other\.txt'\]"):
        read_glove(source, "glove.6B.100d.txt", 100)


def test_repeated_word_keeps_first_vector(tmp_path):
    source = write_zip(tmp_path / "g.zip", [*GOOD, "the 9 9 9"])
    kv = read_glove(source, MEMBER, 3)
    assert len(kv) == 4 and kv["the"][0] == pytest.approx(0.1)


def test_cache_round_trip_is_one_file(tmp_path):
    source = write_zip(tmp_path / "g.zip", GOOD)
    out = tmp_path / "cache" / "tiny.3d.kv"
    built = build_cache(source, MEMBER, 3, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.3d.kv"]
    loaded = load_cache(out, 3)
    assert loaded.index_to_key == built.index_to_key
    np.testing.assert_array_equal(loaded.vectors, built.vectors)
    with pytest.raises(DataError, match="dim=5"):
        load_cache(out, 5)
    (tmp_path / "junk.kv").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a vector cache"):
        load_cache(tmp_path / "junk.kv", 3)


# --- matrix + coverage ----------------------------------------------------------------------

def test_matrix_rows_order_and_zero_oov():
    matrix, _ = build_matrix(ITOS, tiny_vectors(), cfg())
    assert matrix.dtype == np.float32 and matrix.shape == (5, 3)
    expected = np.array([[0, 0, 0], [0, 0, 0], [1, 2, 3], [4, 5, 6], [0, 0, 0]], np.float32)
    np.testing.assert_array_equal(matrix, expected)  # "Hello" found as "hello"


@pytest.mark.parametrize(("special_rows", "zero_rows"), [("pad_zero", [0]), ("oov_init", []), ("zeros", [0, 1])])
def test_special_rows_follow_the_reference(special_rows, zero_rows):
    """seed 000 drew <PAD>/<UNK> like every unfound word (000:2019-2023); seed 004's torchtext
    zeroed both (004:11); by default only <pad> is zero."""
    drawn, _ = build_matrix(ITOS, tiny_vectors(), cfg(oov_init="normal", seed=3, special_rows="oov_init"))
    matrix, coverage = build_matrix(ITOS, tiny_vectors(), cfg(oov_init="normal", seed=3, special_rows=special_rows))
    assert coverage["special_rows"] == special_rows
    for row in (0, 1):
        expected = np.zeros(3, np.float32) if row in zero_rows else drawn[row]
        np.testing.assert_array_equal(matrix[row], expected)
    assert np.abs(drawn[:2]).min() > 0  # drawn from N(0, 0.01), not zero
    np.testing.assert_array_equal(matrix[2:], drawn[2:])  # words are untouched


def test_matrix_normal_oov_is_seeded():
    first, _ = build_matrix(ITOS, tiny_vectors(), cfg(oov_init="normal", seed=3))
    again, _ = build_matrix(ITOS, tiny_vectors(), cfg(oov_init="normal", seed=3))
    other, _ = build_matrix(ITOS, tiny_vectors(), cfg(oov_init="normal", seed=4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[[1, 4]], other[[1, 4]])
    assert not first[0].any()  # <pad> stays zero
    assert first[1].any() and first[4].any()  # <unk> and the OOV word are random
    np.testing.assert_array_equal(first[2:4], [[1, 2, 3], [4, 5, 6]])
    assert np.abs(first[[1, 4]]).max() < 0.1  # small: N(0, 0.01)


def test_coverage_hand_checked():
    _, cov = build_matrix(ITOS, tiny_vectors(), cfg(), counts=[0, 10, 6, 4, 5])
    # words: the, Hello (found), zzz (oov); tokens: 6 + 4 found of 25 (10 are <unk>)
    assert cov["found"] == 2 and cov["oov"] == 1
    assert cov["vocab_share"] == pytest.approx(2 / 3)
    assert cov["train_token_share"] == pytest.approx(10 / 25)
    assert cov["dim"] == 3 and cov["source"] == f"glove:glove/glove.6B.zip:{MEMBER}"


def test_matrix_dim_mismatch():
    with pytest.raises(DataError, match="dim=4"):
        build_matrix(ITOS, tiny_vectors(), cfg(dim=4))


# --- word2vec -------------------------------------------------------------------------------

W2V = {"type": "word2vec", "dim": 8, "window": 2, "min_count": 1, "epochs": 3, "seed": 7,
       "workers": 1, "oov_init": "zeros"}
CORPUS = [["good", "movie", "great", "plot"], ["bad", "movie", "awful", "plot"]] * 20

W2V_SNIPPET = f"""
import sys
from textclf.embeddings.word2vec import train_word2vec
kv = train_word2vec({CORPUS!r}, {W2V!r})
sys.stdout.write(kv.vectors.tobytes().hex())
"""


def test_word2vec_deterministic_across_runs_and_hash_seeds():
    first, again = train_word2vec(CORPUS, W2V), train_word2vec(CORPUS, W2V)
    assert first.vectors.shape == (6, 8)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", W2V_SNIPPET], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out == first.vectors.tobytes().hex()


@pytest.mark.parametrize("binary", [True, False])
def test_word2vec_file_source(tmp_path, binary):
    path = tmp_path / ("v.bin" if binary else "v.txt")
    tiny_vectors().save_word2vec_format(str(path), binary=binary)
    kv = read_word2vec_file(path, 3)  # binary inferred from the suffix
    np.testing.assert_array_equal(kv["hello"], [4, 5, 6])
    with pytest.raises(DataError, match="dim=4"):
        read_word2vec_file(path, 4, binary)


# --- stage scripts --------------------------------------------------------------------------

VOCAB_SPEC = {"tokenizer": {"name": "basic_english"}, "min_freq": 1, "max_size": None, "source": "train"}
TINY = {"type": "glove", "archive": "glove/glove.6B.zip", "member": MEMBER, "dim": 3, "oov_init": "zeros"}
W2V_ENTRY = {"type": "word2vec", "dim": 4, "epochs": 2, "seed": 1}


def write_inputs(tmp_path: Path) -> dict[str, Path]:
    """A vocab JSON, an encoded train split and a GloVe-style zip."""
    paths = {"vocab": tmp_path / "vocab.json", "encoded": tmp_path / "encoded", "zip": write_zip(tmp_path / "g.zip", GOOD)}
    spec = resolve_vocab_config(VOCAB_SPEC)
    save_vocab(Vocab(ITOS, [0, 0, 3, 2, 1], {k: spec[k] for k in VOCAB_KEYS}), paths["vocab"])
    paths["encoded"].mkdir()
    ids = pa.array([[2, 3, 1, 4], [2, 2, 3, 1]], type=pa.list_(pa.int32()))
    pq.write_table(pa.table({"id": [0, 1], "label": [0, 1], "ids": ids, "length": pa.array([4, 4], pa.int32())}),
                           paths["encoded"] / "train.parquet")
    return paths


def run_script(name: str, tmp_path: Path, settings: dict) -> None:
    """Run a stage script on a job file holding `settings` (as the plan writes it)."""
    job = tmp_path / f"{name}-job.json"
    job.write_text(json.dumps(settings, default=str))
    main = runpy.run_path(str(REPO / "workflow" / "scripts" / f"{name}.py"))["main"]
    main([str(job)])


def _embeddings_job(p, name, spec, out, cache=None, encoded=True) -> dict:
    return {"dataset": "imdb", "vocab": "v", "vocab_spec": VOCAB_SPEC, "embedding": name, "spec": spec,
            "vocab_file": p["vocab"], "encoded": p["encoded"] if encoded else None, "cache": cache, "out": out}


def test_cli_glove_then_embeddings(tmp_path, capsys):
    p = write_inputs(tmp_path)
    cache = tmp_path / "cache" / "tiny.3d.kv"
    run_script("glove_cache", tmp_path, {"archive": p["zip"], "member": MEMBER, "dim": 3, "out": cache})
    out = tmp_path / "emb" / "tiny.npy"
    run_script("embeddings", tmp_path, _embeddings_job(p, "tiny", TINY, out, cache=cache))
    matrix = np.load(out)
    assert matrix.shape == (5, 3) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[2], [0.1, 0.2, 0.3])
    cov = json.loads((tmp_path / "emb" / "tiny.coverage.json").read_text())
    assert cov["train_token_share"] == pytest.approx(5 / 8)  # the x3, hello x2 of 8 tokens
    assert cov["train_tokens_from"] == "encoded train split" and cov["vocab_sha256"] == itos_sha256(ITOS)
    assert "vocab coverage 66.7%" in capsys.readouterr().out
    assert sorted(f.name for f in out.parent.iterdir()) == ["tiny.coverage.json", "tiny.npy"]


def test_cli_word2vec_and_errors(tmp_path):
    p = write_inputs(tmp_path)
    out = tmp_path / "w2v.npy"
    run_script("embeddings", tmp_path, _embeddings_job(p, "w2v", W2V_ENTRY, out))
    assert np.load(out).shape == (5, 4)
    cov = json.loads(out.with_suffix(".coverage.json").read_text())
    assert (cov["found"], cov["oov"]) == (3, 0)
    with pytest.raises(DataError, match="needs the encoded splits"):
        run_script("embeddings", tmp_path, _embeddings_job(p, "w2v", W2V_ENTRY, out, encoded=False))
    with pytest.raises(DataError, match="different vocab params"):
        run_script("embeddings", tmp_path, _embeddings_job(p, "w2v", W2V_ENTRY, out) | {"vocab_spec": {**VOCAB_SPEC, "min_freq": 3}})


def test_embedding_config_defaults():
    params = {"embeddings": {"w": {"type": "word2vec", "dim": 5}}}
    assert embedding_config(params, "w") == {"type": "word2vec", "dim": 5, "name": "w", "oov_init": "normal",
                                             "seed": 0, "special_rows": "pad_zero", "window": 5, "min_count": 1, "epochs": 5, "workers": 1}
    with pytest.raises(ParamsError, match=r"allowed: \['w'\]"):
        embedding_config(params, "x")


# --- the real GloVe archive (header only: fast) ---------------------------------------------

REAL_ZIP = SHARED_DATA / "glove" / "glove.6B.zip"


@pytest.mark.skipif(not REAL_ZIP.is_file(), reason="local GloVe mirror absent")
def test_real_glove_header():
    kv = read_glove(REAL_ZIP, "glove.6B.50d.txt", 50, limit=5)
    assert kv.index_to_key[0] == "the" and kv.vectors.shape == (5, 50)
    assert kv["the"][0] == pytest.approx(0.418)
    with pytest.raises(DataError, match=r"holds only \['glove\.6B\.50d\.txt'\]"):
        read_glove(REAL_ZIP, "glove.6B.100d.txt", 100, limit=5)
