"""The tiny project the cluster and queue checks run, and how to compare two runs of it.

Everything about the project's layout is borrowed from tests/test_engines.py (its synthetic
upstream files and `make_project`), so when the engine layer changes, this follows:

    python tests/cluster/tiny_project.py build DEST [--upstream U]
                                  # DEST/proj (a git repo) reading U (default: new DEST/upstream)
    python tests/cluster/tiny_project.py target            # the file a full run builds
    python tests/cluster/tiny_project.py slurm-profile DIR --partition P [--cpus N --mem-mb M]
                                  # DIR/config.yaml: profiles/slurm adapted to a one-node cluster
    python tests/cluster/tiny_project.py compare A B       # A's and B's outputs agree (exit 0)
    python tests/cluster/tiny_project.py check-sacct LOG SACCT
                                  # every job of a Snakemake log is COMPLETED in sacct's output
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

import test_engines as engines  # noqa: E402  (the layout knowledge lives there)

from textclf import metrics  # noqa: E402

REPO = engines.REPO
TARGET = "reports/summary.md"
# Per-run facts, not results: the run's clock (metrics.TIMING_KEYS, also the report's
# `wall_seconds`, provenance.json's `trained_at`), the report's throughput columns, the device name.
TIMING_KEYS = metrics.TIMING_KEYS | {"seconds", "tokens_per_s", "device", "trained_at"}
COMPARED = ("data", "results", "reports")
SKIPPED = {".snakemake", "logs", ".dvc", ".git"}


def make_upstream(folder: Path) -> Path:
    """The synthetic upstream files test_engines serves (same seeds, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    (folder / "train.csv").write_text(engines._agnews_csv(rng, 240))
    (folder / "test.csv").write_text(engines._agnews_csv(rng, 80))
    engines._glove_zip(folder / "tiny.zip")
    return folder


def build(dest: Path, upstream: Path | None = None) -> Path:
    """dest/proj (the tiny project, committed) downloading from upstream (default: synthetic
    files made in dest/upstream); returns proj. Two runs to compare share one upstream."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    upstream = Path(upstream) if upstream else make_upstream(dest / "upstream")
    return engines.make_project(dest / "proj", upstream.resolve())


# ---------------------------------------------------------------- SLURM profile


def slurm_profile(out: Path, partition: str, cpus: int = 1, mem_mb: int = 1000,
                  source: Path = REPO / "profiles" / "slurm" / "config.yaml") -> Path:
    """A workflow profile that adapts profiles/slurm to a one-node test cluster: every
    partition -> `partition`, no GPUs, at most `cpus` CPUs and `mem_mb` MB per job, status by
    squeue (no accounting database), short waits. Used as
    `snakemake --profile profiles/slurm --workflow-profile out`; derived from profiles/slurm
    so that new rules or resources there are adapted too."""
    profile = yaml.safe_load(source.read_text())
    override: dict[str, Any] = {
        "executor": "slurm",
        "jobs": 4,
        "latency-wait": 5,
        "retries": 0,  # a failure must show, not be retried away
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 2,
        "slurm-no-account": True,
        "slurm-keep-successful-logs": True,
    }
    resources = copy.deepcopy(profile.get("default-resources") or {})
    override["default-resources"] = _fit(resources, partition, cpus, mem_mb)
    rules = copy.deepcopy(profile.get("set-resources") or {})
    override["set-resources"] = {rule: _fit(res, partition, cpus, mem_mb)
                                 for rule, res in rules.items()}
    override["set-threads"] = {rule: min(int(n), cpus)
                               for rule, n in (profile.get("set-threads") or {}).items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(override, sort_keys=False))
    return out / "config.yaml"


def _fit(resources: dict[str, Any], partition: str, cpus: int, mem_mb: int) -> dict[str, Any]:
    fitted = {k: v for k, v in resources.items() if k not in ("gpu", "gres", "slurm_account")}
    fitted["slurm_partition"] = partition
    fitted["mem_mb"] = min(int(fitted.get("mem_mb", mem_mb)), mem_mb)
    fitted["cpus_per_task"] = min(int(fitted.get("cpus_per_task", cpus)), cpus)
    if "runtime" in fitted:
        fitted["runtime"] = min(int(fitted["runtime"]), 30)
    return fitted


# ---------------------------------------------------------------- comparing two runs


def output_files(root: Path) -> dict[str, Path]:
    """Relative path -> file, for every output under data/, results/ and reports/."""
    files = {}
    for top in COMPARED:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not (set(rel.parts) & SKIPPED) and not _volatile(rel):
                files[rel.as_posix()] = path
    return files


def _volatile(rel: Path) -> bool:
    """Files whose bytes legitimately differ between runs (logs, dates, pickles, plots; the report's
    pages carry wall times and dates: its numbers are compared in summary.json and variants.parquet)."""
    name = rel.name
    return (name.startswith(".") or name.endswith((".log", ".png", ".html", ".kv", ".pkl"))
            or name == "summary.md" or (rel.parts[:2] == ("reports", "studies") and name.endswith(".md"))
            or (rel.parts[:2] == ("data", "embeddings") and "cache" in rel.parts))


def same(a: Path, b: Path) -> str | None:
    """None when the two files agree (results compared without their timings), else why not."""
    if a.read_bytes() == b.read_bytes():
        return None
    if a.suffix == ".json":
        left, right = _strip(json.loads(a.read_text())), _strip(json.loads(b.read_text()))
        return None if left == right else "JSON differs beyond timings"
    if a.suffix == ".csv":
        left, right = pd.read_csv(a), pd.read_csv(b)
        cols = [c for c in left.columns if c not in TIMING_KEYS]
        return None if left[cols].equals(right.reindex(columns=cols)) else "CSV differs"
    if a.suffix == ".parquet":
        left, right = pd.read_parquet(a), pd.read_parquet(b)
        left = left.drop(columns=[c for c in left.columns if c in TIMING_KEYS])
        right = right.drop(columns=[c for c in right.columns if c in TIMING_KEYS])
        return None if left.equals(right) else "parquet data differs"
    if a.name.endswith(".sha256"):
        return None if _sidecar_hash(a) == _sidecar_hash(b) else "recorded sha256 differs"
    if a.suffix == ".pt":
        return _torch_same(a, b)
    return "bytes differ"


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _sidecar_hash(path: Path) -> str:
    return path.read_text().split()[0]


def _torch_same(a: Path, b: Path) -> str | None:
    import torch

    left, right = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
    state_a, state_b = left.get("state_dict", left), right.get("state_dict", right)
    if state_a.keys() != state_b.keys():
        return "model parameters differ (names)"
    for key in state_a:
        if not torch.equal(state_a[key], state_b[key]):
            return f"model parameter {key} differs"
    return None


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two runs' outputs (empty: they agree)."""
    left, right = output_files(Path(a)), output_files(Path(b))
    problems = [f"only in {a}: {rel}" for rel in sorted(set(left) - set(right))]
    problems += [f"only in {b}: {rel}" for rel in sorted(set(right) - set(left))]
    for rel in sorted(set(left) & set(right)):
        why = same(left[rel], right[rel])
        if why:
            problems.append(f"{rel}: {why}")
    if not left:
        problems.append(f"no outputs under {a}")
    return problems


# ---------------------------------------------------------------- SLURM accounting


def job_count(log: Path) -> int:
    """The total of the 'Job stats' table of a Snakemake log."""
    match = re.search(r"^total\s+(\d+)\s*$", log.read_text(), flags=re.M)
    if not match:
        raise SystemExit(f"{log}: no 'Job stats' total found")
    return int(match.group(1))


def check_sacct(log: Path, sacct: Path) -> list[str]:
    """Every job Snakemake ran (its log's total, minus the local target rule, if any) is listed
    by sacct as COMPLETED, and none failed. sacct lines: JobID|JobName|State|ExitCode."""
    total = job_count(log)
    rows = [line.split("|") for line in sacct.read_text().splitlines() if line.strip()]
    states = [r[2] for r in rows if len(r) >= 3]
    completed = states.count("COMPLETED")
    bad = [r for r in rows if len(r) >= 3 and r[2] != "COMPLETED"]
    problems = []
    if completed < total:
        problems.append(f"sacct lists {completed} COMPLETED job(s), Snakemake ran {total}")
    problems += [f"sacct: job {r[0]} ({r[1]}) is {r[2]}" for r in bad]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    bld = sub.add_parser("build")
    bld.add_argument("dest", type=Path)
    bld.add_argument("--upstream", type=Path)
    sub.add_parser("target")
    prof = sub.add_parser("slurm-profile")
    prof.add_argument("out", type=Path)
    prof.add_argument("--partition", required=True)
    prof.add_argument("--cpus", type=int, default=1)
    prof.add_argument("--mem-mb", type=int, default=1000)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    acct = sub.add_parser("check-sacct")
    acct.add_argument("log", type=Path)
    acct.add_argument("sacct", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "build":
        print(build(args.dest, args.upstream))
    elif args.cmd == "target":
        print(TARGET)
    elif args.cmd == "slurm-profile":
        print(slurm_profile(args.out, args.partition, args.cpus, args.mem_mb).parent)
    elif args.cmd == "compare":
        return _verdict(compare(args.a, args.b),
                        lambda: f"outputs agree: {len(output_files(args.a))} files under {', '.join(COMPARED)}")
    elif args.cmd == "check-sacct":
        return _verdict(check_sacct(args.log, args.sacct),
                        lambda: f"sacct lists all {job_count(args.log)} jobs as COMPLETED")
    return 0


def _verdict(problems: list[str], ok) -> int:
    """Each problem on stderr and exit 1, or the all-clear line and exit 0."""
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(ok())
    return 0


if __name__ == "__main__":
    sys.exit(main())
