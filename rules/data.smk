"""Turn raw bars into aligned, chronologically split, train-normalised arrays: one job per
series and fold (docs/data.md), so a change to one series reruns only its folds' jobs.
"""


rule preprocess:
    input:
        raw=lambda wildcards: raw_data_input(wildcards.dataset),
        code=sources("preprocess"),
    output:
        directory("data/derived/{dataset}/fold{fold}"),
    log:
        "logs/preprocess/{dataset}/fold{fold}.log",
    conda:
        "../envs/data.yaml"
    params:
        data=lambda wildcards: canonical_json(
            data_config(wildcards.dataset).to_params()
        ),
    shell:
        "python -m workflow_scripts.preprocess --data-json {params.data:q}"
        " --fold {wildcards.fold} --out-dir {output:q} > {log:q} 2>&1"
