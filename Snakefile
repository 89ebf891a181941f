"""textclf-pipeline under Snakemake.

`snakemake_plan` reads and validates params.yaml (only studies, quick and seeds come from
--config), expands the studies into jobs (the same plan DVC runs from dvc.yaml) and writes
each job's settings to jobs/<stage>/...json, rewritten only when they change. Every rule runs one script on its job file:

    snakemake --cores 4 reports/summary.md                      # full setting
    snakemake --cores 4 reports/quick/summary.md                # quick setting (CPU-friendly)
    snakemake --cores 4 --config studies=[cells_imdb] seeds=[1,2,3]
"""

from textclf.engines import (
    EngineLock,
    partial_report_command,
    plan_cores,
    plan_summary,
    report_mode,
    snakemake_plan,
)


report: "workflow/report/workflow.rst"


PLAN = snakemake_plan(config)
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


onstart:
    ENGINE_LOCK.acquire()
    # What will train, what is cached, and how long it should take on this machine.
    print(plan_summary(PLAN, plan_cores(workflow)))


onsuccess:
    ENGINE_LOCK.release()


onerror:
    try:  # some jobs failed (e.g. a dataset could not be downloaded): still show what exists
        shell(partial_report_command(PLAN, workflow.dag_settings.targets))
    finally:
        ENGINE_LOCK.release()
