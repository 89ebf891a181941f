"""Report rendering from synthetic results: tables sorted per dataset with the setting of every
row, reference Δ with the train-size caveat, unrun variants in one line, figures (real PNGs, one
dataset per axis, labelled points, integer epochs, val/test named), summary.json's headline,
error analysis and the ensemble's conditions."""

import json
import logging

import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from helpers import REPO, fixture_params, report_text, with_studies
from textclf.plan import Plan
from textclf.report import build_report, figures, reference_gap
from textclf.report.build import HEADLINE_KEYS, STUDY_KEYS
from textclf.report.errors import error_analysis
from textclf.report.numbers import json_number
from textclf.report.walltime import study_wall_time, wall_time_line

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def _params(studies, datasets=("imdb",)):
    params = with_studies(fixture_params(), studies)
    for name in datasets:
        params["datasets"][name] = {**params["datasets"]["imdb"], "classes": CLASSES}
    return params


def write_run(out, labels, rate, rng, *, params_count=50_000, n_train=100, quick=False, eval_split="val",
              epochs=2, model="rnn", hardware=None, clock=None, val=None, resumed_from_epoch=None):
    """One replica's results (metrics.json, history.csv, predictions.parquet) with `rate` of
    the labels flipped; returns its accuracy."""
    out.mkdir(parents=True, exist_ok=True)
    preds = labels.copy()
    flip = rng.random(len(labels)) < rate
    preds[flip] = (labels[flip] + 1) % len(CLASSES)
    accuracy = float((preds == labels).mean())
    cm = pd.crosstab(pd.Series(labels), pd.Series(preds)).reindex(index=range(4), columns=range(4), fill_value=0)
    (out / "metrics.json").write_text(json.dumps({
        "accuracy": accuracy, "macro_f1": accuracy - 0.01, "loss": 0.5, "confusion_matrix": cm.to_numpy().tolist(),
        "classes": CLASSES, "trainable_params": params_count, "acc_per_mparam": accuracy / (params_count / 1e6),
        "seconds_per_epoch": 1.5, "epochs_run": epochs, "never_learned": False, "n_train": n_train,
        "n_val": 10, "n_test": len(labels), "quick": quick, "eval_split": eval_split, "model_type": model,
        **({"hardware": hardware[0], "torch_version": hardware[1]} if hardware else {}),
        **({"started_at": clock[0], "finished_at": clock[1]} if clock else {}),
        **({"resumed_from_epoch": resumed_from_epoch} if resumed_from_epoch else {}),
        **({"val": {"accuracy": val}} if val is not None else {})}))
    epoch = np.arange(1, epochs + 1)
    pd.DataFrame({"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": 0.5 + 0.1 * epoch,
                  "val_loss": 0.9 / epoch, "val_acc": np.linspace(0.6, accuracy, epochs)}).to_csv(out / "history.csv",
                                                                                              index=False)
    pd.DataFrame({"id": np.arange(len(labels)), "label": labels, "pred": preds}).to_parquet(out / "predictions.parquet")
    return accuracy


def write_stats(root, dataset, train, test):
    path = root / "data" / "prepared" / dataset / "stats.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": {"train": train, "val": 10, "test": test}, "classes": CLASSES,
                                "token_length_quantiles": {"train": {"p50": 30, "p90": 50}}, "malformed": {}}))


def report_job(params, mode="full"):
    return Plan(params, quick=mode == "quick").job("report", {"mode": mode}).settings


STUDY = {
    "description": "synthetic study",
    "datasets": ["imdb"],
    "vocab": "basic_min10",
    "model": "lstm_base",
    "variants": {"a": {}, "b": {"model": {"cell": "gru"}}, "c": {"model": {"cell": "rnn"}},
                 "gone": {"model": {"hidden": 8}}},
    "reference": {"a": 0.80, "b": 0.90},
}


@pytest.fixture
def report(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    accs = {}
    for name, count, rate in [("a", 50_000, 0.2), ("b", 80_000, 0.1), ("c", 20_000, 0.3)]:
        accs[name] = write_run(tmp_path / "results/full/imdb/s" / name / "seed1", labels, rate, rng,
                               params_count=count)
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)  # the report job names repo-relative paths
    summary = build_report(report_job(_params({"s": STUDY})), tmp_path / "reports")
    return tmp_path / "reports", summary, accs


def _table_rows(text, heading):
    section = text[text.index(f"## {heading}\n"):]
    section = section[:section.index("\n## ", 3)] if "\n## " in section[3:] else section
    table = next(block for block in section.split("\n\n") if block.startswith("| variant |"))
    header, _, *rows = table.splitlines()
    names = [h.strip() for h in header.strip("|").split("|")]
    return [dict(zip(names, (c.strip() for c in row.strip("|").split(" | ")), strict=True)) for row in rows]


def _headline_cells(text, study):
    """The headline row of `study` as {column: cell}."""
    lines = text[text.index("## Headline\n"):].splitlines()
    header = next(line for line in lines if line.startswith("| study |"))
    row = next(line for line in lines if line.startswith(f"| {study} |"))
    return dict(zip(*([c.strip() for c in line.strip("|").split("|")] for line in (header, row)), strict=True))


def test_table_sorted_with_reference_delta_and_caveat(report):
    out, _, accs = report
    rows = _table_rows(report_text(out), "s")
    assert [r["variant"] for r in rows] == sorted(accs, key=accs.get, reverse=True)
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    b = next(r for r in rows if r["variant"] == "b")
    # IMDB references trained on 25,000 rows; these runs used 100: the caveat sits beside Δ
    assert b["reference"] == "0.9000" and b["Δ"] == f"{accs['b'] - 0.90:+.4f} ⚠ 100 vs 25,000 train rows"
    assert next(r for r in rows if r["variant"] == "c")["Δ"] == ""


def test_every_row_names_its_setting_from_the_results(report):
    out, _, _ = report
    for row in _table_rows(report_text(out), "s"):
        assert (row["setting"], row["train rows"], row["test rows"], row["seed"], row["vectors"]) == \
            ("full", "100", "200", "1", "random 100d")


