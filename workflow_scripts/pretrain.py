"""Entry point of the ``pretrain`` rule: the positive control's time-series-pretrained encoder.

    python -m workflow_scripts.pretrain --pretrain-json '<canonical PretrainConfig JSON>'
        --data-dir data/derived/{source dataset} --model-dir resources/models/{model}
        --out-dir resources/models/{model}--timeseries [--resume-dir results/resume/pretrain]

Builds the configured model's architecture (its config.json) randomly initialised,
trains it on the Stage-1 task with the same loop as every variant (``training.loop.fit``), over the source
dataset's **train** split only (``SourceDataset``: a first part to train on, a later
purged part to choose the checkpoint on), and exports the kept encoder with
``save_pretrained`` (safetensors) plus manifest.json: the verify_model manifest keys
(``source: pretrain``) and the pretraining's provenance (source data hash, steps, seed,
loss curve). verify_model then checks it like any checkpoint before a variant uses it.
With --resume-dir, every epoch is committed there like a training run's
(``training.resume.ResumeStore``): a pretraining killed with ``kill -9`` resumes from
its last completed epoch and ends with the same weights as an uninterrupted one.
The text checkpoint's verification.json gives the experiment's embedding scale, so the
pretraining sees the inputs the fine-tuning will.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

from transformers.utils import logging as hf_logging

from workflow_scripts.config.pretraining import PretrainConfig
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.source_split import SourceDataset
from workflow_scripts.jobs.io_utils import config_hash
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.models.loading import load_config, require_verified
from workflow_scripts.models.manifest import file_records, write_manifest
from workflow_scripts.training.build import Run, build_run
from workflow_scripts.training.device import limit_threads
from workflow_scripts.training.identity import RunIdentity, model_hash, patch_len_of, pretrain_resume_key
from workflow_scripts.training.loop import fit
from workflow_scripts.training.new_layers import STAGE1_LAYERS_FILE, export_new_layers
from workflow_scripts.training.run_contract import RunSummary

#: Files of the exported directory besides manifest.json and stage1_layers.safetensors
#: (the patch embedding and head, which ``init: timeseries`` runs start from too:
#: ``training.new_layers``).
EXPORTED = ("config.json", "model.safetensors")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.pretrain", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pretrain-json", required=True, help="canonical PretrainConfig JSON (to_params())")
    parser.add_argument("--data-dir", required=True, type=Path, help="the source's preprocess output")
    parser.add_argument(
        "--model-dir", required=True, type=Path, help="verified text checkpoint (architecture)"
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="exported encoder directory")
    parser.add_argument(
        "--resume-dir",
        type=Path,
        default=None,
        help="resume state (not a declared output); without it a killed pretraining starts over",
    )
    return parser.parse_args(argv)


def loss_curve(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per epoch: step, train loss, validation loss (on the purged later part of the source)."""
    return [
        {
            "epoch": int(row["epoch"]),
            "step": int(row["step"]),
            "train_loss": row["train_loss"],
            "val_loss": row["val_loss"],
        }
        for row in history
    ]


def pretrain_identity(
    config: PretrainConfig, verification: dict[str, Any], source: SourceDataset
) -> RunIdentity:
    """The pretraining's hashes and resume key, and the source series and fold it reads."""
    hashes = {
        "config_hash": config_hash({"pretrain": config.to_params()}),
        "model_hash": model_hash(verification),
        "data_hash": source.source_hash(),
    }
    return RunIdentity(
        **hashes,
        resume_key=pretrain_resume_key(config.to_params(), hashes),
        series=str(source.manifest["dataset"]),
        fold=int(source.manifest.get("fold", 0)),
    )


