"""Learning-rate selection per arm, on validation only (workflow_scripts/config/tune.py).

tune_train: one job per series x fold x tuned arm x grid point x tuning seed, with no test
pass; select_lr: each arm's rates on each fold by the lowest mean validation loss at the end of
the tuning budget (every fold is tuned, trained and scored like the single split). The
arm's train jobs read the selection, so a grid change reruns only the tuning runs it adds
or changes, the selections that read them, and their arms' runs.
"""


rule tune_train:
    input:
        data=unit_data,
        every_series=every_series_data,
        verification=variant_verification,
        scale=scale_verification,
        init=timeseries_init,
        code=sources("train"),
    output:
        metrics=f"results/tune/{UNIT}/{{variant}}/{{point}}/seed{{seed}}/metrics.csv",
        summary=f"results/tune/{UNIT}/{{variant}}/{{point}}/seed{{seed}}/summary.json",
        tensorboard=directory(
            f"logs/tensorboard/tune/{UNIT}/{{variant}}/{{point}}/seed{{seed}}"
        ),
    log:
        f"logs/tune/{UNIT}/{{variant}}/{{point}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/tune/{UNIT}/{{variant}}/{{point}}/seed{{seed}}.tsv"
    wildcard_constraints:
        variant="|".join(TUNED) or "^$",
        point=r"x[0-9.e+-]+",
    conda:
        "../envs/torch.yaml"
    threads: train_threads
    resources:
        gpu=train_gpu,
    params:
        # The arm at this point's rates and the tuning budget: a grid edit reruns only its points.
        variant=lambda wildcards: canonical_json(
            tuning_variant(
                EXPERIMENT.variants[wildcards.variant],
                EXPERIMENT.tune,
                wildcards.point,
            ).to_params()
        ),
        model_dir=lambda wildcards, input: os.path.dirname(input.verification),
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        resume_dir=f"results/resume/tune/{UNIT}/{{variant}}/{{point}}/seed{{seed}}",
        init=lambda wildcards, input: (
            ["--init-dir", os.path.dirname(input.init[0])] if input.init else []
        ),
        lookahead=lookahead_flags,
        scale=scale_flags,
    shell:
        "OMP_NUM_THREADS={threads} python -m workflow_scripts.gpu_slots --claim {resources.gpu} --"
        " python -m workflow_scripts.train --validation-only"
        " --variant-json {params.variant:q} --seed {wildcards.seed}"
        " --data-dir {input.data:q} --model-dir {params.model_dir:q}"
        " --out-dir {params.out_dir:q} --tensorboard-dir {output.tensorboard:q}"
        " --resume-dir {params.resume_dir:q} {params.init:q} {params.scale:q}"
        " {params.lookahead:q} > {log:q} 2>&1"


rule select_lr:
    input:
        summaries=lambda wildcards: tune_files(wildcards, "summary.json"),
        code=sources("select_lr"),
    output:
        f"results/tune/{UNIT}/{{variant}}/selected.json",
    log:
        f"logs/tune/{UNIT}/{{variant}}/select_lr.log",
    wildcard_constraints:
        variant="|".join(TUNED) or "^$",
    conda:
        "../envs/torch.yaml"
    params:
        # The arm at its configured rates (multiplier 1) and the tuning budget.
        variant=lambda wildcards: tuning_params(wildcards.variant, "x1"),
    shell:
        "python -m workflow_scripts.select_lr --variant-json {params.variant:q}"
        " --summaries {input.summaries:q} --out {output:q} > {log:q} 2>&1"
