"""textclf-pipeline under Snakemake.

Thin by design: params.yaml is the configfile; `textclf.engines.SnakemakePlan` validates it and
builds the job graph (the same one `textclf dvc-yaml` writes for DVC); the rules in
workflow/rules/ only map output paths to those jobs. Select studies or the quick setting with
    snakemake --cores 4 reports/summary.md --config studies=[cells_imdb] quick=true
"""

from textclf.engines import SnakemakePlan

configfile: "params.yaml"


report: "workflow/report/workflow.rst"

PLAN = SnakemakePlan(config)


wildcard_constraints:
    group=r"[^/]+",
    file=r"[^/]+",
    dataset=r"[^/]+",
    vocab=r"[^/]+",
    member=r"[^/]+",
    embedding=r"[^/]+",
    study=r"[^/]+",
    variant=r"[^/]+",


rule all:
    """Default target: the report of the selected studies (run.studies / --config studies=)."""
    input:
        PLAN.plan.targets(),


include: "workflow/rules/data.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/embeddings.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
