"""The job graph both engines run, derived from params.yaml.

`Plan` turns the selected studies into concrete jobs (download → prepare → vocab → encode →
glove cache → embeddings → train → report). Each job has a small JSON *job file*
(``jobs/<stage>/<key>.json``) holding exactly the settings its script reads, in canonical
form. Snakemake takes the job file as an input, DVC as a dependency, and the stage script reads
it instead of params.yaml: a job reruns when what it reads changes, and only then.
`write_job_files` rewrites a file only when its content changes, so an edit that changes no
resolved setting (a preset value every study overrides, a new grid value) reruns nothing old.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textclf import atomic
from textclf.config import REPO_ROOT, ParamsError, embedding_dim, select_studies
from textclf.settings import Variant, canonical_json
from textclf.splits import SPLITS
from textclf.studies import mode_name, resolve_variants

JOBS_DIR = "jobs"
STAGES = ("download", "prepare", "vocab", "encode", "glove_cache", "embeddings", "train", "report")

# Library code each stage runs besides its script (src/textclf/...): an edit reruns the stage.
# Shared plumbing (config, settings, atomic, errors, stage) is deliberately left out.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "download": ("download.py",),
    "prepare": ("prepare.py", "sources"),
    "vocab": ("text",),
    "encode": ("text",),
    "glove_cache": ("embeddings",),
    "embeddings": ("embeddings",),
    "train": ("models", "training", "metrics.py", "splits.py", "text"),
    "baseline": ("baseline.py", "metrics.py", "splits.py", "text"),  # train jobs of tfidf_logreg variants
    "report": ("report", "estimate.py"),
}


def code_family(model_type: str) -> str:
    """Which STAGE_CODE entry trains a model type: the recurrent trainer or the TF-IDF baseline."""
    return "train" if model_type == "rnn" else "baseline"


def code_files(stage: str, family: str, root: Path = REPO_ROOT) -> list[str]:
    """A stage's script and the library files of its family (STAGE_CODE), repo-relative."""
    files = [f"workflow/scripts/{stage}.py"]
    for entry in STAGE_CODE[family]:
        path = root / "src" / "textclf" / entry
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files += [p.relative_to(root).as_posix() for p in found if p.exists()]
    return files


@dataclass(frozen=True)
class Job:
    """One cached target: `job_file` holds its settings; it reads `deps` and writes `outs`."""

    stage: str
    wildcards: tuple[tuple[str, str], ...]
    settings: Mapping[str, Any] = field(compare=False, repr=False)
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(v for _, v in self.wildcards)

    @property
    def job_file(self) -> str:
        return job_file(self.stage, self.key)

    @property
    def digest(self) -> str:
        """sha256 of the job file's content: Snakemake reruns a job when it changes (`params`)."""
        return hashlib.sha256(canonical_json(self.settings).encode()).hexdigest()

    @property
    def dvc_key(self) -> str:
        """A foreach key DVC accepts (letters, digits, - and _), e.g. imdb__smoke__lstm__s1."""
        return "__".join("".join(c if c.isalnum() or c in "-_" else "_" for c in p) for p in self.key) or "all"


def job_file(stage: str, key: Iterable[str]) -> str:
    parts = list(key)
    if stage == "train":  # mode/dataset/study/variant/seed
        parts[-1] = f"seed{parts[-1]}"
    return f"{JOBS_DIR}/{stage}/{'/'.join(parts) or 'all'}.json"


# ------------------------------------------------------------------ paths (written once)
def raw(ref: str) -> str:
    return f"data/raw/{ref}"


def prepared_dir(dataset: str) -> str:
    return f"data/prepared/{dataset}"


def vocab_file(dataset: str, vocab: str) -> str:
    return f"data/vocab/{dataset}/{vocab}.json"


def encoded_dir(dataset: str, vocab: str) -> str:
    return f"data/encoded/{dataset}/{vocab}"


def glove_cache(member: str) -> str:
    return f"data/embeddings/cache/{Path(member).stem}.kv"


def embedding_file(dataset: str, vocab: str, embedding: str) -> str:
    return f"data/embeddings/{dataset}/{vocab}/{embedding}.npy"


def results_dir(variant: Variant) -> str:
    return f"results/{variant.run_id}"


SUBSETS_DIR = "subsets"
SUBSET_NAME_MAX = 80  # characters of a subset report's folder name before it is shortened


def subset_name(studies: Iterable[str]) -> str:
    """The folder of a report over some of the studies: their names joined by '+', sorted (a long
    selection keeps its first names and a digest of all), so one selection always lands in one
    place and never on the report of every study."""
    names = sorted(studies)
    joined = "+".join(names)
    if len(joined) <= SUBSET_NAME_MAX:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
    return f"{'+'.join(names[:2])}+{len(names) - 2}-more-{digest}"