def test_rows_name_the_hardware_that_trained_them(tmp_path, monkeypatch):
    """Results from a lent GPU beside CPU ones: each row says which, the setting line names both
    (with torch versions), summary.json has it per variant; results without the field say so."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 200)
    # "gone": a TF-IDF-like row on the same CPU, no torch version: the CPU is still named once
    for name, hardware in [("a", ("NVIDIA H200", "2.11.0+cu130")), ("b", ("AMD EPYC", "2.13.0+cpu")), ("c", None),
                           ("gone", ("AMD EPYC", None))]:
        write_run(tmp_path / "results/full/imdb/s" / name / "seed1", labels, 0.2, rng, hardware=hardware)
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"s": STUDY})), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    rows = {r["variant"]: r for r in _table_rows(text, "s")}
    assert (rows["a"]["hardware"], rows["b"]["hardware"], rows["c"]["hardware"]) == ("H200 GPU", "AMD EPYC CPU", "")
    assert "trained on AMD EPYC CPU (torch 2.13.0+cpu), H200 GPU (torch 2.11.0+cu130)" in text
    by_variant = summary["studies"]["s"]["detail"]["by_variant"]
    assert by_variant["a"]["hardware"] == "H200 GPU (torch 2.11.0+cu130)"
    assert by_variant["c"]["hardware"] == "not recorded"


def test_headline_names_best_variant_interval_references_and_setting(report):
    out, summary, accs = report
    text = report_text(out)
    cells = _headline_cells(text, "s")
    best = max(accs, key=accs.get)
    low, high = summary["studies"]["s"]["acc_ci_low"], summary["studies"]["s"]["acc_ci_high"]
    assert cells["best variant"] == f"`{best}`" and cells["accuracy [95 % CI]"] == f"{accs[best]:.4f} [{low:.4f}, {high:.4f}]"
    # b is best, ref 0.90, and is the study's best published number; ⚠: 100 train rows, the reference's 25,000
    assert cells["its reference"] == "0.9000 ⚠" and cells["study's best reference"] == "0.9000 (`b`) ⚠"
    assert (cells["train rows"], cells["seeds"], cells["vectors"], cells["neural variants run"]) \
        == ("100", "1", "random 100d", "3 of 4")
    assert cells["TF-IDF, same split"] == ""  # no baseline in this project


def test_the_studys_best_reference_names_its_variant_and_whether_it_ran(tmp_path, monkeypatch):
    """A study's highest published number may belong to a variant not run here (or another
    setting): the headline names it, so nobody reads it as the best variant's own target."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    write_run(tmp_path / "results/full/imdb/s/a/seed1", labels, 0.2, rng, n_train=25_000)
    write_stats(tmp_path, "imdb", 25_000, 200)
    monkeypatch.chdir(tmp_path)
    build_report(report_job(_params({"s": {**STUDY, "reference": {"a": 0.80, "gone": 0.95}}})), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    cells = _headline_cells(text, "s")
    # 25,000 rows, as the reference's IMDB: no ⚠
    assert (cells["its reference"], cells["study's best reference"]) == ("0.8000", "0.9500 (`gone`, not run here)")


def test_the_best_references_warning_comes_from_its_own_variants_rows(tmp_path, monkeypatch):
    """⚠ beside the study's best published number is about that variant's rows, not the best run's."""
    labels = np.random.default_rng(0).integers(0, 4, 200)
    write_run(tmp_path / "results/full/imdb/s/a/seed1", labels, 0.1, np.random.default_rng(1), n_train=100)
    write_run(tmp_path / "results/full/imdb/s/b/seed1", labels, 0.3, np.random.default_rng(2), n_train=25_000)
    write_stats(tmp_path, "imdb", 25_000, 200)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"s": {**STUDY, "reference": {"a": 0.80, "imdb/b": 0.95,
                                                                           "ag_news/c": 0.99}}})), tmp_path / "reports")
    s = summary["studies"]["s"]  # summary.json: ints, the best's rows in the headline, every run's range in detail
    assert (s["best"], s["n_train"], s["n_test"]) == ("a", 100, 200)
    assert (s["detail"]["n_train_range"], s["detail"]["n_test_range"]) == ([100, 25_000], [200, 200])
    cells = _headline_cells(report_text(tmp_path / "reports"), "s")
    # a is best (100 rows: ⚠); b's reference is the highest on imdb (ag_news's does not count), on the same rows
    assert (cells["best variant"], cells["its reference"], cells["study's best reference"]) == (
        "`a`", "0.8000 ⚠", "0.9500 (`b`)")


def test_unrun_variants_are_one_line_with_the_command(report):
    out, _, _ = report
    text = report_text(out)
    lines = [line for line in text.splitlines() if "gone" in line or "Missing" in line]
    assert lines == ["**Missing or failed** (full setting): 1 variant without usable results: `imdb/s/gone` "
                     "(missing); to run them: `snakemake --cores 2 --config budget=none studies=[s]`."]


def test_many_unrun_variants_are_still_one_line(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, 100)
    study = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base",
             "variants": {"a": {}}, "grid": [{"name": "h", "key": "model.hidden", "values": list(range(8, 80))}]}
    write_run(tmp_path / "results/quick/imdb/big/a-h8/seed1", labels, 0.2, rng, quick=True)
    write_stats(tmp_path, "imdb", 100, 100)
    monkeypatch.chdir(tmp_path)
    build_report(report_job(_params({"big": study}), "quick"), tmp_path / "reports/quick")
    text = report_text(tmp_path / "reports/quick")
    overview = (tmp_path / "reports/quick/summary.md").read_text()
    assert len(_table_rows(text, "big")) == 1 and "a-h9" not in overview
    # the overview counts them on the study's row; the study's page names every one of them
    (row,) = [line for line in overview.splitlines() if line.startswith("| [big](studies/big.md) |")]
    assert "| 1 of 72 | 71 (no estimate) |" in row
    page = (tmp_path / "reports/quick/studies/big.md").read_text()
    assert all(f"| `imdb/big/a-h{h}` | missing | 1 |  |" in page for h in range(9, 80))
    (line,) = [line for line in text.splitlines() if "without usable results" in line]
    assert line == ("**Missing or failed** (quick setting): 71 variants without usable results; to run them: "
                    "`snakemake --cores 2 --config budget=none studies=[big] quick=true`.")


