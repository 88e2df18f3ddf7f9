"""The study's jobs and the work each one does, counted from the configuration alone.

The jobs are the DAG's (rules/*.smk): the paired unit is (series, fold, seed), so preprocess,
reference, tune_train, select_lr and train run once per series and fold (data/derived/<series>/
fold<f>, results/runs/<series>/fold<f>/...), and the pretraining once per source dataset
(pretrain.data, or each series: ``ExperimentConfig.pretrain_source``).

A *shape* is what a training step's cost depends on (model, window, batch, precision,
device); jobs of one shape share one measurement, whatever their series. A job's work is counted as the loop
(``training.loop.fit``) does it:

* ``steps_training`` / ``steps_frozen``: optimizer steps with the encoder training / frozen:
  ``epochs x steps_per_epoch``, the first ``min(freeze_epochs, epochs)`` epochs frozen
  (early stopping is not foreseen: the counts are those of a run that trains every epoch);
* ``val_passes``: one validation pass per epoch;
* ``budget_passes``: one test pass per epoch whose last step is in ``train.budget_steps()``
  (none for a validation-only tuning run);
* ``test_passes``: the final test pass scores ``train.test_mask_draws`` draws (none for a
  tuning run), each one pass over the test split.

Pure: no torch, no files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workflow_scripts.config.base import TIMESERIES_INITS, DataConfig, VariantConfig
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.tune import tuning_variant

#: Rules whose jobs train (a shape, steps and passes); every other rule is start-up and a fixed cost.
TRAINING_RULES = ("pretrain", "tune_train", "train")
#: The name of a job that verifies a pretraining's export (``pretrained``): the arms that start
#: from that export wait for it.
PRETRAINED_PREFIX = "verify_model timeseries "


def pretrained(dataset: str) -> str:
    """The job verifying the pretraining on ``dataset`` (``verify_model timeseries <dataset>``)."""
    return f"{PRETRAINED_PREFIX}{dataset}"


def is_pretrained(name: str) -> bool:
    return name.startswith(PRETRAINED_PREFIX)


@dataclass(frozen=True)
class Shape:
    """What one training step's cost depends on; ``key`` names it in plan.json."""

    model: str
    seq_len: int
    patch_len: int
    n_timeframes: int
    batch_size: int
    eval_batch_size: int
    precision: str
    device: str
    tokens: str
    task: str
    encoder: str = "checkpoint"

    @property
    def key(self) -> str:
        return (
            f"{self.model} seq{self.seq_len}/{self.patch_len} tf{self.n_timeframes} "
            f"batch{self.batch_size} {self.precision} {self.device} encoder:{self.encoder}"
        )


@dataclass(frozen=True)
class JobWork:
    """One job of the DAG: its rule, the output whose presence means it is done, its work.

    ``dataset``: the derived data a training job reads (a series, or the pretraining's source),
    on which ``measure`` times its shape."""

    rule: str
    name: str
    output: str
    shape: Shape | None = None
    variant: str | None = None
    dataset: str | None = None
    steps_training: int = 0
    steps_frozen: int = 0
    val_passes: int = 0
    budget_passes: int = 0
    test_passes: int = 0
    gpu: bool = False
    after: tuple[str, ...] = ()

    @property
    def steps(self) -> int:
        return self.steps_training + self.steps_frozen


def shape_of(experiment: ExperimentConfig, variant: VariantConfig, data: DataConfig) -> Shape:
    """The shape of ``variant``'s step on ``data`` (a series: its timeframes are its own)."""
    cfg = variant.train
    small = ",".join(f"{k}={v}" for k, v in sorted(variant.small_encoder.items()))
    encoder = f"small({small})" if variant.encoder == "small" else variant.encoder
    return Shape(
        model=experiment.model.slug,
        seq_len=data.seq_len,
        patch_len=data.patch_len,
        n_timeframes=len(data.timeframes),
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        precision=cfg.precision,
        device=cfg.device,
        tokens=cfg.tokens,
        task=cfg.task,
        encoder=encoder,
    )


def run_work(
    experiment: ExperimentConfig,
    variant: VariantConfig,
    data: DataConfig,
    *,
    rule: str,
    name: str,
    output: str,
    with_test: bool,
    on_gpu: bool,
    after: tuple[str, ...] = (),
) -> JobWork:
    """The work of one ``fit`` of ``variant`` on ``data`` (see the module docstring for each count)."""
    cfg = variant.train
    frozen_epochs = min(
        cfg.epochs if variant.freeze_epochs == "all" else int(variant.freeze_epochs), cfg.epochs
    )
    epoch_ends = {epoch * cfg.steps_per_epoch for epoch in range(1, cfg.epochs + 1)}
    budgets = len(epoch_ends & set(cfg.budget_steps())) if with_test else 0
    return JobWork(
        rule=rule,
        name=name,
        output=output,
        shape=shape_of(experiment, variant, data),
        variant=variant.name,
        dataset=data.name,
        steps_training=(cfg.epochs - frozen_epochs) * cfg.steps_per_epoch,
        steps_frozen=frozen_epochs * cfg.steps_per_epoch,
        val_passes=cfg.epochs,
        budget_passes=budgets,
        test_passes=cfg.test_mask_draws if with_test else 0,
        gpu=on_gpu,
        after=after,
    )