def report_dir(mode: str, subset: Iterable[str] | None = None) -> str:
    """The report of every study goes to reports/ (full setting) or reports/quick/; a report of a
    selection of studies to reports/[quick/]subsets/<names>/: never over another's files."""
    base = "reports" if mode == "full" else f"reports/{mode}"
    return base if subset is None else f"{base}/{SUBSETS_DIR}/{subset_name(subset)}"


TRAIN_OUTPUTS = ("metrics.json", "history.csv", "predictions.parquet")
REPORT_OUTPUTS = ("summary.md", "summary.json", "variants.parquet", "figures")


class Plan:
    """All jobs needed for the selected studies' report(s), indexed by stage and wildcards.

    `modes` lists the run modes planned (Snakemake plans both, so the target path picks one;
    DVC plans run.quick's). `seeds` overrides run.seeds and the studies' seeds.
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        studies: Iterable[str] | str | None = None,
        *,
        quick: bool | None = None,
        modes: Iterable[str] | None = None,
        seeds: Iterable[int] | None = None,
        root: Path = REPO_ROOT,
    ) -> None:
        self.params = params
        self.root = root
        self.quick = params["run"]["quick"] if quick is None else quick
        self.mode = mode_name(self.quick)
        self.studies = select_studies(params, studies)
        self.subset = None if set(self.studies) == set(params["studies"]) else list(self.studies)
        if self.subset is not None:
            # every study's values are checked, not only the selected ones': params.yaml is
            # validated once, as a whole, before any job starts (a typo elsewhere fails now)
            resolve_variants(params, "all", quick=self.quick, seeds=seeds)
        self.modes = list(modes) if modes is not None else [self.mode]
        self._jobs: dict[str, dict[tuple[str, ...], Job]] = {}
        self.variants_by_mode: dict[str, list[Variant]] = {}
        for mode in self.modes:
            variants = resolve_variants(params, self.studies, quick=mode == "quick", seeds=seeds)
            for variant in variants:
                self._add_variant(variant)
            self._add_report(mode, variants)
            self.variants_by_mode[mode] = variants
        self.variants: list[Variant] = self.variants_by_mode.get(self.mode, [])

    # ----------------------------------------------------------------- lookup
    def jobs(self, stage: str | None = None) -> list[Job]:
        stages = [stage] if stage else list(self._jobs)
        return [job for s in stages for job in self._jobs.get(s, {}).values()]

    def job(self, stage: str, wildcards: Mapping[str, str]) -> Job:
        """The job a Snakemake rule instance stands for; a clear error if params has none."""
        table = self._jobs.get(stage, {})
        names = [name for name, _ in next(iter(table.values())).wildcards] if table else list(wildcards)
        key = tuple(str(wildcards[name]) for name in names)
        if key not in table:
            known = ", ".join("/".join(k) for k in list(table)[:10])
            raise ParamsError(
                f"no {stage} job for {'/'.join(key)!r} in the selected studies {self.studies}; known: {known}"
            )
        return table[key]

    def targets(self, mode: str | None = None) -> list[str]:
        return [o for o in self.job("report", {"mode": mode or self.mode}).outs if o.endswith("summary.md")]

    def report_job_at(self, folder: str) -> Job:
        """The report job writing to `folder` (a Snakemake target's directory); a clear error when
        that folder belongs to another selection of studies than this run's."""
        mode = "quick" if folder == "reports/quick" or folder.startswith("reports/quick/") else "full"
        job = self.job("report", {"mode": mode})
        if job.settings["out"] != folder:
            scope = "every study" if self.subset is None else f"the studies {self.subset}"
            raise ParamsError(f"{folder}/ is not the report of this run's selection ({scope}): its report is "
                              f"{job.settings['out']}/summary.md (the default target: leave the target out)")
        return job

    def defer(self, mode: str, runs: Iterable[str]) -> None:
        """Leave these results folders out of the report's dependencies (over the time budget):
        the report still lists them, as not run, with what they would cost."""
        report = self.job("report", {"mode": mode})
        skipped = {f"{r}/{o}" for r in runs for o in TRAIN_OUTPUTS}
        deps = tuple(d for d in report.deps if d not in skipped)
        self._jobs["report"][report.key] = dataclasses.replace(report, deps=deps)

    def code(self, job: Job) -> list[str]:
        """The job's script and library files (repo-relative, sorted): Snakemake inputs. dvc.yaml
        names the same paths (directories there: DVC hashes their content)."""
        family = code_family(job.settings["variant"]["model"]["type"]) if job.stage == "train" else job.stage
        return code_files(job.stage, family, self.root)

    # ------------------------------------------------------------- job files
    def write_job_files(self, root: Path | None = None) -> int:
        """Write every job's settings file whose content changed; return how many were written."""
        root = root or self.root
        written = 0
        for job in self.jobs():
            path = root / job.job_file
            text = canonical_json(job.settings)
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                atomic.write_text(path, text)
                written += 1
        return written

    def dvc_stage(self, job: Job) -> str:
        """The DVC stage name of a job, e.g. train@full__imdb__s__rand__1."""
        return f"{_dvc_family(job)}@{job.dvc_key}"

    def dvc_jobs(self) -> dict[str, Any]:
        """The data dvc.yaml's `foreach` stages iterate over: one entry per job, by stage."""
        out: dict[str, Any] = {}
        for job in self.jobs():
            item = {"job": job.job_file, **_dvc_fields(job)}
            family = _dvc_family(job)
            out.setdefault(family, {})[job.dvc_key] = item
        return {family: out.get(family, {}) for family in DVC_FAMILIES}

    # ------------------------------------------------------------- building
    def _put(self, stage: str, wildcards: dict[str, str], settings: Mapping[str, Any],
             deps: list[str], outs: list[str]) -> Job:
        key = tuple(wildcards.values())
        table = self._jobs.setdefault(stage, {})
        if key not in table:
            table[key] = Job(stage, tuple(wildcards.items()), settings, tuple(dict.fromkeys(deps)), tuple(outs))
        return table[key]

    def _add_download(self, ref: str) -> str:
        group, _, name = ref.partition("/")
        out = raw(ref)
        spec = self.params["downloads"][group][name]
        self._put("download", {"group": group, "file": name},
                  {"file": ref, "url": spec["url"], "sha256": spec["sha256"], "out": out}, [], [out, f"{out}.sha256"])
        return out

    def _add_prepare(self, dataset: str) -> str:
        spec = self.params["datasets"][dataset]
        raws = {role: self._add_download(ref) for role, ref in spec["files"].items()}
        out = prepared_dir(dataset)
        downloads: dict[str, dict[str, Any]] = {}
        for ref in spec["files"].values():  # the pins the raw files are re-verified against
            group, _, name = ref.partition("/")
            downloads.setdefault(group, {})[name] = self.params["downloads"][group][name]
        self._put("prepare", {"dataset": dataset},
                  {"dataset": dataset, "spec": spec, "raw": raws, "downloads": downloads, "out": out},
                  list(raws.values()), [f"{out}/{s}.parquet" for s in SPLITS] + [f"{out}/stats.json"])
        return out

    def _add_vocab(self, dataset: str, vocab: str) -> tuple[str, str]:
        prepared = self._add_prepare(dataset)
        spec = self.params["vocabs"][vocab]
        vfile, enc = vocab_file(dataset, vocab), encoded_dir(dataset, vocab)
        split_files = [f"{prepared}/{s}.parquet" for s in SPLITS]
        self._put("vocab", {"dataset": dataset, "vocab": vocab},
                  {"dataset": dataset, "vocab": vocab, "spec": spec, "prepared": prepared, "out": vfile},
                  split_files, [vfile])
        self._put("encode", {"dataset": dataset, "vocab": vocab},
                  {"dataset": dataset, "vocab": vocab, "spec": spec, "prepared": prepared, "vocab_file": vfile,
                   "out": enc}, [*split_files, vfile], [enc])
        return vfile, enc

    def _add_embedding(self, dataset: str, vocab: str, name: str) -> str:
        vfile, enc = self._add_vocab(dataset, vocab)
        spec = {**self.params["embeddings"][name], "dim": embedding_dim(self.params["embeddings"][name])}
        out = embedding_file(dataset, vocab, name)
        settings: dict[str, Any] = {"dataset": dataset, "vocab": vocab, "vocab_spec": self.params["vocabs"][vocab],
                                    "embedding": name, "spec": spec, "vocab_file": vfile, "encoded": enc,
                                    "cache": None, "out": out}
        deps = [vfile, enc]
        if spec["type"] == "glove":
            archive = self._add_download(spec["archive"])
            cache = glove_cache(spec["member"])
            self._put("glove_cache", {"member": Path(spec["member"]).stem},
                      {"archive": archive, "member": spec["member"], "dim": spec["dim"], "out": cache},
                      [archive], [cache])
            settings["cache"] = cache
            deps.append(cache)
        elif spec["type"] == "word2vec_file":
            deps.append(spec["path"])
        self._put("embeddings", {"dataset": dataset, "vocab": vocab, "embedding": name}, settings,
                  deps, [out, out.removesuffix(".npy") + ".coverage.json"])
        return out

    def _add_variant(self, variant: Variant) -> None:
        prepared = self._add_prepare(variant.dataset)
        inputs: dict[str, str | None] = {"prepared": prepared, "encoded": None, "vocab_file": None, "embedding": None}
        deps = [f"{prepared}/stats.json"]
        if variant.is_neural:
            assert variant.vocab is not None
            inputs["vocab_file"], inputs["encoded"] = self._add_vocab(variant.dataset, variant.vocab)
            deps += [inputs["vocab_file"], inputs["encoded"]]
            if variant.embedding:
                inputs["embedding"] = self._add_embedding(variant.dataset, variant.vocab, variant.embedding)
                deps.append(inputs["embedding"])
        else:
            deps += [f"{prepared}/{s}.parquet" for s in SPLITS]
        out = results_dir(variant)
        self._put("train", {"mode": variant.mode, "dataset": variant.dataset, "study": variant.study,
                            "variant": variant.name, "seed": str(variant.seed)},
                  {"variant": variant.to_dict(), "inputs": inputs, "out": out}, deps,
                  [f"{out}/{o}" for o in TRAIN_OUTPUTS])

    def _add_report(self, mode: str, variants: list[Variant]) -> None:
        runs = [self.job("train", {"mode": v.mode, "dataset": v.dataset, "study": v.study, "variant": v.name,
                                   "seed": str(v.seed)}) for v in variants]
        datasets = sorted({v.dataset for v in variants})
        studies = [s for s in self.studies if any(v.study == s for v in variants)]
        settings = {
            "mode": mode,
            "quick": dict(self.params["quick"]) if mode == "quick" else None,
            "studies": {s: _report_view(self.params["studies"][s]) for s in studies},
            "datasets": {d: {"classes": self.params["datasets"][d]["classes"], "stats": f"{prepared_dir(d)}/stats.json"}
                         for d in datasets},
            "runs": [{"variant": v.to_dict(), "results": results_dir(v)} for v in variants],
            "out": report_dir(mode, self.subset),
        }
        out = report_dir(mode, self.subset)
        self._put("report", {"mode": mode}, settings,
                  [*(o for job in runs for o in job.outs), *(s["stats"] for s in settings["datasets"].values())],
                  [f"{out}/{o}" for o in REPORT_OUTPUTS])


def _report_view(study: Mapping[str, Any]) -> dict[str, Any]:
    """What the report shows of a study definition (not its variants: those come resolved)."""
    view = {k: study[k] for k in ("description", "reference_source", "reference", "known_differences") if k in study}
    view["sweep"] = "search" in study or any("search" in v for v in study["variants"].values())
    return view


# DVC needs a fixed list of dependencies per stage, so jobs whose inputs differ in shape are
# separate foreach families (see dvc.yaml).
DVC_FAMILIES = ("download", "prepare", "vocab", "encode", "glove_cache", "embeddings", "word2vec",
                "word2vec_file", "train", "train_pretrained", "baseline", "report")


def _dvc_family(job: Job) -> str:
    if job.stage == "train":
        variant = job.settings["variant"]
        if variant["model"]["type"] != "rnn":
            return "baseline"
        return "train_pretrained" if job.settings["inputs"]["embedding"] else "train"
    if job.stage == "embeddings" and job.settings["spec"]["type"] != "glove":
        return job.settings["spec"]["type"]
    return job.stage


def _dvc_fields(job: Job) -> dict[str, Any]:
    """The paths a foreach item names (everything else comes from the job file)."""
    s = job.settings
    if job.stage == "download":
        return {"out": job.outs[0]}
    if job.stage == "prepare":
        groups = sorted({path.rsplit("/", 1)[0] for path in s["raw"].values()})
        if len(groups) != 1:
            raise ParamsError(f"datasets.{s['dataset']}.files: under DVC a dataset's files must come from one "
                              f"download group (its stage depends on data/raw/<group>/), got {groups}")
        return {"raw_dir": groups[0], "out": prepared_dir(s["dataset"])}
    if job.stage in ("vocab", "encode"):
        return {"prepared": s["prepared"], "vocab_file": vocab_file(s["dataset"], s["vocab"]),
                "out": job.outs[0]}
    if job.stage == "glove_cache":
        return {"archive": s["archive"], "out": job.outs[0]}
    if job.stage == "embeddings":
        return {"vocab_file": s["vocab_file"], "encoded": s["encoded"], "source": s["cache"] or s["spec"].get("path"),
                "out": job.outs[0], "coverage": job.outs[1]}
    if job.stage == "train":
        inputs = s["inputs"]
        return {"prepared": inputs["prepared"], "vocab_file": inputs["vocab_file"], "encoded": inputs["encoded"],
                "embedding": inputs["embedding"], "out": job.outs[0].rsplit("/", 1)[0]}
    return {"results": f"results/{s['mode']}", "out": s["out"]}