def test_summary_json_headline_and_setting(report):
    _, summary, accs = report
    assert summary["mode"] == "full"
    s = summary["studies"]["s"]
    assert list(s) == list(STUDY_KEYS)
    best = max(accs, key=accs.get)
    assert (s["acc"], s["best"], s["mode"], s["n_train"], s["n_test"]) == (pytest.approx(accs[best]), best, "full",
                                                                            100, 200)
    assert s["best_accuracy"] == s["acc"] and s["variants_done"] == 3
    d = s["detail"]
    assert d["variants_missing"] == 1 and d["seed_list"] == "1" and d["vectors"] == "random 100d"
    b = d["by_variant"]["b"]
    assert (b["setting"], b["n_train"], b["n_test"], b["seed_list"], b["vectors"]) == ("full", 100, 200, "1",
                                                                                      "random 100d")
    assert b["n_seeds"] == 1 and b["ci_low"] < accs["b"] < b["ci_high"]
    assert d["ci"]["best"]["variant"] == best
    assert d["errors"]["imdb"] == {"models": 3, "items": 200, "all_wrong": d["errors"]["imdb"]["all_wrong"],
                                   "full_test_set": True, "ensemble_accuracy": pytest.approx(
                                       d["errors"]["imdb"]["ensemble_accuracy"])}


def test_a_studys_wall_time_is_the_time_any_of_its_runs_was_in_progress():
    runs = pd.DataFrame({"started_at": ["2026-12-05T10:00:00+00:00", "2026-12-05T10:20:00+00:00",
                                        "2026-12-06T09:00:00+00:00", None],
                         "finished_at": ["2026-12-05T10:30:00+00:00", "2026-12-05T11:00:00+00:00",
                                         "2026-12-06T09:10:00+00:00", None]})
    wall = study_wall_time(runs)  # two overlapping runs (60 min), a night off, one more (10 min)
    assert (wall.seconds, wall.timed, wall.runs) == (70 * 60, 3, 4)
    line = wall_time_line(runs)
    assert line.startswith("Wall time: 70 min with at least one of its runs in progress (3 runs, 2026-12-05 10:00 "
                           "to 2026-12-06 09:10 UTC") and "1 run without a recorded start and finish left out" in line
    assert study_wall_time(runs.iloc[3:]) is None and "not recorded (1 run made before" in wall_time_line(runs.iloc[3:])


def test_wall_time_says_what_resumed_runs_trained_before_their_recorded_start():
    runs = pd.DataFrame({"started_at": ["2026-12-05T10:00:00+00:00", "2026-12-06T09:00:00+00:00"],
                         "finished_at": ["2026-12-05T10:30:00+00:00", "2026-12-06T09:10:00+00:00"],
                         "resumed_from_epoch": [None, 3], "seconds_per_epoch": [60.0, 200.0]})
    wall = study_wall_time(runs)  # the second run's 3 epochs before its resume trained ~10 min earlier
    assert (wall.seconds, wall.resumed, wall.before_resume) == (40 * 60, 1, 600.0)
    assert wall_time_line(runs).endswith("; 1 run resumed from an epoch checkpoint after a stop: about 10 min "
                                         "of training ran before that and is not counted).")
    assert "resumed" not in wall_time_line(runs.iloc[:1])


def test_report_shows_each_studys_wall_time(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    for name, clock in [("a", ("2026-12-05T10:00:00+00:00", "2026-12-05T10:40:00+00:00")),
                        ("b", ("2026-12-05T10:00:05+00:00", "2026-12-05T10:30:00+00:00")), ("c", None)]:
        write_run(tmp_path / "results/full/imdb/s" / name / "seed1", labels, 0.2, rng, clock=clock,
                  resumed_from_epoch=1 if name == "b" else None)  # b: its first epoch in an earlier process
    write_run(tmp_path / "results/full/imdb/u/a/seed1", labels, 0.2, rng, clock=None)  # made before the clock
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"s": STUDY, "u": STUDY})), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    assert ("Wall time: 40 min with at least one of its runs in progress (2 runs, 2026-12-05 10:00 to 10:40 UTC; "
            "runs of other studies may have shared the machine; 1 run without a recorded start and finish left out; "
            "1 run resumed from an epoch checkpoint after a stop: about 2 s of training ran before that") in text
    overview = text[text.index("## Overview"):text.index("## Headline")]
    assert "| wall time |" in overview
    assert "| 40 min (2 of 3 runs timed; + about 2 s of 1 resumed run's earlier epochs) |" in overview
    assert [line.rstrip(" |").rsplit("| ", 1)[1] for line in overview.splitlines() if line.startswith("| [u]")] \
        == ["not recorded"]
    detail = summary["studies"]["s"]["detail"]
    assert (detail["wall_seconds"], detail["wall_runs_timed"], detail["wall_runs_resumed"],
            detail["wall_seconds_before_resume"]) == (2400.0, 2, 1, 1.5)


def test_the_variant_chosen_on_validation_is_named_beside_the_test_ranking(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    accs = {name: write_run(tmp_path / "results/full/imdb/s" / name / "seed1", labels, rate, rng, val=val)
            for name, rate, val in [("a", 0.1, 0.70), ("b", 0.2, 0.80), ("c", 0.3, 0.75)]}
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"s": STUDY})), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    assert (f"**Chosen on validation** (imdb): `b`, validation accuracy 0.8000, test {accs['b']:.4f} (one seed;") in text
    assert accs["a"] > accs["b"]  # the test ranking would have picked another
    assert summary["studies"]["s"]["detail"]["chosen_on_validation"] == {
        "imdb": {"variant": "b", "val_accuracy": 0.8, "accuracy": pytest.approx(accs["b"]), "n_seeds": 1}}


def test_summary_json_study_keys_never_collide_with_params_study_keys():
    """`dvc exp show` puts params and metrics columns side by side: a study's metric keys must
    not be names params.yaml uses inside a study, or the README's --drop recipe would hide
    changed parameters."""
    schema = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    study_schema = schema["properties"]["studies"]["additionalProperties"]
    params_keys = set(study_schema["properties"])
    assert {"datasets", "variants", "seeds", "reference"} <= params_keys
    assert not params_keys & set(STUDY_KEYS)
    assert set(HEADLINE_KEYS) <= set(STUDY_KEYS)


def test_figures_are_png_and_next_to_their_table(report):
    out, _, _ = report
    names = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert names == ["s_acc_vs_params.png", "s_accuracy_ci.png", "s_confusion.png", "s_curves.png"]
    text = report_text(out)
    for name in names:
        assert (out / "figures" / name).read_bytes()[:8] == PNG_MAGIC
        assert f"figures/{name}" in text
    # the table, then its figures, before the statistics section
    assert text.index("| variant |") < text.index("figures/s_curves.png") < text.index("### Seeds, intervals")
    curves = json.loads((out / "figures/curves/s.json").read_text())
    assert {r["variant"] for r in curves} == {"a", "b", "c"} and {r["split"] for r in curves} == {"train", "val"}
    assert all(isinstance(r["epoch"], int) for r in curves)


