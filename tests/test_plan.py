"""The job graph: shared jobs, job files (what each job is keyed on) and DVC's job list."""

import json
from pathlib import Path

import pytest

from helpers import fixture_params
from textclf.config import ParamsError
from textclf.plan import Plan


def _plan(**kw):
    return Plan(fixture_params(), **kw)


def test_jobs_are_shared_and_complete():
    stages = {stage: len(_plan().jobs(stage)) for stage in
              ("download", "prepare", "vocab", "encode", "glove_cache", "embeddings", "train", "report")}
    # imdb archive + glove zip; one prepare/vocab/encode shared by both neural variants
    assert stages == {"download": 2, "prepare": 1, "vocab": 1, "encode": 1, "glove_cache": 1,
                      "embeddings": 1, "train": 3, "report": 1}


def test_train_job_is_keyed_on_the_resolved_variant():
    job = _plan().job("train", {"mode": "full", "dataset": "imdb", "study": "s", "variant": "glove", "seed": "1"})
    assert job.job_file == "jobs/train/full/imdb/s/glove/seed1.json"
    assert job.settings["variant"]["model"]["embedding"] == {"source": "glove50", "dim": 50, "freeze": False,
                                                             "padding_idx": True, "skip_missing": False}
    assert job.settings["inputs"]["embedding"] == "data/embeddings/imdb/basic_min10/glove50.npy"
    assert "data/encoded/imdb/basic_min10" in job.deps
    assert job.outs[0] == "results/full/imdb/s/glove/seed1/metrics.json"
    code = _plan().code(job)
    assert code[0] == "workflow/scripts/train.py" and "src/textclf/training/loop.py" in code
    assert not any("baseline" in c for c in code)


def test_unused_preset_value_leaves_every_job_file_unchanged():
    params = fixture_params()
    params["studies"]["s"]["set"] = {"model": {"hidden": 32}}
    before = {j.job_file: j.digest for j in Plan(params).jobs()}
    params["models"]["lstm_base"]["hidden"] = 65  # overridden by the study's `set`
    params["quick"]["train_rows"] = 999  # only quick jobs read it
    after = {j.job_file: j.digest for j in Plan(params).jobs()}
    assert before == after


def test_both_modes_plan_separate_outputs():
    plan = _plan(modes=["full", "quick"])
    outs = [o for job in plan.jobs("train") for o in job.outs]
    assert len(outs) == len(set(outs)) == 2 * 3 * 3
    assert plan.targets("full") == ["reports/summary.md"] and plan.targets("quick") == ["reports/quick/summary.md"]


def test_baseline_needs_no_vocab():
    job = _plan().job("train", {"mode": "full", "dataset": "imdb", "study": "b", "variant": "tfidf", "seed": "1"})
    assert not any(d.startswith("data/vocab") or d.startswith("data/encoded") for d in job.deps)


def test_selection_and_unknown_job():
    plan = _plan(studies=["b"])
    assert [v.id for v in plan.variants] == ["imdb/b/tfidf"]
    assert not plan.jobs("vocab")
    with pytest.raises(ParamsError, match="no train job for 'full/imdb/s/rand/1'"):
        plan.job("train", {"mode": "full", "dataset": "imdb", "study": "s", "variant": "rand", "seed": "1"})


def test_job_files_are_written_only_when_their_content_changes(tmp_path):
    plan = _plan()
    assert plan.write_job_files(tmp_path) == len(plan.jobs())
    assert plan.write_job_files(tmp_path) == 0
    job = plan.job("vocab", {"dataset": "imdb", "vocab": "basic_min10"})
    assert json.loads((tmp_path / job.job_file).read_text())["spec"]["min_freq"] == 10


def test_dvc_job_list_keys_are_valid_and_unique():
    jobs = _plan().dvc_jobs()
    assert set(jobs["train"]) | set(jobs["train_pretrained"]) | set(jobs["baseline"]) == {
        "full__imdb__s__rand__1", "full__imdb__s__glove__1", "full__imdb__b__tfidf__1"}
    for family in jobs.values():
        for key in family:
            assert all(c.isalnum() or c in "-_" for c in key), key


