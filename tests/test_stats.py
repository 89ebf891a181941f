"""Report statistics (textclf.report.stats, issue 9) on synthetic predictions with known
answers: paired tests, Holm, interval coverage, ref/fix twins, the one-seed path, the
figure and the rendered Markdown section."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from textclf.metrics import predictions_frame
from textclf.report.stats import (
    accuracy_interval,
    analyze_study,
    bootstrap_diff_interval,
    load_predictions,
    sign_flip_pvalue,
    summary_metrics,
    twin_pairs,
)
from textclf.report.stats_render import render_study_section, stats_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
K = 4  # classes


def _frame(labels: np.ndarray, correct: np.ndarray, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Predictions right exactly where `correct`; rows shuffled when rng is given, so that
    the analysis must align items by id."""
    frame = pd.DataFrame({"id": np.arange(len(labels)) + 100, "label": labels,
                          "pred": np.where(correct, labels, (labels + 1) % K)})
    return frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30))) if rng is not None else frame


def _study(correct: dict[tuple[str, int], np.ndarray], labels: np.ndarray, reference=None, rng=None):
    """runs + predictions from per-run correctness vectors."""
    reference = reference or {}
    rows = [{"variant": v, "seed": s, "accuracy": float(c.mean()), "n_test": len(c),
             "reference": reference.get(v, math.nan)} for (v, s), c in correct.items()]
    return pd.DataFrame(rows), {key: _frame(labels, c, rng) for key, c in correct.items()}


def _flip(correct: np.ndarray, to_wrong: np.ndarray, to_right: np.ndarray) -> np.ndarray:
    out = correct.copy()
    assert out[to_wrong].all() and not out[to_right].any()
    out[to_wrong], out[to_right] = False, True
    return out


@pytest.fixture
def labels():
    return np.random.default_rng(0).integers(0, K, 10_000)


# --------------------------------------------------------------------------- inputs


def test_load_predictions_reads_the_results_format(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(K), size=50)
    written = predictions_frame(np.arange(50) * 3, rng.integers(0, K, 50), probs)
    written.to_parquet(tmp_path / "predictions.parquet")
    frame = load_predictions(tmp_path / "predictions.parquet")
    assert list(frame.columns) == ["id", "label", "pred"]
    assert all(str(t) == "int64" for t in frame.dtypes)
    assert frame["pred"].tolist() == probs.argmax(axis=1).tolist()
    assert frame["id"].tolist() == (np.arange(50) * 3).tolist()


def test_item_sets_and_labels_must_match(labels):
    correct = np.arange(1000) % 5 != 0
    runs, preds = _study({("alpha", 0): correct, ("beta", 0): correct}, labels[:1000])
    preds[("beta", 0)] = preds[("beta", 0)].assign(id=lambda f: f["id"] + 1)
    with pytest.raises(ValueError, match=r"'(beta|alpha)'.*'(alpha|beta)'.*different test items"):
        analyze_study(runs, preds)
    runs, preds = _study({("alpha", 0): correct, ("beta", 0): correct}, labels[:1000])
    preds[("beta", 0)] = preds[("beta", 0)].assign(label=lambda f: (f["label"] + 1) % K)
    with pytest.raises(ValueError, match=r"disagree on the labels"):
        analyze_study(runs, preds)


def test_duplicate_runs_are_rejected(labels):
    runs, preds = _study({("alpha", 0): np.ones(10, bool)}, labels[:10])
    with pytest.raises(ValueError, match="duplicate"):
        analyze_study(pd.concat([runs, runs]), preds)


# --------------------------------------------------------------------------- paired tests


def test_identical_predictors_are_not_significant(labels):
    correct = np.random.default_rng(2).random(len(labels)) < 0.8
    runs, preds = _study({("alpha", 0): correct, ("beta", 0): correct.copy()}, labels, rng=np.random.default_rng(3))
    study = analyze_study(runs, preds)
    (comparison,) = study.comparisons.values()
    assert comparison.p_value == 1.0 and comparison.p_holm == 1.0
    assert not comparison.significant and comparison.diff == 0.0
    assert sorted(study.not_worse) == ["alpha", "beta"]
    assert "is not significantly worse" in study.sentence and "McNemar" in study.sentence