def test_report_header_and_overview_name_the_setting(report):
    out, _, _ = report
    text = report_text(out)
    assert text.startswith("# textclf-pipeline report: full setting")
    assert "| [s](studies/s.md) | full | imdb | 100 | 200 | 1 | 3 of 4 | 1 (no estimate) | b |" in text


def test_quick_report_shows_rows_actually_used(tmp_path, monkeypatch):
    """The quick setting samples 4,000 of 22,500 training rows: the report says 4,000 (from
    metrics.json), labels the prepared 22,500 as what they are, and says "quick" everywhere."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 300)
    study = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base", "variants": {"a": {}, "b": {}},
             "reference": {"a": 0.85}}
    for name in ("a", "b"):
        write_run(tmp_path / "results/quick/imdb/s" / name / "seed1", labels, 0.2, rng, n_train=4000, quick=True)
    write_stats(tmp_path, "imdb", 22_500, 25_000)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"s": study}), "quick"), tmp_path / "reports/quick")
    text = report_text(tmp_path / "reports/quick")
    assert text.startswith("# textclf-pipeline report: quick setting")
    assert "| s | imdb | quick | 4,000 | 300 | 1 | random 100d | 2 of 2 |" in text  # rows used
    assert "| imdb | 22,500 | 10 | 25,000 |" in text  # the prepared splits, labelled as such
    assert "| prepared train |" in text
    assert "**Setting**: quick setting · imdb: 4,000 train / 300 test rows · seed 1" in text
    assert {r["setting"] for r in _table_rows(text, "s")} == {"quick"}
    assert "⚠ 4,000 vs 25,000 train rows" in text
    s = summary["studies"]["s"]
    assert (summary["mode"], s["mode"], s["n_train"], s["n_test"]) == ("quick", "quick", 4000, 300)
    # two models: items every model misses, but no "ensemble"; 300 of 25,000 items: a sample
    assert "quick sample of the test set (the full test set has 25,000)" in text
    assert "No ensemble: a majority vote needs at least 3 models (2 here)" in text
    assert "Majority-vote" not in text and "whole test set" not in text
    assert "ensemble_accuracy" not in s["detail"]["errors"]["imdb"]
    assert s["detail"]["errors"]["imdb"]["full_test_set"] is False


def test_agnews_delta_against_120000_rows_and_baselines_ranked_per_dataset(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    studies = {
        "agn": {"datasets": ["ag_news"], "vocab": "basic_min10", "model": "lstm_base",
                "variants": {"lstm": {}}, "reference": {"lstm": 0.8859}},
        "baselines": {"datasets": ["ag_news", "imdb"], "model": "tfidf_logreg", "variants": {"tfidf": {}}},
    }
    params = _params(studies, datasets=("ag_news", "imdb"))
    rates = {("agn", "ag_news", "lstm"): 0.1, ("baselines", "ag_news", "tfidf"): 0.05,
             ("baselines", "imdb", "tfidf"): 0.3}
    accs = {}
    for (study, dataset, variant), rate in rates.items():
        labels = rng.integers(0, 4, 400)
        accs[(dataset, study)] = write_run(tmp_path / f"results/full/{dataset}/{study}/{variant}/seed1", labels,
                                           rate, rng, n_train=114_000, model="rnn" if study == "agn" else "tfidf")
    write_stats(tmp_path, "ag_news", 114_000, 400)
    write_stats(tmp_path, "imdb", 22_500, 400)
    monkeypatch.chdir(tmp_path)
    build_report(report_job(params), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    (row,) = _table_rows(text, "agn")
    assert row["Δ"] == f"{accs[('ag_news', 'agn')] - 0.8859:+.4f} ⚠ 114,000 vs 120,000 train rows"
    assert "on ag_news ours trained on 114,000 rows, the reference on 120,000" in text
    base = _table_rows(text, "baselines")
    # sorted by dataset and ranked within it: each dataset has its own #1, whatever the accuracies
    assert [(r["dataset"], r["rank"]) for r in base] == [("ag_news", "1"), ("imdb", "1")]
    assert (tmp_path / "reports/figures/baselines_ag_news_confusion.png").exists()
    assert (tmp_path / "reports/figures/baselines_imdb_confusion.png").exists()
    assert "baselines_curves.png" not in text  # TF-IDF has no epochs: no "curve"
    overview = text[text.index("## Overview"):text.index("## Headline")]
    (line,) = [line for line in overview.splitlines() if line.startswith("| [baselines]")]
    assert "| one per dataset |  |" in line  # no best across two test sets


def test_headline_tests_the_best_variant_against_tfidf_on_the_same_items(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    studies = {"agn": {"datasets": ["ag_news"], "vocab": "basic_min10", "model": "lstm_base", "variants": {"lstm": {}}},
               "baselines": {"datasets": ["ag_news"], "model": "tfidf_logreg", "variants": {"tfidf": {}}}}
    labels = rng.integers(0, 4, 400)
    runs = {"agn/lstm": 0.1, "baselines/tfidf": 0.3}
    for run, rate in runs.items():  # TF-IDF trained on fewer rows (a validation carve-out the variant skipped)
        write_run(tmp_path / f"results/full/ag_news/{run}/seed1", labels, rate, rng, n_train=100 if "lstm" in run else 90)
    write_stats(tmp_path, "ag_news", 100, 400)
    monkeypatch.chdir(tmp_path)
    build_report(report_job(_params(studies, datasets=("ag_news",))), tmp_path / "reports")
    right = {run: (pd.read_parquet(tmp_path / f"results/full/ag_news/{run}/seed1/predictions.parquet")
                   .eval("pred == label").to_numpy()) for run in runs}
    ours, theirs = right["agn/lstm"], right["baselines/tfidf"]
    better, worse = int((ours & ~theirs).sum()), int((~ours & theirs).sum())
    p = scipy.stats.binomtest(better, better + worse, 0.5).pvalue  # McNemar, exact
    text = report_text(tmp_path / "reports")
    cells = _headline_cells(text, "agn")
    assert p < 1e-4 and cells["vs TF-IDF (paired p)"] == f"{(better - worse) / 400:+.4f} (p < 0.0001)"
    assert cells["TF-IDF, same split"] == f"{theirs.mean():.4f} (90 train rows)"
    assert cells["its reference"] == cells["study's best reference"] == ""  # no published numbers


def test_a_damaged_predictions_file_warns_once_and_leaves_its_tests_empty(tmp_path, monkeypatch, caplog):
    rng = np.random.default_rng(6)
    studies = {"agn": {"datasets": ["ag_news"], "vocab": "basic_min10", "model": "lstm_base", "variants": {"lstm": {}}},
               "baselines": {"datasets": ["ag_news"], "model": "tfidf_logreg", "variants": {"tfidf": {}}}}
    labels = rng.integers(0, 4, 400)
    for run, rate in {"agn/lstm": 0.1, "baselines/tfidf": 0.3}.items():
        write_run(tmp_path / f"results/full/ag_news/{run}/seed1", labels, rate, rng)
    damaged = tmp_path / "results/full/ag_news/agn/lstm/seed1/predictions.parquet"
    damaged.write_bytes(b"not parquet")
    write_stats(tmp_path, "ag_news", 100, 400)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        build_report(report_job(_params(studies, datasets=("ag_news",))), tmp_path / "reports")
    warnings = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warnings) == 1 and "agn/lstm/seed1/predictions.parquet" in warnings[0]
    text = report_text(tmp_path / "reports")
    cells = _headline_cells(text, "agn")
    assert cells["best variant"] == "`lstm`" and cells["vs TF-IDF (paired p)"] == ""


def test_a_reference_outside_our_interval_gets_what_differs_or_unexplained(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, 400)
    base = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base",
            "variants": {"far": {}, "near": {"model": {"cell": "gru"}}}}
    accs = {}
    for study in ("plain", "known"):
        for variant, rate in (("far", 0.1), ("near", 0.2)):
            accs[study, variant] = write_run(tmp_path / f"results/full/imdb/{study}/{variant}/seed1", labels, rate,
                                             rng, n_train=25_000)  # the reference's rows: no size difference
    studies = {study: {**base, "reference": {"far": 0.99, "near": round(accs[study, "near"], 4)}}
               for study in ("plain", "known")}
    studies["known"]["known_differences"] = "other reviews in each split"
    write_stats(tmp_path, "imdb", 25_000, 400)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params(studies)), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    for study, label, listed in (("plain", "**unexplained**", ["unexplained"]),
                                 ("known", "other reviews in each split", ["other reviews in each split"])):
        gaps = summary["studies"][study]["detail"]["outside_reference"]
        assert list(gaps) == ["far"] and gaps["far"]["known_differences"] == listed  # `near` is inside
        assert gaps["far"]["delta"] == pytest.approx(accs[study, "far"] - 0.99)
        section = text[text.index(f"## {study}\n"):]
        section = section[:section.index("\n## ", 3)]
        assert f"- {label}: `far` {accs[study, 'far'] - 0.99:+.4f}\n" in section
        assert "with one seed the interval covers the test items' sampling only" in section


@pytest.mark.parametrize("mode", ["full", "quick"])
def test_what_differs_from_the_reference_is_read_from_the_runs(tmp_path, monkeypatch, mode):
    """Train rows and the quick caps come from each run's metrics.json, per dataset."""
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 4, 400)
    study = {"datasets": ["ag_news", "imdb"], "vocab": "basic_min10", "model": "lstm_base",
             "variants": {"far1": {}, "far2": {"model": {"cell": "gru"}}}, "reference": {"far1": 0.99, "far2": 0.99}}
    rows = {"ag_news": 23_498, "imdb": 25_000} if mode == "full" else {"ag_news": 4_000, "imdb": 4_000}
    for dataset, n_train in rows.items():
        for variant, rate in (("far1", 0.1), ("far2", 0.15)):
            write_run(tmp_path / f"results/{mode}/{dataset}/m/{variant}/seed1", labels, rate, rng, n_train=n_train,
                      quick=mode == "quick")
        write_stats(tmp_path, dataset, n_train, 400)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / ("reports" if mode == "full" else "reports/quick")
    summary = build_report(report_job(_params({"m": study}, datasets=("ag_news", "imdb")), mode), out)
    m = summary["studies"]["m"]  # over two datasets: no best, so no headline rows; their range in detail
    assert (m["best"], m["n_train"], m["detail"]["n_train_range"]) == (None, None, [min(rows.values()), max(rows.values())])
    gaps = summary["studies"]["m"]["detail"]["outside_reference"]
    assert sorted(gaps) == ["ag_news/far1", "ag_news/far2", "imdb/far1", "imdb/far2"]
    quick = ["quick setting (capped epochs, rows and test sample)"] if mode == "quick" else []
    assert gaps["ag_news/far1"]["known_differences"] == [*quick, f"{rows['ag_news']:,} vs 120,000 train rows"]
    assert gaps["imdb/far1"]["known_differences"] == ([*quick, "4,000 vs 25,000 train rows"] if quick
                                                      else ["unexplained"])
    text = report_text(out)
    # the variants sharing what differs share one line, smallest Δ first
    line = next(x for x in text.splitlines() if x.startswith("- ") and "`ag_news/far1`" in x)
    assert line.index("`ag_news/far2`") < line.index("`ag_news/far1`")


