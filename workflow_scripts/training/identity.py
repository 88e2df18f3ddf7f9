"""A run's identity: the hashes summary.json reports and the key that decides a resume.

Also what a run is built from besides its settings: the patch length the data was
prepared for (``patch_len_of``) and how the encoder is loaded (``encoder_loader``).
The entry points (``train``, ``pretrain``) import these from here, never from each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_scripts.config.base import TIMESERIES_INITS
from workflow_scripts.jobs.cli import InputError
from workflow_scripts.jobs.io_utils import config_hash
from workflow_scripts.models.loading import load_encoder

#: Bumped when the resume state's layout changes, so old state is never misread.
RESUME_FORMAT = 1

#: Variant keys that cannot change what training computes: a state saved under one value
#: may be resumed under another (the failure switch is removed to let the rerun finish).
_RESUME_NEUTRAL_KEYS = ("description", "enabled")
_RESUME_NEUTRAL_TRAIN_KEYS = ("inject_failure_at_epoch",)


@dataclass(frozen=True)
class RunIdentity:
    """Hashes reported in summary.json; ``resume_key`` decides whether saved state may be resumed."""

    config_hash: str
    model_hash: str
    data_hash: str
    resume_key: str
    #: the series and fold of the derived data (its manifest): with the seed, the paired unit
    series: str = ""
    fold: int = 0


def patch_len_of(manifest: Mapping[str, Any], where: Path) -> int:
    """The patch length the data was prepared for, from the derived manifest."""
    for section in (manifest, manifest.get("config") or {}, manifest.get("data") or {}):
        if isinstance(section, Mapping) and "patch_len" in section:
            return int(section["patch_len"])
    raise InputError(f"{where / 'manifest.json'}: no 'patch_len' key (top level or under 'config')")


def model_hash(verification: Mapping[str, Any]) -> str:
    """Hash of the verified weights: their paths and sha256s from verification.json."""
    weights = sorted((item["path"], item["sha256"]) for item in verification["weights"])
    return config_hash([{"path": path, "sha256": sha} for path, sha in weights])


def resume_key(params: Mapping[str, Any], seed: int, model: str, data: str) -> str:
    """Key of the resume state: everything that changes what training computes, nothing else."""
    variant = {k: v for k, v in params.items() if k not in _RESUME_NEUTRAL_KEYS}
    variant["train"] = {k: v for k, v in params["train"].items() if k not in _RESUME_NEUTRAL_TRAIN_KEYS}
    return config_hash(
        {"format": RESUME_FORMAT, "variant": variant, "seed": seed, "model_hash": model, "data_hash": data}
    )


def pretrain_resume_key(params: dict[str, Any], hashes: dict[str, str]) -> str:
    """Key of a pretraining's resume state: the settings, weights and data, not the test-only
    failure switch."""
    settings = json.loads(json.dumps(params))
    settings["train"].pop("inject_failure_at_epoch", None)
    return config_hash(
        {
            "format": RESUME_FORMAT,
            "pretrain": settings,
            "model_hash": hashes["model_hash"],
            "data": hashes["data_hash"],
        }
    )


def pretrain_layers_record(init_dir: Path) -> dict[str, Any] | None:
    """The export manifest's record of stage1_layers.safetensors (None when absent)."""
    try:
        manifest = json.loads((Path(init_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{init_dir / 'manifest.json'} is unreadable ({error})") from error
    record = (manifest.get("pretrain") or {}).get("stage1_layers")
    return dict(record) if isinstance(record, dict) else None


def variant_identity(
    params: Mapping[str, Any],
    seed: int,
    verification: Mapping[str, Any],
    data_manifest: Mapping[str, Any],
    timeseries: tuple[Mapping[str, Any], dict[str, Any] | None] | None = None,
) -> RunIdentity:
    """The identity of a variant's run with ``seed``.

    ``timeseries`` (the control arms that start from the pretraining: ``init`` timeseries or
    timeseries_encoder): the pretrained encoder's verification and its stage1 layers'
    record, both part of the model hash.
    """
    weights_hash = model_hash(verification)
    if timeseries is not None:
        init_verification, layers_record = timeseries
        weights_hash = config_hash(
            {
                "text": weights_hash,
                "timeseries": model_hash(init_verification),
                "stage1_layers": (layers_record or {}).get("sha256"),
            }
        )
    data_hash = config_hash(data_manifest)
    return RunIdentity(
        config_hash=config_hash({"variant": params, "seed": seed}),
        model_hash=weights_hash,
        data_hash=data_hash,
        resume_key=resume_key(params, seed, weights_hash, data_hash),
        series=str(data_manifest["dataset"]),
        # a manifest from before data.folds holds the single split: fold 0 of 1
        fold=int(data_manifest.get("fold", 0)),
    )


def encoder_loader(init_dir: Path | None, init_seed_offset: int = 0) -> Any:
    """``load_encoder`` with the control arms' two extensions (docs/controls.md).

    ``init="timeseries"`` and ``"timeseries_encoder"`` load ``init_dir``'s pretrained
    encoder; ``init="random"`` draws the encoder with ``seed + init_seed_offset``.
    Everything else is ``load_encoder``.
    """

    def load(model_dir: Path, init: str, *, seed: int = 0) -> Any:
        if init in TIMESERIES_INITS:
            if init_dir is None:
                raise InputError(f"init: {init} needs --init-dir (the verified pretrain output)")
            return load_encoder(init_dir, "pretrained", seed=seed)
        if init == "random":
            return load_encoder(model_dir, "random", seed=seed + init_seed_offset)
        return load_encoder(model_dir, init, seed=seed)  # type: ignore[arg-type]

    return load