def test_five_points_more_on_10000_items_is_significant(labels):
    rng = np.random.default_rng(4)
    weak = rng.random(len(labels)) < 0.80
    right, wrong = np.flatnonzero(weak), np.flatnonzero(~weak)
    # strong: 1,000 items fixed, 500 broken -> right on exactly 500 (5 %) more items
    strong = _flip(weak, rng.choice(right, 500, replace=False), rng.choice(wrong, 1000, replace=False))
    runs, preds = _study({("weak", 0): weak, ("strong", 0): strong}, labels, rng=rng)
    study = analyze_study(runs, preds)
    assert study.best == "strong"
    c = study.comparisons["weak"]
    assert c.diff == pytest.approx(-0.05)
    assert (c.better_items, c.worse_items) == (500, 1000)
    assert c.p_value == pytest.approx(sps.binomtest(500, 1500, 0.5).pvalue)  # exact McNemar
    assert c.significant and c.p_holm < 1e-6
    assert study.not_worse == ["strong"]
    assert "significantly worse" in study.sentence


def test_five_points_more_with_three_seeds_is_significant(labels):
    rng = np.random.default_rng(5)
    difficulty = rng.random(len(labels))  # shared per-item difficulty, as real models share hard items
    correct = {}
    for seed in range(3):
        noise = rng.normal(0, 0.05, len(labels))
        correct[("weak", seed)] = difficulty + noise < 0.80
        correct[("strong", seed)] = difficulty + rng.normal(0, 0.05, len(labels)) < 0.85
    runs, preds = _study(correct, labels, rng=rng)
    study = analyze_study(runs, preds)
    assert study.best == "strong" and study.comparisons["weak"].significant
    assert study.comparisons["weak"].diff == pytest.approx(
        runs[runs.variant == "weak"].accuracy.mean() - runs[runs.variant == "strong"].accuracy.mean())
    assert "averaged over seeds" in study.sentence


def test_sign_flip_test_is_the_exact_permutation_test():
    # magnitudes 1..3 (three seeds): compare with scipy's exact enumeration of all 2^13 sign flips
    d = np.array([3, 2, 2, 1, 1, 1, 1, -1, -1, -2, 3, 1, 2, 0, 0])
    ref = sps.permutation_test((d, np.zeros_like(d)), lambda x, y, axis: np.sum(x - y, axis=axis),
                               permutation_type="samples", n_resamples=np.inf, vectorized=True)
    assert sign_flip_pvalue(d) == pytest.approx(ref.pvalue, rel=1e-9)
    # all magnitudes 1: McNemar
    assert sign_flip_pvalue([1] * 9 + [-1] * 2 + [0] * 5) == pytest.approx(sps.binomtest(9, 11).pvalue)
    assert sign_flip_pvalue([0, 0]) == 1.0
    with pytest.raises(ValueError, match="integer"):
        sign_flip_pvalue([0.5, 1])


def test_holm_correction_turns_raw_significance_into_not_significant(labels):
    n = 1000
    best = np.arange(n) < 800
    correct = {("best", 0): best}
    for j in range(3):  # each: 30 items the best gets right are wrong, 15 it gets wrong are right
        correct[(f"rival{j}", 0)] = _flip(best, np.arange(30) + 30 * j, np.arange(800, 815) + 15 * j)
    runs, preds = _study(correct, labels[:n])
    study = analyze_study(runs, preds)
    raw = sps.binomtest(15, 45, 0.5).pvalue
    assert raw < 0.05 < 3 * raw
    for j in range(3):
        c = study.comparisons[f"rival{j}"]
        assert c.p_value == pytest.approx(raw)
        assert c.p_holm == pytest.approx(3 * raw)  # Holm with three equal p-values
        assert not c.significant
    assert study.not_worse[0] == "best" and len(study.not_worse) == 4
    assert "do not single out a winner" in study.sentence


# --------------------------------------------------------------------------- intervals


def test_one_seed_wilson_interval_covers_the_true_rate_at_the_nominal_rate():
    rng = np.random.default_rng(6)
    p, n = 0.85, 500
    hits = [accuracy_interval([rng.binomial(n, p) / n], n).contains(p) for _ in range(500)]
    assert 0.92 <= np.mean(hits) <= 0.98


