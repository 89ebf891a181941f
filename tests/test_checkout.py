"""The commit a run records and a report names: HEAD, plus whether the code that matters differs."""

from __future__ import annotations

import subprocess

import pytest

from textclf.checkout import commit_state
from textclf.published import git_commit
from textclf.report.build import source_commit


def _git(root, *args):
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@x", "GIT_CONFIG_GLOBAL": "/dev/null"}.items():
        monkeypatch.setenv(key, value)
    _git(tmp_path, "init", "-q")
    for name in ("src/a.py", "reports/summary.md", "requirements.lock"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_clean_checkout_names_its_head(checkout):
    head = _git(checkout, "rev-parse", "--short", "HEAD")
    assert commit_state(["src"], checkout) == (head, False)
    assert git_commit(checkout) == head
    assert source_commit() == f"commit {head}"


def test_only_tracked_changes_under_the_pathspecs_make_it_dirty(checkout):
    head = _git(checkout, "rev-parse", "--short", "HEAD")
    (checkout / "src" / "new.py").write_text("untracked\n")
    (checkout / "reports" / "summary.md").write_text("re-rendered\n")
    assert git_commit(checkout) == head  # an untracked file and a report are not the code
    assert source_commit() == f"commit {head}"
    (checkout / "requirements.lock").write_text("torch==0\n")
    assert git_commit(checkout) == f"{head}+dirty"
    assert source_commit() == f"commit {head} + uncommitted changes"
    _git(checkout, "add", "requirements.lock")  # staged counts too
    assert commit_state(["requirements.lock"], checkout) == (head, True)
    (checkout / "requirements.lock").write_text("x\n")  # staged, then put back: the code is HEAD's
    assert commit_state(["requirements.lock"], checkout) == (head, False)


def test_asking_does_not_write_the_index(checkout):
    """Training jobs ask in parallel beside the user's git commands: no index lock, no rewrite."""
    (checkout / "src" / "a.py").write_text("edited\n")
    index = checkout / ".git" / "index"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    assert commit_state(["src"], checkout)[1] is True
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


def test_outside_git_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert commit_state(["."], tmp_path) is None
    assert git_commit(tmp_path) is None
    assert source_commit() == "not a git checkout"
