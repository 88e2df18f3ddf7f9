"""The learned reference: a ridge regression on each masked bar's visible neighbours.

Fitted on the train split, its penalty chosen on validation, scored once on the test split
with the runs' masks and units (docs/report.md): one per series and fold. Seconds on one CPU
core; no GPU.
"""


rule reference:
    input:
        data=unit_data,
        code=sources("fit_reference"),
    output:
        f"results/reference/{UNIT}/summary.json",
    log:
        f"logs/reference/{UNIT}.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        train=canonical_json(EXPERIMENT.train.to_params()),
    shell:
        "OMP_NUM_THREADS={threads} python -m workflow_scripts.fit_reference"
        " --train-json {params.train:q} --data-dir {input.data:q}"
        " --out {output:q} > {log:q} 2>&1"
