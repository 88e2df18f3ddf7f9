"""Does a pretrained language-model encoder help a Stage-1 time-series model learn?

download_model -> verify_model -> preprocess -> [pretrain] -> train (variant x seed)
-> collect (with the ridge reference) -> report.
Run `snakemake` (the default profile limits GPU jobs to one at a time), then open
results/report.html. Every setting is documented in config/schema.yaml.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/model.smk"
include: "rules/data.smk"
include: "rules/pretrain.smk"
include: "rules/tune.smk"
include: "rules/train.smk"
include: "rules/reference.smk"
include: "rules/report.smk"
include: "rules/plan.smk"


rule all:
    default_target: True
    input:
        "results/report.html",
        "results/report.md",
        "results/summary.json",
        "results/metrics.csv",
