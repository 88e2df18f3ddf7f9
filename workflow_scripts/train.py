"""Entry point of the ``train`` rule: one variant, one seed.

    python -m workflow_scripts.train --variant-json '<canonical VariantConfig JSON>' --seed S
        --data-dir data/derived/{dataset} --model-dir resources/models/{model}
        --out-dir results/runs/{variant}/seed{seed} --tensorboard-dir logs/tensorboard/{variant}/seed{seed}
        --resume-dir results/resume/{variant}/seed{seed}
        [--init-dir resources/models/{model}--timeseries]
        [--scale-model-dir resources/models/{text model}]
        [--pretraining-cutoff DATE --cutoff-model NAME --test-data-dirs DIR ...]

--pretraining-cutoff (an arm whose model states or implies a data cut-off, docs/models.md) is
checked against every series' and fold's test period before anything else: a model pretrained on
data up to a test period is refused (models/lookahead.py).

--scale-model-dir (an arm whose model is not the study's own) is the study's verified model: its
token-embedding RMS scales every arm's patch embeddings (embedding_scale: experiment).

--init-dir (variants with init: timeseries or timeseries_encoder, the positive controls)
is the verified time-series-pretrained encoder the variant starts from: timeseries takes
its patch embedding and head too, timeseries_encoder keeps the seed's fresh ones (the
very tensors baseline starts from); --model-dir stays the text
checkpoint, whose verification.json gives every arm the experiment's embedding scale.
A variant's init_seed_offset moves its random encoder's seed to seed + offset.

The model directory must have passed verification (its weights still matching
verification.json) before anything is loaded. Outputs: metrics.csv, summary.json and
best.safetensors in --out-dir, TensorBoard events in --tensorboard-dir; resume state in
--resume-dir, removed once the run has completed.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from transformers.utils import logging as hf_logging

from workflow_scripts.config.base import TIMESERIES_INITS, VariantConfig
from workflow_scripts.config.tune import RATE_KEYS, with_rates
from workflow_scripts.data.derived import DerivedFormatError, load_derived
from workflow_scripts.jobs.cli import InputError
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.models.loading import ModelLoadError, ModelNotVerifiedError, require_verified
from workflow_scripts.models.lookahead import LookAheadError, refuse_lookahead
from workflow_scripts.training.batches import DataShapeError
from workflow_scripts.training.build import Run, build_run
from workflow_scripts.training.device import DeviceError, limit_threads
from workflow_scripts.training.identity import (
    RunIdentity,
    encoder_loader,
    patch_len_of,
    pretrain_layers_record,
    variant_identity,
)
from workflow_scripts.training.loop import InjectedFailure, NonFiniteError, fit
from workflow_scripts.training.new_layers import NewLayersError, load_new_layers
from workflow_scripts.training.precision import PrecisionError
from workflow_scripts.training.run_contract import RunSummary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--variant-json", required=True, help="canonical VariantConfig JSON (to_params())")
    parser.add_argument("--seed", required=True, type=int, help="random seed of this run")
    parser.add_argument("--data-dir", required=True, type=Path, help="preprocess output directory")
    parser.add_argument("--model-dir", required=True, type=Path, help="verified model directory")
    parser.add_argument(
        "--out-dir", required=True, type=Path, help="metrics.csv, summary.json, best.safetensors"
    )
    parser.add_argument("--tensorboard-dir", required=True, type=Path, help="TensorBoard event directory")
    parser.add_argument("--resume-dir", required=True, type=Path, help="resume state (not a declared output)")
    parser.add_argument(
        "--init-dir",
        type=Path,
        default=None,
        help="verified time-series-pretrained encoder (init: timeseries or timeseries_encoder)",
    )
    parser.add_argument(
        "--rates",
        type=Path,
        default=None,
        help="select_lr's selected.json: train at the rates the arm's tuning chose",
    )
    parser.add_argument(
        "--rates-of",
        default=None,
        help="the arm --rates was selected for, when not this one (an A/A arm: its twin)",
    )
    parser.add_argument(
        "--scale-model-dir",
        type=Path,
        default=None,
        help="verified study model whose token-embedding RMS is the experiment's embedding scale "
        "(an arm of another model; default: --model-dir)",
    )
    parser.add_argument(
        "--pretraining-cutoff",
        default=None,
        help="the last day of the model's pretraining data: refused if a --test-data-dirs test period "
        "starts by then",
    )
    parser.add_argument(
        "--cutoff-model", default=None, help="the model --pretraining-cutoff is for (messages)"
    )
    parser.add_argument(
        "--test-data-dirs",
        nargs="*",
        type=Path,
        default=[],
        help="every series' and fold's derived data, whose test periods the cut-off must precede",
    )
    parser.add_argument(
        "--validation-only",
        action="store_true",
        help="a tuning run: no test pass (the test split is never read), no weights written",
    )
    return parser.parse_args(argv)


def tuned_rates(path: Path, variant_name: str) -> dict[str, float]:
    """The learning rates select_lr chose for ``variant_name`` (its selected.json)."""
    try:
        selected = json.loads(Path(path).read_text(encoding="utf-8"))
        if selected["variant"] != variant_name:
            raise InputError(
                f"--rates {path} is the selection of {selected['variant']!r}, not {variant_name!r}"
            )
        return {key: float(selected[key]) for key in RATE_KEYS}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"--rates {path} is not a readable selected.json ({error})") from error


def run(args: argparse.Namespace, log: logging.Logger) -> RunSummary:
    at_start, identity = prepare(args, log)
    return fit(
        at_start,
        args.out_dir,
        args.tensorboard_dir,
        args.resume_dir,
        identity,
        with_test=not args.validation_only,
    )


def load_variant(args: argparse.Namespace, log: logging.Logger) -> VariantConfig:
    """The variant of ``--variant-json``, at the rates its tuning chose when ``--rates`` is given."""
    try:
        variant = VariantConfig.from_params(json.loads(args.variant_json))
    except (ValueError, TypeError, KeyError) as error:
        raise InputError(f"--variant-json is not a valid VariantConfig: {error}") from error
    if args.rates is not None:
        variant = with_rates(variant, tuned_rates(args.rates, args.rates_of or variant.name))
        log.info(
            "rates chosen by tuning (%s): learning_rate %g, encoder_learning_rate %g",
            args.rates,
            variant.train.learning_rate,
            variant.train.encoder_learning_rate,
        )
    return variant


def prepare(args: argparse.Namespace, log: logging.Logger) -> tuple[Run, RunIdentity]:
    """The run at step 0 (every weight in place) and its identity hashes."""
    log.info("%d CPU threads", limit_threads())
    if args.pretraining_cutoff is not None:
        # Before anything is loaded: a model that saw a test period must not train at all.
        refuse_lookahead(
            args.cutoff_model or str(args.model_dir), args.pretraining_cutoff, args.test_data_dirs
        )
    verification = require_verified(args.model_dir)
    # Every arm sees inputs at the study model's scale (embedding_scale: experiment), so an arm of
    # another model differs from the text arms in its encoder weights alone (docs/models.md).
    scale_verification = require_verified(args.scale_model_dir) if args.scale_model_dir else verification
    init_verification = require_verified(args.init_dir) if args.init_dir is not None else None
    hf_logging.disable_progress_bar()  # the job log gets the training progress bar only
    variant = load_variant(args, log)
    params = variant.to_params()
    if variant.init in TIMESERIES_INITS and init_verification is None:
        raise InputError(f"variant {variant.name} has init: {variant.init} but no --init-dir was given")
    dataset = load_derived(args.data_dir)
    layers_record = None
    timeseries = None
    if variant.init in TIMESERIES_INITS and init_verification is not None:
        # timeseries_encoder reads no stage1 layers, so their hash is not part of its identity.
        if variant.init == "timeseries":
            layers_record = pretrain_layers_record(args.init_dir)
        timeseries = (init_verification, layers_record)
    identity = variant_identity(params, args.seed, verification, dataset.manifest, timeseries)
    log.info(
        "train %s seed %d: config %s, model %s, data %s",
        variant.name,
        args.seed,
        identity.config_hash,
        identity.model_hash,
        identity.data_hash,
    )
    at_start = build_run(
        variant,
        args.seed,
        dataset,
        args.model_dir,
        patch_len=patch_len_of(dataset.manifest, args.data_dir),
        load_encoder=encoder_loader(args.init_dir, variant.init_seed_offset),
        experiment_rms=scale_verification.get("token_embedding_rms"),
    )
    if variant.init == "timeseries":
        names = load_new_layers(at_start.model, args.init_dir, layers_record)
        log.info("init timeseries: %d new-layer tensors from the pretraining (%s)", len(names), args.init_dir)
    return at_start, identity


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = setup_logging("workflow_scripts.train")
    known = (
        InputError,
        DerivedFormatError,
        ModelLoadError,
        ModelNotVerifiedError,
        DataShapeError,
        DeviceError,
        PrecisionError,
        NewLayersError,
        NonFiniteError,
        InjectedFailure,
        LookAheadError,
    )
    try:
        run(args, log)
    except known as error:
        log.error("training failed: %s", error)
        return 1
    except Exception:
        log.exception("training failed with an unexpected error")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