def test_seed_t_interval_covers_the_true_mean_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    hits = []
    for _ in range(500):
        ci = accuracy_interval(rng.normal(0.85, 0.01, 3), 10_000)
        assert ci.method == "t"
        hits.append(ci.contains(0.85))
    assert 0.92 <= np.mean(hits) <= 0.98


def test_item_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(8)
    hits = []
    for sim in range(300):  # per item: fix right w.p. 0.85, ref w.p. 0.80, correlated via a shared draw
        u = rng.random(800)
        fix, ref = (u < 0.85).astype(float), (np.where(rng.random(800) < 0.5, u, rng.random(800)) < 0.80).astype(float)
        hits.append(bootstrap_diff_interval(fix, ref, n_resamples=999, seed=sim).contains(0.05))
    assert 0.92 <= np.mean(hits) <= 0.98


def test_one_seed_path_shows_binomial_interval_and_says_seed_variance_not_measured(labels):
    n, k = 1000, 850
    runs, preds = _study({("solo", 0): np.arange(n) < k, ("other", 0): np.arange(n) < 700}, labels[:n],
                         reference={"solo": 0.86})
    study = analyze_study(runs, preds)
    solo = study.variant("solo")
    z = sps.norm.ppf(0.975)  # Wilson score interval, analytically
    centre = (k + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(k * (n - k) / n + z**2 / 4)
    assert solo.ci.method == "wilson"
    assert (solo.ci.low, solo.ci.high) == (pytest.approx(centre - half), pytest.approx(centre + half))
    assert math.isnan(solo.std) and not study.seed_variance_measured and solo.reference_inside is True
    text = render_study_section(study, title="tiny")
    assert "**Seed variance is not measured**: every variant ran with one seed" in text
    assert f"[{centre - half:.4f}, {centre + half:.4f}] (binomial)" in text
    assert "| inside |" in text
    assert summary_metrics(study)["solo.std"] is None and summary_metrics(study)["solo.n_seeds"] == 1


# --------------------------------------------------------------------------- twins


def test_twin_pairs_match_only_the_suffix():
    names = ["a-ref", "a-fix", "b-ref", "c-fix", "ref-d", "lstm-l1-len25-rand-ref", "lstm-l1-len25-rand-fix"]
    assert twin_pairs(names) == [("a", "a-ref", "a-fix"),
                                 ("lstm-l1-len25-rand", "lstm-l1-len25-rand-ref", "lstm-l1-len25-rand-fix")]


def test_twin_difference_and_item_interval_one_seed(labels):
    n = 4000
    ref = np.arange(n) < 3200  # 0.80
    # fix: 300 items ref misses are right, 100 ref gets are wrong -> +200 items = +0.05
    fix = _flip(ref, np.arange(100), np.arange(3200, 3500))
    runs, preds = _study({("m-ref", 0): ref, ("m-fix", 0): fix}, labels[:n], rng=np.random.default_rng(9))
    (twin,) = analyze_study(runs, preds).twins
    assert (twin.stem, twin.ref, twin.fix) == ("m", "m-ref", "m-fix")
    assert twin.diff == pytest.approx(0.05)
    assert twin.seeds_ci is None and twin.verdict == "fix better"
    text = render_study_section(analyze_study(runs, preds))  # no empty seeds column, and it says why
    assert "| twin | ref | fix | fix − ref | 95 % CI (items) | verdict |" in text and "CI (seeds)" not in text
    assert "training randomness is not measured" in text
    # normal approximation of the mean of d_i: Var(d) = P(d != 0) - diff^2
    half = sps.norm.ppf(0.975) * math.sqrt((400 / n - 0.05**2) / n)
    assert twin.items_ci.low < 0.05 < twin.items_ci.high
    assert (twin.items_ci.high - twin.items_ci.low) / 2 == pytest.approx(half, rel=0.15)


def test_twin_seed_interval_is_welch_over_seeds(labels):
    n = 1000
    correct = {}
    for seed, (r, f) in enumerate([(800, 850), (810, 860), (820, 870)]):
        correct[("m-ref", seed)] = np.arange(n) < r
        correct[("m-fix", seed)] = np.arange(n) < f
    runs, preds = _study(correct, labels[:n])
    (twin,) = analyze_study(runs, preds).twins
    # equal sizes and variances: se = 0.01 * sqrt(2/3), Welch df = 4
    half = sps.t.ppf(0.975, 4) * 0.01 * math.sqrt(2 / 3)
    assert twin.diff == pytest.approx(0.05)
    assert (twin.seeds_ci.low, twin.seeds_ci.high) == (pytest.approx(0.05 - half), pytest.approx(0.05 + half))
    assert twin.items_ci.low > 0 and twin.verdict == "fix better"


# --------------------------------------------------------------------------- rendering


@pytest.fixture
def three_seed_study(labels):
    """a-ref / a-fix twins and two other variants, 3 seeds each, on 2,000 items."""
    rng = np.random.default_rng(10)
    n = 2000
    difficulty = rng.random(n)
    rates = {"a-ref": 0.78, "a-fix": 0.84, "b": 0.835, "c": 0.70}
    correct = {(v, s): difficulty + rng.normal(0, 0.04, n) < r for v, r in rates.items() for s in (1, 2, 3)}
    runs, preds = _study(correct, labels[:n], reference={"a-ref": 0.80, "b": 0.836}, rng=rng)
    return runs, preds, analyze_study(runs, preds)


def test_figure_is_written(tmp_path, three_seed_study):
    *_, study = three_seed_study
    path = stats_figure(study, tmp_path / "figures" / "s_accuracy_ci.png", "s")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_three_seed_study_renders_all_parts(three_seed_study):
    runs, _, study = three_seed_study
    text = render_study_section(study, title="s", figure="figures/s_accuracy_ci.png")
    means = runs.groupby("variant")["accuracy"].mean()
    assert study.best == means.idxmax() == "a-fix"
    assert study.sentence in text and text.count("\n| `") == 4 + 1  # 4 variants + 1 twin
    assert "| variant | seeds | mean ± std | 95 % CI | reference | reference in CI | not worse than best (Holm p) |" in text
    for name, mean in means.items():
        std = runs.loc[runs.variant == name, "accuracy"].std(ddof=1)
        assert f"| `{name}` | 3 | {mean:.4f} ± {std:.4f} |" in text
    assert "| **best** |" in text and "Holm-corrected across 3 comparisons" in text
    assert "![accuracy per variant with 95 % intervals](figures/s_accuracy_ci.png)" in text
    assert "#### ref/fix twins" in text and "| `a` |" in text and "| 95 % CI (items) | 95 % CI (seeds) | verdict |" in text
    assert "Seed variance is not measured" not in text
    a_ref = study.variant("a-ref")
    assert a_ref.reference_inside is (a_ref.ci.low <= 0.80 <= a_ref.ci.high)
    assert study.variant("c").reference_inside is None


def test_summary_metrics_are_flat(three_seed_study):
    runs, _, study = three_seed_study
    flat = summary_metrics(study)
    for name, group in runs.groupby("variant"):
        v = study.variant(name)
        assert flat[f"{name}.mean"] == pytest.approx(group["accuracy"].mean(), abs=1e-6)
        assert flat[f"{name}.std"] == pytest.approx(group["accuracy"].std(ddof=1), abs=1e-6)
        assert (flat[f"{name}.ci_low"], flat[f"{name}.ci_high"]) == (round(v.ci.low, 6), round(v.ci.high, 6))
        assert flat[f"{name}.n_seeds"] == 3
    assert flat["best.variant"] == "a-fix" and flat["best.mean"] == flat["a-fix.mean"]
    assert flat["best.ci_low"] == flat["a-fix.ci_low"] and flat["best.ci_high"] == flat["a-fix.ci_high"]
    assert all(not isinstance(v, dict) for v in flat.values())


def test_variant_without_predictions_is_untested(three_seed_study):
    runs, preds, _ = three_seed_study
    preds = {k: v for k, v in preds.items() if k != ("c", 2)}
    study = analyze_study(runs, preds)
    assert study.untested == ["c"] and "c" not in study.comparisons
    assert "1 without predictions was not tested" in study.sentence
    assert "untested (no predictions)" in render_study_section(study)


def test_single_variant_sentence(labels):
    runs, preds = _study({("only", 0): np.arange(100) < 90}, labels[:100])
    study = analyze_study(runs, preds)
    assert study.sentence.startswith("`only` is the only variant with results (0.900, 95 % CI")
    assert summary_metrics(study)["best.variant"] == "only"
