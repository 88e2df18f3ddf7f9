"""The pretraining's new layers (patch embedding and head): exported, then loaded by ``init: timeseries``.

The positive control carries the whole pretrained Stage-1 model, not its encoder alone.

A positive control needs an advantage that is known to exist. Measured on the smoke
setting (tiny T5, 2,000 pretraining steps, 100 fine-tuning steps, 4 seeds), an encoder
pretrained on bars but fed by a freshly drawn patch embedding gained almost nothing
(test skill +0.016 on average over random init, one seed of four negative): the encoder's
attention was tuned to the pretraining's patch embedding and positions, and a short
fine-tuning cannot rebuild that interface. So ``init: timeseries`` starts from the
pretraining's new layers too (patch embedding with its position, timeframe and group
tables, and the head): the same architecture and parameter count as every arm, with
every weight pretrained in-domain. The text arms transfer the encoder only, so "text
transfer vs in-domain transfer" compares them with this ceiling (docs/controls.md).

The layers travel as ``stage1_layers.safetensors`` beside the exported encoder, pinned
by sha256 in the export's manifest.json; a changed or truncated file is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from workflow_scripts.jobs.io_utils import sha256_file

STAGE1_LAYERS_FILE = "stage1_layers.safetensors"


class NewLayersError(ValueError):
    """The pretraining's new layers are missing, altered or do not fit this model."""


def new_layer_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable tensors outside the encoder (``embedding.*``, ``head.*``), as CPU copies."""
    return {
        name: tensor.detach().cpu().clone()
        for name, tensor in model.named_parameters()
        if not name.startswith("encoder.")
    }


def export_new_layers(model: nn.Module, out_dir: Path) -> dict[str, Any]:
    """Write ``stage1_layers.safetensors`` into ``out_dir``; return its manifest record."""
    path = Path(out_dir) / STAGE1_LAYERS_FILE
    tensors = new_layer_tensors(model)
    save_file(tensors, str(path), metadata={"format": "pt"})
    return {
        "path": STAGE1_LAYERS_FILE,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "tensors": sorted(tensors),
    }


def load_new_layers(model: nn.Module, init_dir: Path, record: dict[str, Any] | None) -> list[str]:
    """Copy the pretraining's new layers into ``model``; return the names copied.

    ``record`` is the export manifest's ``pretrain.stage1_layers`` entry: the file must
    still have that sha256, and every tensor must exist in ``model`` with the same shape.
    """
    path = Path(init_dir) / STAGE1_LAYERS_FILE
    if record is None or not path.is_file():
        raise NewLayersError(
            f"{path} or its manifest record (manifest.json: pretrain.stage1_layers) is missing; "
            "rerun the pretrain rule"
        )
    if sha256_file(path) != record["sha256"]:
        raise NewLayersError(
            f"{path} no longer has the sha256 recorded in {Path(init_dir) / 'manifest.json'}"
        )
    tensors = load_file(str(path))
    own = dict(model.named_parameters())
    problems = [
        f"{name} {tuple(value.shape)} vs model {tuple(own[name].shape) if name in own else 'absent'}"
        for name, value in tensors.items()
        if name not in own or own[name].shape != value.shape
    ]
    missing = sorted(set(new_layer_tensors(model)) - set(tensors))
    if problems or missing:
        raise NewLayersError(
            f"{path} does not fit this model (pretrained with other data shapes?): "
            + "; ".join(problems + [f"{name} missing" for name in missing])
        )
    with torch.no_grad():
        for name, value in tensors.items():
            own[name].copy_(value)
    return sorted(tensors)
