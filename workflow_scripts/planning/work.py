"""The study's jobs and the work each one does, counted from the configuration alone.

A *shape* is what a training step's cost depends on (model, window, batch, precision,
device); jobs of one shape share one measurement. A job's work is counted as the loop
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

from workflow_scripts.config.base import TIMESERIES_INITS, VariantConfig
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.tune import tuning_variant

#: Rules whose jobs train (a shape, steps and passes); every other rule is start-up and a fixed cost.
TRAINING_RULES = ("pretrain", "tune_train", "train")
#: The job that verifies the pretraining's export; the arms that start from it wait for it.
PRETRAINED = "verify_model timeseries"


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
    """One job of the DAG: its rule, the output whose presence means it is done, its work."""

    rule: str
    name: str
    output: str
    shape: Shape | None = None
    variant: str | None = None
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


def shape_of(experiment: ExperimentConfig, variant: VariantConfig) -> Shape:
    data, cfg = experiment.data, variant.train
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
    *,
    rule: str,
    name: str,
    output: str,
    with_test: bool,
    on_gpu: bool,
    after: tuple[str, ...] = (),
) -> JobWork:
    """The work of one ``fit`` of ``variant`` (see the module docstring for each count)."""
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
        shape=shape_of(experiment, variant),
        variant=variant.name,
        steps_training=(cfg.epochs - frozen_epochs) * cfg.steps_per_epoch,
        steps_frozen=frozen_epochs * cfg.steps_per_epoch,
        val_passes=cfg.epochs,
        budget_passes=budgets,
        test_passes=cfg.test_mask_draws if with_test else 0,
        gpu=on_gpu,
        after=after,
    )


def setup_jobs(experiment: ExperimentConfig) -> list[JobWork]:
    """download_model, verify_model and preprocess (the pretraining's source too, if another)."""
    slug = experiment.model.slug
    jobs = [
        JobWork("download_model", "download_model", f"resources/models/{slug}/manifest.json"),
        JobWork(
            "verify_model",
            "verify_model",
            f"resources/models/{slug}/verification.json",
            after=("download_model",),
        ),
        JobWork("preprocess", "preprocess", f"data/derived/{experiment.data.name}"),
    ]
    source = experiment.pretrain.data
    if experiment.needs_pretrain and source is not None and source.name != experiment.data.name:
        jobs.append(JobWork("preprocess", "preprocess pretrain source", f"data/derived/{source.name}"))
    return jobs


def training_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """pretrain and its verification (if an arm needs it), tune_train and select_lr (if tuning is
    on), train: in DAG order.

    ``on_gpu`` maps a ``train.device`` value to whether its jobs claim a GPU.
    """
    setup = ("verify_model", "preprocess")
    jobs: list[JobWork] = []
    slug = experiment.model.slug
    if experiment.needs_pretrain:
        pretrain = experiment.pretrain.variant()
        pre_out = f"resources/models/{slug}--timeseries/manifest.json"
        jobs.append(
            run_work(
                experiment,
                pretrain,
                rule="pretrain",
                name="pretrain",
                output=pre_out,
                with_test=True,
                on_gpu=on_gpu[pretrain.train.device],
                after=setup,
            )
        )
        ts_dir = f"resources/models/{slug}--timeseries"
        jobs.append(JobWork("verify_model", PRETRAINED, f"{ts_dir}/verification.json", after=("pretrain",)))
    tuned = experiment.tuned_arms()
    for arm in tuned:
        variant = experiment.variants[arm]
        names = []
        for point in experiment.tune.points:
            for seed in experiment.tune.seeds:
                tuning = tuning_variant(variant, experiment.tune, point)
                name = f"tune_train {arm} {point} seed{seed}"
                names.append(name)
                jobs.append(
                    run_work(
                        experiment,
                        dataclasses.replace(tuning, name=arm),
                        rule="tune_train",
                        name=name,
                        output=f"results/tune/{arm}/{point}/seed{seed}/summary.json",
                        with_test=False,
                        on_gpu=on_gpu[tuning.train.device],
                        after=setup + _pretrain_for(variant),
                    )
                )
        jobs.append(
            JobWork("select_lr", f"select_lr {arm}", f"results/tune/{arm}/selected.json", after=tuple(names))
        )
    for arm in experiment.variant_names:
        variant = experiment.variants[arm]
        source = experiment.rate_source(arm)
        after = setup + _pretrain_for(variant) + ((f"select_lr {source}",) if source else ())
        for seed in experiment.seeds:
            jobs.append(
                run_work(
                    experiment,
                    variant,
                    rule="train",
                    name=f"train {arm} seed{seed}",
                    output=f"results/runs/{arm}/seed{seed}/summary.json",
                    with_test=True,
                    on_gpu=on_gpu[variant.train.device],
                    after=after,
                )
            )
    return jobs


def _pretrain_for(variant: VariantConfig) -> tuple[str, ...]:
    return (PRETRAINED,) if variant.init in TIMESERIES_INITS else ()


def study_jobs(experiment: ExperimentConfig, on_gpu: dict[str, bool]) -> list[JobWork]:
    """Every job of the default target, in DAG order: setup, training, reference, collect, report."""
    jobs = setup_jobs(experiment) + training_jobs(experiment, on_gpu)
    trains = tuple(job.name for job in jobs if job.rule == "train")
    has_reference = experiment.data.kind == "ohlc" and experiment.train.task == "reconstruct"
    if has_reference:
        jobs.append(
            JobWork("reference", "reference", "results/reference/summary.json", after=("preprocess",))
        )
    collect_after = trains + (("reference",) if has_reference else ())
    jobs.append(JobWork("collect", "collect", "results/summary.json", after=collect_after))
    selects = tuple(job.name for job in jobs if job.rule == "select_lr")
    jobs.append(JobWork("report", "report", "results/report.html", after=("collect", *selects)))
    return jobs


def remaining(jobs: list[JobWork], done: set[str]) -> list[JobWork]:
    """The jobs whose output is not in ``done``, their finished dependencies dropped."""
    left = [job for job in jobs if job.output not in done]
    names = {job.name for job in left}
    return [dataclasses.replace(job, after=tuple(a for a in job.after if a in names)) for job in left]
