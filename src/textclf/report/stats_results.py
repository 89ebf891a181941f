"""The results of report/stats.py (intervals, per-variant statistics, paired comparisons,
ref/fix twins, a study's analysis) and what is said of them: the plain-English sentence and
the flat keys of summary.json. Kept apart from the computations so the renderers need only these."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from textclf.report.numbers import json_number

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str  # "t" (Student t over seeds) or "wilson" (binomial, one seed)

    def contains(self, value: float) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return bool(self.low <= value <= self.high)


@dataclass(frozen=True)
class VariantStats:
    variant: str
    n_seeds: int
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]  # per seed, in seed order
    mean: float
    std: float  # ddof=1; NaN with one seed
    ci: Interval  # t over seeds, or Wilson with one seed
    n_test: int
    binom_ci: Interval  # Wilson at the mean correct count out of n_test (test-set sampling)
    reference: float  # NaN if none
    reference_inside: bool | None  # None when there is no reference

    @property
    def seed_variance_measured(self) -> bool:
        return self.n_seeds >= 2


@dataclass(frozen=True)
class Comparison:
    """One variant against the study's best on the same test items."""

    variant: str
    best: str
    n_items: int
    better_items: float  # Σ max(d_i, 0): items (seed-averaged) this variant gets right and best wrong
    worse_items: float  # Σ max(-d_i, 0)
    diff: float  # mean over items of d_i = accuracy(variant) − accuracy(best) from predictions
    p_value: float  # raw, two-sided
    p_holm: float  # Holm-adjusted across the study
    significant: bool  # p_holm < alpha


@dataclass(frozen=True)
class TwinStats:
    stem: str
    ref: str
    fix: str
    diff: float  # mean accuracy fix − ref
    items_ci: Interval | None  # paired bootstrap over items (needs predictions of both)
    seeds_ci: Interval | None  # Welch t over seeds (needs ≥ 2 seeds each)

    @property
    def verdict(self) -> str:
        cis = [c for c in (self.items_ci, self.seeds_ci) if c is not None]
        if cis and all(c.low > 0 for c in cis):
            return "fix better"
        if cis and all(c.high < 0 for c in cis):
            return "ref better"
        return "no clear difference" if cis else "no interval"


@dataclass(frozen=True)
class StudyStats:
    variants: list[VariantStats]  # sorted by mean accuracy, best first
    best: str
    comparisons: dict[str, Comparison]  # every tested non-best variant
    untested: list[str]  # non-best variants without predictions
    not_worse: list[str]  # best first, then the variants not significantly worse, by accuracy
    twins: list[TwinStats]
    sentence: str
    test_method: str  # short name of the paired test, used in the sentence
    alpha: float = 0.05
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)

    def variant(self, name: str) -> VariantStats:
        return next(v for v in self.variants if v.variant == name)

    @property
    def seed_variance_measured(self) -> bool:
        return all(v.seed_variance_measured for v in self.variants)


def _names(names: Sequence[str], limit: int = 8) -> str:
    if len(names) > limit:
        return f"{len(names)} variants"
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _accuracy_phrase(v: VariantStats) -> str:
    if v.n_seeds >= 2:
        return f"{v.mean:.3f} ± {v.std:.3f}, mean ± std over {v.n_seeds} seeds"
    return f"{v.mean:.3f}, 95 % CI {v.ci.low:.3f}–{v.ci.high:.3f}, one seed"


def headline_sentence(variants: Sequence[VariantStats], not_worse: Sequence[str],
                      comparisons: Mapping[str, Comparison], untested: Sequence[str],
                      method: str, alpha: float = 0.05) -> str:
    """One plain-English sentence: the best, who is not significantly worse, and who is."""
    best = variants[0]
    head = f"`{best.variant}` is best ({_accuracy_phrase(best)})"
    how = f"Holm-corrected {method}, α = {alpha:g}"
    tail = f"; {len(untested)} without predictions {'was' if len(untested) == 1 else 'were'} not tested" if untested else ""
    if not comparisons:
        if len(variants) == 1:
            return f"`{best.variant}` is the only variant with results ({_accuracy_phrase(best)})."
        return f"{head}; no paired test was possible (no predictions to pair){tail}."
    peers = list(not_worse[1:])
    worse = sum(c.significant for c in comparisons.values())
    if not peers:
        others = {1: "the only other tested variant is", 2: "both others are"}.get(worse, f"all {worse} others are")
        return f"{head}; {others} significantly worse ({how}){tail}."
    verb = "is" if len(peers) == 1 else "are"
    if worse == 0:
        return (f"{head}, but {_names(peers)} {verb} not significantly worse ({how}), so the data do "
                f"not single out a winner{tail}.")
    rest = "the other one is" if worse == 1 else f"the other {worse} are"
    return f"{head}; {_names(peers)} {verb} not significantly worse ({how}); {rest}{tail}."


# --------------------------------------------------------------------------- summary.json


def summary_metrics(study: StudyStats) -> dict[str, Any]:
    """Flat keys for summary.json (the caller nests them under the study name):
    ``<variant>.mean|std|ci_low|ci_high|n_seeds`` (std is null with one seed) and the headline
    ``best.variant|mean|ci_low|ci_high`` plus ``best.n_not_worse`` (other variants not
    significantly worse than the best)."""
    out: dict[str, Any] = {}
    for v in study.variants:
        out.update({f"{v.variant}.mean": json_number(v.mean), f"{v.variant}.std": json_number(v.std),
                    f"{v.variant}.ci_low": json_number(v.ci.low), f"{v.variant}.ci_high": json_number(v.ci.high),
                    f"{v.variant}.n_seeds": v.n_seeds})
    best = study.variant(study.best)
    out.update({"best.variant": best.variant, "best.mean": json_number(best.mean), "best.ci_low": json_number(best.ci.low),
                "best.ci_high": json_number(best.ci.high), "best.n_not_worse": len(study.not_worse) - 1})
    return out
