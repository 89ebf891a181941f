"""Prepare stage: readers (AG News CSV, aclImdb tar.gz), split policies, outputs, CLI."""

from __future__ import annotations

import copy
import csv
import hashlib
import importlib.util
import io
import json
import logging
import re
import tarfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from textclf.config import load_params
from textclf.download import fetch
from textclf.errors import ChecksumError, DataError
from textclf.plan import Plan
from textclf.prepare import prepare_dataset, split_frame
from textclf.sources import Malformed, agnews
from textclf.sources.agnews import clean_text, read_ag_news
from textclf.sources.imdb import read_aclimdb, review_id
from textclf.stage import run_stage

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # /work/shared/data
AG_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
DOWNLOAD = "python workflow/scripts/download.py jobs/download/{}.json"
"""The command that re-downloads data/raw/<ref> (its download job file, written by the plan)."""

BAD_ROWS = {
    "wrong_column_count": '"2","only two columns"\n',
    "empty_text": '"4","",""\n',
    "label_out_of_range": '"7","label seven","out of range"\n',
    "label_not_integer": '"x","label x","not an integer"\n',
}
MULTI_LINE = '"4","Multi\nline title","desc"\n'  # one record on two lines
# The special rows of the synthetic AG News train.csv. Record 3 spans lines 4-5, so later
# line numbers differ from record indexes.
AG_HEAD = (
    '"3","Wall St. Bears Claw Back (Reuters)","Reuters - Short-sellers, Wall Street\'s dwindling\\band '
    'of ultra-cynics, are seeing green again: #36;10 million,  it#39;s &lt;b&gt;up&lt;/b&gt; AT&amp;T."\n'
    '"1","He said ""no""","first line\\\\second line\\ third"\n'
    + BAD_ROWS["wrong_column_count"] + MULTI_LINE + BAD_ROWS["empty_text"]
    + BAD_ROWS["label_out_of_range"] + BAD_ROWS["label_not_integer"]
)
AG_BAD = {"wrong_column_count": 3, "empty_text": 6, "label_out_of_range": 7, "label_not_integer": 8}
"""reason -> 1-based line where that malformed record of AG_HEAD starts"""
AG_HEAD_RECORDS = 7


def ag_rows(n_per_class: int, start: int = 0) -> str:
    """Well-formed rows, classes 1..4 interleaved."""
    return "".join(f'"{1 + i % 4}","title {start + i}","word{i % 7} body text {start + i}"\n'
                   for i in range(4 * n_per_class))


def write_ag(raw: Path, train: str, test: str) -> dict[str, Path]:
    (raw / "ag_news").mkdir(parents=True, exist_ok=True)
    files = {"train": raw / "ag_news" / "train.csv", "test": raw / "ag_news" / "test.csv"}
    files["train"].write_text(train, encoding="utf-8")
    files["test"].write_text(test, encoding="utf-8")
    return files


@pytest.fixture
def ag_raw(tmp_path: Path) -> Path:
    """data/raw with a synthetic AG News release: train = AG_HEAD + 80 rows, test = 20 rows."""
    raw = tmp_path / "raw"
    write_ag(raw, AG_HEAD + ag_rows(20), ag_rows(5, start=1000))
    return raw


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz holding `members` (name -> bytes) plus their parent directory entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        dirs = sorted({str(Path(n).parent) for n in members})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def imdb_members(n: int) -> dict[str, bytes]:
    """n reviews per (split, label), in a scrambled archive order, plus members to ignore."""
    members = {"aclImdb/README": b"readme", "aclImdb/imdb.vocab": b"the\nand\n",
               "aclImdb/train/urls_pos.txt": b"http://x\n", "aclImdb/train/unsup/0_0.txt": b"unlabelled"}
    for split in ("test", "train"):
        for label, rating in (("pos", 9), ("neg", 2)):
            for i in reversed(range(n)):
                members[f"aclImdb/{split}/{label}/{i * 3}_{rating}.txt"] = (
                    f"{split} {label} review {i}<br /><br />caf\u00e9 " + "w " * i).encode()
    return members


@pytest.fixture
def imdb_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    make_tar(raw / "imdb" / "aclImdb_v1.tar.gz", imdb_members(20))
    return raw


