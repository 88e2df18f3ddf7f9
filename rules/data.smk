"""Turn raw bars into aligned, chronologically split, train-normalised arrays."""


rule preprocess:
    input:
        raw=lambda wildcards: raw_data_input(wildcards.dataset),
        code=sources("preprocess"),
    output:
        directory("data/derived/{dataset}"),
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        data=lambda wildcards: canonical_json(
            data_config(wildcards.dataset).to_params()
        ),
    shell:
        "python -m workflow_scripts.preprocess --data-json {params.data:q}"
        " --out-dir {output:q} > {log:q} 2>&1"
