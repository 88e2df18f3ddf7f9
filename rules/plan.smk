"""The study's cost before it runs: `snakemake plan` (workflow_scripts/plan.py).

No outputs, so it runs whenever it is asked for; it writes results/plan.json and nothing
else (nothing trains). The invocation's --cores and --resources gpu=N are what it plans
for; the estimate goes to the terminal, the measurement's log to logs/plan/plan.log.
"""


rule plan:
    log:
        "logs/plan/plan.log",
    localrule: True
    conda:
        "../envs/torch.yaml"
    params:
        configfiles=[os.path.relpath(f) for f in workflow.overwrite_configfiles],
        cores=lambda wildcards: (
            "" if invocation_cores() is None else f"--cores {invocation_cores()}"
        ),
        gpu=getattr(
            workflow.global_resources.get("gpu"),
            "value",
            workflow.global_resources.get("gpu"),
        )
        or 0,
    shell:
        "python -m workflow_scripts.plan --configfile {params.configfiles:q}"
        " {params.cores} --gpu {params.gpu} 2> {log:q}"
