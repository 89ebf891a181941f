# Embedding stages: parse GloVe once into a cache, then one matrix per (dataset, vocab, source).


rule glove_cache:
    """Parse a GloVe text member once into a fast binary cache shared by every vocabulary."""
    input:
        unpack(PLAN.inputs("glove_cache")),
    output:
        "data/embeddings/cache/{member}.kv",
    params:
        cmd=PLAN.command("glove_cache"),
        settings=PLAN.settings("glove_cache"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/glove_cache/{member}.log",
    resources:
        mem_mb=4000,
    shell:
        "{params.cmd} 2>&1 | tee {log}"


rule embeddings:
    """Embedding matrix in vocabulary order (GloVe lookup or word2vec trained on train)."""
    input:
        unpack(PLAN.inputs("embeddings")),
    output:
        matrix="data/embeddings/{dataset}/{vocab}/{embedding}.npy",
        coverage="data/embeddings/{dataset}/{vocab}/{embedding}.coverage.json",
    params:
        cmd=PLAN.command("embeddings"),
        settings=PLAN.settings("embeddings"),
    conda:
        "../envs/textclf.yaml"
    log:
        "logs/embeddings/{dataset}/{vocab}/{embedding}.log",
    shell:
        "{params.cmd} 2>&1 | tee {log}"
