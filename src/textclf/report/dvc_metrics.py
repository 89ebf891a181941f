"""metrics.json: the one file dvc.yaml declares as the report's metrics.

`dvc exp show` makes a column of every metric key, before the parameters. summary.json holds
the full analysis (a job digest, per-study intervals and details: thousands of keys), so DVC
reads this small file instead: one number per study, its best test accuracy (the mean over
seeds of the variant chosen as the report chooses it), under the study's name. Studies
without a single best (the baselines, one row per dataset) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textclf import atomic

METRICS_FILE = "metrics.json"


def dvc_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """{study: best test accuracy} from a summary.json content, in its order of studies."""
    return {name: study["best_accuracy"] for name, study in summary["studies"].items()
            if study.get("best_accuracy") is not None}


def write_dvc_metrics(summary: Mapping[str, Any], out: Path) -> Path:
    """Write out/metrics.json (atomically) and return its path."""
    target = out / METRICS_FILE
    atomic.write_json(target, dvc_metrics(summary))
    return target
