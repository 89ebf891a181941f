"""Both engines end to end on a tiny synthetic project: Snakemake and DVC build the same files,
a second run does nothing, a parameter change reruns only what reads it, the engines agree,
and `dvc exp run -S` / `dvc exp show --json` work.

The project is a temporary copy of this repository with a params.yaml that points the
download stage at small files the test writes (file:// URLs with their real sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO, fixture_params, report_text

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
COPY = ["Snakefile", "dvc.yaml", "workflow", "src", "profiles", "pyproject.toml", ".dvcignore"]
TOPICS = [["market", "stocks", "profit", "bank"], ["match", "goal", "team", "coach"],
          ["election", "minister", "war", "treaty"], ["software", "chip", "internet", "robot"]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _agnews_csv(rng: np.random.Generator, rows: int) -> str:
    out = io.StringIO()
    for _ in range(rows):
        label = int(rng.integers(0, 4))
        words = list(rng.choice(TOPICS[label], 3)) + list(rng.choice(sum(TOPICS, []), 3))
        rng.shuffle(words)
        out.write(f'"{label + 1}","{words[0]} news","{" ".join(words)} today"\n')
    return out.getvalue()


def _glove_zip(path: Path) -> None:
    rng = np.random.default_rng(3)
    words = sorted({w for t in TOPICS for w in t} | {"news", "today"})
    lines = [w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=8)) for w in words]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny.8d.txt", "\n".join(lines) + "\n")


def _tiny_params(upstream: Path) -> dict:
    params = fixture_params()
    files = {"train.csv": upstream / "train.csv", "test.csv": upstream / "test.csv"}
    params["downloads"] = {
        "tiny": {name: {"url": path.as_uri(), "sha256": _sha256(path)} for name, path in files.items()},
        "vectors": {"tiny.zip": {"url": (upstream / "tiny.zip").as_uri(), "sha256": _sha256(upstream / "tiny.zip")}},
    }
    params["datasets"] = {"tiny": {
        "reader": "ag_news_csv", "files": {"train": "tiny/train.csv", "test": "tiny/test.csv"},
        "classes": ["Business", "Sports", "World", "Sci/Tech"],
        "split": {"policy": "official", "val_fraction": 0.2, "seed": 1}, "on_malformed": "drop"}}
    params["vocabs"] = {"v": {"tokenizer": {"name": "basic_english"}, "min_freq": 1, "max_size": None,
                              "source": "train"}}
    params["embeddings"] = {"tglove": {"type": "glove", "archive": "vectors/tiny.zip", "member": "tiny.8d.txt",
                                       "dim": 8, "oov_init": "zeros", "seed": 0}}
    params["training"].update({"epochs": 2, "batch_size": 16, "max_len": 16, "device": "cpu"})
    params["quick"].update({"epochs": 1, "train_rows": 60, "eval_rows": 40})
    params["studies"] = {
        "tiny": {"datasets": ["tiny"], "vocab": "v", "model": "lstm_base",
                 "set": {"model": {"hidden": 8}},
                 "variants": {"lstm": {},
                              "gru-glove": {"model": {"cell": "gru", "embedding": {"source": "tglove"}}}},
                 "grid": [{"name": "l", "key": "model.layers", "values": [1]}],
                 "reference": {"lstm-l1": 0.5}},
        "base": {"datasets": ["tiny"], "model": "tfidf_logreg", "variants": {"tfidf": {"model": {"min_df": 1}}}},
    }
    params["run"] = {"studies": "all", "quick": False, "seeds": None}
    return params


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEXTCLF_MIRROR", "TEXTCLF_DEVICE", "TEXTCLF_REUSE_PUBLISHED")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONHASHSEED"] = "0"
    return env


def _env_without_venv() -> dict[str, str]:
    """The environment of `.venv/bin/dvc ...` typed without activating the environment."""
    env = _env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if p and Path(p).resolve() != BIN.resolve() and not p.endswith(".venv/bin"))
    return env


def run(cwd: Path, *cmd: str, ok: bool = True, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}")
    return output


def make_project(root: Path, upstream: Path) -> Path:
    root.mkdir()
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(_tiny_params(upstream), sort_keys=False))
    # the project's environment as setup.sh makes it (.venv: the interpreter, the offline
    # `dvc plots` template), here a link to the one running the tests
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (root / ".gitignore").write_text((REPO / ".gitignore").read_text() + "/.venv\n")
    (root / ".dvcignore").write_text((REPO / ".dvcignore").read_text() + "/.venv\n")
    run(root, "git", "init", "-q")
    run(root, "git", "config", "user.email", "ci@example.invalid")
    run(root, "git", "config", "user.name", "ci")
    run(root, str(BIN / "dvc"), "init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the project's DVC settings
    run(root, str(BIN / "textclf"), "jobs")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "tiny project")
    return root


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Path:
    up = tmp_path_factory.mktemp("upstream")
    rng = np.random.default_rng(0)
    (up / "train.csv").write_text(_agnews_csv(rng, 240))
    (up / "test.csv").write_text(_agnews_csv(rng, 80))
    _glove_zip(up / "tiny.zip")
    return up



def snakemake(root: Path, *args: str, ok: bool = True) -> str:
    return run(root, str(BIN / "snakemake"), "--cores", "2", *args, ok=ok)


def dvc(root: Path, *args: str, ok: bool = True) -> str:
    return run(root, str(BIN / "dvc"), *args, ok=ok)


def snakemake_would_run(root: Path, target: str = "reports/summary.md", *extra: str) -> dict[str, int]:
    """Rule -> job count of what Snakemake would run now."""
    out = snakemake(root, "-n", target, *extra)
    if "Nothing to be done" in out:
        return {}
    stats = out[out.index("Job stats:"):]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))
    return {k: int(v) for k, v in counts.items() if k != "total"}


def dvc_would_run(root: Path) -> dict[str, int]:
    """Stage family -> count of stages DVC would rerun, after its `jobs` stage has refreshed the
    job files from params.yaml (what `dvc repro` does first)."""
    out = dvc(root, "repro", "-s", "jobs", ok=False)
    if "run `dvc repro` again" in out:  # the list of jobs changed: DVC must reread dvc-jobs.yaml
        dvc(root, "repro", "-s", "jobs")
    status = json.loads(dvc(root, "status", "--json"))
    counts: dict[str, int] = {}
    for name in status:
        family = name.split("@")[0]
        counts[family] = counts.get(family, 0) + 1
    return counts


@contextlib.contextmanager
def edited(root: Path, *edits: tuple[str, object]):
    """Apply dotted-key edits to params.yaml for the block; put the original back afterwards
    (and refresh DVC's job files, so the shared project is as before)."""
    path = root / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    for dotted, value in edits:
        node = params
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)
        if (root / "dvc.lock").exists() and "run `dvc repro` again" in dvc(root, "repro", "-s", "jobs", ok=False):
            dvc(root, "repro", "-s", "jobs")


