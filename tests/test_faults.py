"""Fault injection: stages killed with SIGKILL mid-way and rerun, interrupted HTTP transfers,
and damaged results files. Every stage runs as its real script in a child process on small
data the test builds; a rerun must finish and give exactly what an uninterrupted run gives.

Network: only a loopback http.server on 127.0.0.1 (tests/test_download.py), bounded in time.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_download import Script, serve

from helpers import REPO, real_params, report_text, with_studies
from textclf.download import read_sidecar
from textclf.metrics import TIMING_KEYS
from textclf.plan import Plan
from textclf.report import build_report
from textclf.report.collect import collect, describe_variant

SCRIPTS = REPO / "workflow" / "scripts"
TOPICS = [["market", "stocks", "profit", "bank"], ["match", "goal", "team", "coach"],
          ["election", "minister", "war", "treaty"], ["software", "chip", "internet", "robot"]]
WAIT = 60  # seconds: the most any child may take to reach the point where it is killed


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTCLF_MIRROR", "TEXTCLF_DEVICE")}
    env.update(PYTHONHASHSEED="0", OMP_NUM_THREADS="1", no_proxy="127.0.0.1,localhost",
               NO_PROXY="127.0.0.1,localhost")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_stage(stage: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run workflow/scripts/<stage>.py to the end; fail the test with its output otherwise."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / f"{stage}.py"), *args], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{stage} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def kill_stage_when(stage: str, args: list[str], cwd: Path, ready: Callable[[], bool], *,
                    hook: str = "") -> None:
    """Start the stage script in a child, wait until ready() (or the hook's flag), SIGKILL it.

    hook: Python run in the child before the script, e.g. to make it pause at a chosen point
    (it may create the file named by the variable FLAG and sleep)."""
    flag = cwd / f".{stage}-reached"
    flag.unlink(missing_ok=True)
    code = textwrap.dedent(f"""
        import runpy, sys, time
        from pathlib import Path
        FLAG = Path({str(flag)!r})
    """) + textwrap.dedent(hook) + textwrap.dedent(f"""
        sys.argv = [{str(SCRIPTS / f'{stage}.py')!r}, *{args!r}]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while not (flag.exists() or ready()):
            if child.poll() is not None:
                raise AssertionError(f"{stage} ended ({child.returncode}) before it could be "
                                     f"killed:\n{child.stderr.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, f"{stage} did not reach the kill point"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


# ---------------------------------------------------------------- a tiny project on disk


def _agnews_csv(rng: np.random.Generator, rows: int) -> str:
    out = io.StringIO()
    for _ in range(rows):
        label = int(rng.integers(0, 4))
        words = list(rng.choice(TOPICS[label], 3)) + list(rng.choice(sum(TOPICS, []), 3))
        out.write(f'"{label + 1}","{words[0]} news","{" ".join(words)} today"\n')
    return out.getvalue()


def tiny_params() -> dict:
    params = real_params()
    params["datasets"] = {"tiny": {
        "reader": "ag_news_csv", "files": {"train": "ag_news/train.csv", "test": "ag_news/test.csv"},
        "classes": ["World", "Sports", "Business", "Sci/Tech"],
        "split": {"policy": "official", "val_fraction": 0.2, "seed": 1}, "on_malformed": "drop"}}
    params["vocabs"]["v"] = {"tokenizer": {"name": "basic_english"}, "min_freq": 1,
                             "max_size": None, "source": "train"}
    params["training"].update({"epochs": 3, "batch_size": 16, "max_len": 16, "device": "cpu"})
    return with_studies(params, {"s": {
        "datasets": ["tiny"], "vocab": "v", "model": "lstm_base",
        "set": {"model": {"hidden": 8, "embedding": {"dim": 8}}}, "variants": {"lstm": {}}}})


def write_jobs(root: Path, params: dict) -> Plan:
    """params.yaml and the job files the plan writes from it (jobs/<stage>/...json)."""
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    plan = Plan(params)
    plan.write_job_files(root)
    return plan


ENCODE_JOB = "jobs/encode/tiny/v.json"  # -> data/encoded/tiny/v
TRAIN_JOB = "jobs/train/full/tiny/s/lstm/seed1.json"  # -> results/full/tiny/s/lstm/seed1


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """params.yaml, its job files, data/raw (synthetic AG News), data/prepared/tiny and
    data/vocab/tiny/v.json."""
    root = tmp_path_factory.mktemp("faults")
    write_jobs(root, tiny_params())
    raw = root / "data" / "raw" / "ag_news"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    (raw / "train.csv").write_text(_agnews_csv(rng, 400))
    (raw / "test.csv").write_text(_agnews_csv(rng, 100))
    run_stage("prepare", "jobs/prepare/tiny.json", cwd=root)
    run_stage("vocab", "jobs/vocab/tiny/v.json", cwd=root)
    return root


def job_out(root: Path, job: str) -> str:
    """The output the plan's job file names (repo-relative)."""
    return json.loads((root / job).read_text())["out"]


def job_with_out(root: Path, job: str, out: str) -> str:
    """A copy of the plan's job file that writes to `out` instead: the same settings run
    uninterrupted, for the killed run to be compared with."""
    settings = json.loads((root / job).read_text())
    copy = root / "ref-jobs" / out.replace("/", "_")
    copy = copy.with_name(copy.name + ".json")
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(json.dumps({**settings, "out": out}))
    return str(copy.relative_to(root))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- encode


PAUSE_AFTER_FIRST_SPLIT = """
import textclf.text.encode as enc
_write = enc.write_parquet
def _write_then_hang(path, table):
    _write(path, table)
    FLAG.touch()
    time.sleep(120)
enc.write_parquet = _write_then_hang
"""


def test_encode_killed_mid_way_leaves_no_trusted_output_and_rerun_is_identical(project):
    """Issue 10.9: SIGKILL during encode left a .tmp directory forever."""
    assert job_out(project, ENCODE_JOB) == "data/encoded/tiny/v"
    run_stage("encode", job_with_out(project, ENCODE_JOB, "data/encoded/tiny/ref"), cwd=project)
    out = project / "data" / "encoded" / "tiny" / "v"
    kill_stage_when("encode", [ENCODE_JOB], project, lambda: False, hook=PAUSE_AFTER_FIRST_SPLIT)
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".v.")]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # what the kill leaves
    assert not out.exists()  # nothing that looks complete
    run_stage("encode", ENCODE_JOB, cwd=project)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []
    assert _files(out) == _files(project / "data" / "encoded" / "tiny" / "ref")


