"""Published runs (reports/runs/): publish, then a train job with the same settings, code and
inputs copies the verified files instead of training; anything else trains."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_training import _train_script, data_dirs, make_variant, typed  # noqa: F401 (data_dirs: fixture)

from textclf import published
from textclf.config import REPO_ROOT, ParamsError
from textclf.plan import canonical_json, code_files
from textclf.published import OUTPUT_FILES, PROVENANCE, RECORD, publish_runs, run_provenance

OUT = "results/full/toy/unit/gru/seed3"
RECORD_DIR = Path("reports/runs/toy/unit/gru/seed3")


@pytest.fixture
def project(tmp_path, data_dirs, monkeypatch):  # noqa: F811
    """A working directory with the tiny data under data/ and one job file, as the plan writes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(published.REUSE_ENV, raising=False)
    shutil.copytree(data_dirs[0], "data/prepared")
    shutil.copytree(data_dirs[1], "data/encoded")
    return tmp_path


def write_job(epochs: int = 1) -> Path:
    path = Path("jobs/train/full/toy/unit/gru/seed3.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical_json({"variant": typed(make_variant(epochs=epochs)).to_dict(),
                                    "inputs": {"prepared": "data/prepared", "encoded": "data/encoded",
                                               "vocab_file": "data/encoded/vocab.json", "embedding": None},
                                    "out": OUT}))
    return path


def train_job(job: Path) -> None:
    _train_script().main([str(job)])


def as_plan_job(job: Path) -> SimpleNamespace:
    """What publish_runs reads of a plan Job: its settings and their digest (as Job.digest
    computes it: the sha256 of the settings' canonical JSON, which is the job file's content)."""
    settings = json.loads(job.read_text())
    digest = hashlib.sha256(canonical_json(settings).encode()).hexdigest()
    assert digest == hashlib.sha256(job.read_bytes()).hexdigest()
    return SimpleNamespace(settings=settings, digest=digest)


def outputs() -> dict[str, bytes]:
    return {name: (Path(OUT) / name).read_bytes() for name in OUTPUT_FILES}


def trained_and_published() -> tuple[Path, dict[str, bytes]]:
    job = write_job()
    train_job(job)
    assert json.loads((Path(OUT) / PROVENANCE).read_text())["settings_sha256"] == as_plan_job(job).digest
    count = publish_runs([as_plan_job(job)])
    assert count.published == 1
    return job, outputs()


def fail_if_trained(monkeypatch) -> None:
    import textclf.training

    def refuse(*args, **kwargs):
        raise AssertionError("trained although a matching published run exists")

    monkeypatch.setattr(textclf.training, "train_variant", refuse)


def test_publish_then_a_new_checkout_reuses_the_run_byte_for_byte(project, monkeypatch, capsys):
    job, before = trained_and_published()
    record = json.loads((RECORD_DIR / RECORD).read_text())
    assert set(record["files"]) == set(OUTPUT_FILES) and record["trained_at"]
    assert {(RECORD_DIR / n).read_bytes() == before[n] for n in OUTPUT_FILES} == {True}
    shutil.rmtree("results")  # a new machine: results/ gone, reports/runs/ in git
    fail_if_trained(monkeypatch)
    train_job(job)
    assert outputs() == before
    assert "published run reused" in capsys.readouterr().out
    assert json.loads((Path(OUT) / PROVENANCE).read_text())["reused_from"] == RECORD_DIR.as_posix()
    # publishing the reused run again changes nothing
    assert publish_runs([as_plan_job(job)]).unchanged == 1


