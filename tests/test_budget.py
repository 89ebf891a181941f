"""The time budget: which runs the main command trains now, and where a selection's report goes."""

from __future__ import annotations

import pytest

from helpers import fixture_params, with_studies
from textclf.budget import choose, parse_budget, runs_to_train
from textclf.config import ParamsError
from textclf.engines import SNAKEMAKE_CONFIG_OVERRIDES, _overrides, train_later_command
from textclf.plan import SUBSET_NAME_MAX, Plan, report_dir, subset_name


def test_cheapest_runs_first_within_the_budget_spread_over_cores():
    runs = {"r/a": 300.0, "r/b": 60.0, "r/c": 500.0, "r/d": 120.0, "r/e": 7200.0}
    choice = choose(runs, minutes=5, cores=2)  # 300 s of wall: 600 s of CPU over two cores
    assert list(choice.chosen) == ["r/b", "r/d", "r/a"]  # 60 + 120 + 300 = 480 s of CPU
    assert choice.deferred == {"r/c": 500.0, "r/e": 7200.0}  # c alone is over 300 s; e far over
    assert choose(runs, minutes=5, cores=1).chosen == {"r/b": 60.0, "r/d": 120.0}
    assert choose(runs, minutes=None, cores=2).deferred == {}
    assert choose({}, minutes=5, cores=2).line("cmd") is None
    line = choice.line("snakemake --cores 2 --config budget=none")
    assert "2 runs left for later" in line and line.endswith("train them with: snakemake --cores 2 --config budget=none")


def test_runs_to_train_reads_the_estimate_rows():
    rows = [{"study": "a", "runs": {"x": 1.5}}, {"study": "b", "runs": {"y": 2}}, {"study": "c"}]
    assert runs_to_train(rows) == {"x": 1.5, "y": 2.0}


@pytest.mark.parametrize("value, expected", [(None, None), ("none", None), ("null", None), ("NONE", None),
                                             (10, 10.0), ("2.5", 2.5), (0.5, 0.5)])
def test_budget_values(value, expected):
    assert parse_budget(value, "run.budget") == expected


@pytest.mark.parametrize("value", [0, -3, "soon", True, [1]])
def test_a_bad_budget_names_its_key(value):
    with pytest.raises(ParamsError, match=r"^run\.budget=.*give minutes of training"):
        parse_budget(value, "run.budget")


def test_config_budget_overrides_params_and_is_allowed():
    params = fixture_params()
    params["run"]["budget"] = 10
    assert "budget" in SNAKEMAKE_CONFIG_OVERRIDES
    assert _overrides({}, params)[3] == 10.0
    assert _overrides({"budget": "none"}, params)[3] is None
    assert _overrides({"budget": "3"}, params)[3] == 3.0
    with pytest.raises(ParamsError, match="--config budget="):
        _overrides({"budget": "x"}, params)


def _two_studies():
    params = fixture_params()
    study = next(iter(params["studies"].values()))
    return with_studies(params, {"one": study, "two": study})


def test_deferred_runs_leave_the_report_inputs_not_its_settings():
    plan = Plan(_two_studies(), modes=["full", "quick"])
    report = plan.job("report", {"mode": "full"})
    train = [job for job in plan.jobs("train") if job.settings["variant"]["mode"] == "full"]
    later = train[0].settings["out"]
    plan.defer("full", [later])
    after = plan.job("report", {"mode": "full"})
    assert after.digest == report.digest  # the report still lists (and reports) every run
    assert not any(dep.startswith(later + "/") for dep in after.deps)
    assert set(report.deps) - set(after.deps) == {f"{later}/{o}" for o in ("metrics.json", "history.csv",
                                                                          "predictions.parquet")}
    assert plan.job("report", {"mode": "quick"}).deps  # the other setting is untouched


def test_a_selection_reports_to_its_own_folder_never_to_the_full_report():
    params = _two_studies()
    full = Plan(params)
    assert full.subset is None and full.targets() == ["reports/summary.md"]
    one = Plan(params, ["two"], modes=["full", "quick"])
    assert one.targets() == ["reports/subsets/two/summary.md"]
    assert one.targets("quick") == ["reports/quick/subsets/two/summary.md"]
    assert one.report_job_at("reports/subsets/two").settings["out"] == "reports/subsets/two"
    with pytest.raises(ParamsError, match=r"^reports/ is not the report of this run's selection .*"
                                          r"its report is reports/subsets/two/summary.md"):
        one.report_job_at("reports")
    with pytest.raises(ParamsError, match="reports/subsets/one/ is not the report"):
        full.report_job_at("reports/subsets/one")
    assert train_later_command(one) == "snakemake --cores 2 --config budget=none studies=[two]"
    assert train_later_command(full) == "snakemake --cores 2 --config budget=none"


def test_subset_folder_names():
    assert subset_name(["b", "a"]) == "a+b" == subset_name(["a", "b"])
    long = [f"study_number_{i}" for i in range(12)]
    name = subset_name(long)
    assert len(name) <= SUBSET_NAME_MAX and name.startswith("study_number_0+study_number_1+10-more-")
    assert name == subset_name(reversed(long))
    assert report_dir("quick", ["x"]) == "reports/quick/subsets/x" and report_dir("full") == "reports"