# ---------------------------------------------------------------- train


PAUSE_AFTER_FIRST_EPOCH = """
import textclf.training as training
_train = training.train_variant
def _train_then_hang(*args, **kwargs):
    def hang(epoch, row):
        FLAG.touch()
        time.sleep(120)
    return _train(*args, on_epoch_end=hang, **kwargs)
training.train_variant = _train_then_hang
"""


def test_train_killed_after_an_epoch_resumes_to_identical_results(project):
    run_stage("encode", ENCODE_JOB, cwd=project)
    assert json.loads((project / TRAIN_JOB).read_text())["inputs"]["encoded"] == "data/encoded/tiny/v"
    run_stage("train", job_with_out(project, TRAIN_JOB, "results/ref"), cwd=project)
    out = project / job_out(project, TRAIN_JOB)
    assert out == project / "results" / "full" / "tiny" / "s" / "lstm" / "seed1"
    kill_stage_when("train", [TRAIN_JOB], project, lambda: False, hook=PAUSE_AFTER_FIRST_EPOCH)
    assert (out / "checkpoint.pt").exists() and not (out / "metrics.json").exists()
    run_stage("train", TRAIN_JOB, cwd=project)
    ref = project / "results" / "ref"
    resumed = json.loads((out / "metrics.json").read_text())
    expected = json.loads((ref / "metrics.json").read_text())
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_run"] == 3
    strip = lambda m: {k: v for k, v in m.items() if k not in TIMING_KEYS}  # noqa: E731
    assert strip(resumed) == strip(expected)
    assert (out / "predictions.parquet").read_bytes() == (ref / "predictions.parquet").read_bytes()
    assert not (out / "checkpoint.pt").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- download


PAYLOAD = np.random.default_rng(7).bytes(3 << 20)  # 3 MiB: several 1 MiB writes of the client
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


DOWNLOAD_JOB = "jobs/download/ag_news/test.csv.json"  # -> data/raw/ag_news/test.csv


def _download_params(root: Path, url: str, sha256: str | None) -> list[str]:
    """params.yaml pointing ag_news/test.csv at url, its job files; the download stage's args."""
    params = tiny_params()
    params["downloads"]["ag_news"]["test.csv"] = {"url": url, "sha256": sha256}
    write_jobs(root, params)
    assert json.loads((root / DOWNLOAD_JOB).read_text()) == {
        "file": "ag_news/test.csv", "url": url, "sha256": sha256, "out": "data/raw/ag_news/test.csv"}
    return [DOWNLOAD_JOB]


