"""Statistics for comparing the variants of one study: seeds, intervals, significance (issue 9).

Input contract
==============
``runs``: a pandas DataFrame with one row per (variant, seed):

====================  =====  ===============================================================
column                type   meaning
====================  =====  ===============================================================
``variant``           str    the variant's name, unique within the analysed test set
``seed``              int    the training seed of this replica
``accuracy``          float  its test accuracy, a fraction in [0, 1]
``n_test``            int    how many test items it was scored on
``reference``         float  the reference's published accuracy for the variant, NaN if none
                             (the same value on every row of a variant)
====================  =====  ===============================================================

``predictions``: a mapping ``(variant, seed) -> DataFrame`` with columns ``id`` (int, the
test item id), ``label`` (int) and ``pred`` (int), one row per test item.
:func:`load_predictions` reads a run's ``predictions.parquet`` (docs/CONTRACTS.md) into it.
A run whose predictions are absent (no key, or None) keeps its interval, but its variant is
left out of the paired tests and shown as untested.

One call analyses the variants scored on ONE test set. Items are aligned by ``id`` before any
pairing; every prediction frame must hold the same ids with the same labels, else a
ValueError names both variants. A study spanning several datasets (e.g. ``baselines``) is
analysed once per dataset.

Entry points: :func:`analyze_study` -> :class:`StudyStats`; :mod:`textclf.report.stats_results`
holds the result types and :func:`summary_metrics` (flat keys for summary.json);
:mod:`textclf.report.stats_render` draws the figure and the Markdown.

Methods (α = 0.05, 95 % intervals by default)
=============================================
**Interval of a variant's accuracy.** With n ≥ 2 seeds: the mean over seeds, the standard
deviation (ddof = 1) and the Student-t interval of the mean (``scipy.stats.t.interval`` with
n − 1 degrees of freedom). It measures training randomness on this test set. With one seed
there is no seed variance to measure: the interval is the Wilson binomial interval of the
accuracy over its n_test items (``scipy.stats.binomtest(k, n).proportion_ci("wilson")``),
i.e. test-set sampling only, and the variant is flagged ``seed_variance_measured = False``.
Every variant also gets ``binom_ci``: the Wilson interval at its mean correct count out of
n_test, i.e. the test-set sampling uncertainty of one run at that accuracy. We deliberately do
NOT pool seeds × items as independent trials: the same items recur in every seed and runs agree
on most of them, so such an interval would be too narrow by up to a factor √seeds.

**Reference marker.** The published number is "inside" when it lies in the variant's 95 %
interval above (t over seeds, or binomial with one seed). That interval is for our MEAN; the
published number is one run, so with several tight seeds a faithful reproduction can still
fall outside by about one seed standard deviation. Read it with the std column.

**Best variant and paired tests.** The best variant has the highest mean accuracy (ties: the
lower std, then the name). Every other variant is tested against it on the same test items.
Per item, correctness is averaged over each variant's seeds, c_i ∈ [0, 1], and
d_i = c_i(variant) − c_i(best). The test is the exact two-sided paired sign-flip
(permutation) test of Σ d_i: under H0 the two variants are exchangeable on every item, so each
non-zero d_i is equally likely to carry either sign. Its null distribution is computed exactly
as a convolution of binomial pmfs (``scipy.stats.binom``), one per distinct |d_i|. With one
seed per variant d_i ∈ {−1, 0, 1} and the test IS the exact McNemar test, which is then run
directly as ``scipy.stats.binomtest`` on the discordant pairs. The null is exactly
exchangeable when both variants have the same number of seeds (the planned set-up).
Why not a majority vote over seeds: it ties for an even number of seeds and tests the ensemble
rather than the mean accuracy the table shows. Why not one test per seed, combined: seeds are
not paired across variants and tests on the same items are dependent, so a Fisher/Stouffer
combination would be anti-conservative.
Caveat: the test conditions on the trained models. It asks whether the seed-averaged
predictors differ on this test distribution; seed-to-seed variance enters only through the
averaging, so read a "significant" difference smaller than the seed std with care.
The p-values of the k − 1 comparisons are Holm-corrected across the study
(``statsmodels.stats.multitest.multipletests(method="holm")``, family-wise α). "Not
significantly worse than the best" = Holm-adjusted p ≥ α; the best itself is in that set.
Tests are two-sided (the best is chosen after looking, so a one-sided test would flatter it).

**ref/fix twins.** Variants whose names differ only by a ``-ref`` / ``-fix`` suffix. The
difference is mean accuracy(fix) − mean accuracy(ref), with two 95 % intervals:
``items``: paired bootstrap over test items (``scipy.stats.bootstrap``, percentile, 2,000
resamples, fixed rng) of d_i = c_i(fix) − c_i(ref), the per-item correctness averaged over
seeds; resampling items keeps each item's pair. It measures test-set sampling and is given
whenever both twins have predictions.
``seeds``: when both twins have ≥ 2 seeds, the Welch t interval of the difference of mean
accuracies over seeds (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``):
training randomness. Both are shown because each misses the other's source of noise. The
verdict says "fix better" / "ref better" only when every available interval excludes 0 on
that side, else "no clear difference".
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal, stats
from statsmodels.stats.multitest import multipletests

from textclf.report.stats_results import (
    Comparison,
    Interval,
    StudyStats,
    TwinStats,
    VariantStats,
    headline_sentence,
    summary_metrics,
)

RUN_COLUMNS = ("variant", "seed", "accuracy", "n_test", "reference")
PREDICTION_COLUMNS = ("id", "label", "pred")
TWIN_SUFFIXES = ("-ref", "-fix")
BOOTSTRAP_RESAMPLES = 2000



def load_predictions(path: str | Path) -> pd.DataFrame:
    """A run's predictions.parquet (id, label, pred, prob_<k>...) as the contract frame
    ``id``, ``label``, ``pred`` (int64)."""
    frame = pd.read_parquet(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: predictions lack column(s) {missing}; have {list(frame.columns)}")
    return frame[list(PREDICTION_COLUMNS)].astype("int64").reset_index(drop=True)


def _check_runs(runs: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lacks column(s) {missing}; expected {list(RUN_COLUMNS)}")
    if runs.empty:
        raise ValueError("runs is empty: no variant has results")
    runs = runs[list(RUN_COLUMNS)].copy()
    runs["variant"] = runs["variant"].astype(str)
    runs["seed"] = runs["seed"].astype(int)
    runs["n_test"] = runs["n_test"].astype(int)
    runs["accuracy"] = runs["accuracy"].astype(float)
    runs["reference"] = pd.to_numeric(runs["reference"], errors="coerce").astype(float)
    dup = runs[runs.duplicated(["variant", "seed"], keep=False)]
    if len(dup):
        raise ValueError(f"runs has duplicate (variant, seed) rows: {sorted(set(zip(dup.variant, dup.seed, strict=True)))}")
    if runs["accuracy"].isna().any():
        missing_runs = runs.loc[runs["accuracy"].isna(), ["variant", "seed"]].to_dict("records")
        raise ValueError(f"runs has no accuracy for {missing_runs}: pass only completed runs")
    bad = runs[~runs["accuracy"].between(0, 1) | (runs["n_test"] <= 0)]
    if len(bad):
        raise ValueError(f"runs has accuracies outside [0, 1] or n_test <= 0: {bad.to_dict('records')}")
    for name, group in runs.groupby("variant"):
        refs = group["reference"].dropna().unique()
        if len(refs) > 1:
            raise ValueError(f"variant {name!r} has different reference values over seeds: {list(refs)}")
    return runs.sort_values(["variant", "seed"]).reset_index(drop=True)


# --------------------------------------------------------------------------- intervals


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> Interval:
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(float(ci.low), float(ci.high), "wilson")


def accuracy_interval(accuracies: Sequence[float], n_test: int, confidence: float = 0.95) -> Interval:
    """The confidence interval of a variant's mean accuracy: Student t over seeds when there
    are ≥ 2, else the Wilson interval of the one run's accuracy on its n_test items."""
    acc = np.asarray(accuracies, dtype=float)
    if acc.size == 0:
        raise ValueError("no accuracies")
    if acc.size == 1:
        return wilson_interval(round(acc[0] * n_test), n_test, confidence)
    mean, sem = float(acc.mean()), float(stats.sem(acc, ddof=1))
    if sem == 0.0:  # every seed gave the same accuracy: a zero-width interval, honestly
        return Interval(mean, mean, "t")
    low, high = stats.t.interval(confidence, df=acc.size - 1, loc=mean, scale=sem)
    return Interval(float(low), float(high), "t")


