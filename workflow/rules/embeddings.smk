# Embedding stages: parse GloVe once into a cache, then one matrix per (dataset, vocab, source).


rule glove_cache:
    """Parse a GloVe text member once into a fast binary cache shared by every vocabulary."""
    input:
        job=job_file("glove_cache"),
        archive=data("glove_cache"),
        code=code("glove_cache"),
    params:
        settings=settings_digest("glove_cache"),
    output:
        "data/embeddings/cache/{member}.kv",
    log:
        "logs/glove_cache/{member}.log",
    resources:
        mem_mb=4000,
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/glove_cache.py {input.job} 2>&1 | tee {log}"


rule embeddings:
    """Embedding matrix in vocabulary order (GloVe lookup or word2vec trained on train)."""
    input:
        job=job_file("embeddings"),
        vocab_and_vectors=data("embeddings"),
        code=code("embeddings"),
    params:
        settings=settings_digest("embeddings"),
    output:
        matrix="data/embeddings/{dataset}/{vocab}/{embedding}.npy",
        coverage="data/embeddings/{dataset}/{vocab}/{embedding}.coverage.json",
    log:
        "logs/embeddings/{dataset}/{vocab}/{embedding}.log",
    conda:
        "../envs/textclf.yaml"
    shell:
        "python workflow/scripts/embeddings.py {input.job} 2>&1 | tee {log}"
