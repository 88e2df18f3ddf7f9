"""Small, learnable datasets and configs for the training tests.

``write_synthetic_derived`` writes a data/derived directory in the DESIGN.md format
(through the data stage's own writer) holding two timeframes of smooth periodic
series: a masked span can be inferred from the bars around it and from the slower
timeframe, so a tiny model learns it in a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from workflow_scripts.config.base import TrainConfig, VariantConfig
from workflow_scripts.data.derived import SplitArrays, write_derived

TIMEFRAMES = ("m1", "m4")
FEATURES = ("close", "spread")
FACTOR = 4  # bars of m1 per bar of m4
MEAN = {"m1": [100.0, 2.0], "m4": [100.0, 3.0]}
STD = {"m1": [5.0, 0.5], "m4": [5.0, 0.8]}


def _series(n: int, start: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(start, start + n, dtype=np.float64)
    close = np.sin(2 * np.pi * t / 23.0) + 0.6 * np.sin(2 * np.pi * t / 57.0)
    spread = np.cos(2 * np.pi * t / 31.0)
    noise = 0.05 * rng.standard_normal((n, 2))
    return (np.stack([close, spread], axis=1) + noise).astype(np.float32)


def write_synthetic_derived(
    directory: Path,
    *,
    seq_len: int = 32,
    patch_len: int = 8,
    bars: dict[str, int] | None = None,
    stride: int = 2,
    seed: int = 0,
) -> Path:
    """Write a derived directory with train/val/test splits; returns ``directory``."""
    bars = bars or {"train": 1600, "val": 480, "test": 320}
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    splits: dict[str, SplitArrays] = {}
    offset = 0
    minute = 60_000_000_000
    for split, n_base in bars.items():
        base = _series(n_base, offset, rng)
        slow = base[: n_base // FACTOR * FACTOR].reshape(-1, FACTOR, 2).mean(axis=1)
        first_end = seq_len * FACTOR
        ends_base = np.arange(first_end, n_base + 1, stride, dtype=np.int64)
        ends = np.stack([ends_base, ends_base // FACTOR], axis=1)
        times = {
            "m1": (offset + np.arange(n_base, dtype=np.int64)) * minute,
            "m4": (offset + np.arange(len(slow), dtype=np.int64) * FACTOR) * minute,
        }
        splits[split] = SplitArrays(
            bars={"m1": base, "m4": slow.astype(np.float32)},
            ends=ends,
            end_times=(offset + ends_base) * minute,
            times=times,
        )
        offset += n_base + seq_len * FACTOR
    stats = {"timeframes": list(TIMEFRAMES), "features": list(FEATURES), "mean": MEAN, "std": STD}
    manifest = {
        "format_version": 1,
        "dataset": "synthetic",
        "seq_len": seq_len,
        "timeframes": list(TIMEFRAMES),
        "features": list(FEATURES),
        "windows": {split: len(arrays.ends) for split, arrays in splits.items()},
        "config": {"patch_len": patch_len, "seq_len": seq_len, "name": "synthetic"},
    }
    write_derived(directory, stats, manifest, splits)
    return directory


def variant(name: str = "nofreeze", **overrides: Any) -> VariantConfig:
    """A VariantConfig for tests: small, fast settings; ``overrides`` may hold variant or train keys."""
    own = {k: overrides.pop(k) for k in list(overrides) if k in VariantConfig.__dataclass_fields__}
    train = {
        "epochs": 2,
        "steps_per_epoch": 6,
        "batch_size": 16,
        "eval_batch_size": 64,
        "max_eval_batches": 2,
        "warmup_steps": 2,
        "precision": "fp32",
        "device": "cpu",
        "mask_span": 4,
        "mask_ratio": 0.25,
        "early_stopping_patience": 0,
        **overrides,
    }
    return VariantConfig(name=name, train=TrainConfig(**train), **own)


def verified_model(source: Path, destination: Path) -> Path:
    """Run the real download_model and verify_model entry points: training needs a verified dir."""
    from workflow_scripts import download_model, verify_model

    if download_model.main(["--name-or-path", str(source), "--out-dir", str(destination)]) != 0:
        raise RuntimeError(f"download_model failed for {source}")
    out = destination / "verification.json"
    if verify_model.main(["--model-dir", str(destination), "--out", str(out)]) != 0:
        raise RuntimeError(f"verify_model failed on {destination}")
    return destination


def variant_json(config: VariantConfig) -> str:
    return json.dumps(config.to_params(), sort_keys=True)


class SplitRecorder:
    """A derived dataset that records which splits were read (a test-split read is a leak)."""

    def __init__(self, base: Any) -> None:
        self.base, self.read = base, set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def split(self, name: str) -> Any:
        self.read.add(name)
        return self.base.split(name)