@contextlib.contextmanager
def touched(root: Path, rel: str):
    """Append a comment to a code file for the block (content and mtime change), then restore."""
    path = root / rel
    original, stat = path.read_bytes(), path.stat()
    path.write_bytes(original + b"\n# edited by a test\n")
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture(scope="module")
def snake_project(tmp_path_factory, upstream) -> Path:
    root = make_project(tmp_path_factory.mktemp("snake") / "proj", upstream)
    snakemake(root, "reports/summary.md")
    return root


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory, upstream) -> Path:
    root = make_project(tmp_path_factory.mktemp("dvc") / "proj", upstream)
    dvc(root, "repro")
    return root


# ----------------------------------------------------------------- builds, both engines
def test_snakemake_builds_everything(snake_project):
    root = snake_project
    for split in ("train", "val", "test"):
        assert (root / f"data/prepared/tiny/{split}.parquet").exists()
    assert (root / "data/embeddings/tiny/v/tglove.npy").exists()
    summary = json.loads((root / "reports/summary.json").read_text())
    assert summary["mode"] == "full"
    assert summary["studies"]["tiny"]["variants_done"] == 2 and summary["studies"]["base"]["variants_done"] == 1
    metrics = json.loads((root / "results/full/tiny/tiny/lstm-l1/seed1/metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n_test"] == 80
    assert "| lstm-l1 |" in (root / "reports/studies/tiny.md").read_text()
    assert snakemake_would_run(root) == {}


def test_dvc_repro_builds_and_then_is_clean(dvc_project):
    root = dvc_project
    assert (root / "reports/summary.md").exists()
    assert dvc_would_run(root) == {}
    assert "Data and pipelines are up to date" in dvc(root, "repro")


def test_both_engines_produce_the_same_files(snake_project, dvc_project):
    rels = [f"data/prepared/tiny/{s}.parquet" for s in ("train", "val", "test")]
    rels += ["data/vocab/tiny/v.json", "results/full/tiny/tiny/lstm-l1/seed1/predictions.parquet"]
    for rel in rels:
        assert _sha256(snake_project / rel) == _sha256(dvc_project / rel), rel
    for job in (snake_project / "jobs").rglob("*.json"):
        if "/quick/" not in job.as_posix() and job.name != "quick.json":
            assert job.read_bytes() == (dvc_project / job.relative_to(snake_project)).read_bytes(), job


# ----------------------------------------------------------------- (a)-(e): exact reruns
def test_a_value_no_variant_uses_reruns_nothing(snake_project, dvc_project):
    # every variant of `tiny` sets hidden: 8 (study `set`), so the preset's hidden is unused;
    # the quick caps do not touch full-setting jobs
    for root, would_run in ((snake_project, snakemake_would_run), (dvc_project, dvc_would_run)):
        with edited(root, ("models.lstm_base.hidden", 65), ("quick.train_rows", 80)):
            assert would_run(root) == {}, root


def test_b_preset_value_reruns_exactly_its_users(snake_project, dvc_project):
    # `lstm` inherits the preset's cell; `gru-glove` overrides it
    with edited(snake_project, ("models.lstm_base.cell", "rnn")):
        assert snakemake_would_run(snake_project) == {"train": 1, "report": 1}
    with edited(dvc_project, ("models.lstm_base.cell", "rnn")):
        assert dvc_would_run(dvc_project) == {"train": 1, "report": 1}


def test_c_new_grid_value_trains_only_new_variants(snake_project, dvc_project):
    grid = [{"name": "l", "key": "model.layers", "values": [1, 2]}]
    with edited(snake_project, ("studies.tiny.grid", grid)):
        assert snakemake_would_run(snake_project) == {"train": 2, "report": 1}
    with edited(dvc_project, ("studies.tiny.grid", grid)):
        # the jobs stage rewrote dvc-jobs.yaml (and asks for a second `dvc repro`); now the
        # two new variants and the report are what DVC would run
        assert dvc_would_run(dvc_project) == {"train": 1, "train_pretrained": 1, "report": 1}


def test_c_new_seed_trains_only_new_replicas(snake_project, dvc_project):
    assert snakemake_would_run(snake_project, "reports/summary.md", "--config", "seeds=[1,2]") == \
        {"train": 3, "report": 1}
    with edited(snake_project, ("studies.tiny.seeds", [1, 2])):
        assert snakemake_would_run(snake_project) == {"train": 2, "report": 1}
    with edited(dvc_project, ("run.seeds", [1, 2])):
        assert dvc_would_run(dvc_project) == {"train": 1, "train_pretrained": 1, "baseline": 1, "report": 1}


def test_d_quick_never_shares_outputs_and_keys_match(snake_project, tmp_path):
    root = snake_project
    full_metrics = _sha256(root / "results/full/tiny/tiny/lstm-l1/seed1/metrics.json")
    would = snakemake_would_run(root, "reports/quick/summary.md")
    assert would == {"train": 3, "report": 1}
    snakemake(root, "--config", "quick=true")  # rule all -> the quick report
    assert (root / "reports/quick/summary.md").exists()
    assert "quick setting" in (root / "reports/quick/summary.md").read_text()
    assert _sha256(root / "results/full/tiny/tiny/lstm-l1/seed1/metrics.json") == full_metrics
    assert json.loads((root / "reports/summary.json").read_text())["mode"] == "full"
    # the same job keys whether quick comes from --config or from params.yaml (DVC's route)
    via_config = {p.relative_to(root): p.read_bytes() for p in (root / "jobs/train/quick").rglob("*.json")}
    copy_root = tmp_path / "copy"
    shutil.copytree(root, copy_root, ignore=shutil.ignore_patterns("jobs", "results", "data", ".snakemake"))
    with edited(copy_root, ("run.quick", True)):
        run(copy_root, str(BIN / "textclf"), "jobs")
        via_params = {p.relative_to(copy_root): p.read_bytes()
                      for p in (copy_root / "jobs/train/quick").rglob("*.json")}
    assert len(via_params) == 3 and all(via_config[rel] == text for rel, text in via_params.items())
    assert snakemake_would_run(root, "reports/quick/summary.md") == {}
    assert snakemake_would_run(root) == {}


def test_e_code_edits_rerun_training_or_only_the_report(snake_project, dvc_project):
    with touched(snake_project, "src/textclf/training/loop.py"):
        assert snakemake_would_run(snake_project) == {"train": 2, "report": 1}
    with touched(snake_project, "src/textclf/report/markdown.py"):
        assert snakemake_would_run(snake_project) == {"report": 1}
    with touched(dvc_project, "src/textclf/training/loop.py"):
        assert dvc_would_run(dvc_project) == {"train": 1, "train_pretrained": 1}
    with touched(dvc_project, "src/textclf/report/markdown.py"):
        assert dvc_would_run(dvc_project) == {"report": 1}


# ----------------------------------------------------------------- (f): switching engines
def test_f_snakemake_has_nothing_to_do_after_dvc(dvc_project):
    assert snakemake_would_run(dvc_project) == {}


def test_f_dvc_adopts_snakemake_outputs(snake_project):
    root = snake_project
    # a Snakemake run of one study only, while run.studies (DVC's list) covers all: its report goes
    # to reports/subsets/base/, the report of every study (DVC's) stays as it was
    snakemake(root, "--config", "studies=[base]")
    assert (root / "reports/subsets/base/summary.md").is_file()
    raw = root / "data/raw/tiny/train.csv"
    kept = raw.with_name(f".{raw.name}.verified")  # download.py's hard link to the verified bytes
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (raw, kept, root / "data/prepared/tiny/stats.json")}
    assert raw.stat().st_ino == kept.stat().st_ino
    run(root, str(BIN / "textclf"), "adopt")
    # adopting records the files as they are: same inode and mtime, the hard link intact
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before} == before
    assert snakemake_would_run(root, "data/embeddings/tiny/v/tglove.npy") == {}  # a built data stage
    assert dvc_would_run(root) == {}
    assert snakemake_would_run(root) == {}


