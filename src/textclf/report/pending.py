"""The variants of a study without usable results: named, with the saved estimate of their
training on this machine (`textclf plan` or a run saved it) and the one command that trains them."""

from __future__ import annotations

import pandas as pd

from textclf.estimate import saved_estimates
from textclf.report.fmt import seeds
from textclf.report.result import Pending, PendingVariant


def run_command(mode: str, study: str) -> str:
    """THE command the report prints to train a study's pending variants (the only place it is
    spelled: the overview, the study pages and their tests all take it from here)."""
    quick = " quick=true" if mode == "quick" else ""
    return f"snakemake --cores 2 --config budget=none studies=[{study}]{quick}"


def pending_variants(mode: str, study: str, pending: pd.DataFrame) -> Pending | None:
    """`pending`: the study's rows of variants.parquet that are missing or failed."""
    if pending.empty:
        return None
    found = saved_estimates(mode, pending["results"])
    variants = []
    for (vid, status), group in pending.groupby(["id", "status"], sort=False):
        known = [found[r]["seconds"] for r in group["results"] if r in found]
        variants.append(PendingVariant(id=str(vid), status=str(status), seeds=seeds(group["seed"]), runs=len(group),
                                       seconds=float(sum(known)) if known else None))
    return Pending(mode=mode, variants=tuple(variants), n_variants=pending.groupby(["dataset", "variant"]).ngroups,
                   n_runs=len(pending), seconds=float(sum(e["seconds"] for e in found.values())) if found else None,
                   estimated_runs=len(found), command=run_command(mode, study))