def params_with(**datasets: dict) -> dict:
    """The repo's params.yaml with `datasets` replaced (still valid against the schema)."""
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["datasets"] = datasets
    # the shipped studies name the shipped datasets: keep one study over the test's datasets
    params["studies"] = {"s": {"datasets": list(datasets), "model": "tfidf_logreg", "variants": {"t": {}}}}
    params["run"]["studies"] = "all"
    return params


def ag_dataset(**split) -> dict:
    return {"reader": "ag_news_csv", "files": {"train": "ag_news/train.csv", "test": "ag_news/test.csv"},
            "classes": AG_CLASSES, "on_malformed": "drop",
            "split": {"policy": "official", "val_fraction": 0.25, "seed": 3, **split}}


def imdb_dataset(**split) -> dict:
    return {"reader": "aclimdb", "files": {"archive": "imdb/aclImdb_v1.tar.gz"}, "classes": ["neg", "pos"],
            "split": {"policy": "official", "val_fraction": 0.25, "seed": 3, **split}}


def read_split(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


# --- AG News reader -----------------------------------------------------------------------


def test_clean_text_turns_markers_and_entities_into_plain_text():
    assert clean_text("A", "second\\team for the  #36;10 million") == "A second team for the $10 million"
    assert clean_text("it#39;s", "&lt;b&gt; AT&amp;T &#39;x&#39; #151; \\\\next") == "it's <b> AT&T 'x' \u2014 next"
    assert clean_text("rank #1; ok", "") == "rank #1; ok"  # no control characters from prose
    assert clean_text(" ", "\\ ") == ""


def test_ag_news_reader_drops_malformed_rows_with_warnings(ag_raw: Path, caplog):
    files = {r: ag_raw / "ag_news" / f"{r}.csv" for r in ("train", "test")}
    with caplog.at_level(logging.WARNING, logger="textclf"):
        frame, problems = read_ag_news(files, AG_CLASSES, "drop")
    assert problems == Counter(dict.fromkeys(AG_BAD, 1))
    for reason, line in AG_BAD.items():
        assert f"train.csv:{line}: malformed record ({reason})" in caplog.text
    assert "dropped 4 malformed record(s)" in caplog.text

    assert list(frame.columns) == ["id", "text", "label", "split", "raw_text"]
    assert frame["id"].dtype == "int64" and frame["label"].dtype == "int64"
    assert frame["id"].is_monotonic_increasing
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    assert len(train) == 3 + 80 and len(test) == 20
    # ids = record index in the file (malformed records keep their numbers); test is offset.
    assert train["id"].tolist()[:3] == [0, 1, 3]
    assert train["id"].iloc[3] == AG_HEAD_RECORDS
    assert test["id"].tolist() == [10_000_000 + i for i in range(20)]
    assert set(frame["label"]) == {0, 1, 2, 3}
    by_id = frame.set_index("id")
    assert by_id.loc[0, "label"] == 2
    assert by_id.loc[0, "text"] == ("Wall St. Bears Claw Back (Reuters) Reuters - Short-sellers, Wall Street's "
                                    "dwindling band of ultra-cynics, are seeing green again: $10 million, "
                                    "it's <b>up</b> AT&T.")
    assert by_id.loc[1, "text"] == 'He said "no" first line second line third'
    assert by_id.loc[3, "text"] == "Multi line title desc"
    assert by_id.loc[10_000_000, "text"] == "title 1000 word0 body text 1000"


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
def test_ag_news_reader_fail_names_file_line_and_reason(tmp_path: Path, reason: str):
    files = write_ag(tmp_path, ag_rows(1) + MULTI_LINE + BAD_ROWS[reason] + ag_rows(1), ag_rows(1))
    with pytest.raises(DataError, match=rf"train\.csv:7: malformed record \({reason}\)"):
        read_ag_news(files, AG_CLASSES, "fail")


def test_ag_news_csv_syntax_error_is_always_fatal(tmp_path: Path):
    files = write_ag(tmp_path, ag_rows(1) + '"1","bad "quote" here","x"\n', ag_rows(1))
    with pytest.raises(DataError, match=r"train\.csv:5: not valid CSV"):
        read_ag_news(files, AG_CLASSES, "drop")


def test_ag_news_invalid_utf8_is_counted(tmp_path: Path):
    files = write_ag(tmp_path, "", ag_rows(1))
    files["train"].write_bytes(ag_rows(1).encode() + b'"1","caf\xe9","x"\n')
    frame, problems = read_ag_news(files, AG_CLASSES, "drop")
    assert problems == Counter(bad_encoding=1) and len(frame) == 8


@pytest.mark.skipif(not (SHARED_DATA / "ag_news" / "test.csv").is_file(), reason="no local data mirror")
def test_real_ag_news_test_csv():
    path = SHARED_DATA / "ag_news" / "test.csv"
    ids, texts, labels, raw = agnews.read_file(path, agnews.ROLE_OFFSETS["test"], 4, Malformed("fail"))
    assert len(ids) == 7600 and ids[1] == 10_000_001 and len(raw) == 7600
    assert Counter(labels) == dict.fromkeys(range(4), 1900)
    assert "second team of rocketeers" in texts[1] and "$10 million" in texts[1]
    assert "\\" not in texts[1] and "#36;" not in texts[1]
    # what seeds 000 / 002 read: title + " " + description as the release stores it
    assert "#36;10 million" in raw[1] and "\\" in raw[1]
    with open(path, encoding="utf-8", newline="") as fh:
        first = next(csv.reader(fh))
    assert raw[0] == f"{first[1]} {first[2]}"


def test_raw_text_tokenizer_reads_the_text_before_the_reader_cleaned_it(tmp_path: Path):
    from textclf.text.encode import encode_prepared
    from textclf.text.vocab import vocab_from_prepared

    raw = tmp_path / "raw"
    write_ag(raw, ag_rows(6), ag_rows(4) + '"2","Rally","It #39;s up #36;5\\again"\n')  # a test row
    prepare_dataset(params_with(ag=ag_dataset()), "ag", raw, tmp_path / "out")
    frames = pd.concat(read_split(tmp_path / "out", s) for s in ("train", "val", "test"))
    row = frames[frames["text"].str.startswith("Rally")].iloc[0]
    assert row["text"] == "Rally It 's up $5 again" and row["raw_text"] == "Rally It #39;s up #36;5\\again"
    cfg = {"tokenizer": {"name": "basic_english"}, "min_freq": 1, "source": "train+test"}
    clean = vocab_from_prepared(tmp_path / "out", cfg)
    as_stored = vocab_from_prepared(tmp_path / "out", {**cfg, "tokenizer": {"name": "basic_english", "raw_text": True}})
    assert "#39" in as_stored.stoi and "#39" not in clean.stoi and "$5" in clean.stoi
    encode_prepared(tmp_path / "out", as_stored, {**cfg, "tokenizer": {"name": "basic_english", "raw_text": True}},
                    tmp_path / "enc")
    ids = pq.read_table(tmp_path / "enc" / "test.parquet").column("ids").to_pylist()
    tokens = {tuple(as_stored.itos[i] for i in row) for row in ids}
    assert any("#39" in t for t in tokens)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f"], ids=["NUL", "ESC", "DEL"])
def test_ag_news_control_character_fails_with_file_and_line(tmp_path: Path, char: str):
    """Issue 10.2: a NUL (or another control character) inside a field is a malformed record."""
    bad = f'"2","t{char}x","d"\n'
    files = write_ag(tmp_path, ag_rows(1) + MULTI_LINE + bad + ag_rows(1), ag_rows(1))
    code = re.escape(f"U+{ord(char):04X}")
    with pytest.raises(DataError, match=rf"train\.csv:7: malformed record \(control_character\): "
                                        rf"title holds control character {code}"):
        read_ag_news(files, AG_CLASSES, "fail")
    frame, problems = read_ag_news(files, AG_CLASSES, "drop")
    assert problems == Counter(control_character=1)
    assert len(frame) == (4 + 1 + 4) + 4 and not frame["text"].str.contains(char, regex=False).any()


def test_ag_news_nul_in_description_is_dropped_and_counted_in_stats(tmp_path: Path):
    raw = tmp_path / "raw"
    write_ag(raw, ag_rows(4) + '"1","title","de\x00sc"\n', ag_rows(2))
    stats = prepare_dataset(params_with(ag=ag_dataset()), "ag", raw, tmp_path / "out")
    assert stats["malformed"] == {"control_character": 1}
    texts = pd.concat(read_split(tmp_path / "out", s)["text"] for s in ("train", "val", "test"))
    assert not texts.str.contains("\x00", regex=False).any()


def test_empty_ag_news_file_names_the_file_and_the_command(tmp_path: Path):
    """Issue 10.8: not "cannot carve the validation split ... of 0 rows"."""
    raw = tmp_path / "raw"
    write_ag(raw, "", ag_rows(2))
    with pytest.raises(DataError) as err:
        prepare_dataset(params_with(ag=ag_dataset()), "ag", raw, tmp_path / "out")
    msg = str(err.value)
    assert f"{raw / 'ag_news' / 'train.csv'}: empty file (0 bytes, no CSV records)" in msg
    assert f"re-download it: {DOWNLOAD.format('ag_news/train.csv')}" in msg
    assert "carve" not in msg


# --- aclImdb reader -----------------------------------------------------------------------


def test_aclimdb_reader_streams_labelled_reviews_only(imdb_raw: Path):
    frame, problems = read_aclimdb({"archive": imdb_raw / "imdb" / "aclImdb_v1.tar.gz"}, ["neg", "pos"], "drop")
    assert problems == Counter()
    assert len(frame) == 80 and frame["id"].is_monotonic_increasing
    assert frame.groupby(["split", "label"]).size().tolist() == [20] * 4
    assert not frame["text"].str.contains("unlabelled|readme").any()
    row = frame.set_index("id").loc[review_id("test", 1, 6)]  # aclImdb/test/pos/6_9.txt
    assert review_id("test", 1, 6) == 11_000_006
    assert (row["split"], row["label"]) == ("test", 1)
    assert row["text"] == "test pos review 2<br /><br />caf\u00e9 w w "
    # Order = (split, label, numeric file id): train/neg/0, 3, 6, ...
    assert frame["id"].tolist()[:3] == [0, 3, 6]


def test_aclimdb_reader_malformed_members(tmp_path: Path, caplog):
    members = imdb_members(3) | {"aclImdb/train/neg/notes.txt": b"x", "aclImdb/test/pos/999_8.txt": b"\xff\xfe",
                                 "aclImdb/test/neg/998_2.txt": b"  \n"}
    archive = make_tar(tmp_path / "a.tar.gz", members)
    with caplog.at_level(logging.WARNING, logger="textclf"):
        frame, problems = read_aclimdb({"archive": archive}, ["neg", "pos"], "drop")
    assert problems == Counter(bad_file_name=1, bad_encoding=1, empty_text=1)
    assert len(frame) == 12 and "aclImdb/test/pos/999_8.txt: malformed record (bad_encoding)" in caplog.text
    with pytest.raises(DataError, match=r"a\.tar\.gz:aclImdb/\w+/\w+/\S+: malformed record"):
        read_aclimdb({"archive": archive}, ["neg", "pos"], "fail")


def test_aclimdb_reader_rejects_a_truncated_archive(imdb_raw: Path, tmp_path: Path):
    data = (imdb_raw / "imdb" / "aclImdb_v1.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    for size in range(len(data) // 4, len(data), len(data) // 8):  # cuts inside and between members
        cut.write_bytes(data[:size])
        with pytest.raises(DataError, match=r"cut\.tar\.gz: not a readable \.tar\.gz"):
            read_aclimdb({"archive": cut}, ["neg", "pos"], "drop")
    cut.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable"):
        read_aclimdb({"archive": cut}, ["neg", "pos"], "drop")


def test_imdb_archive_without_test_reviews_names_the_archive(tmp_path: Path):
    """Issue 10.8: not "split 'test' is empty"."""
    members = {k: v for k, v in imdb_members(3).items() if "/test/" not in k}
    raw = tmp_path / "raw"
    archive = make_tar(raw / "imdb" / "aclImdb_v1.tar.gz", members)
    with pytest.raises(DataError) as err:
        prepare_dataset(params_with(d=imdb_dataset()), "d", raw, tmp_path / "out")
    msg = str(err.value)
    assert f"{archive}: no reviews under aclImdb/test/neg/, aclImdb/test/pos/" in msg
    assert "train/neg 3, train/pos 3" in msg
    assert f"re-download it: {DOWNLOAD.format('imdb/aclImdb_v1.tar.gz')}" in msg and "is empty" not in msg


def test_truncated_archive_error_says_how_to_redownload(imdb_raw: Path, tmp_path: Path):
    archive = imdb_raw / "imdb" / "aclImdb_v1.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(DataError) as err:
        prepare_dataset(params_with(d=imdb_dataset()), "d", imdb_raw, tmp_path / "out")
    msg = str(err.value)
    assert f"{archive}: not a readable .tar.gz" in msg
    assert f"re-download it: {DOWNLOAD.format('imdb/aclImdb_v1.tar.gz')}" in msg


def test_raw_file_no_longer_matching_its_checksum_is_refused(tmp_path: Path, monkeypatch):
    """Issue 10.3: a raw file verified against a wrong mirror SHA256SUMS stays untrusted once the
    mirror is fixed: prepare re-checks it and names the command that re-downloads it, and that
    command (run on the job files the plan writes) fetches the fixed file."""
    params = params_with(ag=ag_dataset())
    monkeypatch.chdir(tmp_path)  # a project: data/raw/, jobs/
    mirror = tmp_path / "mirror"
    write_ag(mirror, ag_rows(4), ag_rows(2))
    good = (mirror / "ag_news" / "train.csv").read_bytes()
    (mirror / "ag_news" / "train.csv").write_bytes(good[:40])  # truncated, and listed as such:
    (mirror / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256((mirror / 'ag_news' / n).read_bytes()).hexdigest()}  ag_news/{n}\n"
        for n in ("train.csv", "test.csv")))
    monkeypatch.setenv("TEXTCLF_MIRROR", str(mirror))
    raw = tmp_path / "data" / "raw"
    for name in ("train.csv", "test.csv"):
        spec = params["downloads"]["ag_news"][name]
        fetch(spec["url"], raw / "ag_news" / name, sha256=spec["sha256"], group="ag_news",
              progress=False)
    (mirror / "ag_news" / "train.csv").write_bytes(good)  # the mirror is fixed
    (mirror / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256((mirror / 'ag_news' / n).read_bytes()).hexdigest()}  ag_news/{n}\n"
        for n in ("train.csv", "test.csv")))
    with pytest.raises(ChecksumError) as err:
        prepare_dataset(params, "ag", raw, tmp_path / "out")
    msg = str(err.value)
    assert f"{raw / 'ag_news' / 'train.csv'} is no longer trusted" in msg
    assert hashlib.sha256(good).hexdigest() in msg
    command = DOWNLOAD.format("ag_news/train.csv")
    assert f"re-download it: {command}" in msg
    assert not (tmp_path / "out").exists()
    # the command works as named: the download job file fetches the fixed mirror file again
    Plan(params).write_job_files(tmp_path)
    script, job = command.split()[1:]
    load_script(script).main([job])
    assert (raw / "ag_news" / "train.csv").read_bytes() == good
    prepare_dataset(params, "ag", raw, tmp_path / "out")