def test_engines_lock_each_other_out(snake_project):
    root = snake_project
    import zc.lockfile

    held = zc.lockfile.LockFile(str(root / ".dvc" / "tmp" / "lock"))  # what `dvc repro` holds while it runs
    try:
        with touched(root, "src/textclf/report/markdown.py"):
            out = snakemake(root, "reports/summary.md", ok=False)
        assert "DVC is running in this workspace" in out
    finally:
        held.close()
    from textclf.engines import EngineLock

    snakemake_lock = EngineLock(root)  # what a running Snakemake holds (Snakefile onstart)
    snakemake_lock.acquire()
    try:
        assert "Unable to acquire lock" in dvc(root, "repro", ok=False)
    finally:
        snakemake_lock.release()


# ----------------------------------------------------------------- the rest of the engine UX
def test_snakemake_config_selection_and_bad_override(snake_project):
    # a selection's report is its own target (forced: an earlier test may have built it)
    out = snakemake(snake_project, "-n", "-f", "reports/subsets/base/summary.md", "--config", "studies=[base]")
    assert re.search(r"^report\s+1$", out, flags=re.M), out
    out = snakemake(snake_project, "-n", "reports/summary.md", "--config", "studies=[nope]", ok=False)
    assert "unknown study name(s) ['nope']" in out
    out = snakemake(snake_project, "-n", "--config", "training={epochs: 3}", ok=False)
    assert "--config may only set" in out