def test_estimate_is_saved_and_compared_with_the_measured_time(tmp_path, monkeypatch):
    from textclf.estimate import estimate_line, save_estimates, study_estimates

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".textclf").mkdir()
    (tmp_path / ".textclf" / "throughput.json").write_text(
        json.dumps({"rate": 1e9, "step_seconds": 0.001, "timestep_seconds": {}, "warmup_seconds": {}, "host": __import__("os").uname().nodename}))
    rows, rate, source = study_estimates(_plan(), tmp_path)
    assert rate == 1e9 and {r["study"] for r in rows} == {"s", "b"}
    assert all(r["to_train"] == r["replicas"] and r["seconds"] > 0 for r in rows)
    save_estimates("full", rows, source, tmp_path)
    runs = next(r["runs"] for r in rows if r["study"] == "s")
    assert len(runs) == 2 and all(k.startswith("results/full/") for k in runs)
    line = estimate_line("full", {k: 2 * v for k, v in runs.items()}, tmp_path)
    assert "estimated for 2 runs before they ran" in line and "2.00x the estimate" in line
    assert estimate_line("full", {"results/full/nope/seed1": 1.0}, tmp_path) is None
    # a later plan (after one replica trained) keeps that replica's estimate from before its run
    first = sorted(runs)[0]
    (tmp_path / first).mkdir(parents=True)
    (tmp_path / first / "metrics.json").write_text("{}")
    rows, _, source = study_estimates(_plan(), tmp_path)
    save_estimates("full", rows, source, tmp_path)
    assert "1.00x the estimate" in estimate_line("full", {first: runs[first]}, tmp_path)


def test_a_resumed_replica_keeps_the_estimate_made_before_it_started(tmp_path, monkeypatch):
    """A run stopped part-way is estimated again at the next start; its saved estimate (and
    date) must stay the one from before it first ran, unless its settings changed since."""
    from textclf.estimate import ESTIMATES_DIR, RESUME_CHECKPOINT, save_estimates, study_estimates
    from textclf.training.trainer import CHECKPOINT

    assert RESUME_CHECKPOINT == CHECKPOINT
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".textclf").mkdir()
    (tmp_path / ".textclf" / "throughput.json").write_text(
        json.dumps({"rate": 1e9, "step_seconds": 0.001, "timestep_seconds": {}, "warmup_seconds": {}, "host": __import__("os").uname().nodename}))
    rows, _, source = study_estimates(_plan(), tmp_path)
    save_estimates("full", rows, source, tmp_path)
    saved_file = tmp_path / ESTIMATES_DIR / "full.json"
    saved = json.loads(saved_file.read_text())["runs"]
    started, unstarted = sorted(next(r["runs"] for r in rows if r["study"] == "s"))
    assert saved[started]["settings_sha256"] and saved[started]["settings_sha256"] != saved[unstarted]["settings_sha256"]
    for results in (started, unstarted):  # mark both as estimated long ago
        saved[results].update(seconds=1234.0, when="2026-01-01 00:00")
    saved_file.write_text(json.dumps({"runs": saved}))
    (tmp_path / started).mkdir(parents=True)
    (tmp_path / started / CHECKPOINT).write_bytes(b"epoch 1")

    rows, _, source = study_estimates(_plan(), tmp_path)
    save_estimates("full", rows, source, tmp_path)
    again = json.loads(saved_file.read_text())["runs"]
    assert again[started]["when"] == "2026-01-01 00:00" and again[started]["seconds"] == 1234.0
    assert again[unstarted]["when"] != "2026-01-01 00:00"  # not started yet: a fresh estimate replaces it

    again[started]["settings_sha256"] = "other settings"  # its settings changed: the run starts over
    saved_file.write_text(json.dumps({"runs": again}))
    save_estimates("full", rows, source, tmp_path)
    assert json.loads(saved_file.read_text())["runs"][started]["when"] != "2026-01-01 00:00"


