"""Test helpers: small params trees the tests build themselves from the real params.yaml."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def real_params() -> dict[str, Any]:
    with open(REPO / "params.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def with_studies(params: dict[str, Any], studies: dict[str, Any], selected: Any = "all") -> dict[str, Any]:
    out = copy.deepcopy(params)
    out["studies"] = studies
    out["run"]["studies"] = selected
    return out