def test_snakemake_html_report_has_figures(snake_project):
    snakemake(snake_project, "--report", "reports/report.html")
    html = (snake_project / "reports/report.html").read_text(errors="replace")
    assert "tiny_curves.png" in html and "Figures" in html


def test_failed_job_still_writes_a_partial_report(tmp_path_factory, upstream):
    root = make_project(tmp_path_factory.mktemp("fail") / "proj", upstream)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["downloads"]["vectors"]["tiny.zip"]["sha256"] = "0" * 64  # a corrupt download
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = snakemake(root, "--keep-going", "reports/summary.md", ok=False)
    assert "ChecksumError" in out and "expected" in out
    assert not (root / "data/raw/vectors/tiny.zip").exists()
    partial = report_text(root / "reports/partial")
    assert "**Missing or failed**" in partial and "`tiny/tiny/gru-glove-l1` (missing)" in partial


def test_failed_data_only_target_writes_no_partial_report(tmp_path_factory, upstream):
    root = make_project(tmp_path_factory.mktemp("faildata") / "proj", upstream)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["downloads"]["tiny"]["train.csv"]["sha256"] = "0" * 64
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = snakemake(root, "data/prepared/tiny/stats.json", ok=False)
    assert "the failed targets were not a report: no partial report" in out
    assert not (root / "reports/partial").exists()


