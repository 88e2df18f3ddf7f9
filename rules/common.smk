"""Configuration, paths and helpers shared by every rule file."""

import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from workflow_scripts.config.base import TIMESERIES_INITS, ConfigError  # noqa: E402
from workflow_scripts.config.loader import load_experiment  # noqa: E402
from workflow_scripts.config.tune import tuning_variant  # noqa: E402
from workflow_scripts.jobs.deps import local_module_files  # noqa: E402
from workflow_scripts.jobs.io_utils import canonical_json  # noqa: E402
from workflow_scripts.jobs.environment import prepare_job_environment  # noqa: E402
from workflow_scripts.jobs.placement import job_threads, trains_on_gpu  # noqa: E402
from workflow_scripts.models.like_for_like import (
    with_pretraining_contrasts,
)  # noqa: E402
from workflow_scripts.models.lookahead import effective_cutoff  # noqa: E402

try:
    # The like-for-like check and the generated pretraining contrasts (docs/models.md).
    EXPERIMENT, MODEL_NOTICES = with_pretraining_contrasts(load_experiment(config))
except ConfigError as error:
    raise WorkflowError(str(error)) from None
for notice in MODEL_NOTICES:
    print(f"note: {notice}", file=sys.stderr)

# Jobs run `python -m workflow_scripts.<step>` with this checkout's package.
prepare_job_environment(workflow.basedir)
# The GPU slot pool's slots per device, for the jobs' gpu_slots wrapper (an
# STAGE1_JOBS_PER_GPU already in the environment wins: a one-run override).
os.environ.setdefault("STAGE1_JOBS_PER_GPU", str(EXPERIMENT.gpu_slots.jobs_per_gpu))

# The study's own model (text): the pretraining's architecture and the report's verification.
MODEL_DIR = f"resources/models/{EXPERIMENT.model.slug}"
# Every model an enabled arm uses, by directory name: one download_model and verify_model each,
# so a change to one model's revision renames only its directory and reruns only its arms.
MODELS_BY_SLUG = {
    EXPERIMENT.named_model(name).slug: EXPERIMENT.named_model(name)
    for name in EXPERIMENT.used_models
}
VARIANTS = EXPERIMENT.variant_names
SEEDS = list(EXPERIMENT.seeds)
# The paired unit is (series, fold, seed) (docs/report.md, Units): every run, reference and
# tuning lives under its series and fold, so one of them reruns alone.
SERIES = EXPERIMENT.series_names
FOLDS = list(range(EXPERIMENT.folds))
UNIT = "{series}/fold{fold}"


wildcard_constraints:
    variant="|".join(VARIANTS),
    seed=r"\d+",
    model=r"[^/]+",
    dataset=r"[^/]+",
    series="|".join(re.escape(name) for name in SERIES),
    fold=r"\d+",


def derived_dir(series, fold):
    """A fold of a series, preprocessed: data/derived/<series>/fold<f> (rules/data.smk)."""
    return f"data/derived/{series}/fold{fold}"


def unit_data(wildcards):
    """The derived fold a run trains and is scored on."""
    return derived_dir(wildcards.series, wildcards.fold)


def every_other_fold(own):
    """Every series' and fold's derived data but ``own``, as ancient() inputs of a training job.

    A bad file in any series stops the study before any training starts (its preprocess job
    fails and no training job has all its inputs), while ancient() keeps a change to one series'
    data from rerunning the other series' jobs (docs/data.md, Series).
    """
    return [
        ancient(derived_dir(series, fold))
        for series in SERIES
        for fold in FOLDS
        if derived_dir(series, fold) != own
    ]


def every_series_data(wildcards):
    """every_other_fold() of a run's own fold."""
    return every_other_fold(unit_data(wildcards))


def tracked_source(path):
    """A workflow source file as an input, relative to the working directory.

    Not workflow.source_path(): that records the absolute path, so a moved or copied
    checkout would count as a changed set of inputs and rerun every job.
    """
    return os.path.relpath(os.path.join(workflow.basedir, path))


def sources(entry):
    """The package files an entry point imports, as inputs: editing one reruns its consumers."""
    return [
        tracked_source(path) for path in local_module_files(f"workflow_scripts.{entry}")
    ]


def report_templates():
    """The Jinja2 templates, so editing one rebuilds the report."""
    templates = os.path.join("workflow_scripts", "reporting", "templates")
    return [
        tracked_source(os.path.join(templates, name))
        for name in sorted(os.listdir(os.path.join(workflow.basedir, templates)))
        if name.endswith(".j2")
    ]


def unit_expand(pattern, **wildcards):
    """``pattern`` expanded over every series and fold (and ``wildcards``), e.g. a run file."""
    return expand(pattern, series=SERIES, fold=FOLDS, **wildcards)


def run_files(name):
    """One path per (series, fold, variant, seed) run, e.g. run_files("summary.json")."""
    return unit_expand(
        "results/runs/{series}/fold{fold}/{variant}/seed{seed}/{name}",
        variant=VARIANTS,
        seed=SEEDS,
        name=name,
    )


def data_config(dataset):
    """The data settings of a derived dataset: a series', or pretrain.data's."""
    source = EXPERIMENT.pretrain.data
    if source is not None and dataset == source.name and dataset not in SERIES:
        return source
    return EXPERIMENT.series_config(dataset)


def raw_data_input(dataset):
    """The user's data file or directory as an input, so replacing it reruns preprocess."""
    data = data_config(dataset)
    return [] if data.path == "embedded" else [data.path]


