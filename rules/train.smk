"""Train one variant on one unit (series, fold, seed): a job each, so a failed run reruns alone.

A GPU job (train.device; workflow_scripts/jobs/placement.py) claims gpu=1 and starts through
`python -m workflow_scripts.gpu_slots --claim 1 -- <command>`: on a local machine it
takes a slot of the pool (gpu_slots.jobs_per_gpu per GPU); in a job that a cluster or
cloud executor started, the scheduler's choice stands. A CPU job claims no gpu and runs
with one thread (--claim 0: no slot), so --cores N runs N of them at once.
"""

from workflow_scripts.jobs.gpu_pool import leave_gpus_to_scheduler  # noqa: E402

if workflow.remote_exec:
    leave_gpus_to_scheduler("a Snakemake remote executor")


rule train:
    input:
        data=unit_data,
        every_series=every_series_data,
        verification=variant_verification,
        scale=scale_verification,
        init=timeseries_init,
        rates=tuned_rates,
        code=sources("train"),
    output:
        metrics=f"results/runs/{UNIT}/{{variant}}/seed{{seed}}/metrics.csv",
        summary=f"results/runs/{UNIT}/{{variant}}/seed{{seed}}/summary.json",
        checkpoint=f"results/runs/{UNIT}/{{variant}}/seed{{seed}}/best.safetensors",
        tensorboard=directory(f"logs/tensorboard/{UNIT}/{{variant}}/seed{{seed}}"),
    log:
        f"logs/train/{UNIT}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/train/{UNIT}/{{variant}}/seed{{seed}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: train_threads
    resources:
        gpu=train_gpu,
    params:
        # Canonical (sorted) JSON: only a change to this variant's settings reruns it.
        variant=lambda wildcards: canonical_json(
            EXPERIMENT.variants[wildcards.variant].to_params()
        ),
        model_dir=lambda wildcards, input: os.path.dirname(input.verification),
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        resume_dir=f"results/resume/{UNIT}/{{variant}}/seed{{seed}}",
        # A list so that a variant without init: timeseries passes no flag at all.
        init=lambda wildcards, input: (
            ["--init-dir", os.path.dirname(input.init[0])] if input.init else []
        ),
        # No look-ahead through pretraining: checked before training (docs/models.md).
        lookahead=lookahead_flags,
        scale=scale_flags,
        # A tuned arm trains at the rates its tuning chose on validation (rules/tune.smk).
        rates=lambda wildcards, input: (
            [
                "--rates",
                input.rates[0],
                "--rates-of",
                EXPERIMENT.rate_source(wildcards.variant),
            ]
            if input.rates
            else []
        ),
    shell:
        "OMP_NUM_THREADS={threads} python -m workflow_scripts.gpu_slots --claim {resources.gpu} --"
        " python -m workflow_scripts.train"
        " --variant-json {params.variant:q} --seed {wildcards.seed}"
        " --data-dir {input.data:q} --model-dir {params.model_dir:q}"
        " --out-dir {params.out_dir:q} --tensorboard-dir {output.tensorboard:q}"
        " --resume-dir {params.resume_dir:q} {params.init:q} {params.rates:q}"
        " {params.scale:q} {params.lookahead:q} > {log:q} 2>&1"
