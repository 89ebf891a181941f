# Text stages: vocabulary (train split only) and token-id encoding of every split.


rule vocab:
    """Count tokens of the training split and keep the vocabulary (specials first)."""
    input:
        unpack(PLAN.inputs("vocab")),
    output:
        "data/vocab/{dataset}/{vocab}.json",
    params:
        cmd=PLAN.command("vocab"),
        settings=PLAN.settings("vocab"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/vocab/{dataset}/{vocab}.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"


rule encode:
    """Token ids of every split, untruncated (max_len applies at batching time)."""
    input:
        unpack(PLAN.inputs("encode")),
    output:
        directory("data/encoded/{dataset}/{vocab}"),
    params:
        cmd=PLAN.command("encode"),
        settings=PLAN.settings("encode"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/encode/{dataset}/{vocab}.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"
