# Report: tables, figures and flat metrics of the selected studies.


rule report:
    """Aggregate every variant's metrics into reports/summary.{md,json} and figures."""
    input:
        unpack(PLAN.inputs("report")),
    output:
        summary=report("reports/summary.md", caption="../report/summary.rst", category="Summary"),
        metrics="reports/summary.json",
        table="reports/variants.parquet",
        figures=report(
            directory("reports/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    params:
        cmd=PLAN.command("report"),
        settings=PLAN.settings("report"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/report.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"


onerror:
    # Some jobs failed (e.g. a dataset could not be downloaded): still show what exists.
    shell(PLAN.partial_report_command())