def test_dvc_plots_render_offline(dvc_project):
    # plain `dvc plots show`: .dvc/config's plots.html_template inlines Vega (no CDN)
    dvc(dvc_project, "plots", "show", "-o", "plots_out")
    page = (dvc_project / "plots_out" / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src=" not in page
    assert "vegaEmbed" in page and "tiny" in page


def test_dvc_experiment_run_and_show(dvc_project):
    """README's way (`.venv/bin/dvc`, environment not activated): `dvc exp run -S` works at the
    first try, retrains what reads the value and re-renders the report, edits one line of
    params.yaml, and leaves Snakemake nothing to redo; `dvc exp show` compares accuracies."""
    root = dvc_project
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "baseline results", ok=False)
    baseline_run = root / "results/full/tiny/base/tfidf/seed1/metrics.json"
    before = baseline_run.stat().st_mtime_ns
    out = run(root, str(BIN / "dvc"), "exp", "run", "-S", "studies.tiny.set.model.hidden=12", "-n", "bigger",
              env=_env_without_venv())
    ran = set(re.findall(r"Running stage '(\w+)@", out))
    assert ran == {"train", "train_pretrained", "report"}, out[-3000:]
    assert baseline_run.stat().st_mtime_ns == before
    numstat = run(root, "git", "diff", "--numstat", "params.yaml").split()
    assert numstat[:2] == ["1", "1"], run(root, "git", "diff", "params.yaml")
    assert "hidden: 12" in run(root, "git", "diff", "params.yaml")
    assert snakemake_would_run(root) == {}  # both engines, one workspace

    shown = json.loads(dvc(root, "exp", "show", "--json"))
    metrics = {exp["name"]: exp["revs"][0]["data"]["metrics"] for base in shown
               for exp in base.get("experiments") or []}
    accuracy = metrics["bigger"]["reports/metrics.json"]["data"]["tiny"]  # {study: best accuracy}
    assert 0.0 <= accuracy <= 1.0
    # the table opens with each study's best accuracy (no report digest, no per-study detail);
    # DVC then lists every key of params.yaml, the default params file, whatever dvc.yaml says
    table = [line.split() for line in dvc(root, "exp", "show").splitlines() if line.strip()]
    assert table[1][:4] == ["Experiment", "Created", "base", "tiny"], table[1][:8]
    bigger = next(row for row in table if "[bigger]" in row)
    assert f"{accuracy:.5g}" in bigger, bigger[:8]  # DVC prints 5 significant digits
    diff = dvc(root, "metrics", "diff", "HEAD", "bigger", "--json")
    assert "tiny" in json.loads(diff)["reports/metrics.json"]