def dataset_config(experiment: ExperimentConfig, name: str) -> DataConfig:
    """The data settings of derived dataset ``name``: a series', or pretrain.data's when it is
    not a series (rules/common.smk ``data_config``)."""
    source = experiment.pretrain.data
    if source is not None and name == source.name and name not in experiment.series_names:
        return source
    return experiment.series_config(name)


def pretrain_sources(experiment: ExperimentConfig) -> list[str]:
    """The datasets pretrained on, one pretraining each (rules/common.smk ``PRETRAIN_SOURCES``):
    pretrain.data, or every series; none when no arm starts from the pretraining."""
    if not experiment.needs_pretrain:
        return []
    return sorted({experiment.pretrain_source(series).name for series in experiment.series_names})


def units(experiment: ExperimentConfig) -> list[tuple[str, int]]:
    """Every (series, fold), series in configuration order."""
    return [(series, fold) for series in experiment.series_names for fold in range(experiment.folds)]


def preprocess_name(dataset: str, fold: int) -> str:
    return f"preprocess {dataset} fold{fold}"


def select_name(series: str, fold: int, arm: str) -> str:
    return f"select_lr {series} fold{fold} {arm}"


def every_series_data(experiment: ExperimentConfig) -> tuple[str, ...]:
    """Every series' and fold's preprocess job: each training job waits for them all (a bad file
    anywhere stops the study before any training starts; rules/common.smk ``every_other_fold``)."""
    return tuple(preprocess_name(series, fold) for series, fold in units(experiment))


def model_job(experiment: ExperimentConfig, model: str, rule: str) -> str:
    """The download_model or verify_model job of named ``model``: one per model directory (slug),
    so the study's own is plain ``verify_model`` and another ``verify_model <slug>``."""
    slug = experiment.named_model(model).slug
    return rule if slug == experiment.model.slug else f"{rule} {slug}"


def model_jobs(experiment: ExperimentConfig, variant: VariantConfig) -> tuple[str, ...]:
    """The verifications an arm's jobs wait for: its model's, and the study model's (its embedding
    scale, rules/common.smk ``scale_verification``)."""
    return tuple(dict.fromkeys((model_job(experiment, variant.model, "verify_model"), "verify_model")))


def setup_jobs(experiment: ExperimentConfig) -> list[JobWork]:
    """download_model and verify_model per model an arm uses, and preprocess: each series' folds,
    and fold 0 of a pretraining source that is not a series."""
    jobs: list[JobWork] = []
    for model in experiment.used_models:
        slug, download = experiment.named_model(model).slug, model_job(experiment, model, "download_model")
        if any(job.name == download for job in jobs):
            continue  # two names for one model directory: one job each, as in the DAG
        jobs.append(JobWork("download_model", download, f"resources/models/{slug}/manifest.json"))
        jobs.append(
            JobWork(
                "verify_model",
                model_job(experiment, model, "verify_model"),
                f"resources/models/{slug}/verification.json",
                after=(download,),
            )
        )
    jobs += [
        JobWork("preprocess", preprocess_name(series, fold), f"data/derived/{series}/fold{fold}")
        for series, fold in units(experiment)
    ]
    jobs += [
        JobWork("preprocess", preprocess_name(name, 0), f"data/derived/{name}/fold0")
        for name in pretrain_sources(experiment)
        if name not in experiment.series_names
    ]
    return jobs


def pretrain_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """One pretraining per source dataset (on its fold 0) and the verification of its export."""
    variant = experiment.pretrain.variant()
    every = every_series_data(experiment)
    jobs: list[JobWork] = []
    for source in pretrain_sources(experiment):
        own = preprocess_name(source, 0)
        out_dir = f"resources/models/{experiment.model.slug}--timeseries--{source}"
        jobs.append(
            run_work(
                experiment,
                variant,
                dataset_config(experiment, source),
                rule="pretrain",
                name=f"pretrain {source}",
                output=f"{out_dir}/manifest.json",
                with_test=True,
                on_gpu=on_gpu[variant.train.device],
                after=("verify_model", *every, *(() if own in every else (own,))),
            )
        )
        jobs.append(
            JobWork(
                "verify_model",
                pretrained(source),
                f"{out_dir}/verification.json",
                after=(f"pretrain {source}",),
            )
        )
    return jobs


