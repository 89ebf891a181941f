"""What differs from the reference's setup, for the variants whose gap to it is real.

Where the published number lies outside our 95 % interval, the report lists what is known to
differ from the reference's setup (the quick caps, train size, vectors, then the study's
`known_differences` in params.yaml: what its setup could not reproduce), or says the gap is
unexplained. These are candidate causes, not measured ones; train size, vectors and the
setting are read from each run's own results.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from textclf.report.numbers import json_number
from textclf.report.stats import StudyStats

# Training rows behind the published reference numbers (../shared/FIDELITY.md, DESIGN.md): the
# official AG News train set (120,000 rows), IMDB re-split 80/20 (40,000) or 35k/5k/10k
# (35,000), the official IMDB train set (25,000). A study may differ from its dataset's rule
# (gru_scratch's reference ran on another corpus).
REFERENCE_TRAIN_ROWS: dict[str, int | str] = {
    "ag_news": 120_000, "imdb_8020": 40_000, "imdb_35_5_10": 35_000, "imdb": 25_000, "imdb_004": 25_000,
}
STUDY_REFERENCE_TRAIN_ROWS: dict[tuple[str, str], int | str] = {
    ("gru_scratch", "imdb"): "another corpus (an unnamed product-review set; Google News word2vec 300d)",
}
UNEXPLAINED = "unexplained"
UNKNOWN_ROWS = "reference train size unknown"

# "glove100 50d", "glove100_004 50d frozen": GloVe vectors named for one size, run at another
_RESIZED_VECTORS = re.compile(r"^glove(\d+)(?:_\w+)?\s+(\d+)d\b")


def reference_train_rows(study: str, dataset: str) -> int | str | None:
    return STUDY_REFERENCE_TRAIN_ROWS.get((study, dataset), REFERENCE_TRAIN_ROWS.get(dataset))


def train_rows_gap(study: str, dataset: str, n_train: Any) -> str | None:
    """How our training rows differ from the reference's, or None when they are the same."""
    ref_rows = reference_train_rows(study, dataset)
    if isinstance(ref_rows, str):
        return f"reference: {ref_rows}"
    if ref_rows is None:
        return UNKNOWN_ROWS
    if n_train is not None and not (isinstance(n_train, float) and math.isnan(n_train)) and int(n_train) != ref_rows:
        return f"{int(n_train):,} vs {ref_rows:,} train rows"
    return None


def vectors_gap(embedding: Any) -> str | None:
    """'GloVe 50d in place of 100d' when a GloVe-<n>d variant ran with other vectors (offline)."""
    found = _RESIZED_VECTORS.match(str(embedding)) if isinstance(embedding, str) else None
    if found and found.group(1) != found.group(2):
        return f"GloVe {found.group(2)}d in place of {found.group(1)}d"
    return None


def known_differences(study: str, spec: Mapping[str, Any], rows: pd.DataFrame) -> list[str]:
    """What is known to differ from the reference's setup in one variant's runs (its seeds):
    the quick caps, train rows, vectors, then the study's own `known_differences`."""
    first = rows.iloc[0]
    quick = "quick" in set(rows["setting"].astype(str)) if "setting" in rows else False
    rows_gap = train_rows_gap(study, str(first["dataset"]), rows["n_train"].max())
    found = ["quick setting (capped epochs, rows and test sample)" if quick else None,
             rows_gap if rows_gap != UNKNOWN_ROWS else None,  # unknown is no difference we know of
             vectors_gap(first.get("embedding"))]
    if spec.get("known_differences"):
        found.append(" ".join(str(spec["known_differences"]).split()))
    return [d for d in found if d]


def outside_reference(study: str, spec: Mapping[str, Any], done: pd.DataFrame,
                      analyses: Mapping[str, StudyStats]) -> dict[str, dict[str, Any]]:
    """Per variant ('<dataset>/<variant>' when the study has several datasets) whose reference
    lies outside our interval: ours, the reference, Δ, the interval and the causes."""
    multi = len(analyses) > 1
    found: dict[str, dict[str, Any]] = {}
    for dataset, analysis in analyses.items():
        for v in analysis.variants:
            if v.reference_inside is not False:
                continue
            rows = done[(done["dataset"] == dataset) & (done["variant"] == v.variant)]
            found[f"{dataset}/{v.variant}" if multi else v.variant] = {
                "accuracy": json_number(v.mean), "reference": v.reference, "delta": json_number(v.mean - v.reference),
                "ci_low": json_number(v.ci.low), "ci_high": json_number(v.ci.high), "n_seeds": v.n_seeds,
                "known_differences": known_differences(study, spec, rows) or [UNEXPLAINED]}
    return found


def outside_reference_lines(gaps: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One bullet per set of known differences, naming its variants with their Δ."""
    if not gaps:
        return []
    grouped: dict[tuple[str, ...], list[str]] = {}
    for name, gap in sorted(gaps.items(), key=lambda item: item[1]["delta"]):
        grouped.setdefault(tuple(gap["known_differences"]), []).append(f"`{name}` {gap['delta']:+.4f}")
    seeds = {gap["n_seeds"] for gap in gaps.values()}
    caveats = []
    if 1 in seeds:
        caveats.append("with one seed the interval covers the test items' sampling only, not the spread "
                       "between training seeds")
    if any(n >= 2 for n in seeds):
        caveats.append("with several seeds it is the interval of our mean, and a published single run "
                       "may lie outside it by about one seed std")
    lines = [f"**Outside the reference's interval** ({len(gaps)} variant{'s' if len(gaps) != 1 else ''}: the "
             "published number lies outside our 95 % interval; Δ = ours − reference"
             + "".join(f"; {c}" for c in caveats) + "), by what is known to differ from the reference's "
             "setup (candidate causes, not measured ones):", ""]
    for differences, names in grouped.items():
        label = "**unexplained**" if differences == (UNEXPLAINED,) else "; ".join(differences)
        lines.append(f"- {label}: {', '.join(names)}")
    return [*lines, ""]


__all__ = ["REFERENCE_TRAIN_ROWS", "STUDY_REFERENCE_TRAIN_ROWS", "UNEXPLAINED", "UNKNOWN_ROWS", "known_differences",
           "outside_reference", "outside_reference_lines", "reference_train_rows", "train_rows_gap",
           "vectors_gap"]