def timeseries_model_dir(series):
    """The positive control's pretrained model for ``series`` (docs/controls.md): the model's
    architecture pretrained on the Stage-1 task over the earliest fold's train split of its
    source (pretrain.data, or the series itself), exported beside the text checkpoint.
    """
    return f"{MODEL_DIR}--timeseries--{EXPERIMENT.pretrain_source(series).name}"


def timeseries_init(wildcards):
    """The verified pretrained encoder, as an input of the variants that start from it."""
    if EXPERIMENT.variants[wildcards.variant].init in TIMESERIES_INITS:
        return [f"{timeseries_model_dir(wildcards.series)}/verification.json"]
    return []


def variant_verification(wildcards):
    """The verification of the model this arm starts from (or whose architecture it builds)."""
    return f"resources/models/{EXPERIMENT.variant_model(wildcards.variant).slug}/verification.json"


def scale_verification(wildcards):
    """The study model's verification, for an arm of another model: every arm's patch embeddings
    take the study model's token-embedding RMS (embedding_scale: experiment)."""
    if EXPERIMENT.variant_model(wildcards.variant).slug == EXPERIMENT.model.slug:
        return []
    return [f"{MODEL_DIR}/verification.json"]


def scale_flags(wildcards, input):
    return ["--scale-model-dir", os.path.dirname(input.scale[0])] if input.scale else []


def lookahead_flags(wildcards, input):
    """--pretraining-cutoff and the test data to check it against, for an arm whose model has a
    known data cut-off (models/lookahead.py); none otherwise."""
    name = EXPERIMENT.variants[wildcards.variant].model
    model = EXPERIMENT.named_model(name)
    cutoff = effective_cutoff(model.name_or_path, model.pretraining_cutoff)
    if cutoff is None:
        return []
    dirs = [input.data, *input.every_series]
    return [
        "--pretraining-cutoff",
        cutoff,
        "--cutoff-model",
        name,
        "--test-data-dirs",
        *dirs,
    ]


# The datasets the pretrain rule reads (one pretraining per source, on its fold 0).
PRETRAIN_SOURCES = sorted(
    {EXPERIMENT.pretrain_source(series).name for series in SERIES}
    if EXPERIMENT.needs_pretrain
    else set()
)


def on_gpu(device):
    """Whether a job with train.device = device claims a GPU (workflow_scripts/jobs/placement.py).

    Called when the DAG is built, so a cluster executor (jobs on its nodes) counts as GPU.
    """
    return trains_on_gpu(device, local=workflow.local_exec)


def train_device(wildcards):
    return EXPERIMENT.variants[wildcards.variant].train.device


def train_gpu(wildcards):
    """The train job's gpu resource: 1 for a GPU job, 0 for a CPU job (runs beside others)."""
    return int(on_gpu(train_device(wildcards)))


def train_threads(wildcards):
    """One thread for a CPU job, so --cores N runs N of them; --set-threads overrides."""
    return job_threads(on_gpu(train_device(wildcards)))


# The learned reference (docs/report.md): defined for masked reconstruction of OHLC bars.
# One per series with OHLC bars and fold, each fitted and scored on its own fold.
REFERENCE = [
    f"results/reference/{data.name}/fold{fold}/summary.json"
    for data in EXPERIMENT.series
    if data.kind == "ohlc" and EXPERIMENT.train.task == "reconstruct"
    for fold in FOLDS
]


# Learning-rate selection (workflow_scripts/config/tune.py, docs/training.md): the arms whose rates are tuned.
TUNED = EXPERIMENT.tuned_arms()


def tuning_params(variant, point):
    """Canonical JSON of ``variant`` as a tuning run at grid ``point`` trains it."""
    return canonical_json(
        tuning_variant(EXPERIMENT.variants[variant], EXPERIMENT.tune, point).to_params()
    )


def tuned_rates(wildcards):
    """select_lr's choice on this unit's fold, as an input of a tuned arm's train jobs (an A/A
    arm reads its twin's)."""
    source = EXPERIMENT.rate_source(wildcards.variant)
    return (
        [f"results/tune/{wildcards.series}/fold{wildcards.fold}/{source}/selected.json"]
        if source
        else []
    )


def tune_files(wildcards, name):
    """One path per (grid point, tuning seed) of a tuned arm on one series' fold."""
    return expand(
        "results/tune/{series}/fold{fold}/{variant}/{point}/seed{seed}/{name}",
        series=wildcards.series,
        fold=wildcards.fold,
        variant=wildcards.variant,
        point=EXPERIMENT.tune.points,
        seed=EXPERIMENT.tune.seeds,
        name=name,
    )


# The pretrain and tune_train jobs' benchmark files, which collect sets beside the plan
# (issue 30; the train jobs' own come with the runs). Upstream of the train jobs already,
# so listing them adds no job.
JOB_BENCHMARKS = expand(
    "benchmarks/pretrain/{dataset}.tsv", dataset=PRETRAIN_SOURCES
) + unit_expand(
    "benchmarks/tune/{series}/fold{fold}/{variant}/{point}/seed{seed}.tsv",
    variant=TUNED,
    point=EXPERIMENT.tune.points,
    seed=EXPERIMENT.tune.seeds,
)
# Written by `snakemake plan` (rules/plan.smk) before a study, if at all: collect reads it
# when it exists. Not an input (no rule makes it; a new plan must not rerun finished jobs) and
# passed as a constant, so its presence changes neither the DAG nor collect's params.
PLAN_FILE = "results/plan.json"


def invocation_cores():
    """The invocation's --cores, or None where it set none (a cluster executor needs none, and
    Snakemake then refuses to read workflow.cores)."""
    try:
        return workflow.cores
    except WorkflowError:
        return None
