"""The report as a researcher sees it, rendered in headless Chromium (Debian's `chromium`):

- reports/summary.html is self-contained (no script, no network) and shows, per study, its
  table and its figures (checked from the DOM after layout: visible, decoded images);
- end to end on the tiny synthetic project (integration): Snakemake's `--report` opens on that
  comparison; `dvc exp show` (docs/ENGINES.md's recipe, and as CSV) shows the experiment's
  changed parameter and one accuracy per study after `dvc exp run -S`; `dvc metrics diff` works
  after a commit; `dvc plots show` with the offline
  template draws one plot per study without any network.

Chromium is installed with apt-get when absent (root, Debian); the tests skip, saying why,
when it cannot be.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_report import STUDY, _params, report_job, write_run, write_stats

from helpers import REPO, report_text
from textclf.report import build_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                  "--virtual-time-budget=10000", "--hide-scrollbars"]

# Appended to a copy of a page: after load, record per study section what is laid out and
# visible (tables, decoded images) in a <pre id="probe"> that --dump-dom then prints.
PROBE = """<script>
window.addEventListener('load', () => {
  const visible = el => { const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.display !== 'none' && cs.visibility !== 'hidden'; };
  const out = [...document.querySelectorAll('section.study')].map(s => ({
    study: s.dataset.study,
    tables: [...s.querySelectorAll('table')].filter(visible).map(t => t.rows.length),
    images: [...s.querySelectorAll('img')].map(i => ({file: i.dataset.file, width: i.naturalWidth,
                                                      visible: visible(i)}))}));
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless Chromium; installs Debian's package when absent (as root)."""
    found = _find_chromium()
    if found:
        return found
    if os.environ.get("TEXTCLF_NO_APT"):
        pytest.skip("chromium is not installed and TEXTCLF_NO_APT forbids installing it")
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be: needs root and apt-get (Debian: apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip(f"chromium is not installed; `{' '.join(cmd)}` timed out")
        log.append(proc.stdout[-500:] + proc.stderr[-500:])
    found = _find_chromium()
    if not found:
        pytest.skip("chromium is not installed and `apt-get install chromium` failed: " + " | ".join(log))
    return found


def run_chromium(chromium: str, url: str, tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"  # fresh each time
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def probe(chromium: str, page: Path, tmp_path: Path) -> list[dict]:
    probed = tmp_path / f"probe-{page.name}"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    dom = run_chromium(chromium, probed.as_uri(), tmp_path, "--window-size=1280,900", "--dump-dom")
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.S)
    assert match, dom[-2000:]
    return json.loads(html.unescape(match.group(1)))


def assert_offline(page: str) -> None:
    """Nothing the page loads comes from the network."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, flags=re.I)
    assert "@import" not in page and "<link" not in page.lower()


# ----------------------------------------------------------------- summary.html


@pytest.fixture
def two_study_report(tmp_path, monkeypatch):
    """Study `s` on imdb (one missing variant) and `baselines` on two datasets."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 300)
    for name, rate in (("a", 0.2), ("b", 0.1), ("c", 0.3)):
        write_run(tmp_path / "results/full/imdb/s" / name / "seed1", labels, rate, rng)
    for dataset, rate in (("imdb", 0.25), ("ag_news", 0.1)):
        write_run(tmp_path / f"results/full/{dataset}/baselines/tfidf/seed1", labels, rate, rng, model="tfidf",
                  epochs=1)
    write_stats(tmp_path, "imdb", 100, 300)
    write_stats(tmp_path, "ag_news", 100, 300)
    studies = {"s": STUDY, "baselines": {"datasets": ["ag_news", "imdb"], "model": "tfidf_logreg",
                                         "variants": {"tfidf": {}}}}
    monkeypatch.chdir(tmp_path)
    build_report(report_job(_params(studies, datasets=("imdb", "ag_news"))), tmp_path / "reports")
    return tmp_path / "reports"


def test_summary_html_is_self_contained(two_study_report):
    page = (two_study_report / "summary.html").read_text(encoding="utf-8")
    studies = {name: (two_study_report / f"studies/{name}.html").read_text(encoding="utf-8") for name in ("s", "baselines")}
    for text in (page, *studies.values()):
        assert_offline(text)
        assert "<script" not in text
    sources = [src for text in studies.values() for src in re.findall(r'<img [^>]*src="([^"]+)"', text)]
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    for src in sources:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # the overview first, then each study (a link to its page), the datasets table last
    assert page.index('id="overview"') < page.index('href="studies/s.html"') \
        < page.index('href="studies/baselines.html"') < page.index('id="datasets-rows-used"')
    for name, text in studies.items():  # each page: its study's section, a way back to the overview
        assert f'data-study="{name}"' in text and 'href="../summary.html"' in text


def test_summary_html_shows_each_study_table_and_figures_in_chromium(chromium, two_study_report, tmp_path):
    sections = {s["study"]: s for name in ("s", "baselines")
                for s in probe(chromium, two_study_report / f"studies/{name}.html", tmp_path)}
    assert set(sections) == {"s", "baselines"}
    expected = {
        "s": {"figures/s_curves.png", "figures/s_acc_vs_params.png", "figures/s_confusion.png",
              "figures/s_accuracy_ci.png"},
        "baselines": {"figures/baselines_acc_vs_params.png", "figures/baselines_ag_news_confusion.png",
                      "figures/baselines_imdb_confusion.png", "figures/baselines_ag_news_accuracy_ci.png",
                      "figures/baselines_imdb_accuracy_ci.png"},
    }
    for study, files in expected.items():
        section = sections[study]
        assert section["tables"] and section["tables"][0] >= 2, section  # the comparison table, with rows
        assert {img["file"] for img in section["images"]} == files
        for img in section["images"]:
            assert img["visible"] and img["width"] > 100, img  # laid out and decoded
    shot = tmp_path / "summary.png"
    run_chromium(chromium, (two_study_report / "studies/s.html").as_uri(), tmp_path, "--window-size=1280,1000",
                 f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------- end to end (tiny project)

def docs_exp_show_recipe() -> str:
    """The bash block under "## DVC views" in docs/ENGINES.md, verbatim."""
    text = (REPO / "docs" / "ENGINES.md").read_text(encoding="utf-8")
    section = text[text.index("## DVC views"):]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "docs/ENGINES.md lost its dvc exp show recipe"
    return block.group(1)


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    from test_engines import _agnews_csv, _glove_zip, make_project

    up = tmp_path_factory.mktemp("upstream")
    rng = np.random.default_rng(0)
    (up / "train.csv").write_text(_agnews_csv(rng, 240))
    (up / "test.csv").write_text(_agnews_csv(rng, 80))
    _glove_zip(up / "tiny.zip")
    return make_project(tmp_path_factory.mktemp("views") / "proj", up)


def _tool(root: Path, *cmd: str, **env: str) -> str:
    """Run a command in the project (this environment's snakemake/dvc/python first on PATH)."""
    from test_engines import _env

    proc = subprocess.run(cmd, cwd=root, env={**_env(), **env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.integration
def test_snakemake_report_opens_on_the_comparison(chromium, tiny_project, tmp_path):
    root = tiny_project
    _tool(root, "snakemake", "--cores", "2", "reports/quick/summary.md", "--config", "quick=true")
    _tool(root, "snakemake", "--cores", "2", "--report", "reports/quick/report.html", "reports/quick/summary.md",
          "--config", "quick=true")
    report = (root / "reports/quick/report.html").read_text(encoding="utf-8")
    desc = json.loads(re.search(r"var workflow_desc = (\".*?\");\n", report, flags=re.S).group(1))
    assert "figures below" not in desc and "summary.html" in desc
    results = json.loads(re.search(r"var results = (\{.*?\});\n", report, flags=re.S).group(1))
    entry = results["reports/quick/summary.html"]
    params = entry["job_properties"]["params"]
    assert "\\n" not in params and "\n" not in params and "setting=quick" in params
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", report, flags=re.S).group(1))
    assert sorted(categories)[0] == "Comparison" and "Figures" in categories

    dom = run_chromium(chromium, (root / "reports/quick/report.html").as_uri(), tmp_path,
                       "--window-size=1400,1000", "--dump-dom")
    frame = re.search(r'<iframe src="(data:text/html[^"]+)"', dom)
    assert frame, "the report did not open on the comparison page"
    page = base64.b64decode(html.unescape(frame.group(1)).split("base64,", 1)[1]).decode("utf-8")
    assert page == (root / "reports/quick/summary.html").read_text(encoding="utf-8")
    assert "report: quick setting" in page and 'href="studies/tiny.html"' in page and 'href="studies/base.html"' in page
    sections = {s["study"]: s for name in ("tiny", "base")
                for s in probe(chromium, root / f"reports/quick/studies/{name}.html", tmp_path)}
    assert set(sections) == {"tiny", "base"}
    for section in sections.values():
        assert section["tables"] and section["images"] and all(i["visible"] and i["width"] for i in section["images"])
    text = report_text(root / "reports/quick")
    assert "quick setting · tiny: 60 train / 40 test rows" in text  # the quick caps of the tiny project


@pytest.mark.integration
def test_dvc_views_exp_show_metrics_diff_and_offline_plots(chromium, tiny_project, tmp_path):
    root = tiny_project
    _tool(root, "dvc", "repro")
    _tool(root, "git", "add", "-A")
    _tool(root, "git", "commit", "-qm", "results")
    _tool(root, "dvc", "exp", "run", "-S", "studies.tiny.set.model.hidden=12", "-n", "bigger")

    # the documented recipe, run as written: the experiment, its changed parameter, no hash column
    recipe = docs_exp_show_recipe()
    assert recipe.count("dvc exp show") == 1
    table = _tool(root, "bash", "-c", "set -eu\n" + recipe, COLUMNS="200")
    assert "bigger" in table and "studies.tiny.set.model.hidden" in table and "data/" not in table, table
    # DVC's metrics are reports/metrics.json: one best accuracy per study, a column each
    rows = list(csv.DictReader(io.StringIO(_tool(root, "dvc", "exp", "show", "--csv"))))
    bigger = next(r for r in rows if r["Experiment"] == "bigger")
    assert bigger["studies.tiny.set.model.hidden"] == "12"
    assert 0.0 <= float(bigger["tiny"]) <= 1.0 and 0.0 <= float(bigger["base"]) <= 1.0
    assert not any("job_sha256" in column for column in rows[0])

    # metrics diff against the committed reports/ (git-tracked, cache: false): loads both sides
    out = _tool(root, "dvc", "metrics", "diff", "HEAD", "--json")
    assert "failed to load" not in out
    diff = json.loads(out)
    changed = diff.get("diff", diff).get("reports/metrics.json", {})
    assert set(changed) <= {"tiny", "base"}, changed  # metrics only, one per study
    table = _tool(root, "dvc", "metrics", "show", "--json")
    assert json.loads(table)

    # plots: one per study with curves, offline template with Vega inlined
    template = tmp_path / "plots-template.html"
    _tool(root, "python", "-m", "textclf.report.html", "--dvc-template", str(template))
    _tool(root, "dvc", "plots", "show", "--html-template", str(template), "-o", str(tmp_path / "plots"))
    page = (tmp_path / "plots" / "index.html").read_text(encoding="utf-8")
    assert_offline(page)
    assert "cdn.jsdelivr" not in page and "vegaEmbed" in page
    specs = [json.loads(s) for s in re.findall(r"var spec = (\{.*?\});\n", page, flags=re.S)]
    drawn = {spec["title"]: spec for spec in specs if spec}  # a setting never reported here: an empty spec
    quick_ran = (root / "reports/quick/figures/curves").is_dir()
    # one plot per study with epochs (`tiny`; the TF-IDF study `base` has none) and setting
    assert set(drawn) == {"reports/figures/curves/tiny.json"} | (
        {"reports/quick/figures/curves/tiny.json"} if quick_ran else set())
    for spec in drawn.values():
        assert spec["spec"]["encoding"]["color"]["field"] == "variant"
        assert {d["variant"] for d in spec["data"]["values"]} == {"lstm-l1", "gru-glove-l1"}
    dom = run_chromium(chromium, (tmp_path / "plots" / "index.html").as_uri(), tmp_path, "--window-size=1100,800",
                       "--dump-dom")
    # vega-embed drew each plot (an SVG of marks with its title inside), offline; an empty one is hidden
    assert len(re.findall(r'<(?:svg|canvas)[^>]*class="marks"', dom)) == len(drawn), dom[-3000:]
    for title in drawn:
        assert f"Title text '{title}'" in dom
    if not quick_ran:
        assert '<div id="reports_quick_figures_curves" style="display: none;">' in dom
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["run"]["quick"] is False
