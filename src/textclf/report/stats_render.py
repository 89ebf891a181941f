"""The figure and the Markdown section for one study's statistics (textclf.report.stats).

``stats_figure(study, path, title)`` writes a PNG (headless Agg backend);
``render_study_section(study, title=..., figure=...)`` returns the Markdown: the headline
sentence, the per-variant table, the seed-variance line, how to read it, the figure link and
the ref/fix twins table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from textclf.atomic import atomic_path  # noqa: E402
from textclf.report.stats import Interval, StudyStats, TwinStats, VariantStats  # noqa: E402

COLORS = {"best": "tab:green", "not worse": "tab:blue", "worse": "tab:gray", "untested": "silver"}


def _status(study: StudyStats, name: str) -> str:
    if name == study.best:
        return "best"
    if name in study.comparisons:
        return "worse" if study.comparisons[name].significant else "not worse"
    return "untested"


# --------------------------------------------------------------------------- figure


def stats_figure(study: StudyStats, path: str | Path, title: str | None = None) -> Path:
    """Accuracy per variant (best at the top) with its 95 % interval as error bar, each seed as a
    dot and the reference's published number as a red diamond; colour = verdict against the best."""
    path = Path(path)
    variants = study.variants
    n = len(variants)
    fig, ax = plt.subplots(figsize=(7.5, max(2.6, 0.3 * n + 1.4)))
    y = np.arange(n)[::-1]  # best (first) at the top
    best = variants[0]
    ax.axvspan(best.ci.low, best.ci.high, color=COLORS["best"], alpha=0.08, lw=0, label="best's interval")
    labelled: set[str] = set()
    for yi, v in zip(y, variants, strict=True):
        status = _status(study, v.variant)
        label = {"best": "best", "not worse": "not significantly worse than best",
                 "worse": "significantly worse", "untested": "not tested (no predictions)"}[status]
        ax.errorbar(v.mean, yi, xerr=[[v.mean - v.ci.low], [v.ci.high - v.mean]], fmt="o", ms=6,
                    mec="white", mew=0.6, capsize=3, color=COLORS[status],
                    label=None if label in labelled else label, zorder=3)
        labelled.add(label)
        if v.n_seeds > 1:
            ax.scatter(v.accuracies, [yi] * v.n_seeds, s=8, color="black", alpha=0.35, zorder=2,
                       label=None if "seed" in labelled else "single seed")
            labelled.add("seed")
        if not math.isnan(v.reference):
            ax.scatter(v.reference, yi, marker="D", s=36, facecolor="none", edgecolor="tab:red",
                       linewidth=1.4, zorder=4, label=None if "ref" in labelled else "reference (published)")
            labelled.add("ref")
    ax.set_yticks(y, [v.variant for v in variants], fontsize=9 if n <= 25 else 7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="x", alpha=0.3)
    one_seed = all(v.n_seeds == 1 for v in variants)
    ax.set_xlabel("test accuracy, 95 % CI (" + ("binomial, one seed" if one_seed else
                  "Student t over seeds; binomial where one seed") + ")")
    ax.set_title(f"{title}: accuracy per variant" if title else "accuracy per variant")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)  # outside: never hides a point
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- markdown


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in rows]
    return "\n".join(lines)


def _p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"