def test_other_settings_inputs_or_opt_out_train(project, monkeypatch, capsys):
    job, _ = trained_and_published()
    calls = []
    import textclf.training

    real = textclf.training.train_variant
    monkeypatch.setattr(textclf.training, "train_variant", lambda *a, **k: calls.append(1) or real(*a, **k))
    train_job(write_job(epochs=2))  # other settings
    assert len(calls) == 1 and "published run reused" not in capsys.readouterr().out
    job = write_job(epochs=1)
    monkeypatch.setenv(published.REUSE_ENV, "0")
    train_job(job)
    assert len(calls) == 2
    monkeypatch.delenv(published.REUSE_ENV)
    extra = Path("data/encoded/train.parquet")
    extra.write_bytes(extra.read_bytes() + b"\0")  # other input bytes (not valid parquet: it must not be read)
    provenance = run_provenance(job, (REPO_ROOT, code_files("train", "train")), json.loads(job.read_text())["inputs"])
    record = json.loads((RECORD_DIR / RECORD).read_text())
    assert [k for k in published.KEYS if provenance[k] != record[k]] == ["inputs_sha256"]
    assert published.reuse_published(OUT, provenance) is None


def test_tampered_published_file_is_not_trusted(project, monkeypatch, caplog):
    job, before = trained_and_published()
    predictions = RECORD_DIR / "predictions.parquet"
    predictions.write_bytes(predictions.read_bytes()[:-8] + b"\0" * 8)
    shutil.rmtree("results")
    calls = []
    import textclf.training

    real = textclf.training.train_variant
    monkeypatch.setattr(textclf.training, "train_variant", lambda *a, **k: calls.append(1) or real(*a, **k))
    train_job(job)
    assert calls == [1]
    assert f"{predictions} does not match the sha256" in caplog.text
    assert outputs()["predictions.parquet"] == before["predictions.parquet"]  # retrained, deterministic


