"""The derived data format (data/derived/{dataset}/) and its reader.

Per split, the bars of each timeframe are stored once (``{split}_{tf}.npy``, normalised
float32 [n_bars, F]) with an index of window ends (``{split}_ends.npy``) instead of every
window materialised: with 3M one-minute samples of 128 bars each, materialised windows
would be ~100x larger. Each split holds only bars from its own time range, so the train
files cannot change when anything after the train split changes. Arrays are memory-mapped
on load, so opening a dataset costs nothing until windows are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from workflow_scripts.data.windows import SPLITS
from workflow_scripts.jobs.io_utils import atomic_write_json

FORMAT_VERSION = 1
STATS_FILE = "stats.json"
MANIFEST_FILE = "manifest.json"


class DerivedFormatError(ValueError):
    """A derived data directory is missing files or has arrays of the wrong shape."""


@dataclass(frozen=True)
class SplitArrays:
    """One split: bars per timeframe, window end indices, end instants, bar open times.

    Sample i's window in timeframe j is ``bars[tf_j][ends[i, j] - seq_len : ends[i, j]]``.
    """

    bars: dict[str, np.ndarray]
    ends: np.ndarray
    end_times: np.ndarray
    times: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.end_times)

    def window(self, index: int, seq_len: int) -> dict[str, np.ndarray]:
        """Sample ``index``'s windows, ``{tf: [seq_len, F]}``, in timeframe order."""
        return {
            tf: bars[int(end) - seq_len : int(end)]
            for (tf, bars), end in zip(self.bars.items(), self.ends[index], strict=True)
        }


def array_name(split: str, part: str) -> str:
    """File name of one array: ``train_m5.npy``, ``val_ends.npy``, ``test_times_h1.npy``."""
    return f"{split}_{part}.npy"


def write_derived(
    directory: Path,
    stats: Mapping[str, Any],
    manifest: Mapping[str, Any],
    splits: Mapping[str, SplitArrays],
) -> None:
    """Write every file of the format into ``directory`` (the caller makes it atomic)."""
    for split in SPLITS:
        arrays = splits[split]
        for tf, bars in arrays.bars.items():
            np.save(directory / array_name(split, tf), np.asarray(bars, dtype=np.float32))
            np.save(
                directory / array_name(split, f"times_{tf}"), np.asarray(arrays.times[tf], dtype=np.int64)
            )
        np.save(directory / array_name(split, "ends"), np.asarray(arrays.ends, dtype=np.int64))
        np.save(directory / array_name(split, "end_times"), np.asarray(arrays.end_times, dtype=np.int64))
    atomic_write_json(directory / STATS_FILE, stats)
    atomic_write_json(directory / MANIFEST_FILE, manifest)


@dataclass(frozen=True)
class DerivedDataset:
    """A loaded derived directory; arrays are memory-mapped and loaded per split on demand."""

    root: Path
    stats: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def timeframes(self) -> tuple[str, ...]:
        """Timeframe names in window order (the first is the base)."""
        return tuple(self.stats["timeframes"])

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names, the last axis of every bar array."""
        return tuple(self.stats["features"])

    @property
    def seq_len(self) -> int:
        """Bars per window in every timeframe."""
        return int(self.manifest["seq_len"])

    @cached_property
    def _splits(self) -> dict[str, SplitArrays]:
        return {
            split: _load_split(self.root, split, self.timeframes, self.stats, self.seq_len)
            for split in SPLITS
        }

    def split(self, name: str) -> SplitArrays:
        """The arrays of ``train``, ``val`` or ``test``."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return self._splits[name]

    def denormalise(
        self,
        tf: str,
        values: np.ndarray,
        feature_axis: int = -1,
        features: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Undo the train-split normalisation: back to prices (or feature units).

        ``features`` names what lies along ``feature_axis`` when it is not all features in
        order (e.g. ``["close"]`` for close-only predictions).
        """
        mean = np.asarray(self.stats["mean"][tf], dtype=np.float64)
        std = np.asarray(self.stats["std"][tf], dtype=np.float64)
        if features is not None:
            index = [self.feature_names.index(name) for name in features]
            mean, std = mean[index], std[index]
        data = np.asarray(values, dtype=np.float64)
        if data.shape[feature_axis] != mean.size:
            raise ValueError(
                f"values have {data.shape[feature_axis]} entries on axis {feature_axis}, "
                f"expected {mean.size} features"
            )
        shape = [1] * data.ndim
        shape[feature_axis] = mean.size
        return data * std.reshape(shape) + mean.reshape(shape)


def load_derived(root: Path) -> DerivedDataset:
    """Open a derived directory, checking every file exists and every shape agrees."""
    root = Path(root)
    stats = _read_json(root / STATS_FILE)
    manifest = _read_json(root / MANIFEST_FILE)
    for key in ("timeframes", "features", "mean", "std"):
        if key not in stats:
            raise DerivedFormatError(f"{root / STATS_FILE}: missing key {key!r}")
    if "seq_len" not in manifest:
        raise DerivedFormatError(f"{root / MANIFEST_FILE}: missing key 'seq_len'")
    n_features = len(stats["features"])
    for tf in stats["timeframes"]:
        for key in ("mean", "std"):
            if len(stats[key].get(tf, [])) != n_features:
                raise DerivedFormatError(f"{root / STATS_FILE}: {key}[{tf!r}] must have {n_features} values")
    dataset = DerivedDataset(root, stats, manifest)
    for split in SPLITS:
        dataset.split(split)
    return dataset


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DerivedFormatError(f"{path}: missing; is this a preprocess output directory?")
    return json.loads(path.read_text())


def _load_split(
    root: Path, split: str, timeframes: Sequence[str], stats: Mapping[str, Any], seq_len: int
) -> SplitArrays:
    n_features = len(stats["features"])
    ends = _load(root / array_name(split, "ends"), np.int64, 2)
    end_times = _load(root / array_name(split, "end_times"), np.int64, 1)
    if ends.shape != (len(end_times), len(timeframes)):
        raise DerivedFormatError(
            f"{root / array_name(split, 'ends')}: shape {ends.shape}, expected "
            f"({len(end_times)}, {len(timeframes)})"
        )
    bars: dict[str, np.ndarray] = {}
    times: dict[str, np.ndarray] = {}
    for j, tf in enumerate(timeframes):
        path = root / array_name(split, tf)
        bars[tf] = _load(path, np.float32, 2)
        times[tf] = _load(root / array_name(split, f"times_{tf}"), np.int64, 1)
        if bars[tf].shape[1] != n_features or len(times[tf]) != len(bars[tf]):
            raise DerivedFormatError(
                f"{path}: shape {bars[tf].shape} with {len(times[tf])} times, "
                f"expected [n, {n_features}] with n times"
            )
        # ends are non-decreasing down each column, so the first and last rows bound them.
        if len(ends) and (ends[0, j] < seq_len or ends[-1, j] > len(bars[tf])):
            raise DerivedFormatError(
                f"{root / array_name(split, 'ends')}: column {j} ({tf}) indexes outside "
                f"[{seq_len}, {len(bars[tf])}]"
            )
    return SplitArrays(bars, ends, end_times, times)


def _load(path: Path, dtype: type[np.generic], ndim: int) -> np.ndarray:
    if not path.is_file():
        raise DerivedFormatError(f"{path}: missing")
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype != dtype or array.ndim != ndim:
        raise DerivedFormatError(
            f"{path}: {array.dtype} with {array.ndim} dims, expected {np.dtype(dtype)} with {ndim}"
        )
    return array