def test_broken_file_that_passed_a_wrong_checksum_says_to_fix_the_checksum(tmp_path, monkeypatch):
    """Issue 10.3: a truncated archive verified against a wrong mirror SHA256SUMS: the
    re-download command alone would find it 'up to date', so the message says so."""
    params = params_with(d=imdb_dataset())
    mirror = tmp_path / "mirror"
    whole = make_tar(mirror / "imdb" / "aclImdb_v1.tar.gz", imdb_members(3)).read_bytes()
    (mirror / "imdb" / "aclImdb_v1.tar.gz").write_bytes(whole[:-300])
    cut_sha = hashlib.sha256(whole[:-300]).hexdigest()
    (mirror / "SHA256SUMS").write_text(f"{cut_sha}  imdb/aclImdb_v1.tar.gz\n")
    monkeypatch.setenv("TEXTCLF_MIRROR", str(mirror))
    raw = tmp_path / "raw"
    spec = params["downloads"]["imdb"]["aclImdb_v1.tar.gz"]
    fetch(spec["url"], raw / "imdb" / "aclImdb_v1.tar.gz", sha256=spec["sha256"], group="imdb",
          progress=False)
    with pytest.raises(DataError) as err:
        prepare_dataset(params, "d", raw, tmp_path / "out")
    msg = str(err.value)
    assert f"{raw / 'imdb' / 'aclImdb_v1.tar.gz'}: not a readable .tar.gz" in msg
    assert f"re-download it: {DOWNLOAD.format('imdb/aclImdb_v1.tar.gz')}" in msg
    assert f"sha256 {cut_sha}, passed the checksum in {mirror / 'SHA256SUMS'}" in msg
    assert "correct it first" in msg