def tuning_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """tune_train per (series, fold, tuned arm, grid point, tuning seed); select_lr per (series,
    fold, tuned arm). None when tuning is off."""
    every = every_series_data(experiment)
    jobs: list[JobWork] = []
    for series, fold in units(experiment):
        data, unit = experiment.series_config(series), f"{series}/fold{fold}"
        for arm in experiment.tuned_arms():
            variant = experiment.variants[arm]
            setup = (*model_jobs(experiment, variant), *every)
            names = []
            for point in experiment.tune.points:
                tuning = tuning_variant(variant, experiment.tune, point)
                for seed in experiment.tune.seeds:
                    name = f"tune_train {series} fold{fold} {arm} {point} seed{seed}"
                    names.append(name)
                    jobs.append(
                        run_work(
                            experiment,
                            dataclasses.replace(tuning, name=arm),
                            data,
                            rule="tune_train",
                            name=name,
                            output=f"results/tune/{unit}/{arm}/{point}/seed{seed}/summary.json",
                            with_test=False,
                            on_gpu=on_gpu[tuning.train.device],
                            after=setup + _pretrain_for(experiment, variant, series),
                        )
                    )
            selected = f"results/tune/{unit}/{arm}/selected.json"
            jobs.append(JobWork("select_lr", select_name(series, fold, arm), selected, after=tuple(names)))
    return jobs


def train_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """train per (series, fold, arm, seed): after the model's verification, every series' data,
    the arm's pretraining (if it starts from one) and its rate source's selection on its fold."""
    every = every_series_data(experiment)
    jobs: list[JobWork] = []
    for series, fold in units(experiment):
        data = experiment.series_config(series)
        for arm in experiment.variant_names:
            variant = experiment.variants[arm]
            setup = (*model_jobs(experiment, variant), *every)
            source = experiment.rate_source(arm)
            rates = (select_name(series, fold, source),) if source else ()
            after = setup + _pretrain_for(experiment, variant, series) + rates
            for seed in experiment.seeds:
                jobs.append(
                    run_work(
                        experiment,
                        variant,
                        data,
                        rule="train",
                        name=f"train {series} fold{fold} {arm} seed{seed}",
                        output=f"results/runs/{series}/fold{fold}/{arm}/seed{seed}/summary.json",
                        with_test=True,
                        on_gpu=on_gpu[variant.train.device],
                        after=after,
                    )
                )
    return jobs


def _pretrain_for(experiment: ExperimentConfig, variant: VariantConfig, series: str) -> tuple[str, ...]:
    """The verification an arm's jobs on ``series`` wait for: its pretraining source's, if any."""
    if variant.init not in TIMESERIES_INITS:
        return ()
    return (pretrained(experiment.pretrain_source(series).name),)


def training_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """pretrain and its verification (if an arm needs it), tune_train and select_lr (if tuning is
    on), train: in DAG order.

    ``on_gpu`` maps a ``train.device`` value to whether its jobs claim a GPU.
    """
    pretraining = pretrain_jobs(experiment, on_gpu)
    return pretraining + tuning_jobs(experiment, on_gpu) + train_jobs(experiment, on_gpu)


def study_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """Every job of the default target, in DAG order: setup, training, reference (one per OHLC
    series and fold, for masked reconstruction), collect, report."""
    jobs = setup_jobs(experiment) + training_jobs(experiment, on_gpu)
    trains = tuple(job.name for job in jobs if job.rule == "train")
    references = [
        JobWork(
            "reference",
            f"reference {series} fold{fold}",
            f"results/reference/{series}/fold{fold}/summary.json",
            after=(preprocess_name(series, fold),),
        )
        for series, fold in units(experiment)
        if experiment.series_config(series).kind == "ohlc" and experiment.train.task == "reconstruct"
    ]
    jobs += references
    collect_after = trains + tuple(job.name for job in references)
    jobs.append(JobWork("collect", "collect", "results/summary.json", after=collect_after))
    selects = tuple(job.name for job in jobs if job.rule == "select_lr")
    jobs.append(JobWork("report", "report", "results/report.html", after=("collect", *selects)))
    return jobs


def remaining(jobs: list[JobWork], done: set[str]) -> list[JobWork]:
    """The jobs whose output is not in ``done``, their finished dependencies dropped."""
    left = [job for job in jobs if job.output not in done]
    names = {job.name for job in left}
    return [dataclasses.replace(job, after=tuple(a for a in job.after if a in names)) for job in left]