@pytest.mark.parametrize("upstream", ["unchanged", "ignores-range", "changed"])
def test_download_killed_mid_transfer_then_rerun(tmp_path, upstream):
    """SIGKILL during the download stage leaves a .part and its record; the rerun resumes it
    with Range + If-Range, restarts when the server ignores Range, and restarts when the file
    changed upstream. The result is always the complete, verified file."""
    script = Script(payload=PAYLOAD, chunk_delay=0.01)
    dest = tmp_path / "data" / "raw" / "ag_news" / "test.csv"
    part = Path(f"{dest}.part")
    final = PAYLOAD
    with serve(script) as port:
        url = f"http://127.0.0.1:{port}/test.csv"
        args = _download_params(tmp_path, url, PAYLOAD_SHA)
        kill_stage_when("download", args, tmp_path,
                        lambda: part.is_file() and part.stat().st_size >= 1 << 20)
        kept = part.stat().st_size
        assert 0 < kept < len(PAYLOAD) and not dest.exists()
        assert json.loads(Path(f"{part}.json").read_text())["etag"] == '"v1"'
        script.chunk_delay = 0.0
        if upstream == "ignores-range":
            script.ranges = False
        elif upstream == "changed":
            final = PAYLOAD[::-1]
            script.change_upstream(final, '"v2"')
            _download_params(tmp_path, url, hashlib.sha256(final).hexdigest())
        proc = run_stage("download", *args, cwd=tmp_path)
    assert dest.read_bytes() == final
    assert read_sidecar(dest)["sha256"] == hashlib.sha256(final).hexdigest()
    assert script.requests[-1] == f"bytes={kept}-" and script.if_ranges[-1] == '"v1"'
    assert not part.exists() and not Path(f"{part}.json").exists()
    if upstream == "unchanged":
        assert "resuming" in proc.stderr
    else:
        assert "restarting from byte 0" in proc.stderr


def test_download_killed_after_the_last_byte_installs_the_part(tmp_path):
    """Killed between the fsync of a complete .part and the rename: the rerun verifies and
    installs it (HTTP 416 for a range past the end), without a second transfer of the body."""
    script = Script(payload=PAYLOAD)
    dest = tmp_path / "data" / "raw" / "ag_news" / "test.csv"
    with serve(script) as port:
        url = f"http://127.0.0.1:{port}/test.csv"
        args = _download_params(tmp_path, url, PAYLOAD_SHA)
        hook = """
import textclf.download as dl
def _hang(part, dest):
    FLAG.touch()
    time.sleep(120)
dl._install = _hang
"""
        kill_stage_when("download", args, tmp_path, lambda: False, hook=hook)
        assert Path(f"{dest}.part").stat().st_size == len(PAYLOAD) and not dest.exists()
        run_stage("download", *args, cwd=tmp_path)
    assert dest.read_bytes() == PAYLOAD
    assert script.requests == [None, f"bytes={len(PAYLOAD)}-"]


# ---------------------------------------------------------------- damaged results (report)


def _report_params() -> dict:
    study = {"description": "damaged results", "datasets": ["ag_news"], "vocab": "basic_min10",
             "model": "lstm_base",
             "variants": {"a": {}, "b": {"model": {"cell": "gru"}},
                          "g": {"model": {"embedding": {"source": "glove50", "dim": 50}}}}}
    return with_studies(real_params(), {"s": study})


def _report_job(tmp_path: Path, monkeypatch) -> dict:
    """The full report job of _report_params, run from tmp_path (its paths are repo-relative)."""
    monkeypatch.chdir(tmp_path)
    return Plan(_report_params()).job("report", {"mode": "full"}).settings


def _write_results(name: str, accuracy: float) -> Path:
    """A replica's results folder (results/full/ag_news/s/<name>/seed1), repo-relative."""
    out = Path("results") / "full" / "ag_news" / "s" / name / "seed1"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({
        "accuracy": accuracy, "macro_f1": accuracy, "loss": 0.5, "trainable_params": 1000,
        "acc_per_mparam": accuracy * 1000, "seconds_per_epoch": 1.0, "epochs_run": 2,
        "never_learned": False, "n_train": 8, "n_test": 4, "classes": ["World", "Sports", "Business", "Sci/Tech"],
        "confusion_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}))
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_acc": [0.5, 0.7],
                  "val_loss": [0.9, 0.6], "val_acc": [0.6, accuracy]}).to_csv(
        out / "history.csv", index=False)
    pd.DataFrame({"id": [0, 1, 2, 3], "label": [0, 1, 2, 3], "pred": [0, 1, 2, 3]}).to_parquet(
        out / "predictions.parquet")
    return out