def test_train_rows_and_vectors_that_differ_from_the_reference():
    assert reference_gap.train_rows_gap("cells_agnews", "ag_news", 23_498.0) == "23,498 vs 120,000 train rows"
    assert reference_gap.train_rows_gap("cells_imdb", "imdb_8020", 40_000) is None
    assert reference_gap.train_rows_gap("sweep_imdb", "imdb_004", 25_000) is None
    assert reference_gap.train_rows_gap("gru_scratch", "imdb", 25_000).startswith("reference: another corpus")
    assert reference_gap.train_rows_gap("s", "elsewhere", 10) == reference_gap.UNKNOWN_ROWS
    assert reference_gap.vectors_gap("glove100_004 50d frozen") == "GloVe 50d in place of 100d"
    assert reference_gap.vectors_gap("glove100 50d") == "GloVe 50d in place of 100d"
    for same in ("glove50 50d", "random 100d", "glove6B 50d", None):
        assert reference_gap.vectors_gap(same) is None


def test_stale_figures_of_unselected_studies_are_removed(report, tmp_path, monkeypatch):
    out, _, _ = report
    stale = out / "figures" / "old_study_curves.png"
    stale.write_bytes(PNG_MAGIC)
    (out / "figures/curves/old_study.json").write_text("[]")
    build_report(report_job(_params({"s": STUDY})), out)
    assert not stale.exists() and not (out / "figures/curves/old_study.json").exists()
    assert (out / "figures/s_curves.png").exists()