def variant_stats(runs: pd.DataFrame, confidence: float = 0.95) -> list[VariantStats]:
    """Per variant over seeds: mean, std, n, 95 % interval, reference marker; best first."""
    runs = _check_runs(runs)
    out = []
    for name, group in runs.groupby("variant", sort=False):
        acc = group["accuracy"].to_numpy()
        n_test = int(group["n_test"].min())
        mean = float(acc.mean())
        ci = accuracy_interval(acc, n_test, confidence)
        refs = group["reference"].dropna()
        reference = float(refs.iloc[0]) if len(refs) else math.nan
        out.append(VariantStats(
            variant=str(name), n_seeds=len(acc), seeds=tuple(int(s) for s in group["seed"]),
            accuracies=tuple(float(a) for a in acc), mean=mean,
            std=float(acc.std(ddof=1)) if len(acc) > 1 else math.nan, ci=ci, n_test=n_test,
            binom_ci=wilson_interval(round(mean * n_test), n_test, confidence),
            reference=reference, reference_inside=ci.contains(reference),
        ))
    out.sort(key=lambda v: (-v.mean, np.nan_to_num(v.std, nan=np.inf), v.variant))
    return out


# --------------------------------------------------------------------------- paired tests


def sign_flip_pvalue(diffs: Sequence[int] | np.ndarray) -> float:
    """Exact two-sided p-value of the paired sign-flip test of Σ d_i for integer per-item
    differences d_i (zeros carry no information). All |d_i| = 1 is the exact McNemar test."""
    d = np.asarray(diffs)
    if d.size and not np.array_equal(d, np.round(d)):
        raise ValueError("sign_flip_pvalue needs integer differences (scale by the seed counts)")
    d = d[d != 0].astype(np.int64)
    if d.size == 0:
        return 1.0
    mags = np.abs(d)
    if (mags == 1).all():  # McNemar: discordant pairs, H0 each direction with probability 1/2
        return float(stats.binomtest(int((d > 0).sum()), int(d.size), 0.5).pvalue)
    # T = Σ of the magnitudes that get a + sign = Σ_v v·K_v with K_v ~ Binomial(n_v, 1/2)
    dist = np.ones(1)
    for v, n_v in zip(*np.unique(mags, return_counts=True), strict=True):
        pmf = np.zeros(int(v) * int(n_v) + 1)
        pmf[:: int(v)] = stats.binom.pmf(np.arange(n_v + 1), n_v, 0.5)
        dist = np.clip(signal.fftconvolve(dist, pmf), 0.0, None)
    total = int(mags.sum())
    observed = abs(2 * int(mags[d > 0].sum()) - total)
    s = np.abs(2 * np.arange(total + 1) - total)  # |Σ d_i| for each value of T
    return float(min(1.0, dist[s >= observed].sum() / dist.sum()))