# --- splits and outputs --------------------------------------------------------------------


def test_prepare_official_split_outputs_and_stats(ag_raw: Path, tmp_path: Path):
    out = tmp_path / "prepared" / "ag"
    stats = prepare_dataset(params_with(ag=ag_dataset()), "ag", ag_raw, out)
    splits = {name: read_split(out, name) for name in ("train", "val", "test")}
    schema = pq.read_schema(out / "train.parquet")
    assert [(f.name, f.type) for f in schema] == [("id", pa.int64()), ("text", pa.string()), ("label", pa.int64()),
                                                  ("raw_text", pa.string())]  # AG News keeps its raw text
    # official: test = test.csv; val = stratified 25 % of train.csv's 83 good rows.
    assert splits["test"]["id"].min() == 10_000_000 and len(splits["test"]) == 20
    assert len(splits["val"]) == 21 and len(splits["train"]) == 62
    assert set(splits["val"]["label"].value_counts()) == {5, 6}  # stratified: ~25 % of 20-21 per class
    assert splits["train"]["id"].max() < 10_000_000
    assert not set(splits["train"]["id"]) & set(splits["val"]["id"])
    for part in splits.values():
        assert part["id"].is_monotonic_increasing

    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk == stats
    assert stats["classes"] == AG_CLASSES
    assert stats["rows"] == {"train": 62, "val": 21, "test": 20}
    assert stats["rows_per_class"]["test"] == dict.fromkeys(AG_CLASSES, 5)
    assert sum(stats["rows_per_class"]["val"].values()) == 21
    assert stats["malformed"] == dict.fromkeys(AG_BAD, 1)
    assert stats["split"] == "official" and stats["split_params"]["seed"] == 3
    assert stats["token_length_quantiles"]["test"] == {"p50": 6.0, "p90": 6.0, "p99": 6.0, "max": 6}