def test_error_analysis_counts_and_ensemble():
    labels = np.array([0, 1, 2, 3, 0, 1])
    preds = {
        "m1": pd.DataFrame({"id": range(6), "label": labels, "pred": [0, 1, 2, 0, 1, 1]}),
        "m2": pd.DataFrame({"id": range(6), "label": labels, "pred": [0, 1, 0, 0, 1, 1]}),
        "m3": pd.DataFrame({"id": range(6), "label": labels, "pred": [0, 2, 2, 0, 0, 1]}),
    }
    result = error_analysis(preds, ["A", "B", "C", "D"])
    # item 3 (class D) is wrong for all three; majority vote: [0,1,2,0,1,1] -> 4/6 right
    assert result["all_wrong"] == 1 and result["all_wrong_by_class"] == {"D": 1}
    assert result["ensemble_accuracy"] == pytest.approx(4 / 6)
    two = error_analysis({"m1": preds["m1"], "m2": preds["m2"]}, ["A", "B", "C", "D"])
    assert two["models"] == 2 and "ensemble_accuracy" not in two  # a vote of two is no ensemble
    assert error_analysis({"m1": preds["m1"]}, ["A", "B", "C", "D"]) is None


def test_hand_written_gru_is_compared_with_nn_gru_trained_the_same_way():
    from textclf.report.study_notes import scratch_gru_lines as _scratch_gru_lines

    rng = np.random.default_rng(9)
    labels = rng.integers(0, 4, 400)
    right = {"s-fix": rng.random(400) < 0.85, "n-fix": rng.random(400) < 0.86, "n-ref": rng.random(400) < 0.8}
    predictions = {name: pd.DataFrame({"id": np.arange(400), "label": labels,
                                       "pred": np.where(ok, labels, (labels + 1) % 4)}) for name, ok in right.items()}
    common = {"dataset": "imdb", "setting": "full", "embedding": "glove50 50d frozen", "optimizer": "adam 0.0001",
              "hidden": 100, "layers": 1, "n_train": 22_500, "seed": 1, "bidirectional": False}
    done = pd.DataFrame([
        {**common, "variant": "s-fix", "cell": "gru_scratch", "max_len": 256, "eval_split": "val", "epochs_run": 10,
         "seconds_per_epoch": 42.0, "accuracy": right["s-fix"].mean(), "results": "s-fix"},
        {**common, "variant": "n-fix", "cell": "gru", "max_len": 256, "eval_split": "val", "epochs_run": 10,
         "seconds_per_epoch": 2.0, "accuracy": right["n-fix"].mean(), "results": "n-fix"},
        # trained another way (batch 1, full length, test as validation): never the twin of s-fix
        {**common, "variant": "n-ref", "cell": "gru", "max_len": 5000, "eval_split": "test", "epochs_run": 5,
         "seconds_per_epoch": 900.0, "accuracy": right["n-ref"].mean(), "results": "n-ref"},
        {**common, "variant": "bi", "cell": "gru", "bidirectional": True, "max_len": 256, "eval_split": "val",
         "epochs_run": 10, "seconds_per_epoch": 3.0, "accuracy": 0.9, "results": "bi"}])
    header, _, line, _ = _scratch_gru_lines(done, predictions)
    better = int((right["s-fix"] & ~right["n-fix"]).sum())
    worse = int((~right["s-fix"] & right["n-fix"]).sum())
    p = scipy.stats.binomtest(better, better + worse, 0.5).pvalue  # McNemar, exact
    assert header.startswith("**Hand-written GRU vs nn.GRU**, trained the same way")
    assert line.startswith("- `s-fix` vs `n-fix`: 42.0 s vs 2.0 s per epoch, **21.0x**; accuracy "
                           f"{right['s-fix'].mean():.4f} vs {right['n-fix'].mean():.4f}, difference "
                           f"{(better - worse) / 400:+.4f} ")
    assert line.endswith("(p < 0.0001)") if p < 1e-4 else line.endswith(f"(p {p:.2g})")
    assert _scratch_gru_lines(done[done["cell"] == "gru"], predictions) == []


def test_three_seed_study_renders_intervals_tests_and_twins(tmp_path, monkeypatch):
    study = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base", "seeds": [1, 2, 3],
             "variants": {"a": {}, "b": {"model": {"cell": "gru"}}},
             "grid": [{"name": "", "values": {"ref": {}, "fix": {"model": {"hidden": 8}}}}],
             "reference": {"a-ref": 0.70}}
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 2000)
    rates = {"a-ref": 0.30, "a-fix": 0.22, "b-ref": 0.31, "b-fix": 0.30}
    for name, rate in rates.items():
        for seed in (1, 2, 3):
            write_run(tmp_path / "results/full/imdb/s" / name / f"seed{seed}", labels, rate + 0.01 * seed, rng,
                      params_count=1000, eval_split="test" if name.endswith("ref") else "val")
    write_stats(tmp_path, "imdb", 100, 2000)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_job(_params({"s": study})), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    assert "a-fix` is best" in text and "mean ± std" in text and "ref/fix twins" in text
    assert "Seed variance is not measured" not in text
    assert "4 of 4 variants have results (12 runs over seeds)." in text
    by_variant = summary["studies"]["s"]["detail"]["by_variant"]
    assert by_variant["a-fix"]["n_seeds"] == 3 and by_variant["a-fix"]["std"] > 0
    assert by_variant["a-fix"]["seed_list"] == "1,2,3"
    assert summary["studies"]["s"]["best"] == "a-fix"
    # the study's headline accuracy is the best variant's mean over its seeds, not its luckiest run
    assert summary["studies"]["s"]["acc"] == pytest.approx(by_variant["a-fix"]["mean"])


# ----------------------------------------------------------------- figures, one by one


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """Keep each figure open instead of saving it, to inspect what it draws."""
    figs = []

    def keep(fig, path):
        figs.append(fig)
        return path

    monkeypatch.setattr(figures, "save_figure", keep)
    yield figs
    for fig in figs:
        matplotlib.pyplot.close(fig)


