"""The positive control's pretraining: the model's architecture trained on the Stage-1 task.

Requested only by variants with init: timeseries (through their verified output); see
docs/controls.md. The output directory is verified by verify_model like any checkpoint.
"""


rule pretrain:
    input:
        data=PRETRAIN_DATA_DIR,
        verification=f"{MODEL_DIR}/verification.json",
        code=sources("pretrain"),
    output:
        manifest=f"{TS_MODEL_DIR}/manifest.json",
    log:
        "logs/pretrain/pretrain.log",
    benchmark:
        "benchmarks/pretrain/pretrain.tsv"
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
        resume_dir="results/resume/pretrain",
    shell:
        "OMP_NUM_THREADS={threads} python -m workflow_scripts.gpu_slots --claim {resources.gpu} --"
        " python -m workflow_scripts.pretrain --pretrain-json {params.pretrain:q}"
        " --data-dir {input.data:q} --model-dir {params.model_dir:q}"
        " --out-dir {params.out_dir:q} --resume-dir {params.resume_dir:q} > {log:q} 2>&1"
