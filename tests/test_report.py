"""Report rendering from synthetic results: sorted tables, reference columns, missing variants
listed, figures that are real PNGs, error analysis and ensemble."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import fixture_params, with_studies
from textclf.plan import Plan
from textclf.report import build_report
from textclf.report.errors import error_analysis

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _params():
    study = {
        "description": "synthetic study",
        "datasets": ["imdb"],
        "vocab": "basic_min10",
        "model": "lstm_base",
        "variants": {"a": {}, "b": {"model": {"cell": "gru"}}, "c": {"model": {"cell": "rnn"}},
                     "gone": {"model": {"hidden": 8}}},
        "reference": {"a": 0.80, "b": 0.90},
    }
    params = with_studies(fixture_params(), {"s": study})
    params["datasets"]["imdb"]["classes"] = ["World", "Sports", "Business", "Sci/Tech"]
    return params


def _write_variant(root, name, accuracy, preds, labels, params_count, seed=1, study="s"):
    out = root / "full" / "imdb" / study / name / f"seed{seed}"
    out.mkdir(parents=True)
    cm = pd.crosstab(pd.Series(labels), pd.Series(preds)).reindex(index=range(4), columns=range(4), fill_value=0)
    (out / "metrics.json").write_text(json.dumps({
        "accuracy": accuracy, "macro_f1": accuracy - 0.01, "loss": 0.5,
        "confusion_matrix": cm.to_numpy().tolist(),
        "classes": ["World", "Sports", "Business", "Sci/Tech"],
        "trainable_params": params_count, "acc_per_mparam": accuracy / (params_count / 1e6),
        "seconds_per_epoch": 1.5, "epochs_run": 2, "never_learned": False, "n_train": 100,
        "val": {"accuracy": accuracy - 0.005},
        "n_test": len(labels)}))
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_acc": [0.5, 0.7],
                  "val_loss": [0.9, 0.6], "val_acc": [0.6, accuracy]}).to_csv(out / "history.csv", index=False)
    pd.DataFrame({"id": np.arange(len(labels)), "label": labels, "pred": preds}).to_parquet(out / "predictions.parquet")


@pytest.fixture
def report(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    results = tmp_path / "results"
    accs = {}
    for name, params_count in [("a", 50_000), ("b", 80_000), ("c", 20_000)]:
        preds = labels.copy()
        flip = rng.random(200) < {"a": 0.2, "b": 0.1, "c": 0.3}[name]
        preds[flip] = (labels[flip] + 1) % 4
        accs[name] = float((preds == labels).mean())
        _write_variant(results, name, accs[name], preds, labels, params_count)
    prepared = tmp_path / "data" / "prepared" / "imdb"
    prepared.mkdir(parents=True)
    (prepared / "stats.json").write_text(json.dumps({
        "rows": {"train": 100, "val": 10, "test": 200}, "classes": ["W", "S", "B", "T"],
        "token_length_quantiles": {"train": {"p50": 30, "p90": 50}}, "malformed": {}}))
    monkeypatch.chdir(tmp_path)  # the report job names repo-relative paths
    job = Plan(_params()).job("report", {"mode": "full"}).settings
    summary = build_report(job, tmp_path / "reports")
    return tmp_path / "reports", summary, accs


def test_table_sorted_with_reference_and_missing(report):
    out, summary, accs = report
    text = (out / "summary.md").read_text()
    section = text[text.index("## s"):]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "variant" not in line]
    order = [row.split("|")[1].strip() for row in rows[:4]]
    assert order == sorted(accs, key=accs.get, reverse=True) + ["gone"]
    assert "| reference | Δ |" in section
    b_row = next(r for r in rows if r.startswith("| b |"))
    assert f"| 0.9000 | {accs['b'] - 0.90:+.4f} |" in b_row
    assert "**Missing or failed** (no usable results yet): `imdb/s/gone` (missing)" in section
    assert "| imdb | 100 | 10 | 200 |" in text


def test_summary_json_is_flat_numbers(report):
    _, summary, accs = report
    assert summary["mode"] == "full"
    s = summary["studies"]["s"]
    assert s["variants_done"] == 3 and s["variants_missing"] == 1
    assert s["best_accuracy"] == pytest.approx(max(accs.values()))
    assert s["accuracy"]["imdb.s.b.seed1"] == pytest.approx(accs["b"])
    assert "ensemble_accuracy_imdb" in s
    assert s["best.variant"] == max(accs, key=accs.get) and s["b.n_seeds"] == 1
    assert s["b.ci_low"] < accs["b"] < s["b.ci_high"]


def test_one_seed_statistics_section(report):
    out, _, _ = report
    text = (out / "summary.md").read_text()
    assert "Seed variance is not measured" in text and "is best" in text


def test_figures_are_png(report):
    out, _, _ = report
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == ["s_acc_vs_params.png", "s_accuracy_ci.png", "s_confusion.png", "s_curves.png"]
    for name in names:
        assert (out / "figures" / name).read_bytes()[:8] == PNG_MAGIC
        assert f"figures/{name}" in (out / "summary.md").read_text()


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
    assert error_analysis({"m1": preds["m1"]}, ["A", "B", "C", "D"]) is None


def test_speed_ratio_of_hand_written_gru():
    from textclf.report.build import _speed_ratio_lines

    done = pd.DataFrame({"cell": ["gru_scratch", "gru", "gru"], "bidirectional": [False, False, True],
                         "seconds_per_epoch": [42.0, 2.0, 3.0]})
    (line, _) = _speed_ratio_lines(done)
    assert "42.0 s vs 2.0 s per epoch, **21.0x** slower" in line
    assert _speed_ratio_lines(done[done["cell"] == "gru"]) == []


def test_three_seed_study_renders_intervals_tests_and_twins(tmp_path, monkeypatch):
    study = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base", "seeds": [1, 2, 3],
             "variants": {"a": {}, "b": {"model": {"cell": "gru"}}},
             "grid": [{"name": "", "values": {"ref": {}, "fix": {"model": {"hidden": 8}}}}],
             "reference": {"a-ref": 0.70}}
    params = with_studies(fixture_params(), {"s": study})
    params["datasets"]["imdb"]["classes"] = ["World", "Sports", "Business", "Sci/Tech"]
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 2000)
    rates = {"a-ref": 0.30, "a-fix": 0.22, "b-ref": 0.31, "b-fix": 0.30}
    for name, rate in rates.items():
        for seed in (1, 2, 3):
            preds = labels.copy()
            flip = rng.random(len(labels)) < rate + 0.01 * seed
            preds[flip] = (labels[flip] + 1) % 4
            _write_variant(tmp_path / "results", name, float((preds == labels).mean()), preds, labels, 1000, seed)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "prepared" / "imdb").mkdir(parents=True)
    (tmp_path / "data" / "prepared" / "imdb" / "stats.json").write_text(json.dumps(
        {"rows": {"train": 100, "val": 10, "test": 2000}, "classes": ["W", "S", "B", "T"]}))
    summary = build_report(Plan(params).job("report", {"mode": "full"}).settings, tmp_path / "reports")
    text = (tmp_path / "reports" / "summary.md").read_text()
    assert "a-fix` is best" in text and "mean ± std" in text and "ref/fix twins" in text
    assert "Seed variance is not measured" not in text
    s = summary["studies"]["s"]
    assert s["a-fix.n_seeds"] == 3 and s["a-fix.std"] > 0 and s["best.variant"] == "a-fix"


def test_sweep_study_gets_the_sweep_view(tmp_path, monkeypatch):
    space = {"model.hidden": [8, 16, 32], "training.optimizer.lr": [0.1, 0.01]}
    study = {"datasets": ["imdb"], "vocab": "basic_min10", "model": "lstm_base",
             "variants": {"lstm": {"search": {"method": "grid", "space": space}}}}
    params = with_studies(fixture_params(), {"sw": study})
    params["datasets"]["imdb"]["classes"] = ["World", "Sports", "Business", "Sci/Tech"]
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 400)
    monkeypatch.chdir(tmp_path)
    plan = Plan(params)
    for variant in plan.variants:
        rate = 0.1 + (0.2 if variant.training.optimizer.lr == 0.1 else 0.0) + 0.01 * rng.random()
        preds = labels.copy()
        flip = rng.random(len(labels)) < rate
        preds[flip] = (labels[flip] + 1) % 4
        _write_variant(tmp_path / "results", variant.name, float((preds == labels).mean()), preds, labels, 1000,
                       study="sw")
    (tmp_path / "data" / "prepared" / "imdb").mkdir(parents=True)
    (tmp_path / "data" / "prepared" / "imdb" / "stats.json").write_text(json.dumps(
        {"rows": {"train": 100, "val": 10, "test": 400}, "classes": ["W", "S", "B", "T"]}))
    build_report(plan.job("report", {"mode": "full"}).settings, tmp_path / "reports")
    text = (tmp_path / "reports" / "summary.md").read_text()
    assert "### Sweep: sw" in text and "Parameter importance" in text
    assert (tmp_path / "reports" / "figures" / "sw_parallel.png").read_bytes()[:8] == PNG_MAGIC