def _train_outputs() -> set[str]:
    """Every file a train job of _report_params writes: what `snakemake <file>` can rebuild."""
    return {o for job in Plan(_report_params()).jobs("train") for o in job.outs}


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-an-object"])
def test_damaged_metrics_json_is_one_line_with_path_and_fix(tmp_path, monkeypatch, caplog, damage):
    """Issue 10.7: a truncated metrics.json gave exit 0, "failed (JSONDecodeError)" and no path."""
    job = _report_job(tmp_path, monkeypatch)
    _write_results("a", 0.8)
    bad = _write_results("b", 0.7) / "metrics.json"
    assert bad.as_posix() in _train_outputs()  # the path named is a real target of the engines
    text = bad.read_text()
    bad.write_text({"truncated": text[: len(text) // 2], "empty": "", "not-an-object": "[]"}[damage])
    with caplog.at_level(logging.WARNING, logger="textclf.report"):
        summary = build_report(job, tmp_path / "reports")
    lines = [r.getMessage() for r in caplog.records if str(bad) in r.getMessage()]
    assert len(lines) == 1, caplog.text
    line = lines[0]
    assert "\n" not in line
    assert f"rm {bad}" in line and f"snakemake --cores 1 {bad}" in line and "dvc repro" in line
    if damage != "not-an-object":
        assert "truncated or not valid JSON" in line
    assert summary["studies"]["s"]["variants_done"] == 1
    md = report_text(tmp_path / "reports")
    assert f"`ag_news/s/b` (failed: {bad}" in md


def test_damaged_history_and_predictions_do_not_stop_the_report(tmp_path, monkeypatch, caplog):
    job = _report_job(tmp_path, monkeypatch)
    _write_results("a", 0.8)
    out = _write_results("b", 0.7)
    (out / "history.csv").write_bytes(b'epoch,train_loss\n1,"0.5\n')
    (out / "predictions.parquet").write_bytes((out / "predictions.parquet").read_bytes()[:30])
    with caplog.at_level(logging.WARNING, logger="textclf.report"):
        summary = build_report(job, tmp_path / "reports")
    assert summary["studies"]["s"]["variants_done"] == 2
    for name in ("history.csv", "predictions.parquet"):
        assert (out / name).as_posix() in _train_outputs()
        lines = [r.getMessage() for r in caplog.records if str(out / name) in r.getMessage()]
        assert len(lines) == 1 and f"rm {out / name}" in lines[0], caplog.text
        assert f"snakemake --cores 1 {out / name}" in lines[0]


def test_embedding_label_names_the_source_once(tmp_path, monkeypatch):
    """Issue 10.9: the report printed `glove5050` (source name + dim)."""
    params = _report_params()
    job = _report_job(tmp_path, monkeypatch)
    rows = {run["variant"]["name"]: describe_variant(run["variant"])["embedding"] for run in job["runs"]}
    assert rows["g"] == "glove50 50d"  # source and the dimension of the vectors actually used
    assert rows["a"] == f"random {params['models']['lstm_base']['embedding']['dim']}d"
    frame = collect(job)  # no results under tmp_path: every row missing, labels still there
    assert set(frame["status"]) == {"missing"}
    assert "glove5050" not in frame["embedding"].tolist()


# ---------------------------------------------------------------- write faults and damaged parquet (issue 38.6)


def stage_fails(stage: str, args: list[str], cwd: Path, hook: str = "") -> str:
    """Run the stage script in a child (hook: Python run before it) that must fail with exit
    status 2 and one line on stderr, no traceback; returns that line."""
    code = hook + textwrap.dedent(f"""
        import runpy, sys
        sys.argv = [{str(SCRIPTS / f'{stage}.py')!r}, *{args!r}]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-4000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error (")]
    assert len(errors) == 1, proc.stderr[-4000:]
    return errors[0]


@pytest.fixture
def encoded(project, tmp_path) -> Path:
    """A copy of the tiny project with data/encoded/tiny/v built (damaged freely by a test)."""
    root = tmp_path / "p"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("results", "ref-jobs"))
    if not (root / "data" / "encoded" / "tiny" / "v").is_dir():
        run_stage("encode", ENCODE_JOB, cwd=root)
    return root


def test_truncated_encoded_parquet_names_the_file_and_the_rebuild(encoded):
    """Issue 38.6: a truncated train.parquet gave a 25-line pyarrow traceback."""
    bad = encoded / "data" / "encoded" / "tiny" / "v" / "train.parquet"
    bad.write_bytes(bad.read_bytes()[:-100])
    line = stage_fails("train", [TRAIN_JOB], encoded)
    assert line.startswith("error (DamagedFile): data/encoded/tiny/v/train.parquet is damaged and cannot be read")
    assert ("rebuild it: rm -r data/encoded/tiny/v and rerun (snakemake --cores 1 data/encoded/tiny/v, or dvc "
            f"repro; the encode stage alone: python workflow/scripts/encode.py {ENCODE_JOB})") in line


def test_zeroed_block_in_an_encoded_parquet_names_the_file(encoded):
    """Issue 38.6: a zeroed block in test.parquet ended in `ZSTD decompression failed`, no file."""
    bad = encoded / "data" / "encoded" / "tiny" / "v" / "test.parquet"
    data = bytearray(bad.read_bytes())
    data[4:len(data) // 2] = bytes(len(data) // 2 - 4)  # the column chunks; the footer stays
    bad.write_bytes(bytes(data))
    line = stage_fails("train", [TRAIN_JOB], encoded)
    assert line.startswith("error (DamagedFile): data/encoded/tiny/v/test.parquet is damaged and cannot be read")
    assert f"python workflow/scripts/encode.py {ENCODE_JOB}" in line


def test_a_damaged_prepared_parquet_says_how_to_rebuild_it(encoded):
    bad = encoded / "data" / "prepared" / "tiny" / "test.parquet"
    data = bytearray(bad.read_bytes())
    data[4:len(data) // 2] = bytes(len(data) // 2 - 4)
    bad.write_bytes(bytes(data))
    line = stage_fails("encode", [ENCODE_JOB], encoded)
    assert line.startswith("error (DataError): data/prepared/tiny/test.parquet: unreadable parquet file")
    assert line.endswith("; rebuild it: rm -r data/prepared/tiny and rerun (snakemake --cores 1 data/prepared/tiny, "
                         "or dvc repro; the prepare stage alone: python workflow/scripts/prepare.py jobs/prepare/tiny.json)")


NO_SPACE_WRITING_PARQUET = """
import errno, pyarrow.parquet as pq
def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")  # as a full disk gives it: no file
pq.write_table = _full
"""

TORCH_SAVE_FAILS = """
import torch
def _full(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed "
                       "writing file data/4: file write failed")
torch.save = _full
"""

RESULTS_NOT_WRITABLE = """
import errno, tempfile
_mkstemp = tempfile.mkstemp
def _denied(*args, dir=None, **kwargs):
    if dir is not None and "results" in str(dir):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))
    return _mkstemp(*args, dir=dir, **kwargs)
tempfile.mkstemp = _denied
"""


def test_no_space_in_prepare_is_one_line(encoded):
    line = stage_fails("prepare", ["jobs/prepare/tiny.json"], encoded, hook=NO_SPACE_WRITING_PARQUET)
    assert line.startswith("error (NoSpace): writing data/prepared/tiny: no space left on the device (")
    assert "free space there, then rerun: python workflow/scripts/prepare.py jobs/prepare/tiny.json" in line


def test_full_disk_at_the_checkpoint_is_one_line(encoded):
    line = stage_fails("train", [TRAIN_JOB], encoded, hook=TORCH_SAVE_FAILS)
    assert line.startswith("error (WriteError): writing a model or checkpoint under results/full/tiny/s/lstm/seed1 "
                           "failed ([enforce fail at inline_container.cc:672]")
    assert "most often the disk is full (" in line and f"python workflow/scripts/train.py {TRAIN_JOB}" in line


def test_unwritable_results_folder_is_one_line(encoded):
    line = stage_fails("train", [TRAIN_JOB], encoded, hook=RESULTS_NOT_WRITABLE)
    assert line.startswith("error (PermissionError): results/full/tiny/s/lstm/seed1: permission denied; fix the "
                           "permissions of results/full/tiny/s/lstm/seed1")