def pretrain(
    params: dict[str, Any],
    data_dir: Path,
    model_dir: Path,
    out_dir: Path,
    log: logging.Logger,
    *,
    device: Any = None,
    resume_dir: Path | None = None,
) -> dict[str, Any]:
    """Train (resuming from ``resume_dir``), export and return the manifest (written last, as
    download_model does)."""
    log.info("%d CPU threads", limit_threads())
    verification = require_verified(model_dir)
    config = PretrainConfig.from_params(params)
    variant = config.variant()
    source = SourceDataset(load_derived(data_dir), config.source_fraction)
    n_train, first_val, n_source = source.cut
    identity = pretrain_identity(config, verification, source)
    log.info(
        "pretrain: %s architecture, seed %d, source %s: %d train samples, purge gap, %d val samples",
        verification.get("architecture"),
        config.seed,
        data_dir,
        n_train,
        n_source - first_val,
    )
    run = build_run(
        variant,
        config.seed,
        source,
        model_dir,
        patch_len=patch_len_of(source.manifest, data_dir),
        device=device,
        experiment_rms=verification.get("token_embedding_rms"),
    )
    out_dir = Path(out_dir)
    summary, history = _train(run, out_dir, resume_dir, identity)
    stage1_layers = export_encoder(run, model_dir, out_dir)
    steps = summary.epochs_completed * variant.train.steps_per_epoch
    provenance = {
        "architecture_from": str(model_dir),
        "architecture_model_hash": identity.model_hash,
        "seed": config.seed,
        "steps": steps,
        "planned_steps": variant.train.epochs * variant.train.steps_per_epoch,
        "best_epoch": summary.best_epoch,
        "source_data_dir": str(data_dir),
        "source_data_hash": identity.data_hash,
        "source_split": {
            "split": "train",
            "train_samples": [0, n_train],
            "val_samples": [first_val, n_source],
            "purge_gap_samples": first_val - n_train,
        },
        "settings": config.to_params(),
        "config_hash": identity.config_hash,
        "loss_curve": loss_curve(history),
        "best_val_loss": summary.best.val_loss,
        "resumed_from_epoch": summary.resumed_from_epoch,
        "stage1_layers": stage1_layers,
    }
    manifest: dict[str, Any] = {
        "name_or_path": f"pretrain:{verification.get('name_or_path')}",
        "requested_revision": None,
        "resolved_revision": None,
        "source": "pretrain",
        "files": file_records(out_dir, EXPORTED),
        "pretrain": provenance,
    }
    write_manifest(out_dir, manifest)
    log.info("pretrain: exported %s after %d steps -> %s", ", ".join(EXPORTED), steps, out_dir)
    return manifest


def _train(
    run: Run, out_dir: Path, resume_dir: Path | None, identity: RunIdentity
) -> tuple[RunSummary, list[dict[str, Any]]]:
    """Empty ``out_dir``, then train in a temporary directory: the run's summary and history."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="pretrain-") as work:
        work_dir = Path(work)
        summary = fit(
            run,
            work_dir / "run",
            work_dir / "tensorboard",
            resume_dir if resume_dir is not None else work_dir / "resume",
            identity,
        )
        return summary, _read_history(work_dir / "run" / "metrics.csv")


def export_encoder(run: Run, model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Save the trained encoder (``save_pretrained``) and the new layers in ``out_dir``; return
    the stage1 layers' record. Files an encoder checkpoint does not hold are removed."""
    encoder = cast(Any, run.model.encoder)  # a transformers PreTrainedModel
    if encoder is None:
        raise RuntimeError("the pretrained model has no encoder to export")
    # Some encoder classes edit their config (T5EncoderModel clears is_encoder_decoder); the
    # export keeps the checkpoint's own flag, so load_encoder picks the same encoder class.
    text_config = load_config(model_dir)
    encoder.config.is_encoder_decoder = bool(getattr(text_config, "is_encoder_decoder", False))
    encoder.save_pretrained(str(out_dir), safe_serialization=True)
    stage1_layers = export_new_layers(run.model, out_dir)
    extra = sorted(p.name for p in out_dir.iterdir() if p.name not in EXPORTED)
    extra = [name for name in extra if name != STAGE1_LAYERS_FILE]
    for name in extra:  # e.g. generation_config.json: not part of an encoder checkpoint
        (out_dir / name).unlink()
    return stage1_layers


def _read_history(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        {
            "epoch": row["epoch"],
            "step": row["step"],
            "train_loss": float(row["train_loss"]),
            "val_loss": float(row["val_loss"]),
        }
        for row in rows
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = setup_logging("workflow_scripts.pretrain")
    hf_logging.disable_progress_bar()
    try:
        params = json.loads(args.pretrain_json)
        pretrain(params, args.data_dir, args.model_dir, args.out_dir, log, resume_dir=args.resume_dir)
        return 0
    except Exception:
        log.exception("pretraining failed")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
