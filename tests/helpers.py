"""Test helpers: params trees the tests build from tests/fixtures/params.yaml (and, for tests
about the project's own file, from the real params.yaml)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURE_PARAMS = Path(__file__).resolve().parent / "fixtures" / "params.yaml"


def fixture_params() -> dict[str, Any]:
    """A small, complete, valid params tree (tests/fixtures/params.yaml)."""
    with open(FIXTURE_PARAMS, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def real_params() -> dict[str, Any]:
    """The project's params.yaml: only for tests about that file itself."""
    with open(REPO / "params.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def with_studies(params: dict[str, Any], studies: dict[str, Any], selected: Any = "all") -> dict[str, Any]:
    out = copy.deepcopy(params)
    out["studies"] = studies
    out["run"]["studies"] = selected
    return out


def report_text(out: Path) -> str:
    """A report folder's Markdown as one text in the one-page order: the overview page up to its
    datasets section, every study's page (studies/<study>.md, in the overview's order), then the
    datasets section; for assertions that span the overview and the study pages."""
    summary = (out / "summary.md").read_text(encoding="utf-8")
    cut = summary.index("## Datasets: rows used")
    names = [line.split("](studies/", 1)[1].split(".md)", 1)[0] for line in summary.splitlines()
             if line.startswith("| [") and "](studies/" in line]
    pages = [(out / "studies" / f"{name}.md").read_text(encoding="utf-8") for name in names]
    return summary[:cut] + "".join(pages) + summary[cut:]
