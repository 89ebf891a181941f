# Training: one cached target per replica, results/<mode>/<dataset>/<study>/<variant>/seed<k>/.
# An interrupted run keeps checkpoint.pt there (not an output) and resumes from it.


rule train:
    """Train and evaluate one replica; write metrics, per-epoch history and test predictions."""
    input:
        job=job_file("train"),
        data=data("train"),
        code=code("train"),
    params:
        settings=settings_digest("train"),
    output:
        metrics="results/{mode}/{dataset}/{study}/{variant}/seed{seed}/metrics.json",
        history="results/{mode}/{dataset}/{study}/{variant}/seed{seed}/history.csv",
        predictions="results/{mode}/{dataset}/{study}/{variant}/seed{seed}/predictions.parquet",
    log:
        "logs/train/{mode}/{dataset}/{study}/{variant}/seed{seed}.log",
    # Small recurrent models scale poorly across threads: on a CPU machine, N one-thread jobs
    # beat one N-thread job (Snakemake exports OMP_NUM_THREADS=threads). The SLURM profile
    # raises it (set-threads) for GPU nodes.
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/train.py {input.job} 2>&1 | tee {log}"
