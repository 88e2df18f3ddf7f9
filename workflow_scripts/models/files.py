"""Which files of a model repository or directory the pipeline needs, and which it refuses.

One rule set serves the Hub download, the local/package copy and verification, so
they can never disagree about what "a loadable checkpoint" is: ``config.json`` plus
full-precision PyTorch weights, safetensors preferred over ``.bin`` exactly as
transformers prefers them. ONNX, TF, Flax, GGUF, tokenizer files and quantised
exports are never fetched; a source holding only those is an error, not a fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_FILE = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"

_SAFETENSORS_SHARD = re.compile(r"model-\d+-of-\d+\.safetensors")
_BIN_SHARD = re.compile(r"pytorch_model-\d+-of-\d+\.bin")

# Formats transformers cannot load into a PyTorch encoder (or only with extra runtimes).
_FOREIGN_SUFFIXES = (
    ".onnx",
    ".onnx_data",
    ".gguf",
    ".tflite",
    ".h5",
    ".msgpack",
    ".ot",
    ".mlmodel",
    ".mlpackage",
    ".xml",
    ".pb",
)
_QUANTISED_MARKERS = ("quant", "int8", "int4", "uint8", "q4", "q8", "gptq", "awq", "bnb", "fp8", "nf4")

LOADABLE_FORMATS_HINT = (
    "the pipeline loads full-precision PyTorch weights: config.json plus model.safetensors "
    "(or sharded model-XXXXX-of-YYYYY.safetensors with model.safetensors.index.json), "
    "or pytorch_model.bin (or its sharded form)"
)


class NoLoadableWeightsError(ValueError):
    """The source has no config.json or no full-precision PyTorch weights (e.g. ONNX-only)."""


def _root_names(names: Iterable[str]) -> set[str]:
    return {name for name in names if "/" not in name}


def describe_foreign_files(names: Iterable[str]) -> list[str]:
    """Weight-like files that are present but unusable (ONNX, TF, Flax, GGUF, quantised)."""
    found = []
    for name in sorted(set(names)):
        lower = name.lower()
        base = lower.rsplit("/", 1)[-1]
        foreign_format = lower.endswith(_FOREIGN_SUFFIXES) or lower.startswith(("onnx/", "openvino/"))
        quantised = base.endswith((".safetensors", ".bin")) and any(m in base for m in _QUANTISED_MARKERS)
        if foreign_format or quantised:
            found.append(name)
    return found


def select_model_files(names: Iterable[str], *, where: str) -> list[str]:
    """Pick ``config.json`` and the weights transformers would load from a listing of file names.

    ``names`` are repository-relative paths ("/"-separated); only root-level files count,
    as transformers only loads those. Shards of an index are selected by the standard
    naming pattern; ``check_index_shards`` later confirms each one the index names exists.
    ``where`` names the source in the error message.
    """
    all_names = set(names)
    root = _root_names(all_names)
    if CONFIG_FILE not in root:
        raise NoLoadableWeightsError(
            f"{where} has no {CONFIG_FILE}; {LOADABLE_FORMATS_HINT}. Files found: {_sample(all_names)}."
        )
    if SAFETENSORS_INDEX in root:
        weights = [SAFETENSORS_INDEX, *sorted(n for n in root if _SAFETENSORS_SHARD.fullmatch(n))]
    elif SAFETENSORS_FILE in root:
        weights = [SAFETENSORS_FILE]
    elif BIN_INDEX in root:
        weights = [BIN_INDEX, *sorted(n for n in root if _BIN_SHARD.fullmatch(n))]
    elif BIN_FILE in root:
        weights = [BIN_FILE]
    else:
        foreign = describe_foreign_files(all_names)
        what = (
            f"holds only ONNX/quantised/other-framework weights ({_sample(foreign)})"
            if foreign
            else "has no weights file"
        )
        raise NoLoadableWeightsError(
            f"{where} {what}; {LOADABLE_FORMATS_HINT}. Files found: {_sample(all_names)}."
        )
    return [CONFIG_FILE, *weights]


def weight_files(selected: Iterable[str]) -> list[str]:
    """The weights part of a selection (everything but config.json), in a stable order."""
    return sorted(name for name in selected if name != CONFIG_FILE)


def index_shards(index_path: Path) -> list[str]:
    """Shard file names listed in a ``*.index.json`` weight map."""
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NoLoadableWeightsError(f"{index_path} is not a valid weight index ({error})") from error
    return sorted(set(weight_map.values()))


def check_index_shards(directory: Path, selected: Iterable[str]) -> None:
    """Raise if a sharded checkpoint's index names a shard that is not in ``directory``."""
    for name in selected:
        if name.endswith(".index.json"):
            missing = [s for s in index_shards(directory / name) if not (directory / s).is_file()]
            if missing:
                raise NoLoadableWeightsError(
                    f"weights file missing: {directory / name} lists shard(s) {', '.join(missing)} "
                    f"that are not in {directory}"
                )


def local_model_files(directory: Path) -> list[str]:
    """``select_model_files`` for a directory on disk, shards taken from the index itself."""
    listing = [
        path.relative_to(directory).as_posix() for path in sorted(directory.rglob("*")) if path.is_file()
    ]
    selected = select_model_files(listing, where=f"model directory {directory}")
    index = next((name for name in selected if name.endswith(".index.json")), None)
    if index is not None:
        shards = index_shards(directory / index)
        selected = [CONFIG_FILE, index, *shards]
        check_index_shards(directory, selected)
    return selected


def _sample(names: Iterable[str], limit: int = 8) -> str:
    ordered = sorted(names)
    if not ordered:
        return "none"
    shown = ", ".join(ordered[:limit])
    return shown if len(ordered) <= limit else f"{shown}, ... ({len(ordered) - limit} more)"
