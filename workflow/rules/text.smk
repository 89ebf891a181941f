# Text stages: vocabulary (training split) and token-id encoding of every split.


rule vocab:
    """Count tokens of the training split and keep the vocabulary (specials first)."""
    input:
        job=job_file("vocab"),
        splits=data("vocab"),
        code=code("vocab"),
    params:
        settings=settings_digest("vocab"),
    output:
        "data/vocab/{dataset}/{vocab}.json",
    log:
        "logs/vocab/{dataset}/{vocab}.log",
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/vocab.py {input.job} 2>&1 | tee {log}"


rule encode:
    """Token ids of every split, untruncated (max_len applies at batching time)."""
    input:
        job=job_file("encode"),
        splits_and_vocab=data("encode"),
        code=code("encode"),
    params:
        settings=settings_digest("encode"),
    output:
        directory("data/encoded/{dataset}/{vocab}"),
    log:
        "logs/encode/{dataset}/{vocab}.log",
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/encode.py {input.job} 2>&1 | tee {log}"
