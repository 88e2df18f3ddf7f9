"""Fetch the pretrained encoder and prove that it really is the pretrained encoder."""


rule download_model:
    input:
        code=sources("download_model"),
    output:
        manifest="resources/models/{model}/manifest.json",
    log:
        "logs/download_model/{model}.log",
    wildcard_constraints:
        # Only the configured checkpoints: {model}--timeseries is the pretrain rule's.
        model="|".join(re.escape(slug) for slug in MODELS_BY_SLUG),
    conda:
        "../envs/torch.yaml"
    params:
        name_or_path=lambda wildcards: MODELS_BY_SLUG[wildcards.model].name_or_path,
        # A list so that an unset revision passes no flag at all.
        revision=lambda wildcards: (
            ["--revision", MODELS_BY_SLUG[wildcards.model].revision]
            if MODELS_BY_SLUG[wildcards.model].revision
            else []
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    shell:
        "python -m workflow_scripts.download_model --name-or-path {params.name_or_path:q}"
        " {params.revision:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule verify_model:
    input:
        manifest="resources/models/{model}/manifest.json",
        code=sources("verify_model"),
    output:
        "resources/models/{model}/verification.json",
    log:
        "logs/verify_model/{model}.log",
    conda:
        "../envs/torch.yaml"
    params:
        model_dir=lambda wildcards, input: os.path.dirname(input.manifest),
    shell:
        "python -m workflow_scripts.verify_model --model-dir {params.model_dir:q}"
        " --out {output:q} > {log:q} 2>&1"
