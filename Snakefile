"""textclf-pipeline under Snakemake.

`snakemake_plan` reads and validates params.yaml (only studies, quick, seeds and budget come
from --config), expands the studies into jobs (the same plan DVC runs from dvc.yaml), leaves the
runs over the time budget (run.budget) out of the report's inputs, and writes each job's
settings to jobs/<stage>/...json, rewritten only when they change. Every rule runs one script on
its job file:

    snakemake --cores 2                                      # every study: reports/summary.md
    snakemake --cores 2 --config budget=none                 # ... training every run (GPU, cluster)
    snakemake --cores 2 --config studies=[cells_imdb]        # one study: reports/subsets/cells_imdb/
"""

from textclf.engines import (
    EngineLock,
    partial_report_command,
    plan_cores,
    report_mode,
    snakemake_plan,
)


report: "workflow/report/workflow.rst"


RUN = snakemake_plan(config, cores=plan_cores(workflow))
PLAN = RUN.plan
ENGINE_LOCK = EngineLock()  # DVC and Snakemake never run in one workspace at once


wildcard_constraints:
    group=r"[^/]+",
    file=r"[^/]+",
    dataset=r"[^/]+",
    vocab=r"[^/]+",
    member=r"[^/]+",
    embedding=r"[^/]+",
    mode=r"full|quick",
    study=r"[^/]+",
    variant=r"[^/]+",
    seed=r"\d+",
    mode_dir=r"(quick/)?",
    subset_dir=r"(subsets/[^/]+/)?",


include: "workflow/rules/common.smk"


rule all:
    """Default target: the report of the selected studies (--config quick=true: the quick one)."""
    input:
        PLAN.targets(),


include: "workflow/rules/data.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/embeddings.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


# a dry run prints what would train, be reused or left for later, and how long it takes here
if getattr(workflow.output_settings, "dryrun", False):
    print(RUN.summary(save=False))


onstart:
    ENGINE_LOCK.acquire()
    print(RUN.summary(save=True))


onsuccess:
    ENGINE_LOCK.release()


onerror:
    try:  # some jobs failed (e.g. a dataset could not be downloaded): still show what exists
        shell(partial_report_command(PLAN, workflow.dag_settings.targets))
    finally:
        ENGINE_LOCK.release()
