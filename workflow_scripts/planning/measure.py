"""A few real training steps per shape, on the device the study will use, through bench's loop.

Every shape's step is ``training.bench_hooks.make_step_fn`` (the step ``train_epoch`` runs,
batches built ``feed.steps_ahead`` at a time) on a run that ``training.build.build_run``
builds from the study's own variant, data settings and model architecture (the encoder
randomly initialised: weights do not change a step's time). The data are the study's: fold 0
of a series (or of the pretraining's source) that has the shape, preprocessed into a temporary
directory, so validation and test passes cover the real number of windows. Nothing is written
outside that directory.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from workflow_scripts.config.base import DataConfig, VariantConfig
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.data.derived import DerivedDataset, load_derived
from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.jobs.placement import job_threads
from workflow_scripts.models.known_models import T5_ARCHITECTURES
from workflow_scripts.models.sources import parse_name_or_path
from workflow_scripts.planning.companions import companions
from workflow_scripts.planning.costs import ShapeCost
from workflow_scripts.planning.work import JobWork, dataset_config
from workflow_scripts.training.bench_hooks import make_step_fn, time_loop_steps, time_steps
from workflow_scripts.training.build import Run, build_run
from workflow_scripts.training.device import synchronize
from workflow_scripts.training.feed import steps_ahead
from workflow_scripts.training.identity import patch_len_of

LOG = logging.getLogger(__name__)
#: Seconds of timed steps per measurement, about; a whole batch group when it fits in this.
TIMED_S = 4.0


class MeasureError(RuntimeError):
    """What the plan could not measure on this machine, and what would let it."""


def model_config_dir(experiment: ExperimentConfig, root: Path, work: Path) -> tuple[Path, str | None]:
    """A directory with the study's model config.json (its verified copy, the package or local
    directory, the Hub's config, cached or fetched, or a known architecture) and a note when it
    is not the model's own; ``MeasureError`` when there is none."""
    local = root / "resources" / "models" / experiment.model.slug
    if (local / "config.json").is_file():
        return local, None
    source = parse_name_or_path(experiment.model.name_or_path)
    if source.path is not None:
        return source.path, None
    repo = source.repo_id or experiment.model.name_or_path
    try:
        from huggingface_hub import hf_hub_download  # deliberate: only for a Hub model not yet downloaded

        return Path(hf_hub_download(repo, "config.json", revision=experiment.model.revision)).parent, None
    except Exception as error:
        reason = type(error).__name__  # the Hub's messages run to several sentences
        if repo not in T5_ARCHITECTURES:
            raise MeasureError(
                f"{repo}'s config.json is not available here ({reason}), so no step of it can be "
                f"timed; download the model first (snakemake {local}/verification.json) and plan again"
            ) from None
        from transformers import T5Config

        LOG.info("%s: config.json not available here (%s); its published architecture is used", repo, reason)
        out = work / "model"
        settings: dict[str, Any] = {**T5_ARCHITECTURES[repo], "decoder_start_token_id": 0, "pad_token_id": 0}
        T5Config(**settings, eos_token_id=1).save_pretrained(out)
        note = (
            f"{repo} is not downloaded and the Hub is not reachable ({reason}): its steps were timed "
            f"on its published architecture, randomly initialised (weights do not change a step's time)"
        )
        return out, note


def prepared_data(data: DataConfig, work: Path) -> tuple[DerivedDataset, float]:
    """Fold 0 of dataset ``data`` preprocessed into ``work``, and the seconds it took."""
    started = time.perf_counter()
    out = work / "derived" / data.name / "fold0"
    preprocess(data, out, fold=0)
    return load_derived(out), time.perf_counter() - started


def time_state(run: Run, epoch: int) -> float:
    """Seconds per loop step in ``epoch``'s freezing state: a whole batch group when that takes at
    most ``TIMED_S``, else enough single steps to fill it (the batch share is then negligible)."""
    step = make_step_fn(run, epoch)
    first = time_steps(step, run.device, warmup=1, iters=2)
    if first * steps_ahead(run) <= TIMED_S:
        return time_loop_steps(step, run, iters=1)
    return time_steps(step, run.device, warmup=0, iters=max(2, int(TIMED_S / first)))


def timed(call: Callable[[], object], device: torch.device) -> float:
    started = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - started