def test_same_seed_gives_byte_identical_outputs(imdb_raw: Path, tmp_path: Path):
    params = params_with(d=imdb_dataset())
    first, second = tmp_path / "a", tmp_path / "b"
    prepare_dataset(params, "d", imdb_raw, first)
    prepare_dataset(params, "d", imdb_raw, second)
    for name in ("train.parquet", "val.parquet", "test.parquet", "stats.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    other = tmp_path / "c"
    prepare_dataset(params_with(d=imdb_dataset(seed=4)), "d", imdb_raw, other)
    assert read_split(other, "val")["id"].tolist() != read_split(first, "val")["id"].tolist()


def test_resplit_pools_and_carves_stratified_test_then_val(imdb_raw: Path, tmp_path: Path):
    params = params_with(d=imdb_dataset(policy="resplit", test_fraction=0.25, val_fraction=0.125))
    stats = prepare_dataset(params, "d", imdb_raw, tmp_path / "out")
    assert stats["rows"] == {"train": 52, "val": 8, "test": 20}  # 80 -> 20 test; 60 -> 8 val
    assert stats["rows_per_class"]["test"] == {"neg": 10, "pos": 10}
    assert stats["rows_per_class"]["val"] == {"neg": 4, "pos": 4}
    test_ids = read_split(tmp_path / "out", "test")["id"]
    assert (test_ids < 10_000_000).any() and (test_ids >= 10_000_000).any()  # pooled


def test_val_from_test_policy_keeps_all_of_train_and_carves_val_out_of_test(imdb_raw: Path, tmp_path: Path):
    # seed 004: "split the data set first train and test and then ... divide test data into
    # validation and test sets"
    params = params_with(d=imdb_dataset(policy="official_val_from_test", val_fraction=0.25))
    stats = prepare_dataset(params, "d", imdb_raw, tmp_path / "out")
    assert stats["rows"] == {"train": 40, "val": 10, "test": 30}
    assert stats["rows_per_class"]["val"] == {"neg": 5, "pos": 5}
    official = prepare_dataset(params_with(d=imdb_dataset(val_fraction=0.25)), "d", imdb_raw, tmp_path / "o")
    train, val, test = (read_split(tmp_path / "out", n)["id"] for n in ("train", "val", "test"))
    official_test = read_split(tmp_path / "o", "test")["id"]
    assert official["rows"]["test"] == 40
    assert sorted([*val, *test]) == sorted(official_test)  # val and test partition the official test
    assert not set(train) & set(official_test)


def test_zero_val_fraction_gives_an_empty_val_split(imdb_raw: Path, tmp_path: Path):
    stats = prepare_dataset(params_with(d=imdb_dataset(val_fraction=0)), "d", imdb_raw, tmp_path / "out")
    assert stats["rows"] == {"train": 40, "val": 0, "test": 40}
    assert stats["token_length_quantiles"]["val"]["p50"] is None
    assert read_split(tmp_path / "out", "val").empty
    resplit = prepare_dataset(params_with(d=imdb_dataset(policy="resplit", test_fraction=0.25, val_fraction=0)),
                              "d", imdb_raw, tmp_path / "r")
    assert resplit["rows"] == {"train": 60, "val": 0, "test": 20}  # cells_imdb: 80 % / 20 %, no val


def test_empty_split_and_missing_class_are_errors(tmp_path: Path):
    params = params_with(ag=ag_dataset())
    write_ag(tmp_path / "r1", ag_rows(4), '"9","a","b"\n')  # test.csv: only a dropped row
    with pytest.raises(DataError, match=r"r1/ag_news/test\.csv: none of its 1 record\(s\) is usable"):
        prepare_dataset(params, "ag", tmp_path / "r1", tmp_path / "o1")
    write_ag(tmp_path / "r2", ag_rows(4), '"1","a","b"\n"2","c","d"\n')
    with pytest.raises(DataError, match=r"split 'test' has no rows of class\(es\) \['Business', 'Sci/Tech'\]"):
        prepare_dataset(params, "ag", tmp_path / "r2", tmp_path / "o2")
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_too_few_rows_to_stratify_is_a_data_error():
    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["a", "b", "c"], "label": [0, 1, 1], "split": ["train"] * 3})
    with pytest.raises(DataError, match="cannot carve the validation split"):
        split_frame(frame, {"policy": "official", "val_fraction": 0.5, "seed": 0})