def _history(epochs, acc):
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": epoch, "train_acc": 0.5 + 0.01 * epoch, "val_acc": np.linspace(0.5, acc, epochs),
                         "train_loss": 1.0 / epoch, "val_loss": 0.9 / epoch})


def test_learning_curves_name_val_and_test_and_use_integer_epochs(captured, tmp_path):
    colors = figures.variant_colors(["x-ref", "x-fix"])
    path = figures.learning_curves({("imdb", "x-ref"): [(_history(3, 0.8), "test")],
                                    ("imdb", "x-fix"): [(_history(3, 0.85), "val")]},
                                   "t", "quick setting · imdb: 4,000 train / 2,000 test rows", colors,
                                   tmp_path / "c.png")
    assert path is not None
    (fig,) = captured
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["x-fix", "x-ref", "validation", "test (eval_split: test)", "training"]
    acc_ax = fig.axes[0]
    ticks = [t for t in acc_ax.get_xticks() if acc_ax.get_xlim()[0] <= t <= acc_ax.get_xlim()[1]]
    assert ticks == [1, 2, 3]
    styles = {line.get_color(): set() for line in acc_ax.get_lines()}
    for line in acc_ax.get_lines():
        styles[line.get_color()].add(line.get_linestyle())
    assert styles == {colors["x-ref"][0]: {"--", ":"}, colors["x-fix"][0]: {"-", ":"}}
    assert "quick setting" in fig._suptitle.get_text()
    assert figures.learning_curves({}, "t", "", colors, tmp_path / "none.png") is None


def test_accuracy_vs_params_labels_points_one_axis_per_dataset(captured, tmp_path):
    table = pd.DataFrame({"dataset": ["a", "a", "a", "b"], "variant": ["v1", "v2", "v3", "v1"],
                          "seed": [1, 1, 1, 1], "accuracy": [0.8, 0.85, 0.9, 0.6],
                          "trainable_params": [10_000, 120_000, 1_500_000, 10_000]})
    figures.accuracy_vs_params(table, "t", "full setting", figures.variant_colors(table["variant"]),
                               tmp_path / "p.png")
    (fig,) = captured
    axes = list(fig.axes)
    assert [ax.get_title() for ax in axes] == ["a: test accuracy vs. trainable parameters",
                                                "b: test accuracy vs. trainable parameters"]
    assert sorted(t.get_text() for t in axes[0].texts) == ["v1", "v2", "v3"]
    assert axes[0].get_xscale() == "log" and len(axes[0].get_xticks()) >= 4


def test_confusion_matrix_is_normalised_with_readable_text_and_colour_bar(captured, tmp_path):
    cm = [[90, 10], [30, 70]]
    figures.confusion(cm, ["neg", "pos"], "best", "full setting", tmp_path / "cm.png")
    (fig,) = captured
    ax, colorbar = fig.axes  # the matrix and its colour bar
    shares = np.asarray(ax.images[0].get_array())
    assert np.allclose(shares.sum(axis=1), 1.0) and shares[0, 0] == pytest.approx(0.9)
    texts = {t.get_text(): t for t in ax.texts}
    assert set(texts) == {"0.90\n(90)", "0.10\n(10)", "0.30\n(30)", "0.70\n(70)"}
    image = ax.images[0]
    for (i, j), value in np.ndenumerate(shares):
        text = texts[f"{value:.2f}\n({cm[i][j]})"]
        cell = matplotlib.colors.to_rgb(image.cmap(image.norm(value)))
        ink = matplotlib.colors.to_rgb(text.get_color())
        lum = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b in (cell, ink)]
        assert abs(lum[0] - lum[1]) > 0.35, (value, cell, ink)  # dark ink on light cells and vice versa


def test_variant_colours_are_stable_and_distinct():
    one = figures.variant_colors(["b", "a", "c"])
    assert one == figures.variant_colors(["c", "a", "b", "a"])
    assert len({v for v in one.values()}) == 3
    many = figures.variant_colors([f"v{i}" for i in range(30)])
    assert len(set(many.values())) == 30