@dataclass
class _Items:
    """Per-item correct counts over a variant's seeds, aligned to the study's sorted ids."""

    correct: np.ndarray  # int, [items]
    seeds: int

    @property
    def rate(self) -> np.ndarray:
        return self.correct / self.seeds


def _aligned_items(runs: pd.DataFrame, predictions: Mapping[Hashable, pd.DataFrame | None]
                   ) -> tuple[dict[str, _Items], list[str]]:
    """Correct counts per variant over the seeds that have predictions, all aligned by id.
    Returns them and the variants lacking predictions for some seed."""
    first: tuple[str, int, pd.Series] | None = None  # (variant, seed, label by sorted id)
    items: dict[str, _Items] = {}
    lacking: list[str] = []
    for name, group in runs.groupby("variant", sort=False):
        frames = [(int(s), predictions.get((name, int(s)))) for s in group["seed"]]
        if any(f is None for _, f in frames):
            lacking.append(str(name))
            continue
        counts = None
        for seed, frame in frames:
            missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
            if missing:
                raise ValueError(f"predictions of {name!r} (seed {seed}) lack column(s) {missing}")
            if frame["id"].duplicated().any():
                raise ValueError(f"predictions of {name!r} (seed {seed}) repeat test item ids")
            frame = frame.set_index("id").sort_index()
            if first is None:
                first = (str(name), seed, frame["label"])
            else:
                other, other_seed, labels = first
                if not frame.index.equals(labels.index):
                    only_here = len(frame.index.difference(labels.index))
                    only_there = len(labels.index.difference(frame.index))
                    raise ValueError(
                        f"variants {name!r} (seed {seed}) and {other!r} (seed {other_seed}) were scored "
                        f"on different test items ({only_here} ids only in {name!r}, {only_there} only in "
                        f"{other!r}); the paired tests need the same items (analyse one test set at a time)")
                if not np.array_equal(frame["label"].to_numpy(), labels.to_numpy()):
                    raise ValueError(f"variants {name!r} (seed {seed}) and {other!r} (seed {other_seed}) "
                                     "disagree on the labels of the same test item ids")
            right = (frame["pred"].to_numpy() == frame["label"].to_numpy()).astype(np.int64)
            counts = right if counts is None else counts + right
        items[str(name)] = _Items(counts, len(frames))
    return items, lacking


