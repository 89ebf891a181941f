"""Atomic writers: a failure leaves the previous file intact and no temporary behind."""

import json
import os

import pandas as pd
import pytest

from textclf import atomic


def test_write_json_is_stable_and_readable(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic.write_json(target, {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert target.read_text().startswith('{\n  "a"')
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "x.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_atomic_dir_replaces_whole_directory(tmp_path):
    target = tmp_path / "out"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic.atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_parquet_roundtrip(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "text": ["a", "b"]})
    atomic.write_parquet(tmp_path / "x.parquet", frame)
    assert pd.read_parquet(tmp_path / "x.parquet").equals(frame)