def test_measured_rate_reads_only_runs_on_this_machines_cpu(tmp_path):
    """GPU results (or another CPU's) beside CPU ones must not set this machine's rate."""
    from textclf.estimate import measured_rate, work_per_token
    from textclf.machine import cpu_model

    variant = next(v for v in _plan().variants if v.is_neural)

    def run(name, tokens_per_second, **where):
        out = tmp_path / name
        out.mkdir()
        (out / "metrics.json").write_text(json.dumps({"seconds_per_epoch": 2.0, "epochs_run": 1,
                                                     "tokens_per_second": tokens_per_second, **where}))
        return variant, out

    runs = [run("cpu", 1000.0, device="cpu", hardware=cpu_model()), run("gpu", 1e6, device="cuda", hardware="NVIDIA H200"),
            run("other", 5e5, device="cpu", hardware="Some Other CPU"), run("old", 1000.0)]
    assert measured_rate(runs) == 1000.0 * work_per_token(variant.model)
    assert measured_rate(runs[1:3]) is None


def test_partial_report_only_for_a_report_target_in_its_setting(tmp_path, monkeypatch):
    """After a failure: a one-file (or data-only) target never rebuilds a whole partial report,
    even when variants already have results; a report target gets one in its own setting."""
    from textclf.engines import partial_report_command
    from textclf.studies import MODES

    monkeypatch.chdir(tmp_path)
    plan = _plan(modes=list(MODES))  # as Snakemake plans it: both settings
    done = next(d for d in plan.job("report", {"mode": "full"}).deps if d.endswith("metrics.json"))
    Path(done).parent.mkdir(parents=True)
    Path(done).write_text("{}")
    assert "not a report" in partial_report_command(plan, [done])
    assert "not a report" in partial_report_command(plan, ["data/prepared/imdb/stats.json"])
    full = partial_report_command(plan, [])  # the default rule: the report of the selected setting
    assert "jobs/report/full.json" in full and "--out reports/partial " in full
    assert partial_report_command(plan, ["reports/summary.md"]) == full
    assert "no variant has results yet" in partial_report_command(plan, ["reports/quick/summary.md"])


def test_a_bad_value_in_an_unselected_study_fails_the_plan():
    """params.yaml is checked as a whole: a typo in a study the run does not select still stops it."""
    params = fixture_params()
    params["studies"]["s"]["variants"]["glove"]["vocab"] = "basic_min1O"
    with pytest.raises(ParamsError, match=r"studies\.s .*'basic_min1O' \(did you mean 'basic_min10'\?\)"):
        Plan(params, ["b"])


def test_recurrent_time_steps_cost_the_same_whatever_the_batch_size():
    """At batch size 1 a GRU's time is almost all per-time-step latency: the estimate must not
    shrink 64-fold with the batch (it once priced a batch-1 run at a tenth of its time)."""
    import dataclasses

    from textclf.estimate import DataSize, MachineSpeed, replica_seconds

    variant = next(v for v in _plan().variants if v.is_neural)
    size = DataSize({"train": 1000, "val": 0, "test": 0}, tokens_per_row=100.0)
    latency = {variant.model.cell: {"train": 1e-4, "eval": 0.0}}
    speed = MachineSpeed(rate=1e15, step_seconds=0.0, timestep_seconds=latency, source="test")

    def at_batch(batch_size):
        training = dataclasses.replace(variant.training, batch_size=batch_size, epochs=1, max_len=1000)
        return replica_seconds(dataclasses.replace(variant, training=training), size, speed)

    depth = variant.model.layers * (2 if variant.model.bidirectional else 1)
    # 1000 one-row steps x 100 time steps x 1e-4 s (+ a negligible work term at 1e15/s)
    assert at_batch(1) == pytest.approx(1000 * 100 * depth * 1e-4, rel=1e-2)
    assert at_batch(100) == pytest.approx(at_batch(1) / 100, rel=0.05)


