"""Read what a checkpoint holds (names, shapes, dtypes, values) straight from its files.

Verification must judge the file, not a model that transformers has already patched
up: parameter counts come from the tensors actually stored, quantised or integer
weights are recognised by their stored dtype, and non-finite values are searched in
every tensor (decoder included), one tensor at a time so t5-small-sized checkpoints
never need a second copy in memory. ``.bin`` files are only ever opened with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

# safetensors dtype codes -> torch dtype names
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "BOOL": "bool",
}
FULL_PRECISION_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16"})


@dataclass(frozen=True)
class TensorInfo:
    """One stored tensor: its shape, dtype name (torch spelling) and the file holding it."""

    shape: tuple[int, ...]
    dtype: str
    file: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _data_files(weights: list[str]) -> list[str]:
    """The tensor-holding files of a selection (shards, not their index)."""
    return [name for name in weights if not name.endswith(".index.json")]


def _load_bin(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return {str(key): value for key, value in state.items() if isinstance(value, torch.Tensor)}


def read_tensor_infos(model_dir: Path, weights: list[str]) -> dict[str, TensorInfo]:
    """Name -> TensorInfo for every tensor in the weights files (safetensors: headers only)."""
    infos: dict[str, TensorInfo] = {}
    for name in _data_files(weights):
        path = model_dir / name
        if name.endswith(".safetensors"):
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a Mapping
                    view = handle.get_slice(key)
                    dtype = _SAFETENSORS_DTYPES.get(view.get_dtype(), view.get_dtype())
                    infos[key] = TensorInfo(tuple(view.get_shape()), dtype, name)
        else:
            for key, tensor in _load_bin(path).items():
                infos[key] = TensorInfo(tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."), name)
    return infos


def iter_tensors(model_dir: Path, weights: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """Every stored tensor, loaded one at a time."""
    for name in _data_files(weights):
        path = model_dir / name
        if name.endswith(".safetensors"):
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a Mapping
                    yield key, handle.get_tensor(key)
        else:
            yield from _load_bin(path).items()


def non_finite_tensors(model_dir: Path, weights: list[str]) -> list[str]:
    """Names of floating-point tensors holding NaN or +-inf."""
    bad = []
    for key, tensor in iter_tensors(model_dir, weights):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad.append(key)
    return bad


def _tied_groups(model: torch.nn.Module) -> dict[str, str]:
    """Parameter name -> name of the parameter it is tied to (its group's root)."""
    tied = dict(getattr(model, "all_tied_weights_keys", None) or {})
    root: dict[str, str] = {}
    for target in tied:
        source = tied[target]
        seen = {target}
        while source in tied and source not in seen:  # follow chains target -> source -> ...
            seen.add(source)
            source = tied[source]
        root[target] = source
        root.setdefault(source, source)
    return root


def count_stored_parameters(infos: dict[str, TensorInfo], architecture: torch.nn.Module) -> int:
    """Parameters stored in the checkpoint: every tensor except the architecture's buffers
    (e.g. ``position_ids``), with each group of tied weights counted once.

    ``architecture`` is the full model class built from the config (a meta-device
    instance is enough); it only supplies buffer names and tying.
    """
    buffers = {name for name, _ in architecture.named_buffers()}
    groups = _tied_groups(architecture)
    counted_groups: set[str] = set()
    total = 0
    for key, info in infos.items():
        if key in buffers or key.endswith(("position_ids", "rotary_emb.inv_freq")):
            continue
        group = groups.get(key)
        if group is not None:
            if group in counted_groups:
                continue
            counted_groups.add(group)
        total += info.numel
    return total


def parameter_dtypes(infos: dict[str, TensorInfo], architecture: torch.nn.Module) -> dict[str, list[str]]:
    """dtype name -> stored parameter tensors of that dtype (buffers excluded)."""
    buffers = {name for name, _ in architecture.named_buffers()}
    by_dtype: dict[str, list[str]] = {}
    for key, info in infos.items():
        if key not in buffers and not key.endswith(("position_ids", "rotary_emb.inv_freq")):
            by_dtype.setdefault(info.dtype, []).append(key)
    return by_dtype
