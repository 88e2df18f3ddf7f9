"""The positive control's pretraining: the model's architecture trained on the Stage-1 task.

Requested only by variants with init: timeseries (through their verified output); see
docs/controls.md. One pretraining per source dataset (pretrain.data, or each series), on the
train split of its earliest fold: that split ends before every fold's validation and test
data, so one pretraining serves every fold without look-ahead (docs/data.md, Folds). The
output directory is verified by verify_model like any checkpoint.
"""


rule pretrain:
    input:
        data="data/derived/{dataset}/fold0",
        every_series=lambda wildcards: every_other_fold(
            f"data/derived/{wildcards.dataset}/fold0"
        ),
        verification=f"{MODEL_DIR}/verification.json",
        code=sources("pretrain"),
    output:
        manifest=f"{MODEL_DIR}--timeseries--{{dataset}}/manifest.json",
    log:
        "logs/pretrain/{dataset}.log",
    benchmark:
        "benchmarks/pretrain/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(re.escape(name) for name in PRETRAIN_SOURCES) or "^$",
    # The study's longest job, and the arms that start from it wait for it: start it before
    # the train jobs that are ready at the same time (the plan schedules it so too).
    priority: 10
    conda:
        "../envs/torch.yaml"
    threads: lambda wildcards: job_threads(on_gpu(EXPERIMENT.pretrain.train.device))
    resources:
        gpu=lambda wildcards: int(on_gpu(EXPERIMENT.pretrain.train.device)),
    params:
        # Canonical JSON: changing a pretrain: setting reruns this job and its consumers only.
        pretrain=canonical_json(EXPERIMENT.pretrain.to_params()),
        model_dir=lambda wildcards, input: os.path.dirname(input.verification),
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
        # Not an output: Snakemake would delete it with a failed job's outputs (docs/training.md, Resume).
        resume_dir="results/resume/pretrain/{dataset}",
    shell:
        "OMP_NUM_THREADS={threads} python -m workflow_scripts.gpu_slots --claim {resources.gpu} --"
        " python -m workflow_scripts.pretrain --pretrain-json {params.pretrain:q}"
        " --data-dir {input.data:q} --model-dir {params.model_dir:q}"
        " --out-dir {params.out_dir:q} --resume-dir {params.resume_dir:q} > {log:q} 2>&1"
