"""Atomic writers: a failure leaves the previous file intact and no temporary behind."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

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


# ---------------------------------------------------------------- leftovers of killed writers

@contextmanager
def _writer_inside_its_temporary(code: str, flag: Path):
    """Run `code` (a writer that touches `flag` once its temporary exists, then sleeps) in a
    child process; yield while it is alive there, SIGKILL it on the way out."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert child.poll() is None and time.monotonic() < deadline, "writer did not start"
            time.sleep(0.02)
        yield
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)


def _killed_writer(tmp_path, target, kind: str) -> None:
    """Run a writer in a child process and SIGKILL it while its temporary exists."""
    flag = tmp_path / f"flag-{kind}"
    code = f"""
        import time
        from pathlib import Path
        from textclf import atomic
        if {kind!r} == "dir":
            ctx = atomic.atomic_dir({str(target)!r})
        else:
            ctx = atomic.atomic_path({str(target)!r})
        with ctx as tmp:
            (tmp / "half" if {kind!r} == "dir" else tmp).write_text("half")
            Path({str(flag)!r}).touch()
            time.sleep(60)
    """
    with _writer_inside_its_temporary(code, flag):
        pass


def _leftovers(folder, name):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_temp_of_a_killed_writer_is_removed_by_the_next_write(tmp_path, kind):
    """Issue 10.9: after SIGKILL during encode, a .tmp directory stayed forever."""
    target = tmp_path / "out" / ("encoded" if kind == "dir" else "x.json")
    _killed_writer(tmp_path, target, kind)
    assert len(_leftovers(target.parent, target.name)) == 1  # what the kill leaves behind
    if kind == "dir":
        with atomic.atomic_dir(target) as tmp:
            (tmp / "a").write_text("1")
        assert sorted(p.name for p in target.iterdir()) == ["a"]
    else:
        atomic.write_text(target, "whole")
        assert target.read_text() == "whole"
    assert _leftovers(target.parent, target.name) == []


def test_temp_of_a_live_writer_is_kept(tmp_path):
    target = tmp_path / "encoded"
    flag = tmp_path / "flag"
    code = f"""
        import time
        from pathlib import Path
        from textclf import atomic
        with atomic.atomic_dir({str(target)!r}) as tmp:
            Path({str(flag)!r}).touch()
            time.sleep(60)
    """
    with _writer_inside_its_temporary(code, flag):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "a").write_text("1")
        assert len(_leftovers(tmp_path, "encoded")) == 1  # the live writer's, untouched


def test_old_style_leftovers_are_removed_once_old(tmp_path):
    """Temporaries named before writers recorded their process (`.<name>.<random>.tmp`)."""
    target = tmp_path / "encoded"
    old, fresh = tmp_path / ".encoded.k3j4h5g6.tmp", tmp_path / ".encoded.a1b2c3d4.tmp"
    old.mkdir()
    fresh.mkdir()
    (tmp_path / ".encoded.old").mkdir()
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    os.utime(tmp_path / ".encoded.old", (past, past))
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert _leftovers(tmp_path, "encoded") == [".encoded.a1b2c3d4.tmp"]