def test_earlier_runs_of_any_study_set_the_rate(tmp_path):
    """The rate comes from every run trained here, not only the selected studies' (a plan for a
    study never run would otherwise fall back to the calibration), minus the fixed costs."""
    from textclf.estimate import MachineSpeed, earlier_runs, measured_rate, work_per_token
    from textclf.machine import cpu_model

    plan = _plan()
    variant = next(v for v in plan.variants if v.is_neural)
    job = plan.job("train", {"mode": "full", "dataset": "imdb", "study": "s", "variant": variant.name, "seed": "1"})
    (tmp_path / job.job_file).parent.mkdir(parents=True)
    (tmp_path / job.job_file).write_text(json.dumps(job.settings))
    assert list(earlier_runs(tmp_path)) == []  # not trained yet
    results = tmp_path / job.settings["out"]
    results.mkdir(parents=True)
    n_train, tokens_per_s, seconds = 640, 1000.0, 10.0
    (results / "metrics.json").write_text(json.dumps({"seconds_per_epoch": seconds, "epochs_run": 1, "n_train": n_train,
                                                      "tokens_per_second": tokens_per_s, "device": "cpu",
                                                      "hardware": cpu_model()}))
    (tmp_path / "jobs/train/old.json").write_text("{not json")
    runs = list(earlier_runs(tmp_path))
    assert [(v.name, r) for v, r in runs] == [(variant.name, results)]
    work = tokens_per_s * seconds * work_per_token(variant.model)
    assert measured_rate(runs) == pytest.approx(work / seconds)
    steps = n_train // variant.training.batch_size
    fixed = MachineSpeed(rate=0.0, step_seconds=seconds / 2 / steps, timestep_seconds={}, source="test")
    assert measured_rate(runs, fixed) == pytest.approx(work / (seconds / 2))  # half the time was fixed cost


def test_every_replica_pays_its_cells_warm_up_once():
    """A fresh process's first step costs more than the steady ones (an LSTM's ~20 ms on CPU):
    the estimate adds it once per replica, whatever its epochs, and the probe measures it for
    every cell the estimate knows."""
    import dataclasses

    from textclf.estimate import GATES, DataSize, MachineSpeed, replica_seconds, warmup_costs

    variant = next(v for v in _plan().variants if v.is_neural)
    size = DataSize({"train": 1000, "val": 100, "test": 100}, tokens_per_row=50.0)
    cold = MachineSpeed(rate=1e9, step_seconds=1e-3, timestep_seconds={}, source="test")
    warm = dataclasses.replace(cold, warmup_seconds={variant.model.cell: 0.5})
    for epochs in (1, 3):
        v = dataclasses.replace(variant, training=dataclasses.replace(variant.training, epochs=epochs))
        assert replica_seconds(v, size, warm) == pytest.approx(replica_seconds(v, size, cold) + 0.5)
    measured = warmup_costs()
    assert set(measured) == set(GATES) and all(0.0 <= s < 5.0 for s in measured.values())


def test_a_tfidf_replica_costs_in_proportion_to_its_training_tokens():
    """The baseline's estimate follows its data (it once priced every fit at a flat 60 s, 4x
    what 23k AG News rows take here)."""
    from textclf.estimate import DataSize, MachineSpeed, replica_seconds

    tfidf = next(v for v in _plan().variants if not v.is_neural)
    speed = MachineSpeed(rate=1e9, step_seconds=1e-3, timestep_seconds={}, source="test")
    small = replica_seconds(tfidf, DataSize({"train": 10_000, "val": 0, "test": 0}, tokens_per_row=40.0), speed)
    large = replica_seconds(tfidf, DataSize({"train": 10_000, "val": 0, "test": 0}, tokens_per_row=400.0), speed)
    assert 0 < small < large and large - small == pytest.approx(9 * (small - replica_seconds(
        tfidf, DataSize({"train": 0, "val": 0, "test": 0}, tokens_per_row=40.0), speed)))


def test_the_estimate_trains_on_the_rows_the_trainer_samples():
    """train_fraction and the quick caps shrink the estimate as they shrink the run."""
    import dataclasses

    from textclf.estimate import DataSize, MachineSpeed, replica_seconds

    variant = next(v for v in _plan().variants if v.is_neural)
    size = DataSize({"train": 20_000, "val": 0, "test": 0}, tokens_per_row=50.0)
    speed = MachineSpeed(rate=1e9, step_seconds=0.0, timestep_seconds={}, source="test")

    def at(fraction):
        training = dataclasses.replace(variant.training, train_fraction=fraction)
        return replica_seconds(dataclasses.replace(variant, training=training), size, speed)

    assert at(0.25) == pytest.approx(at(1.0) / 4, rel=1e-3)