def test_committed_dvc_jobs_list_is_current():
    out = subprocess.run([str(BIN / "textclf"), "jobs", "--check"], cwd=REPO, env=_env(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_plan_estimate_against_the_measured_time(snake_project, capsys):
    """A benchmark number, printed (not a timed assertion): the plan's estimate for the tiny
    study against the training time its runs measured on this machine."""
    from textclf.config import load_params
    from textclf.estimate import DataSize, machine_speed, replica_seconds
    from textclf.plan import Plan, prepared_dir, results_dir

    root = snake_project
    plan = Plan(load_params(root / "params.yaml"), root=root)
    rnn = [v for v in plan.variants if v.is_neural]
    cache = root / ".textclf" / "throughput.json"
    speed = machine_speed([], cache)  # the calibration, not these runs
    size = DataSize.from_stats(root / prepared_dir(rnn[0].dataset) / "stats.json")
    estimated = sum(replica_seconds(v, size, speed) for v in rnn)
    measured = 0.0
    for v in rnn:
        metrics = json.loads((root / results_dir(v) / "metrics.json").read_text())
        measured += metrics["seconds_per_epoch"] * metrics["epochs_run"]
    assert estimated > 0 and measured > 0
    with capsys.disabled():
        print(f"\n[benchmark] tiny study: estimated {estimated:.2f} s of training, measured {measured:.2f} s "
              f"({measured / estimated:.2f}x; rate {speed.rate / 1e9:.1f} G/s, {speed.source})")


# ----------------------------------------------------------------- published runs
def test_a_clone_with_published_runs_trains_nothing(snake_project, tmp_path):
    """results/ does not outlive a machine: `textclf publish` + git carry the runs to a new
    checkout, whose train jobs (Snakemake's, then DVC's) copy them, verified, instead of
    training, byte for byte."""
    root = snake_project
    out = run(root, str(BIN / "textclf"), "publish")
    assert "3 run(s) published" in out, out
    run(root, "git", "add", "reports/runs")
    run(root, "git", "commit", "-qm", "publish the tiny runs")
    try:
        clone = tmp_path / "clone"
        run(tmp_path, "git", "clone", "-q", str(root), str(clone))
        plan = run(clone, str(BIN / "textclf"), "plan")
        assert re.search(r"^tiny\s+2\s+0\s+2\s+0\s", plan, flags=re.M), plan
        assert re.search(r"^base\s+1\s+0\s+1\s+0\s", plan, flags=re.M), plan
        runs = [m.parent.relative_to(root) for m in (root / "results/full").rglob("metrics.json")]
        assert len(runs) == 3
        for engine in ("snakemake", "dvc"):
            if engine == "snakemake":
                log = snakemake(clone, "reports/summary.md")
            else:
                shutil.rmtree(clone / "results")
                log = dvc(clone, "repro")
            assert log.count("published run reused") == 3, log[-4000:]
            for rel in runs:
                for name in ("metrics.json", "history.csv", "predictions.parquet"):
                    assert (clone / rel / name).read_bytes() == (root / rel / name).read_bytes(), (engine, rel, name)
        assert snakemake_would_run(clone) == {}
        assert "0 run(s) published, 0 replaced, 3 already published" in run(clone, str(BIN / "textclf"), "publish")
    finally:  # the shared project trains its own runs again in any later test
        run(root, "git", "reset", "-q", "--hard", "HEAD~1")


# ----------------------------------------------------------------- first hour: budget and selections
def test_a_new_study_runs_first_try_and_a_selection_never_touches_the_full_report(tmp_path_factory, upstream):
    """A fresh clone has the committed report and no Snakemake metadata: a study added to
    params.yaml still trains with the README's command (no target), a selection of studies writes
    its own report under reports/subsets/, and a run over the time budget is left for later:
    listed in the report with the command that trains it."""
    root = make_project(tmp_path_factory.mktemp("first") / "proj", upstream)
    snakemake(root)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "the committed report")
    clone = root.parent / "clone"
    run(root.parent, "git", "clone", "-q", str(root), str(clone))
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["studies"]["extra"] = {"datasets": ["tiny"], "model": "tfidf_logreg",
                                  "variants": {"tfidf-bigram": {"model": {"min_df": 1, "ngram_max": 2}}}}
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    snakemake(clone)  # the README's command: every study, reports/summary.md
    assert (clone / "results/full/tiny/extra/tfidf-bigram/seed1/metrics.json").is_file()
    assert "[extra](studies/extra.md)" in (clone / "reports/summary.md").read_text()
    assert (clone / "reports/studies/extra.md").is_file()

    tracked = {p: p.read_bytes() for p in (clone / "reports").rglob("*") if p.is_file()}
    snakemake(clone, "--config", "studies=[extra]")
    assert (clone / "reports/subsets/extra/summary.md").is_file()
    after = {p: p.read_bytes() for p in (clone / "reports").rglob("*") if p.is_file() and "subsets" not in p.parts}
    assert after == tracked  # not one byte of the report of every study changed, no figure deleted
    out = snakemake(clone, "-n", "reports/summary.md", "--config", "studies=[extra]", ok=False)
    assert "reports/ is not the report of this run's selection" in out
    assert "its report is reports/subsets/extra/summary.md" in out

    params["studies"]["later"] = {"datasets": ["tiny"], "vocab": "v", "model": "lstm_base",
                                  "variants": {"big": {"model": {"hidden": 16}}}}
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dry = snakemake(clone, "-n", "--config", "budget=0.0001", "studies=[later]")
    assert re.search(r"^later\s+1\s+0\s+0\s+0\s+0 s\s+1\s", dry, flags=re.M), dry
    assert max(len(line) for line in dry.splitlines()) < 400
    out = snakemake(clone, "--config", "budget=0.0001", "studies=[later]")
    assert "1 run left for later" in out
    assert "train them with: snakemake --cores 2 --config budget=none studies=[later]" in out
    assert not (clone / "results/full/tiny/later").exists()
    page = (clone / "reports/subsets/later/studies/later.md").read_text()
    assert "`tiny/later/big` (missing" in page
    assert "`snakemake --cores 2 --config budget=none studies=[later]`" in page


@pytest.mark.parametrize("engine", ["snakemake", "dvc"])
def test_a_damaged_encoded_parquet_is_one_line_under_both_engines(tmp_path_factory, upstream, engine):
    """Issue 38.6: a truncated data/encoded/.../train.parquet gave a 25-line pyarrow traceback;
    now the train stage names the file and how to rebuild it, under either engine."""
    from textclf.config import load_params
    from textclf.plan import Plan

    root = make_project(tmp_path_factory.mktemp(f"damaged-{engine}") / "proj", upstream)
    out = "results/full/tiny/tiny/lstm-l1/seed1"
    (job,) = [j for j in Plan(load_params(root / "params.yaml")).jobs("train") if j.settings["out"] == out]
    encoded = job.settings["inputs"]["encoded"]
    if engine == "snakemake":
        snakemake(root, encoded)
    else:
        dvc(root, "repro", "encode")
    bad = root / encoded / "train.parquet"
    bad.write_bytes(bad.read_bytes()[:-100])
    if engine == "snakemake":  # the output of a job Snakemake considers done: it reruns only the train job
        output = snakemake(root, f"{out}/metrics.json", ok=False)
    else:  # DVC would rebuild a changed output first; --single-item runs the train stage on it
        output = dvc(root, "repro", "--single-item", f"{dvc_train_stage(job)}@{job.dvc_key}", ok=False)
    line = next(x for x in output.splitlines() if x.startswith("error ("))
    assert line.startswith(f"error (DamagedFile): {encoded}/train.parquet is damaged and cannot be read")
    assert f"rebuild it: rm -r {encoded} and rerun (snakemake --cores 1 {encoded}, or dvc repro;" in line
    assert "Traceback" not in output
    shutil.rmtree(root / encoded)  # what the line says to do
    if engine == "snakemake":
        snakemake(root, f"{out}/metrics.json")
    else:
        dvc(root, "repro", f"{dvc_train_stage(job)}@{job.dvc_key}")
    assert (root / out / "metrics.json").is_file()


def dvc_train_stage(job) -> str:
    return "train_pretrained" if job.settings["inputs"]["embedding"] else "train"