def test_missing_raw_file_names_path_and_remedy(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"imdb/aclImdb_v1\.tar\.gz.*download.*TEXTCLF_MIRROR") as err:
        prepare_dataset(params_with(d=imdb_dataset()), "d", tmp_path / "raw", tmp_path / "out")
    assert str(tmp_path / "raw" / "imdb" / "aclImdb_v1.tar.gz") in str(err.value)
    assert DOWNLOAD.format("imdb/aclImdb_v1.tar.gz") in str(err.value)  # a command that exists


# --- command line --------------------------------------------------------------------------


def load_script(path: str = "workflow/scripts/prepare.py"):
    spec = importlib.util.spec_from_file_location(Path(path).stem + "_script", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_params(tmp_path: Path, **datasets: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params_with(**datasets), sort_keys=False))
    return path


def test_cli_prepares_and_prints_summary(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a project: data/raw/, jobs/ (the job file the plan writes)
    make_tar(tmp_path / "data" / "raw" / "imdb" / "aclImdb_v1.tar.gz", imdb_members(20))
    Plan(params_with(imdb=imdb_dataset())).write_job_files(tmp_path)
    job = json.loads((tmp_path / "jobs" / "prepare" / "imdb.json").read_text())
    assert job["raw"] == {"archive": "data/raw/imdb/aclImdb_v1.tar.gz"} and "imdb" in job["downloads"]
    out = tmp_path / job["out"]
    load_script().main(["jobs/prepare/imdb.json"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("prepared imdb: 30 train / 10 val / 40 test rows, 0 malformed dropped, ")
    assert sorted(p.name for p in out.iterdir()) == ["stats.json", "test.parquet", "train.parquet", "val.parquet"]


def test_cli_missing_job_file_exits_2(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_stage(load_script().main, [str(tmp_path / "nope.json")])
    assert exit_info.value.code == 2
    assert "nope.json: job file not found" in capsys.readouterr().err
