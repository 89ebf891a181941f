# Report: tables, figures and flat metrics of the selected studies, per setting:
# reports/ for the full setting, reports/quick/ for the quick one ({mode_dir} = "" or "quick/").


rule report:
    """Aggregate every replica's metrics into summary.{md,json}, a table and figures."""
    input:
        job=ancient(lambda w: report_job(w).job_file),
        results=lambda w: list(report_job(w).deps),
        code=lambda w: PLAN.code(report_job(w)),
    params:
        settings=lambda w: report_job(w).digest,
    output:
        summary=report("reports/{mode_dir}summary.md", caption="../report/summary.rst", category="Summary"),
        metrics="reports/{mode_dir}summary.json",
        table="reports/{mode_dir}variants.parquet",
        figures=report(
            directory("reports/{mode_dir}figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/report/{mode_dir}report.log",
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/report.py {input.job} 2>&1 | tee {log}"
