"""`dvc exp run -S` rewrites the whole params.yaml; the jobs stage puts the committed layout back
with only the changed values edited (src/textclf/params_layout.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from helpers import REPO
from textclf.params_layout import edit_in_place, restore_layout


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose committed params.yaml is the project's own."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    _git(tmp_path, "add", "params.yaml")
    _git(tmp_path, "commit", "-qm", "params")
    return tmp_path


def _changed_lines(root: Path) -> list[str]:
    diff = _git(root, "diff", "-U0", "params.yaml").splitlines()
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_dvc_set_param_rewrite_is_undone_but_the_value_kept(repo):
    path = repo / "params.yaml"
    apply_overrides(str(path), ["studies.smoke_imdb.set.model.hidden=128", "training.optimizer.eps=1e-7",
                                "run.studies=[smoke_imdb,baselines]"])
    assert len(_changed_lines(repo)) > 100  # what DVC's -S does to the file on its own
    rewritten = yaml.safe_load(path.read_text())
    assert restore_layout(path)
    assert _changed_lines(repo) == [
        "-  studies: all            # studies that reports/summary.md covers: \"all\" or a list of names",
        "+  studies: [smoke_imdb, baselines]            # studies that reports/summary.md covers: \"all\" or a "
        "list of names",
        "-  optimizer: {name: adam, lr: 0.001, momentum: 0.0, weight_decay: 0.0, eps: 1.0e-8}",
        "+  optimizer: {name: adam, lr: 0.001, momentum: 0.0, weight_decay: 0.0, eps: 1.0e-7}",
        "-      model: {hidden: 64, pooling: max, embedding: {source: glove50, dim: 50}}",
        "+      model: {hidden: 128, pooling: max, embedding: {source: glove50, dim: 50}}",
    ]
    restored = yaml.safe_load(path.read_text())
    assert restored["training"]["optimizer"]["eps"] == 1.0e-7  # a float for PyYAML too
    assert restored["studies"] == {**rewritten["studies"]}
    assert not restore_layout(path)  # nothing left to undo


def test_a_hand_edit_is_left_as_it_is(repo):
    path = repo / "params.yaml"
    text = path.read_text().replace("  quick: false ", "  quick: true  ") + "# a note\n"
    path.write_text(text)
    assert not restore_layout(path)
    assert path.read_text() == text


def test_a_change_that_cannot_be_written_in_place_is_refused():
    text = "a:\n  - 1\n  - 2\nb: {c: 1}\n"
    assert edit_in_place(text, {"a": [1, 2, 3], "b": {"c": 1}}) is None  # a block list grew
    assert edit_in_place(text, {"a": [1, 5], "b": {"c": 2}}) == "a:\n  - 1\n  - 5\nb: {c: 2}\n"
