# Data stages: download (checksummed, mirror-aware) and prepare (train/val/test parquet).


rule download:
    """Fetch one upstream file, verify its sha256, move it into place atomically."""
    input:
        job=job_file("download"),
        code=code("download"),
    params:
        settings=settings_digest("download"),
    output:
        file="data/raw/{group}/{file}",
        checksum="data/raw/{group}/{file}.sha256",
    log:
        "logs/download/{group}/{file}.log",
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/download.py {input.job} 2>&1 | tee {log}"


rule prepare:
    """Parse a dataset's raw files into clean, split, stratified parquet files."""
    input:
        job=job_file("prepare"),
        raw=data("prepare"),
        code=code("prepare"),
    params:
        settings=settings_digest("prepare"),
    output:
        train="data/prepared/{dataset}/train.parquet",
        val="data/prepared/{dataset}/val.parquet",
        test="data/prepared/{dataset}/test.parquet",
        stats="data/prepared/{dataset}/stats.json",
    log:
        "logs/prepare/{dataset}.log",
    resources:
        mem_mb=4000,
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/prepare.py {input.job} 2>&1 | tee {log}"
