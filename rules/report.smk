"""Gather every run, compute statistics and naive baselines, and write the report."""


rule collect:
    input:
        summaries=run_files("summary.json"),
        metrics=run_files("metrics.csv"),
        benchmarks=unit_expand(
            "benchmarks/train/{series}/fold{fold}/{variant}/seed{seed}.tsv",
            variant=VARIANTS,
            seed=SEEDS,
        ),
        job_benchmarks=JOB_BENCHMARKS,
        reference=REFERENCE,
        code=sources("collect"),
    output:
        metrics="results/metrics.csv",
        summary="results/summary.json",
        table=report(
            "results/summary_table.csv",
            category="Results",
            caption="../report/summary_table.rst",
        ),
    log:
        "logs/collect/collect.log",
    conda:
        "../envs/report.yaml"
    params:
        contrasts=canonical_json([c.to_params() for c in EXPERIMENT.contrasts]),
        # A list so that a study without the reference passes no flag at all.
        reference=lambda wildcards, input: (
            ["--reference", *input.reference] if input.reference else []
        ),
        plan=PLAN_FILE,
    shell:
        "python -m workflow_scripts.collect --summaries {input.summaries:q}"
        " --run-metrics {input.metrics:q} --benchmarks {input.benchmarks:q}"
        " --out-metrics {output.metrics:q} --out-summary {output.summary:q}"
        " --out-table {output.table:q} --contrasts-json {params.contrasts:q}"
        " --job-benchmarks {input.job_benchmarks:q} --plan {params.plan:q}"
        " {params.reference:q} > {log:q} 2>&1"


rule report:
    input:
        summary="results/summary.json",
        metrics="results/metrics.csv",
        verification=f"{MODEL_DIR}/verification.json",
        data=unit_expand("data/derived/{series}/fold{fold}"),
        code=sources("report"),
        templates=report_templates(),
        tuning=unit_expand(
            "results/tune/{series}/fold{fold}/{variant}/selected.json", variant=TUNED
        ),
    output:
        html=report(
            "results/report.html", category="Report", caption="../report/report.rst"
        ),
        md="results/report.md",
        curves=report(
            "results/plots/learning_curves.png",
            category="Plots",
            caption="../report/learning_curves.rst",
        ),
        comparison=report(
            "results/plots/final_comparison.png",
            category="Plots",
            caption="../report/final_comparison.rst",
        ),
        compute=report(
            "results/plots/compute.png",
            category="Plots",
            caption="../report/compute.rst",
        ),
        budget=report(
            "results/plots/budget_curve.png",
            category="Plots",
            caption="../report/budget_curve.rst",
        ),
        deltas=report(
            "results/plots/paired_deltas.png",
            category="Plots",
            caption="../report/paired_deltas.rst",
        ),
    log:
        "logs/report/report.log",
    conda:
        "../envs/report.yaml"
    params:
        experiment=canonical_json(EXPERIMENT.to_params()),
        manifests=lambda wildcards, input: [
            f"{path}/manifest.json" for path in input.data
        ],
        plots_dir=lambda wildcards, output: os.path.dirname(output.curves),
        # A list so that a study without tuning passes no flag at all.
        tuning=lambda wildcards, input: (
            ["--tuning", *input.tuning] if input.tuning else []
        ),
    shell:
        "python -m workflow_scripts.report --summary {input.summary:q}"
        " --tidy-metrics {input.metrics:q} --experiment-json {params.experiment:q}"
        " --verification {input.verification:q} --data-manifests {params.manifests:q}"
        " --out-html {output.html:q} --out-md {output.md:q}"
        " --plots-dir {params.plots_dir:q} {params.tuning:q} > {log:q} 2>&1"
