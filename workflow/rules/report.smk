# Report: tables, figures and flat metrics of the selected studies, per setting: reports/ for
# the full setting, reports/quick/ for the quick one ({mode_dir} = "" or "quick/"); a selection of
# studies (--config studies=[..]) writes below subsets/<names>/ there ({subset_dir}).
# `snakemake --report` opens on the overview (summary.html, category "Comparison"): one row per
# study, the headline; each study's page (studies/<study>.html, category "Studies") has its
# setting, tables, statistics and figures, self-contained; the figures are also listed one by one.


rule report:
    """Aggregate every replica's metrics into summary.{md,json,html} (the overview), a page per
    study (studies/<study>.{md,html}), a table and figures."""
    input:
        job=ancient(lambda w: report_job(w).job_file),
        results=lambda w: list(report_job(w).deps),
        code=lambda w: PLAN.code(report_job(w)),
    params:
        # one line each (Snakemake's report prints newlines as a literal \n)
        settings=lambda w: report_job(w).digest,
        setting=lambda w: report_job(w).settings["mode"],
        studies=lambda w: " ".join(report_job(w).settings["studies"]),
    output:
        comparison=report(
            "reports/{mode_dir}{subset_dir}summary.html",
            caption="../report/comparison.rst",
            category="Comparison",
            labels=lambda w: {"page": "comparison", "setting": report_mode(w.mode_dir)},
        ),
        summary="reports/{mode_dir}{subset_dir}summary.md",
        metrics="reports/{mode_dir}{subset_dir}summary.json",
        dvc_metrics="reports/{mode_dir}{subset_dir}metrics.json",
        table="reports/{mode_dir}{subset_dir}variants.parquet",
        studies=report(
            directory("reports/{mode_dir}{subset_dir}studies"),
            patterns=["{name}.html"],
            caption="../report/studies.rst",
            category="Studies",
            labels={"study": "{name}"},
        ),
        figures=report(
            directory("reports/{mode_dir}{subset_dir}figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/report/{mode_dir}{subset_dir}report.log",
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/report.py {input.job} 2>&1 | tee {log}"
