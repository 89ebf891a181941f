"""The job graph: dependencies, per-stage params and the commands both engines run."""

import pytest

from helpers import real_params, with_studies
from textclf.config import ParamsError
from textclf.plan import Plan

STUDY = {
    "datasets": ["imdb"],
    "vocab": "basic_min10",
    "model": "lstm_base",
    "variants": {
        "rand": {},
        "glove": {"model": {"embedding": {"source": "glove50", "dim": 50}}},
    },
}


def _plan(**kw):
    return Plan(with_studies(real_params(), {"s": STUDY, "b": {"datasets": ["imdb"], "model": "tfidf_logreg",
                                                                "variants": {"tfidf": {}}}}), **kw)


def test_jobs_are_shared_and_complete():
    plan = _plan()
    stages = {stage: len(plan.jobs(stage)) for stage in
              ("download", "prepare", "vocab", "encode", "glove_cache", "embeddings", "train", "report")}
    # imdb archive + glove zip; one prepare/vocab/encode shared by both neural variants
    assert stages == {"download": 2, "prepare": 1, "vocab": 1, "encode": 1, "glove_cache": 1,
                      "embeddings": 1, "train": 3, "report": 1}


def test_train_job_command_deps_and_params():
    plan = _plan()
    job = plan.job("train", {"dataset": "imdb", "study": "s", "variant": "glove"})
    assert job.cmd[:2] == ("python", "workflow/scripts/train.py")
    assert "--variant" in job.cmd and "imdb/s/glove" in job.cmd and "--no-quick" in job.cmd
    assert "data/embeddings/imdb/basic_min10/glove50.npy" in job.deps
    assert "data/encoded/imdb/basic_min10" in job.deps
    assert set(job.params) >= {"studies.s.variants.glove", "studies.s.model", "models.lstm_base", "training"}
    assert job.outs[0] == "results/imdb/s/glove/metrics.json"
    assert any(c.startswith("src/textclf/") for c in job.code)


def test_baseline_needs_no_vocab():
    job = _plan().job("train", {"dataset": "imdb", "study": "b", "variant": "tfidf"})
    assert not any(d.startswith("data/vocab") or d.startswith("data/encoded") for d in job.deps)


def test_quick_changes_command():
    job = _plan(quick=True).job("train", {"dataset": "imdb", "study": "s", "variant": "rand"})
    assert "--quick" in job.cmd and "quick" in job.params


def test_selection_and_unknown_job():
    plan = _plan(studies=["b"])
    assert [v["id"] for v in plan.variants] == ["imdb/b/tfidf"]
    assert not plan.jobs("vocab")
    with pytest.raises(ParamsError, match="no train job for 'imdb/s/rand'"):
        plan.job("train", {"dataset": "imdb", "study": "s", "variant": "rand"})


def test_dvc_names_are_valid():
    for job in _plan().jobs():
        assert all(c.isalnum() or c in "-_" for c in job.dvc_name), job.dvc_name
    names = [j.dvc_name for j in _plan().jobs()]
    assert len(names) == len(set(names))