def test_sweep_study_gets_the_sweep_view(tmp_path, monkeypatch):
    space = {"model.hidden": [8, 16, 32], "training.optimizer.lr": [0.1, 0.01]}
    study = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base",
             "variants": {"lstm": {"search": {"method": "grid", "space": space}}}}
    params = _params({"sw": study})
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 400)
    monkeypatch.chdir(tmp_path)
    plan = Plan(params)
    for variant in plan.variants:
        rate = 0.1 + (0.2 if variant.training.optimizer.lr == 0.1 else 0.0) + 0.01 * rng.random()
        write_run(tmp_path / "results/full/imdb/sw" / variant.name / "seed1", labels, rate, rng)
    write_stats(tmp_path, "imdb", 100, 400)
    build_report(report_job(params), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    assert "### Sweep: sw" in text and "Parameter importance" in text
    assert (tmp_path / "reports" / "figures" / "sw_parallel.png").read_bytes()[:8] == PNG_MAGIC


def test_one_seed_statistics_section(report):
    out, _, _ = report
    text = report_text(out)
    assert "Seed variance is not measured" in text and "is best" in text


def test_training_size_curve_per_model_with_gain_per_doubling(tmp_path, monkeypatch):
    """A study over training.train_fraction gets one curve per model (rows from metrics.json),
    the gain of the last doubling, and its extension to the reference's 120,000 AG News rows,
    labelled as a guide, not a measurement."""
    rng = np.random.default_rng(5)
    study = {"datasets": ["ag_news"], "vocab": "basic_min10", "model": "lstm_base",
             "variants": {"gru": {"model": {"cell": "gru"}}, "tfidf": {"preset": "tfidf_logreg"}},
             "grid": [{"name": "frac", "key": "training.train_fraction", "values": [0.25, 0.5, 1.0]}]}
    params = _params({"ts": study}, datasets=("ag_news",))
    labels = rng.integers(0, 4, 2000)
    accs = {}
    for model, base in (("gru", 0.3), ("tfidf", 0.25)):
        for frac, n_train in ((0.25, 5000), (0.5, 10_000), (1, 20_000)):
            accs[(model, n_train)] = write_run(
                tmp_path / f"results/full/ag_news/ts/{model}-frac{frac}/seed1", labels, base - 0.05 * frac, rng,
                n_train=n_train, model="rnn" if model == "gru" else "tfidf")
    write_stats(tmp_path, "ag_news", 20_000, 2000)
    monkeypatch.chdir(tmp_path)
    build_report(report_job(params), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    assert "### Accuracy by training-set size" in text
    section = text[text.index("### Accuracy by training-set size"):]
    table = next(block for block in section.split("\n\n") if block.startswith("| model |"))
    header, _, *rows = table.splitlines()
    assert "5,000 rows" in header and "20,000 rows" in header and "at 120,000 rows if that gain held" in header
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")] for r in rows}
    assert set(cells) == {"gru", "tfidf"}
    gain = accs[("gru", 20_000)] - accs[("gru", 10_000)]  # one doubling
    assert cells["gru"][4] == f"{gain:+.4f}"
    assert cells["gru"][5] == f"{accs[('gru', 20_000)] + np.log2(120_000 / 20_000) * gain:.4f}"
    assert "not a measurement" in section
    headline = text[text.index("## Headline"):text.index("\n## ", text.index("## Headline") + 3)]
    (row,) = [line for line in headline.splitlines() if line.startswith("| ts |")]
    # TF-IDF on the same rows is the whole-split one, and only the neural variants are counted
    assert f"| {accs[('tfidf', 20_000)]:.4f} | " in row and row.endswith("| 3 of 3 |")
    assert (tmp_path / "reports/figures/ts_train_size.png").read_bytes()[:8] == PNG_MAGIC


def test_size_curves_are_named_without_their_size_token():
    from textclf.report.trainsize import curve_label

    assert curve_label(["bigru-max-frac0.25", "bigru-max-frac0.5", "bigru-max-frac1"]) == "bigru-max"
    assert curve_label(["x-frac0.1", "x-frac0.15"]) == "x"
    assert curve_label(["m-frac0.25-lr0.01", "m-frac1-lr0.01"]) == "m-lr0.01"


def test_json_number_rounds_and_turns_every_nan_into_null():
    """summary.json, the curves data and the reference gaps share one rule; a float32 NaN (what a
    history column can hold) must become null too, never a bare NaN that strict JSON rejects."""
    assert json_number(None) is None
    assert json_number(float("nan")) is None
    assert json_number(np.float32("nan")) is None
    assert json_number(np.float64(0.123456789)) == 0.123457
    assert json_number(np.float32(0.5)) == 0.5
    assert json_number(3) == 3.0 and isinstance(json_number(3), float)
    assert json.loads(json.dumps({"x": json_number(np.float32("nan"))})) == {"x": None}


def test_variants_with_the_same_settings_are_named_and_checked_for_identical_results(tmp_path, monkeypatch):
    """optimizers_imdb's sweeps share their default point under several names: the report says
    they are one result and checks the pipeline's promise that identical settings give
    identical predictions (classes and probabilities: the same bytes, as a rerun on one CPU gives)."""
    labels = np.random.default_rng(0).integers(0, 4, 200)
    for name in ("a", "twin", "p", "p2"):  # the same generator state: the same predictions, as a deterministic rerun
        write_run(tmp_path / "results/full/imdb/s" / name / "seed1", labels, 0.2, np.random.default_rng(1))
    for name, prob in (("p", 0.5), ("p2", 0.5 + 1e-7)):  # same classes, other probabilities
        path = tmp_path / "results/full/imdb/s" / name / "seed1/predictions.parquet"
        pd.read_parquet(path).assign(prob_0=prob).to_parquet(path)
    write_run(tmp_path / "results/full/imdb/s/c/seed1", labels, 0.3, np.random.default_rng(2))
    write_stats(tmp_path, "imdb", 100, 200)
    monkeypatch.chdir(tmp_path)
    study = {**STUDY, "variants": {"a": {}, "twin": {}, "c": {"model": {"cell": "rnn"}}, "c2": {"model": {"cell": "rnn"}},
                                   "p": {"model": {"cell": "gru"}}, "p2": {"model": {"cell": "gru"}}}}
    summary = build_report(report_job(_params({"s": study})), tmp_path / "reports")
    text = report_text(tmp_path / "reports")
    assert "**Same settings under several names**" in text
    assert "- `a`, `twin` (imdb, seed 1): the 2 with results agree bit for bit" in text
    assert "- `c`, `c2` (imdb, seed 1): 1 of 2 have results, so their agreement is not checked yet." in text
    assert ("- `p`, `p2` (imdb, seed 1): their predictions differ (every test item keeps its class, but the "
            "probabilities differ (by up to 1e-07)): nondeterminism") in text
    entries = summary["studies"]["s"]["detail"]["same_settings"]
    assert [(e["variants"], e["identical"], e["items_differing"]) for e in entries] == [
        (["a", "twin"], True, 0), (["c", "c2"], None, None), (["p", "p2"], False, 0)]


def test_same_settings_that_disagree_are_called_nondeterministic():
    from textclf.report.same_settings import SameSettings, agreement, same_settings_lines

    frame = pd.DataFrame({"id": [3, 1, 2], "label": [0, 1, 1], "pred": [0, 1, 0], "prob_0": [0.9, 0.2, 0.6]})
    other = frame.assign(pred=[0, 1, 1], prob_0=[0.9, 0.2, 0.4]).iloc[::-1]  # row order does not matter
    group = SameSettings(dataset="imdb", seed=5, variants=("x", "y"), results=("rx", "ry"))
    assert agreement(group, {"rx": frame, "ry": frame.iloc[::-1]})["identical"] is True
    assert agreement(group, {"rx": frame, "ry": other}) == {
        "compared": 2, "identical": False, "items_differing": 1, "max_probability_difference": pytest.approx(0.2)}
    lines, _ = same_settings_lines([group], {"rx": frame, "ry": other})
    assert "- `x`, `y` (imdb, seed 5): their predictions differ (1 test item changes class): nondeterminism" in lines[2]


def test_same_settings_on_other_seeds_or_datasets_are_not_grouped():
    from textclf.report.same_settings import same_settings_groups

    def run(name, dataset="imdb", seed=1):
        return {"results": f"results/{dataset}/{name}/seed{seed}",
                "variant": {"name": name, "dataset": dataset, "model": {"hidden": 8}, "training": {"seed": seed}}}

    groups = same_settings_groups([run("a"), run("b"), run("a", seed=2), run("c", dataset="ag_news"), run("d", seed=2)])
    assert [(g.dataset, g.seed, g.variants) for g in groups] == [("imdb", 1, ("a", "b")), ("imdb", 2, ("a", "d"))]