def _scaled_diff(a: _Items, b: _Items) -> tuple[np.ndarray, int]:
    """Integer per-item differences L·(rate_a − rate_b) with L = lcm of the seed counts."""
    scale = math.lcm(a.seeds, b.seeds)
    return a.correct * (scale // a.seeds) - b.correct * (scale // b.seeds), scale


def _compare_with_best(items: Mapping[str, _Items], best: str, alpha: float = 0.05) -> dict[str, Comparison]:
    """Paired test of every variant in `items` against `best`, Holm-corrected across them."""
    others = [name for name in items if name != best]
    if best not in items or not others:
        return {}
    raw = {name: _compare(name, items[name], best, items[best]) for name in others}
    _, p_holm, _, _ = multipletests([c.p_value for c in raw.values()], alpha=alpha, method="holm")
    return {name: replace(c, p_holm=float(ph), significant=bool(ph < alpha))
            for (name, c), ph in zip(raw.items(), p_holm, strict=True)}


def _compare(name: str, a: _Items, best: str, b: _Items) -> Comparison:
    """a against b on the same items: per-item differences and the exact paired p (uncorrected)."""
    diff, scale = _scaled_diff(a, b)
    d, p = diff / scale, sign_flip_pvalue(diff)
    return Comparison(variant=name, best=best, n_items=int(d.size), better_items=float(np.clip(d, 0, None).sum()),
                      worse_items=float(np.clip(-d, 0, None).sum()), diff=float(d.mean()), p_value=float(p),
                      p_holm=float(p), significant=False)


def paired_against(ours: Mapping[int, pd.DataFrame], theirs: Mapping[int, pd.DataFrame],
                   alpha: float = 0.05) -> Comparison | None:
    """One model (predictions per seed) against another on the same test items, with the exact
    paired test: the headline's "is it really better than TF-IDF" (None when the two were scored
    on different items or one has no predictions)."""
    if not ours or not theirs:
        return None
    runs = pd.DataFrame([{"variant": name, "seed": seed} for name, preds in (("ours", ours), ("theirs", theirs))
                         for seed in preds])
    try:
        items, lacking = _aligned_items(runs, {("ours", s): f for s, f in ours.items()}
                                        | {("theirs", s): f for s, f in theirs.items()})
    except ValueError:
        return None
    if lacking:
        return None
    comparison = _compare("ours", items["ours"], "theirs", items["theirs"])
    return replace(comparison, significant=comparison.p_value < alpha)


# --------------------------------------------------------------------------- twins


def twin_pairs(names: Sequence[str]) -> list[tuple[str, str, str]]:
    """(stem, ref name, fix name) for every pair of names differing only by -ref / -fix."""
    present = set(names)
    ref_suffix, fix_suffix = TWIN_SUFFIXES
    return [(name[: -len(ref_suffix)], name, name[: -len(ref_suffix)] + fix_suffix)
            for name in sorted(present)
            if name.endswith(ref_suffix) and name[: -len(ref_suffix)] + fix_suffix in present]


def bootstrap_diff_interval(fix: np.ndarray, ref: np.ndarray, confidence: float = 0.95,
                            n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Interval:
    """Paired bootstrap over items of mean(fix) − mean(ref), from per-item correctness rates
    aligned by item: resampling items keeps each item's pair, so it resamples d_i = fix_i − ref_i."""
    d = np.asarray(fix, dtype=float) - np.asarray(ref, dtype=float)
    if not d.any():  # no discordant item: the bootstrap distribution is a point
        return Interval(0.0, 0.0, "bootstrap")
    res = stats.bootstrap((d,), np.mean, vectorized=True, n_resamples=n_resamples, batch=250,
                          confidence_level=confidence, method="percentile",
                          rng=np.random.default_rng(seed))
    return Interval(float(res.confidence_interval.low), float(res.confidence_interval.high), "bootstrap")


def welch_diff_interval(fix: Sequence[float], ref: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """Welch t interval of mean(fix) − mean(ref) over seeds; None with < 2 seeds or no spread."""
    fix, ref = np.asarray(fix, dtype=float), np.asarray(ref, dtype=float)
    if fix.size < 2 or ref.size < 2 or (fix.std() == 0 and ref.std() == 0):
        return None
    ci = stats.ttest_ind(fix, ref, equal_var=False).confidence_interval(confidence_level=confidence)
    return Interval(float(ci.low), float(ci.high), "welch")


def _twin_stats(variants: Sequence[VariantStats], items: Mapping[str, _Items],
               confidence: float = 0.95, seed: int = 0) -> list[TwinStats]:
    by_name = {v.variant: v for v in variants}
    out = []
    for stem, ref, fix in twin_pairs(list(by_name)):
        r, f = by_name[ref], by_name[fix]
        items_ci = (bootstrap_diff_interval(items[fix].rate, items[ref].rate, confidence, seed=seed)
                    if fix in items and ref in items else None)
        out.append(TwinStats(stem=stem, ref=ref, fix=fix, diff=f.mean - r.mean, items_ci=items_ci,
                             seeds_ci=welch_diff_interval(f.accuracies, r.accuracies, confidence)))
    return out



def analyze_study(runs: pd.DataFrame, predictions: Mapping[Hashable, pd.DataFrame | None], *,
                  alpha: float = 0.05, confidence: float = 0.95, seed: int = 0) -> StudyStats:
    """Everything the report shows for one study on one test set (see the module docstring)."""
    checked = _check_runs(runs)
    variants = variant_stats(checked, confidence)
    best = variants[0].variant
    items, lacking = _aligned_items(checked, predictions)
    comparisons = _compare_with_best(items, best, alpha)
    untested = [v.variant for v in variants if v.variant != best and v.variant not in comparisons]
    not_worse = [best] + [v.variant for v in variants if v.variant in comparisons
                          and not comparisons[v.variant].significant]
    one_seed = all(v.n_seeds == 1 for v in variants)
    method = ("exact McNemar test on the same test items" if one_seed else
              "exact paired sign-flip test on the same test items, correctness averaged over seeds")
    notes = []
    if best in lacking:
        notes.append(f"the best variant {best!r} has no predictions, so no paired test was run")
    return StudyStats(
        variants=variants, best=best, comparisons=comparisons, untested=untested,
        not_worse=not_worse, twins=_twin_stats(variants, items, confidence, seed),
        sentence=headline_sentence(variants, not_worse, comparisons, untested, method, alpha),
        test_method=method, alpha=alpha, confidence=confidence, notes=notes)


__all__ = [
    "Comparison", "Interval", "StudyStats", "TwinStats", "VariantStats", "accuracy_interval",
    "analyze_study", "bootstrap_diff_interval", "headline_sentence",
    "load_predictions", "sign_flip_pvalue", "summary_metrics", "twin_pairs", "variant_stats",
    "welch_diff_interval", "wilson_interval",
]
