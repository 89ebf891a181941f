"""Variants of one study that train exactly the same thing under different names.

A sweep's default point is often also a member of another sweep (optimizers_imdb's `emb-e1`,
`hidden-h100` and `layers-l1` are all `opt-rmsprop-lstm`). The report names such groups so a
reader does not take them for separate findings, and compares their test predictions: on one
machine's CPU the pipeline promises identical results for identical settings, so a group that
disagrees points at nondeterminism (other hardware or thread counts, or a bug).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class SameSettings:
    variants: tuple[str, ...]  # sorted names
    seed: int
    results: tuple[str, ...]  # their results folders, in the order of `variants`


def same_settings_groups(runs: Sequence[Mapping[str, Any]]) -> list[SameSettings]:
    """Groups (≥ 2) of a study's runs whose resolved settings differ only in the variant name."""
    groups: dict[str, list[tuple[str, int, str]]] = {}
    for run in runs:
        variant = run["variant"]
        key = json.dumps({k: v for k, v in variant.items() if k != "name"}, sort_keys=True, default=str)
        groups.setdefault(key, []).append((variant["name"], int(variant["training"]["seed"]), run["results"]))
    found = []
    for members in groups.values():
        if len(members) >= 2:
            members.sort()
            found.append(SameSettings(variants=tuple(m[0] for m in members), seed=members[0][1],
                                      results=tuple(m[2] for m in members)))
    return sorted(found, key=lambda g: g.variants)


def agreement(group: SameSettings, predictions: Mapping[str, pd.DataFrame | None]) -> dict[str, Any]:
    """Whether the group's test predictions (class and probabilities) agree, over the members
    that have them: `compared` (how many), `identical` (None when fewer than two), and
    `items_differing` (test items whose predicted class differs between any two members)."""
    frames = [predictions.get(r) for r in group.results]
    frames = [f.sort_values("id").reset_index(drop=True) for f in frames if f is not None]
    if len(frames) < 2:
        return {"compared": len(frames), "identical": None, "items_differing": None}
    first = frames[0]
    identical = all(f.equals(first) for f in frames[1:])
    classes = pd.concat([f.set_index("id")["pred"] for f in frames], axis=1)
    differing = int((classes.nunique(axis=1) > 1).sum())
    return {"compared": len(frames), "identical": identical, "items_differing": differing}


def same_settings_lines(groups: Sequence[SameSettings], predictions: Mapping[str, pd.DataFrame | None]
                        ) -> tuple[list[str], list[dict[str, Any]]]:
    """Report lines (one per group) and their summary.json entries."""
    lines, entries = [], []
    for group in groups:
        check = agreement(group, predictions)
        names = ", ".join(f"`{v}`" for v in group.variants)
        if check["identical"] is None:
            verdict = (f"{check['compared']} of {len(group.variants)} have results, so their agreement is not "
                       "checked yet")
        elif check["identical"]:
            verdict = (f"the {check['compared']} with results agree bit for bit (test predictions and "
                       "probabilities): one result, not several")
        else:
            n = check["items_differing"]
            verdict = (f"their test predictions differ ({n} item{' changes' if n == 1 else 's change'} class): "
                       "nondeterminism, from other hardware or thread counts, or a bug")
        lines.append(f"- {names} (seed {group.seed}): {verdict}.")
        entries.append({"variants": list(group.variants), "seed": group.seed, **check})
    if not lines:
        return [], []
    return ["**Same settings under several names** (the resolved settings differ only in the name):", "",
            *lines, ""], entries


__all__ = ["SameSettings", "agreement", "same_settings_groups", "same_settings_lines"]
