# Training: one cached target per variant (results/<dataset>/<study>/<variant>/).
# An interrupted run keeps results/.../checkpoint.pt (not an output) and resumes from it.


rule train:
    """Train and evaluate one variant; write metrics, per-epoch history and test predictions."""
    input:
        unpack(PLAN.inputs("train")),
    output:
        metrics="results/{dataset}/{study}/{variant}/metrics.json",
        history="results/{dataset}/{study}/{variant}/history.csv",
        predictions="results/{dataset}/{study}/{variant}/predictions.parquet",
    params:
        cmd=PLAN.command("train"),
        settings=PLAN.settings("train"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/train/{dataset}/{study}/{variant}.log",
    # Small recurrent models scale poorly across threads: on a CPU machine, N one-thread jobs
    # beat one N-thread job (Snakemake exports OMP_NUM_THREADS=threads). The SLURM profile
    # raises it (set-threads) for GPU nodes.
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "{params.cmd} 2>&1 | tee {log}"
