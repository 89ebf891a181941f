"""Both engines end to end on a tiny synthetic project: Snakemake and DVC build the same files,
a second run does nothing, a parameter change reruns only what reads it, the engines agree,
and `dvc exp run -S` / `dvc exp show --json` work.

The project is a temporary copy of this repository with a params.yaml that points the
download stage at small files the test writes (file:// URLs with their real sha256).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO, real_params

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
COPY = ["Snakefile", "workflow", "src", "profiles", "pyproject.toml", ".dvcignore"]
TOPICS = [["market", "stocks", "profit", "bank"], ["match", "goal", "team", "coach"],
          ["election", "minister", "war", "treaty"], ["software", "chip", "internet", "robot"]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _agnews_csv(rng: np.random.Generator, rows: int) -> str:
    out = io.StringIO()
    for _ in range(rows):
        label = int(rng.integers(0, 4))
        words = list(rng.choice(TOPICS[label], 3)) + list(rng.choice(sum(TOPICS, []), 3))
        rng.shuffle(words)
        out.write(f'"{label + 1}","{words[0]} news","{" ".join(words)} today"\n')
    return out.getvalue()


def _glove_zip(path: Path) -> None:
    rng = np.random.default_rng(3)
    words = sorted({w for t in TOPICS for w in t} | {"news", "today"})
    lines = [w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=8)) for w in words]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny.8d.txt", "\n".join(lines) + "\n")


def _tiny_params(upstream: Path) -> dict:
    params = real_params()
    files = {"train.csv": upstream / "train.csv", "test.csv": upstream / "test.csv"}
    params["downloads"] = {
        "tiny": {name: {"url": path.as_uri(), "sha256": _sha256(path)} for name, path in files.items()},
        "vectors": {"tiny.zip": {"url": (upstream / "tiny.zip").as_uri(), "sha256": _sha256(upstream / "tiny.zip")}},
    }
    params["datasets"] = {"tiny": {
        "reader": "ag_news_csv", "files": {"train": "tiny/train.csv", "test": "tiny/test.csv"},
        "classes": ["Business", "Sports", "World", "Sci/Tech"],
        "split": {"policy": "official", "val_fraction": 0.2, "seed": 1}, "on_malformed": "drop"}}
    params["vocabs"] = {"v": {"tokenizer": {"name": "basic_english"}, "min_freq": 1, "max_size": None,
                              "source": "train"}}
    params["embeddings"] = {"tglove": {"type": "glove", "archive": "vectors/tiny.zip", "member": "tiny.8d.txt",
                                       "dim": 8, "oov_init": "zeros", "seed": 0}}
    params["training"].update({"epochs": 2, "batch_size": 16, "max_len": 16, "device": "cpu"})
    params["studies"] = {
        "tiny": {"datasets": ["tiny"], "vocab": "v", "model": "lstm_base",
                 "set": {"model": {"hidden": 8, "embedding": {"dim": 8}}},
                 "variants": {"lstm": {},
                              "gru-glove": {"model": {"cell": "gru", "embedding": {"source": "tglove", "dim": 8}}}},
                 "reference": {"lstm": 0.5}},
        "base": {"datasets": ["tiny"], "model": "tfidf_logreg", "variants": {"tfidf": {"model": {"min_df": 1}}}},
    }
    params["run"] = {"studies": "all", "quick": False}
    return params


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTCLF_MIRROR", "TEXTCLF_DEVICE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONHASHSEED"] = "0"
    return env


def run(cwd: Path, *cmd: str, ok: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}")
    return output


def make_project(root: Path, upstream: Path) -> Path:
    root.mkdir()
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(_tiny_params(upstream), sort_keys=False))
    (root / ".gitignore").write_text((REPO / ".gitignore").read_text())
    run(root, "git", "init", "-q")
    run(root, "git", "config", "user.email", "ci@example.invalid")
    run(root, "git", "config", "user.name", "ci")
    run(root, str(BIN / "dvc"), "init", "-q")
    run(root, str(BIN / "dvc"), "config", "core.analytics", "false")
    run(root, str(BIN / "textclf"), "dvc-yaml")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "tiny project")
    return root


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Path:
    up = tmp_path_factory.mktemp("upstream")
    rng = np.random.default_rng(0)
    (up / "train.csv").write_text(_agnews_csv(rng, 240))
    (up / "test.csv").write_text(_agnews_csv(rng, 80))
    _glove_zip(up / "tiny.zip")
    return up


def snakemake(root: Path, *args: str, ok: bool = True) -> str:
    return run(root, str(BIN / "snakemake"), "--cores", "2", *args, ok=ok)


def dry_run_rules(root: Path) -> dict[str, int]:
    """Rule -> job count of what Snakemake would run now."""
    out = snakemake(root, "-n", "reports/summary.md")
    if "Nothing to be done" in out:
        return {}
    stats = out[out.index("Job stats:"):]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))
    return {k: int(v) for k, v in counts.items() if k != "total"}


def dvc_changed(root: Path) -> set[str]:
    """Stage families DVC considers changed (train__tiny__tiny__lstm -> train)."""
    status = json.loads(run(root, str(BIN / "dvc"), "status", "--json"))
    return {name.split("__")[0] for name in status}


@contextlib.contextmanager
def restored_params(root: Path):
    """Let a test edit params.yaml; put the original back afterwards (the project is shared)."""
    original = (root / "params.yaml").read_text()

    def reset() -> None:
        (root / "params.yaml").write_text(original)

    try:
        yield reset
    finally:
        reset()


def set_param(root: Path, dotted: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def snake_project(tmp_path_factory, upstream) -> Path:
    root = make_project(tmp_path_factory.mktemp("snake") / "proj", upstream)
    snakemake(root, "reports/summary.md")
    return root


def test_snakemake_builds_everything(snake_project):
    root = snake_project
    for split in ("train", "val", "test"):
        assert (root / f"data/prepared/tiny/{split}.parquet").exists()
    assert (root / "data/embeddings/tiny/v/tglove.npy").exists()
    summary = json.loads((root / "reports/summary.json").read_text())
    assert summary["tiny"]["variants_done"] == 2 and summary["base"]["variants_done"] == 1
    metrics = json.loads((root / "results/tiny/tiny/lstm/metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n_test"] == 80
    assert "| lstm |" in (root / "reports/summary.md").read_text()


def test_snakemake_second_run_does_nothing(snake_project):
    assert dry_run_rules(snake_project) == {}


def test_snakemake_param_changes_rerun_only_dependents(snake_project):
    root = snake_project
    with restored_params(root) as reset:
        set_param(root, "datasets.tiny.split.val_fraction", 0.25)
        rules = dry_run_rules(root)
        assert "download" not in rules and rules.get("prepare") == 1 and rules.get("train") == 3

        reset()
        set_param(root, "vocabs.v.min_freq", 2)
        rules = dry_run_rules(root)
        assert set(rules) == {"vocab", "encode", "embeddings", "train", "report"}, rules
        assert rules["train"] == 2  # the TF-IDF baseline does not read the vocabulary

        reset()
        set_param(root, "studies.tiny.variants.lstm", {"model": {"hidden": 12}})
        assert dry_run_rules(root) == {"train": 1, "report": 1}
    assert dry_run_rules(root) == {}


def test_snakemake_config_selection_and_bad_override(snake_project):
    out = snakemake(snake_project, "-n", "reports/summary.md", "--config", "studies=[base]")
    assert "Nothing to be done" in out or "report" in out
    out = snakemake(snake_project, "-n", "reports/summary.md", "--config", "studies=[nope]", ok=False)
    assert "unknown study name(s) ['nope']" in out
    out = snakemake(snake_project, "-n", "--config", "training={epochs: 3}", ok=False)
    assert "--config may only set" in out


def test_snakemake_html_report_has_figures(snake_project):
    snakemake(snake_project, "--report", "reports/report.html")
    html = (snake_project / "reports/report.html").read_text(errors="replace")
    assert "tiny_curves.png" in html and "Figures" in html


def test_failed_job_still_writes_a_partial_report(tmp_path_factory, upstream):
    root = make_project(tmp_path_factory.mktemp("fail") / "proj", upstream)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["downloads"]["tiny"]["train.csv"]["sha256"] = "0" * 64  # a corrupt download
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = snakemake(root, "--keep-going", "reports/summary.md", ok=False)
    assert "ChecksumError" in out and "expected" in out
    assert not (root / "data/raw/tiny/train.csv").exists()
    partial = (root / "reports/partial/summary.md").read_text()
    assert "**Missing or failed**" in partial and "`tiny/tiny/lstm` (missing)" in partial


def test_dvc_adopts_snakemake_outputs_after_commit(snake_project):
    root = snake_project
    run(root, str(BIN / "dvc"), "commit", "-f", "-q")
    assert dvc_changed(root) == set()
    assert "Nothing to be done" in snakemake(root, "-n", "reports/summary.md")


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory, upstream) -> Path:
    root = make_project(tmp_path_factory.mktemp("dvc") / "proj", upstream)
    run(root, str(BIN / "dvc"), "repro")
    return root


def test_dvc_repro_builds_and_then_is_clean(dvc_project):
    root = dvc_project
    assert (root / "reports/summary.md").exists()
    assert dvc_changed(root) == set()
    assert "Data and pipelines are up to date" in run(root, str(BIN / "dvc"), "repro")


def test_dvc_plots_render(dvc_project):
    run(dvc_project, str(BIN / "dvc"), "plots", "show", "-o", "plots_out")
    html = (dvc_project / "plots_out" / "index.html").read_text()
    assert "val_accuracy" in html or "validation accuracy" in html


def test_snakemake_has_nothing_to_do_after_dvc(dvc_project):
    assert dry_run_rules(dvc_project) == {}


def test_dvc_param_changes_rerun_only_dependents(dvc_project):
    root = dvc_project
    with restored_params(root) as reset:
        set_param(root, "vocabs.v.min_freq", 2)
        assert dvc_changed(root) == {"vocab", "encode"}  # downstream follows once they rerun
        reset()
        set_param(root, "datasets.tiny.split.val_fraction", 0.25)
        assert dvc_changed(root) == {"prepare"}
    assert dvc_changed(root) == set()


def test_dvc_experiment_run_and_show(dvc_project):
    root = dvc_project
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "baseline results", ok=False)
    run(root, str(BIN / "dvc"), "exp", "run", "-S", "studies.tiny.set.model.hidden=12",
        "-n", "bigger")
    shown = json.loads(run(root, str(BIN / "dvc"), "exp", "show", "--json"))
    text = json.dumps(shown)
    assert "bigger" in text and "best_accuracy" in text
    diff = run(root, str(BIN / "dvc"), "metrics", "diff", "HEAD", "bigger", "--json")
    assert json.loads(diff) is not None


def test_both_engines_produce_the_same_prepared_data(snake_project, dvc_project):
    for split in ("train", "val", "test"):
        rel = f"data/prepared/tiny/{split}.parquet"
        assert _sha256(snake_project / rel) == _sha256(dvc_project / rel)
    rel = "data/vocab/tiny/v.json"
    assert _sha256(snake_project / rel) == _sha256(dvc_project / rel)


def test_generated_dvc_yaml_is_current():
    out = subprocess.run([str(BIN / "textclf"), "dvc-yaml", "--check"], cwd=REPO, env=_env(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_params_copy_is_isolated():
    # the tiny params above are built from a deep copy; the real file stays as shipped
    assert real_params() == copy.deepcopy(real_params())