def test_code_edit_changes_the_code_digest(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    job = tmp_path / "job.json"
    job.write_text("{}")
    first = run_provenance(job, (tmp_path, ["a.py"]), {}, root=tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    second = run_provenance(job, (tmp_path, ["a.py"]), {}, root=tmp_path)
    assert first["settings_sha256"] == second["settings_sha256"] and first["code_sha256"] != second["code_sha256"]


def test_publish_skips_unfinished_stale_and_unrecorded_runs(project):
    job = write_job()
    assert publish_runs([as_plan_job(job)]).missing == 1
    train_job(job)
    stale = as_plan_job(write_job(epochs=2))  # params.yaml changed since the run
    assert publish_runs([stale]).stale == [OUT]
    (Path(OUT) / PROVENANCE).unlink()  # a run from before provenance was recorded
    assert publish_runs([as_plan_job(write_job())]).no_provenance == [OUT]
    assert not RECORD_DIR.exists()
    quick = SimpleNamespace(settings={"out": "results/quick/toy/unit/gru/seed3"}, digest="x")
    assert publish_runs([quick]).published == 0


def test_ignore_code_reuses_a_run_of_other_training_code(project, monkeypatch):
    job, before = trained_and_published()
    record_path = RECORD_DIR / RECORD
    record = json.loads(record_path.read_text())
    record["code_sha256"] = "0" * 64  # published by an older version of the training code
    record_path.write_text(json.dumps(record))
    shutil.rmtree("results")
    provenance = run_provenance(job, (REPO_ROOT, code_files("train", "train")), json.loads(job.read_text())["inputs"])
    assert published.reuse_published(OUT, provenance) is None  # default: the code must match too
    monkeypatch.setenv(published.REUSE_ENV, "ignore-code")
    fail_if_trained(monkeypatch)
    train_job(job)
    assert outputs() == before
    assert json.loads((Path(OUT) / PROVENANCE).read_text())["code_sha256"] == "0" * 64  # what made the bytes
    monkeypatch.setenv(published.REUSE_ENV, "yes")
    with pytest.raises(ParamsError, match="TEXTCLF_REUSE_PUBLISHED='yes': use 1"):
        published.reuse_published(OUT, provenance)


def test_unusable_records_train_and_leave_nothing_stale(project, monkeypatch, caplog):
    job, before = trained_and_published()
    record_path = RECORD_DIR / RECORD
    good = record_path.read_text()
    calls = []
    import textclf.training

    real = textclf.training.train_variant
    monkeypatch.setattr(textclf.training, "train_variant", lambda *a, **k: calls.append(1) or real(*a, **k))
    for broken, message in (("{not json", "is unreadable or not a record"),
                            (json.dumps({**json.loads(good), "files": ["x"]}), "is unreadable or not a record")):
        record_path.write_text(broken)
        train_job(job)
        assert message in caplog.text
    record_path.write_text(good)
    history = (RECORD_DIR / "history.csv").read_bytes()
    (RECORD_DIR / "history.csv").unlink()
    train_job(job)
    assert "lists history.csv, missing there" in caplog.text
    assert len(calls) == 3 and outputs()["predictions.parquet"] == before["predictions.parquet"]  # retrained
    (RECORD_DIR / "history.csv").write_bytes(history)
    (Path(OUT) / "checkpoint.pt").write_bytes(b"an interrupted run of other code")
    assert (Path(OUT) / "model.pt").exists()
    fail_if_trained(monkeypatch)
    train_job(job)
    assert outputs() == before
    assert not (Path(OUT) / "checkpoint.pt").exists() and not (Path(OUT) / "model.pt").exists()


def test_publish_replaces_a_record_of_other_results_only_when_told(project):
    job, _ = trained_and_published()
    record_path = RECORD_DIR / RECORD
    record = json.loads(record_path.read_text())
    record["files"]["history.csv"] = "0" * 64
    record_path.write_text(json.dumps(record))
    count = publish_runs([as_plan_job(job)])
    assert (count.replaced, count.published, count.refused) == (0, 0, [f"{OUT}: result files history.csv"])
    assert json.loads(record_path.read_text())["files"]["history.csv"] == "0" * 64
    count = publish_runs([as_plan_job(job)], replace=True)
    assert (count.replaced, count.published, count.refused) == (1, 0, [])
    assert json.loads(record_path.read_text())["files"]["history.csv"] != "0" * 64
    vocab = Path("data/encoded/vocab.json")
    vocab.write_text(vocab.read_text() + "\n")  # the inputs changed since the run
    assert publish_runs([as_plan_job(job)]).changed == [f"{OUT} (inputs)"]


def test_a_run_of_damaged_inputs_never_silently_replaces_the_published_record(project):
    """Issue 38.2: a damaged cached input retrained to worse numbers, and `publish` said
    `0 run(s) published, 1 replaced`, overwriting the committed record."""
    job, before = trained_and_published()
    record_path = RECORD_DIR / RECORD
    good = record_path.read_bytes()
    assert json.loads(good)["inputs"]["encoded/train.parquet"] == published.file_sha256("data/encoded/train.parquet")
    damaged = Path("data/encoded/vocab.json")
    damaged.write_text(damaged.read_text() + "\n")  # the cached input changed; the run is retrained on it
    train_job(job)
    count = publish_runs([as_plan_job(job)])
    (refused,) = count.refused
    assert refused.startswith(f"{OUT}: inputs encoded/vocab.json, vocab_file") and (count.replaced, count.published) == (0, 0)
    assert record_path.read_bytes() == good and (RECORD_DIR / "history.csv").read_bytes() == before["history.csv"]
    assert publish_runs([as_plan_job(job)], replace=True).replaced == 1
    assert json.loads(record_path.read_text())["inputs_sha256"] != json.loads(good)["inputs_sha256"]


def test_a_record_without_per_file_digests_names_the_input_digests(project):
    job, _ = trained_and_published()
    record_path = RECORD_DIR / RECORD
    record = json.loads(record_path.read_text())
    del record["inputs"]  # as records published before per-file digests
    record["inputs_sha256"] = "a" * 64
    record_path.write_text(json.dumps(record))
    (refused,) = publish_runs([as_plan_job(job)]).refused
    assert refused.startswith(f"{OUT}: inputs aaaaaaaaaaaa… -> ") and "(the record lists no per-file digests)" in refused


def test_publish_command_refuses_with_exit_1_and_replaces_when_told(project, capsys, monkeypatch):
    from textclf import cli

    job, _ = trained_and_published()
    record_path = RECORD_DIR / RECORD
    record = json.loads(record_path.read_text())
    record["device"] = "cuda"
    record_path.write_text(json.dumps(record))
    plan = SimpleNamespace(write_job_files=lambda root: None, jobs=lambda stage: [as_plan_job(job)])
    monkeypatch.setattr(cli, "Plan", lambda *a, **k: plan)
    monkeypatch.setattr(cli, "load_params", lambda path: {})
    args = cli.argparse.Namespace(params="params.yaml", studies=None, seeds=None, replace=False)
    assert cli.cmd_publish(args) == 1
    out, err = capsys.readouterr()
    assert "0 run(s) published, 0 replaced" in out
    assert f"  {OUT}: device cuda -> cpu" in err and "textclf publish --replace" in err
    assert cli.cmd_publish(cli.argparse.Namespace(**{**vars(args), "replace": True})) == 0
    assert "0 run(s) published, 1 replaced" in capsys.readouterr().out
    assert json.loads(record_path.read_text())["device"] == "cpu"


def test_publish_command_checks_its_seeds(capsys):
    from textclf.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["publish", "--seeds", "1,two"])
    assert exc.value.code == 2
    assert "--seeds '1,two': give comma-separated whole numbers" in capsys.readouterr().err


def test_the_estimate_made_before_a_run_travels_with_its_published_record(project):
    from textclf.estimate import ESTIMATES_DIR, estimate_line, save_estimates, saved_estimates

    job = write_job()
    digest = as_plan_job(job).digest
    save_estimates("full", [{"study": "unit", "runs": {OUT: 12.5}, "settings": {OUT: digest}}], "calibration run")
    train_job(job)
    assert publish_runs([as_plan_job(job)]).published == 1
    carried = json.loads((RECORD_DIR / RECORD).read_text())["estimate"]
    assert (carried["seconds"], carried["settings_sha256"], carried["source"]) == (12.5, digest, "calibration run")
    # a new machine: the workspace's estimates and results are gone, reports/runs/ is in git
    shutil.rmtree(ESTIMATES_DIR.parent)
    shutil.rmtree("results")
    assert saved_estimates("full", [OUT]) == {OUT: carried}
    assert estimate_line("full", {OUT: 25.0}).startswith(f"Estimate check: 12 s estimated for 1 run before they ran ({carried['when']}; calibration run)")
    train_job(job)  # reused; publishing it again keeps the record and its estimate
    assert publish_runs([as_plan_job(job)]).unchanged == 1
    assert json.loads((RECORD_DIR / RECORD).read_text())["estimate"] == carried


def test_an_estimate_for_other_settings_is_not_published(project):
    from textclf.estimate import save_estimates, saved_estimates

    job = write_job()
    save_estimates("full", [{"study": "unit", "runs": {OUT: 12.5}, "settings": {OUT: "0" * 64}}], "calibration run")
    train_job(job)
    publish_runs([as_plan_job(job)])
    assert "estimate" not in json.loads((RECORD_DIR / RECORD).read_text())
    shutil.rmtree(".textclf")
    assert saved_estimates("full", [OUT]) == {}


def test_a_run_of_another_instruction_set_is_never_reused(project, monkeypatch, caplog):
    """Kernels of another instruction set compute other bits (issue 38.1): a run published under
    the AVX2 pin is not reused where the native kernels are asked for, and the other way round."""
    job, before = trained_and_published()
    record = json.loads((RECORD_DIR / RECORD).read_text())
    assert record["isa"] == published.instruction_set()
    shutil.rmtree("results")
    monkeypatch.setenv("TEXTCLF_NATIVE_ISA", "1")
    for name in ("ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE"):
        monkeypatch.delenv(name, raising=False)
    assert published.instruction_set() != record["isa"]
    provenance = run_provenance(job, (REPO_ROOT, code_files("train", "train")), json.loads(job.read_text())["inputs"])
    with caplog.at_level("INFO", logger="textclf.published"):
        assert published.reuse_published(OUT, provenance) is None
    assert "its isa differ" in caplog.text