def _ci(ci: Interval | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"[{fmt.format(ci.low)}, {fmt.format(ci.high)}]"


def _variant_row(study: StudyStats, v: VariantStats) -> list[str]:
    status = _status(study, v.variant)
    if status in ("worse", "not worse"):
        c = study.comparisons[v.variant]
        mark = f"{'no' if c.significant else 'yes'} ({_p(c.p_holm)})"
    else:
        mark = {"best": "**best**", "untested": "untested (no predictions)"}[status]
    inside = {None: "", True: "inside", False: "**outside**"}[v.reference_inside]
    return [f"`{v.variant}`", str(v.n_seeds),
            f"{v.mean:.4f} ± {v.std:.4f}" if v.n_seeds > 1 else f"{v.mean:.4f}",
            _ci(v.ci) + ("" if v.ci.method == "t" else " (binomial)"),
            "" if math.isnan(v.reference) else f"{v.reference:.4f}", inside, mark]


def _seed_line(variants: Sequence[VariantStats]) -> list[str]:
    single = [v for v in variants if v.n_seeds == 1]
    if not single:
        return []
    n_test = sorted({v.n_test for v in single})
    items = f"{n_test[0]:,}" if len(n_test) == 1 else "its"
    if len(single) == len(variants):
        who = "every variant ran with one seed, so each interval is"
    else:
        names = ", ".join(f"`{v.variant}`" for v in single) if len(single) <= 6 else f"{len(single)} variants"
        who = f"{names} ran with one seed; {'its' if len(single) == 1 else 'their'} interval is"
    return [f"**Seed variance is not measured**: {who} the binomial (Wilson) interval of the "
            f"accuracy over {items} test items and reflects test-set sampling only, not training "
            "randomness. Add seeds to measure it.", ""]


def _twin_rows(twins: Sequence[TwinStats], study: StudyStats, with_seed_ci: bool) -> list[list[str]]:
    """One row per ref/fix pair; the seeds interval only when some pair has one (≥ 2 seeds each)."""
    return [[f"`{t.stem}`", f"{study.variant(t.ref).mean:.4f}", f"{study.variant(t.fix).mean:.4f}",
             f"{t.diff:+.4f}", _ci(t.items_ci, signed=True)] + ([_ci(t.seeds_ci, signed=True)] if with_seed_ci else [])
            + [t.verdict] for t in twins]


def render_study_section(study: StudyStats, *, title: str | None = None, figure: str | None = None,
                         heading: str = "###") -> str:
    """The Markdown statistics section of one study. `figure` is the image link as the report
    should print it (e.g. "figures/<study>_accuracy_ci.png"); `heading` the level of its title."""
    pct = f"{study.confidence:.0%}".replace("%", " %")
    lines = [f"{heading} Seeds, intervals and significance{': ' + title if title else ''}", "",
             study.sentence, ""]
    header = ["variant", "seeds", "mean ± std", f"{pct} CI", "reference", "reference in CI",
              "not worse than best (Holm p)"]
    lines += [_table(header, [_variant_row(study, v) for v in study.variants]), ""]
    lines += _seed_line(study.variants)
    n_tests = len(study.comparisons)
    tests = (f" Not worse than best: {study.test_method}, each variant against `{study.best}`, two-sided, "
             f"Holm-corrected across {n_tests} comparison{'s' if n_tests != 1 else ''} (α = {study.alpha:g}).")
    lines += [
        f"How to read: {pct} CI = Student t interval of the mean over seeds (training randomness on "
        "this test set); with one seed, the Wilson binomial interval over the test items. "
        "Reference = the published number; *inside* means it lies in our interval (an interval for "
        "our mean, while the published number is one run)." + (tests if n_tests else ""), ""]
    lines += [f"Note: {note}." for note in study.notes] + ([""] if study.notes else [])
    if figure:
        lines += [f"![accuracy per variant with {pct} intervals]({figure})", ""]
    if study.twins:
        with_seed_ci = any(t.seeds_ci is not None for t in study.twins)
        lines += [f"{heading}# ref/fix twins", "",
                  _table(["twin", "ref", "fix", "fix − ref", f"{pct} CI (items)"]
                         + ([f"{pct} CI (seeds)"] if with_seed_ci else []) + ["verdict"],
                         _twin_rows(study.twins, study, with_seed_ci)), "",
                  "fix − ref in accuracy (fraction). CI (items): paired bootstrap over test items of "
                  "per-item correctness averaged over seeds (test-set sampling). "
                  + ("CI (seeds): Welch t interval over seeds, when both twins have ≥ 2 (training randomness). "
                     if with_seed_ci else "No seed interval: no twin has two seeds on each side, so training "
                     "randomness is not measured. ")
                  + "The verdict names a winner only when every interval shown excludes 0.", ""]
    return "\n".join(lines)


__all__ = ["render_study_section", "stats_figure"]
