# Report: tables, figures and flat metrics of the selected studies.


rule report:
    """Aggregate every variant's metrics into reports/summary.{md,json} and figures."""
    input:
        unpack(PLAN.inputs("report")),
    output:
        summary="reports/summary.md",
        metrics="reports/summary.json",
        figures=directory("reports/figures"),
    params:
        cmd=PLAN.command("report"),
        settings=PLAN.settings("report"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/report.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"
