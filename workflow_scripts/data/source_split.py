"""The pretraining source: the first part of a train split, and a later, purged part of it.

The positive control's pretraining (docs/controls.md) may only see data the experiment
never evaluates on. ``SourceDataset`` wraps a derived dataset and reads its **train**
split only: ``split("train")`` is the first ``fraction`` of its samples, ``split("val")``
(and ``"test"``, the same samples: the training loop scores one final pass) the samples after
a purge gap, chosen so that no validation window shares a bar with a training window in
any timeframe. Each part holds only the bars its windows use, sliced from the train
arrays, so the experiment's val and test arrays cannot reach the pretraining.
"""

from __future__ import annotations

from functools import cached_property

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow_scripts.data.derived import SplitArrays
from workflow_scripts.data.protocol import DatasetLike


class SourceError(ValueError):
    """The train split is too short for a pretraining and a purged validation part."""


def _part(arrays: SplitArrays, rows: slice, seq_len: int) -> SplitArrays:
    """Samples ``rows`` with only the bars their windows cover (ends shifted to match)."""
    ends = np.asarray(arrays.ends[rows], dtype=np.int64)
    starts = ends.min(axis=0) - seq_len
    stops = ends.max(axis=0)
    bars, times = {}, {}
    for j, tf in enumerate(arrays.bars):
        bars[tf] = np.asarray(arrays.bars[tf][starts[j] : stops[j]])
        times[tf] = np.asarray(arrays.times[tf][starts[j] : stops[j]]) if arrays.times else np.zeros(0)
    return SplitArrays(bars, ends - starts[None, :], np.asarray(arrays.end_times[rows]), times)


def source_cut(ends: np.ndarray, seq_len: int, fraction: float) -> tuple[int, int]:
    """(n_train, first_val): training samples ``[0, n_train)``, validation ``[first_val, n)``.

    ``first_val`` is the first sample whose window starts, in every timeframe, at or after
    the end of the last training window: the purge gap between them shares no bar.
    """
    n = len(ends)
    n_train = int(n * fraction)
    if n_train < 1:
        raise SourceError(f"the source train split has {n} samples; pretrain.source_fraction leaves none")
    last_end = ends[n_train - 1]
    clear = np.all(ends - seq_len >= last_end[None, :], axis=1)
    clear[:n_train] = False
    later = np.flatnonzero(clear)
    if not len(later):
        raise SourceError(
            f"the source train split ({n} samples) leaves no validation sample after the purge gap "
            f"behind its first {n_train}; lower pretrain.source_fraction or use more data"
        )
    return n_train, int(later[0])


@dataclass(frozen=True)
class SourceDataset:
    """A derived dataset seen through its train split only (see the module docstring)."""

    base: DatasetLike
    fraction: float

    @property
    def timeframes(self) -> tuple[str, ...]:
        return tuple(self.base.timeframes)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.base.feature_names)

    @property
    def seq_len(self) -> int:
        return int(self.base.seq_len)

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.base.stats)  # train-split statistics: nothing from val or test

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self.base.manifest)

    @cached_property
    def cut(self) -> tuple[int, int, int]:
        """(n_train, first_val, n) of the source train split (computed once, split() asks often)."""
        ends = np.asarray(self.base.split("train").ends)
        n_train, first_val = source_cut(ends, self.seq_len, self.fraction)
        return n_train, first_val, len(ends)

    def split(self, name: str) -> SplitArrays:
        source = self.base.split("train")  # never "val" or "test" of the base dataset
        n_train, first_val, n = self.cut
        if name == "train":
            return _part(source, slice(0, n_train), self.seq_len)
        if name in ("val", "test"):
            return _part(source, slice(first_val, n), self.seq_len)
        raise KeyError(f"unknown split {name!r}; expected train, val or test")

    def source_hash(self) -> str:
        """sha256 of exactly what the pretraining reads: the sliced arrays of both parts, the stats."""
        digest = hashlib.sha256()
        for name in ("train", "val"):
            part = self.split(name)
            for tf in self.timeframes:
                for array in (part.bars[tf], part.times.get(tf, np.zeros(0))):
                    digest.update(np.ascontiguousarray(array).tobytes())
            for array in (part.ends, part.end_times):
                digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        digest.update(repr(sorted(_flat(self.stats))).encode())
        return digest.hexdigest()


def _flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [item for key in sorted(value) for item in _flat(value[key], f"{prefix}{key}.")]
    return [(prefix, repr(value))]
