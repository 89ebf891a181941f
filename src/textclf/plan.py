"""The job graph both engines run, derived from params.yaml.

`Plan` turns the selected studies into concrete jobs (download → prepare → vocab → encode →
glove cache → embeddings → train → report). Each job carries the exact command line, its data
and code dependencies, its outputs and the params.yaml keys it reads. The Snakefile's rules
look jobs up by their wildcards; `textclf dvc-yaml` writes the same jobs as dvc.yaml stages.
Nothing about stage wiring is written twice.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textclf.config import REPO_ROOT, ParamsError, get_dotted
from textclf.studies import embedding_name, resolve_variants

SPLITS = ("train", "val", "test")
SCRIPTS = "workflow/scripts"

# Library code each stage runs (besides its script); edits to these files rerun the stage.
# Shared plumbing (config, atomic, errors, stage) is deliberately left out.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "download": ("download.py",),
    "prepare": ("prepare.py", "sources"),
    "vocab": ("text",),
    "encode": ("text",),
    "glove_cache": ("embeddings",),
    "embeddings": ("embeddings",),
    "train": ("models", "training", "metrics.py", "baseline.py"),
    "report": ("report",),
}


@dataclass(frozen=True)
class Job:
    """One cached target: run `cmd` when `deps`, `code` or `params` change; it writes `outs`."""

    stage: str
    wildcards: tuple[tuple[str, str], ...]
    cmd: tuple[str, ...]
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: Mapping[str, Any] = field(compare=False)
    code: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(v for _, v in self.wildcards)

    @property
    def shell(self) -> str:
        return shlex.join(self.cmd)

    @property
    def dvc_name(self) -> str:
        """A DVC stage name (letters, digits, - and _ only), e.g. train__imdb__smoke__lstm."""
        parts = [self.stage, *self.key]
        return "__".join("".join(c if c.isalnum() or c in "-_" else "_" for c in p) for p in parts)


class Plan:
    """All jobs needed for the selected studies' report, indexed by stage and wildcards."""

    def __init__(
        self,
        params: Mapping[str, Any],
        studies: Iterable[str] | str | None = None,
        *,
        quick: bool | None = None,
        params_path: str = "params.yaml",
        root: Path = REPO_ROOT,
    ) -> None:
        self.params = params
        self.params_path = params_path
        self.root = root
        self.quick = params["run"]["quick"] if quick is None else quick
        self.variants = resolve_variants(params, studies, quick=self.quick)
        self.studies = sorted({v["study"] for v in self.variants}, key=list(params["studies"]).index)
        self._jobs: dict[str, dict[tuple[str, ...], Job]] = {}
        self._code_cache: dict[str, tuple[str, ...]] = {}
        for variant in self.variants:
            self._add_variant(variant)
        self._add_report()

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

    def targets(self) -> list[str]:
        return list(self.job("report", {}).outs)

    # ------------------------------------------------------------- paths
    @staticmethod
    def raw(ref: str) -> str:
        return f"data/raw/{ref}"

    @staticmethod
    def prepared(dataset: str) -> list[str]:
        return [f"data/prepared/{dataset}/{s}.parquet" for s in SPLITS] + [f"data/prepared/{dataset}/stats.json"]

    @staticmethod
    def vocab_file(dataset: str, vocab: str) -> str:
        return f"data/vocab/{dataset}/{vocab}.json"

    @staticmethod
    def encoded_dir(dataset: str, vocab: str) -> str:
        return f"data/encoded/{dataset}/{vocab}"

    @staticmethod
    def glove_cache(member: str) -> str:
        return f"data/embeddings/cache/{Path(member).stem}.kv"

    @staticmethod
    def embedding_file(dataset: str, vocab: str, embedding: str) -> str:
        return f"data/embeddings/{dataset}/{vocab}/{embedding}.npy"

    @staticmethod
    def results_dir(variant_id: str) -> str:
        return f"results/{variant_id}"

    # ------------------------------------------------------------- building
    def _script(self, stage: str) -> list[str]:
        return ["python", f"{SCRIPTS}/{stage}.py", "--params", self.params_path]

    def _code(self, stage: str) -> tuple[str, ...]:
        """The stage script and its library files, as repo-relative paths (sorted)."""
        if stage not in self._code_cache:
            files = [f"{SCRIPTS}/{stage}.py"]
            for entry in STAGE_CODE[stage]:
                path = self.root / "src" / "textclf" / entry
                found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
                files += [p.relative_to(self.root).as_posix() for p in found if p.exists()]
            self._code_cache[stage] = tuple(files)
        return self._code_cache[stage]

    def _put(self, stage: str, wildcards: dict[str, str], cmd: list[str], deps: list[str],
             outs: list[str], param_keys: Iterable[str], **extra: Any) -> Job:
        key = tuple(wildcards.values())
        table = self._jobs.setdefault(stage, {})
        if key in table:
            return table[key]
        job = Job(
            stage=stage,
            wildcards=tuple(wildcards.items()),
            cmd=tuple(cmd),
            deps=tuple(dict.fromkeys(deps)),
            outs=tuple(outs),
            params={k: get_dotted(self.params, k) for k in dict.fromkeys(param_keys)},
            code=self._code(stage),
            **extra,
        )
        table[key] = job
        return job

    def _add_download(self, ref: str) -> str:
        group, _, name = ref.partition("/")
        out = self.raw(ref)
        self._put("download", {"group": group, "file": name},
                  [*self._script("download"), "--file", ref, "--out", out],
                  [], [out, f"{out}.sha256"], [f"downloads.{group}"])
        return out

    def _add_prepare(self, dataset: str) -> list[str]:
        spec = self.params["datasets"][dataset]
        raws = [self._add_download(ref) for ref in spec["files"].values()]
        outs = self.prepared(dataset)
        self._put("prepare", {"dataset": dataset},
                  [*self._script("prepare"), "--dataset", dataset, "--raw", "data/raw",
                   "--out", f"data/prepared/{dataset}"],
                  raws, outs, [f"datasets.{dataset}"])
        return outs

    def _add_vocab(self, dataset: str, vocab: str) -> tuple[str, str]:
        prepared = self._add_prepare(dataset)
        vfile = self.vocab_file(dataset, vocab)
        self._put("vocab", {"dataset": dataset, "vocab": vocab},
                  [*self._script("vocab"), "--dataset", dataset, "--vocab", vocab,
                   "--prepared", f"data/prepared/{dataset}", "--out", vfile],
                  prepared, [vfile], [f"vocabs.{vocab}"])
        enc = self.encoded_dir(dataset, vocab)
        self._put("encode", {"dataset": dataset, "vocab": vocab},
                  [*self._script("encode"), "--dataset", dataset, "--vocab", vocab,
                   "--prepared", f"data/prepared/{dataset}", "--vocab-file", vfile, "--out", enc],
                  [*prepared, vfile], [enc], [f"vocabs.{vocab}"])
        return vfile, enc

    def _add_embedding(self, dataset: str, vocab: str, name: str, vfile: str, enc: str) -> str:
        spec = self.params["embeddings"][name]
        out = self.embedding_file(dataset, vocab, name)
        cmd = [*self._script("embeddings"), "--dataset", dataset, "--vocab", vocab,
               "--embedding", name, "--vocab-file", vfile, "--encoded", enc]
        deps = [vfile, enc]
        if spec["type"] == "glove":
            archive = self._add_download(spec["archive"])
            cache = self.glove_cache(spec["member"])
            self._put("glove_cache", {"member": Path(spec["member"]).stem},
                      [*self._script("glove_cache"), "--embedding", name, "--archive", archive,
                       "--out", cache],
                      [archive], [cache], [f"embeddings.{name}"])
            cmd += ["--cache", cache]
            deps.append(cache)
        elif spec["type"] == "word2vec_file":
            deps.append(spec["path"])
        self._put("embeddings", {"dataset": dataset, "vocab": vocab, "embedding": name},
                  [*cmd, "--out", out], deps, [out, out.removesuffix(".npy") + ".coverage.json"],
                  [f"embeddings.{name}"])
        return out

    def _add_variant(self, variant: Mapping[str, Any]) -> None:
        dataset = variant["dataset"]
        prepared = self._add_prepare(dataset)
        out = self.results_dir(variant["id"])
        cmd = [*self._script("train"), "--variant", variant["id"],
               "--quick" if self.quick else "--no-quick",
               "--prepared", f"data/prepared/{dataset}"]
        deps = list(prepared)
        if variant["model"]["type"] == "rnn":
            vfile, enc = self._add_vocab(dataset, variant["vocab"])
            cmd += ["--encoded", enc, "--vocab-file", vfile]
            deps += [vfile, enc]
            emb = embedding_name(variant)
            if emb:
                matrix = self._add_embedding(dataset, variant["vocab"], emb, vfile, enc)
                cmd += ["--embedding", matrix]
                deps.append(matrix)
        study, name = variant["study"], variant["name"]
        keys = [*variant["param_keys"], f"models.{variant['preset']}", "training", "run.quick"]
        if self.quick:
            keys.append("quick")
        self._put("train", {"dataset": dataset, "study": study, "variant": name},
                  [*cmd, "--out", out], deps,
                  [f"{out}/metrics.json", f"{out}/history.csv", f"{out}/predictions.parquet"],
                  keys, plots=(f"{out}/history.csv",))

    def _add_report(self) -> None:
        metrics = [o for job in self.jobs("train") for o in job.outs]
        stats = [f"data/prepared/{d}/stats.json" for d in sorted({v["dataset"] for v in self.variants})]
        self._put("report", {},
                  [*self._script("report"), "--studies", ",".join(self.studies),
                   "--results", "results", "--out", "reports"],
                  [*metrics, *stats],
                  ["reports/summary.md", "reports/summary.json", "reports/variants.parquet", "reports/figures"],
                  [*(f"studies.{s}" for s in self.studies), "run.quick"],
                  metrics=("reports/summary.json",))