def measure_shape(
    variant: VariantConfig,
    dataset: DerivedDataset,
    model_dir: Path,
    jobs: list[JobWork],
    alongside: int = 0,
) -> ShapeCost:
    """One shape's costs (``costs.ShapeCost``), measuring only the freezing states its jobs use,
    while ``alongside`` companion processes train the same step (``companions``)."""
    probe = dataclasses.replace(
        variant,
        init="random",
        freeze_epochs=1,
        init_seed_offset=0,
        train=dataclasses.replace(variant.train, epochs=max(2, variant.train.epochs)),
    )
    torch.set_num_threads(job_threads(any(job.gpu for job in jobs)))
    started = time.perf_counter()
    run = build_run(
        probe,
        0,
        dataset,
        model_dir,
        patch_len=patch_len_of(dataset.manifest, model_dir),
        experiment_rms=1.0,
    )
    build_s = time.perf_counter() - started
    trains = any(job.steps_training for job in jobs)
    with companions(alongside, probe, 2 if trains else 1, dataset.root, model_dir):
        frozen = time_state(run, 1) if any(job.steps_frozen for job in jobs) else 0.0
        training = time_state(run, 2) if trains else 0.0
        run.model.eval()
        val_s = timed(lambda: run.evaluate(run.scoring.val), run.device)
        test_split = run.scoring.test_split()[0]
        test_s = timed(lambda: run.evaluate(test_split), run.device)
    return ShapeCost(
        step_s=training, frozen_step_s=frozen, val_pass_s=val_s, test_pass_s=test_s, build_s=build_s
    )


@dataclasses.dataclass(frozen=True)
class Measured:
    """Every shape's costs, the seconds preprocessing took (one fold, the mean over the datasets
    prepared), and what was not the real thing."""

    shapes: dict[str, ShapeCost]
    preprocess_s: float
    notes: list[str]


def measure_shapes(
    experiment: ExperimentConfig,
    jobs: list[JobWork],
    variants: dict[str, VariantConfig],
    root: Path,
    cores: int = 1,
) -> Measured:
    """Every shape of ``jobs`` measured once, on the data of the first job of that shape (a series,
    or the pretraining's source: jobs of other series with the same shape share the measurement),
    and the seconds preprocessing took; ``MeasureError`` (before any data is prepared) when the
    model's architecture is unknown here.

    A CPU shape is timed beside ``concurrent_cpu_jobs(jobs, cores) - 1`` companions: the other
    CPU training jobs the schedule runs at the same time (one thread each)."""
    with tempfile.TemporaryDirectory(prefix="plan-") as tmp:
        work = Path(tmp)
        model_dir, note = (
            model_config_dir(experiment, root, work)
            if any(job.shape is not None for job in jobs)
            else (work, None)
        )
        prepared: dict[str, tuple[DerivedDataset, float]] = {}

        def data_of(name: str) -> DerivedDataset:
            if name not in prepared:
                prepared[name] = prepared_data(dataset_config(experiment, name), work)
            return prepared[name][0]

        shapes: dict[str, ShapeCost] = {}
        for job in jobs:
            if job.shape is None or job.shape.key in shapes or job.variant is None or job.dataset is None:
                continue
            same = [other for other in jobs if other.shape == job.shape]
            LOG.info("measuring %s on %s (%d jobs)", job.shape.key, job.dataset, len(same))
            alongside = 0 if job.gpu else concurrent_cpu_jobs(jobs, cores) - 1
            dataset = data_of(job.dataset)
            shapes[job.shape.key] = measure_shape(variants[job.variant], dataset, model_dir, same, alongside)
        if not prepared:  # nothing to train: preprocessing is still timed, on the first series
            data_of(experiment.series_names[0])
        preprocess_s = sum(seconds for _, seconds in prepared.values()) / len(prepared)
        return Measured(shapes, preprocess_s, [note] if note else [])


def concurrent_cpu_jobs(jobs: list[JobWork], cores: int) -> int:
    """How many CPU training jobs (one thread each) run at once: ``cores``, at most their number."""
    return max(1, min(cores, sum(1 for job in jobs if job.shape is not None and not job.gpu)))


def import_seconds(entries: Iterable[str]) -> dict[str, float]:
    """Seconds a fresh Python takes to import each entry point (train: with TensorBoard's writer)."""
    found = {}
    for entry in sorted(set(entries)):
        extra = ", torch.utils.tensorboard" if entry in ("train", "pretrain") else ""
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import workflow_scripts.{entry}{extra}"], check=True)
        found[entry] = time.perf_counter() - started
    return found
