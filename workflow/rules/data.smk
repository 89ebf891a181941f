# Data stages: download (checksummed, mirror-aware) and prepare (train/val/test parquet).


rule download:
    """Fetch one upstream file, verify its sha256, move it into place atomically."""
    input:
        unpack(PLAN.inputs("download")),
    output:
        file="data/raw/{group}/{file}",
        checksum="data/raw/{group}/{file}.sha256",
    params:
        cmd=PLAN.command("download"),
        settings=PLAN.settings("download"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/download/{group}/{file}.log",
    retries: 1
    shell:
        "{params.cmd} 2>&1 | tee {log}"


rule prepare:
    """Parse a dataset's raw files into clean, split, stratified parquet files."""
    input:
        unpack(PLAN.inputs("prepare")),
    output:
        train="data/prepared/{dataset}/train.parquet",
        val="data/prepared/{dataset}/val.parquet",
        test="data/prepared/{dataset}/test.parquet",
        stats="data/prepared/{dataset}/stats.json",
    params:
        cmd=PLAN.command("prepare"),
        settings=PLAN.settings("prepare"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/prepare/{dataset}.log",
    resources:
        mem_mb=4000,
    shell:
        "{params.cmd} 2>&1 | tee {log}"
