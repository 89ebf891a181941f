"""Variants of one study that train exactly the same thing under different names.

A sweep's default point is often also a member of another sweep (optimizers_imdb's `emb-e1`,
`hidden-h100` and `layers-l1` are all `opt-rmsprop-lstm`). The report names such groups so a
reader does not take them for separate findings, and compares their test predictions: on one
machine's CPU the pipeline promises identical results for identical settings, so a group that
disagrees points at nondeterminism (other hardware or thread counts, or a bug).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from textclf.settings import canonical_json


@dataclass(frozen=True)
class SameSettings:
    dataset: str
    seed: int
    variants: tuple[str, ...]  # sorted names
    results: tuple[str, ...]  # their results folders, in the order of `variants`


def same_settings_groups(runs: Sequence[Mapping[str, Any]]) -> list[SameSettings]:
    """Groups (≥ 2) of a study's runs whose resolved settings (dataset and seed included)
    differ only in the variant name."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(canonical_json({k: v for k, v in run["variant"].items() if k != "name"}), []).append(run)
    found = []
    for members in groups.values():
        if len(members) >= 2:
            members = sorted(members, key=lambda run: run["variant"]["name"])
            first = members[0]["variant"]
            found.append(SameSettings(dataset=str(first["dataset"]), seed=int(first["training"]["seed"]),
                                      variants=tuple(m["variant"]["name"] for m in members),
                                      results=tuple(m["results"] for m in members)))
    return sorted(found, key=lambda g: (g.dataset, g.variants))


def agreement(group: SameSettings, predictions: Mapping[str, pd.DataFrame | None]) -> dict[str, Any]:
    """Whether the group's whole predictions files (classes and probabilities) agree, over the
    members that have them: `compared` (how many), `identical` (None when fewer than two),
    `items_differing` (test items whose predicted class differs between any two members) and
    `max_probability_difference`."""
    frames = [predictions.get(r) for r in group.results]
    frames = [f.sort_values("id").reset_index(drop=True) for f in frames if f is not None]
    if len(frames) < 2:
        return {"compared": len(frames), "identical": None, "items_differing": None,
                "max_probability_difference": None}
    first = frames[0]
    classes = pd.concat([f.set_index("id")["pred"] for f in frames], axis=1)
    probs = [c for c in first.columns if c.startswith("prob_")]
    spread = max((float((f[probs] - first[probs]).abs().to_numpy().max()) for f in frames[1:]
                  if probs and f.shape == first.shape and list(f.columns) == list(first.columns)), default=None)
    return {"compared": len(frames), "identical": all(f.equals(first) for f in frames[1:]),
            "items_differing": int((classes.nunique(axis=1) > 1).sum()), "max_probability_difference": spread}


def _verdict(check: Mapping[str, Any], members: int) -> str:
    if check["identical"] is None:
        return f"{check['compared']} of {members} have results, so their agreement is not checked yet"
    if check["identical"]:
        return (f"the {check['compared']} with results agree bit for bit (test predictions and "
                "probabilities): one result, not several")
    n = check["items_differing"]
    what = (f"{n} test item{' changes' if n == 1 else 's change'} class" if n else
            "every test item keeps its class, but the probabilities differ"
            + (f" (by up to {check['max_probability_difference']:.2g})"
               if check["max_probability_difference"] is not None else ""))
    return f"their predictions differ ({what}): nondeterminism, from other hardware or thread counts, or a bug"


def same_settings_lines(groups: Sequence[SameSettings], predictions: Mapping[str, pd.DataFrame | None]
                        ) -> tuple[list[str], list[dict[str, Any]]]:
    """Report lines (one per group) and their summary.json entries. `predictions`: results
    folder -> the whole predictions.parquet (probabilities included)."""
    lines, entries = [], []
    for group in groups:
        check = agreement(group, predictions)
        names = ", ".join(f"`{v}`" for v in group.variants)
        lines.append(f"- {names} ({group.dataset}, seed {group.seed}): {_verdict(check, len(group.variants))}.")
        entries.append({"variants": list(group.variants), "dataset": group.dataset, "seed": group.seed, **check})
    if not lines:
        return [], []
    return ["**Same settings under several names** (the resolved settings differ only in the name):", "",
            *lines, ""], entries


__all__ = ["SameSettings", "agreement", "same_settings_groups", "same_settings_lines"]
