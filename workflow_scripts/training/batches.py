"""Batches of aligned multi-timeframe windows, gathered where the model runs.

A split's bars are small next to a GPU's memory (a million bars of five features is
20 MB), so they are copied to the device once and every batch is a gather by index on
the device: no worker processes, no per-step host-to-device copy, nothing that can
starve the GPU. Splits too large for that stay in pinned host memory and each batch is
copied with ``non_blocking=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

#: Keep a split on the GPU when it takes at most this share of the free device memory.
DEVICE_RESIDENT_SHARE = 0.25


class SplitLike(Protocol):
    """What the derived-data reader's SplitArrays provides."""

    @property
    def bars(self) -> Mapping[str, np.ndarray]: ...
    @property
    def ends(self) -> np.ndarray: ...
    @property
    def times(self) -> Mapping[str, np.ndarray]: ...


class DataShapeError(ValueError):
    """A split's arrays do not fit the windows they are supposed to hold."""


@dataclass
class WindowSource:
    """One split's bars and sample ends, ready to gather windows ``[B, T, L, F]`` from.

    ``sample_ids`` maps this source's sample numbers to the split's original sample
    indices (forecasting drops samples without ``horizon`` future bars).
    """

    bars: tuple[torch.Tensor, ...]
    ends: torch.Tensor
    sample_ids: np.ndarray
    seq_len: int
    horizon: int
    device: torch.device
    times: tuple[torch.Tensor, ...] | None = None

    @property
    def n_samples(self) -> int:
        return int(self.ends.shape[0])

    @property
    def storage(self) -> torch.device:
        return self.ends.device

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        """Input windows of samples ``idx`` (on ``storage``): float32 ``[B, T, seq_len, F]``."""
        return self._gather(idx, -self.seq_len, self.seq_len)

    def window_times(self, idx: torch.Tensor) -> torch.Tensor:
        """Bar open times (int64 ns) of the windows of samples ``idx``: ``[B, T, seq_len]``, on ``device``."""
        if self.times is None:
            raise DataShapeError("this split has no bar times; leak-free masks need {split}_times_{tf}.npy")
        return self._gather(idx, -self.seq_len, self.seq_len, self.times)[..., 0]

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        """The ``horizon`` bars after each window: float32 ``[B, T, horizon, F]``."""
        if self.horizon < 1:
            raise ValueError("targets() needs a source built with horizon >= 1")
        return self._gather(idx, 0, self.horizon)

    def _gather(
        self, idx: torch.Tensor, start: int, length: int, arrays: tuple[torch.Tensor, ...] | None = None
    ) -> torch.Tensor:
        steps = torch.arange(start, start + length, device=self.storage)
        ends = self.ends[idx]
        arrays = self.bars if arrays is None else tuple(a[:, None] for a in arrays)
        out = torch.stack([values[ends[:, j, None] + steps] for j, values in enumerate(arrays)], dim=1)
        if out.device == self.device:
            return out
        if self.device.type == "cuda":
            out = out.pin_memory()
        return out.to(self.device, non_blocking=True)


def make_source(
    split: SplitLike,
    timeframes: Sequence[str],
    seq_len: int,
    *,
    horizon: int = 0,
    device: torch.device,
    split_name: str,
) -> WindowSource:
    """Check a split's arrays against the window contract and place them for gathering."""
    ends = np.asarray(split.ends)
    if ends.ndim != 2 or ends.shape[1] != len(timeframes):
        raise DataShapeError(
            f"{split_name}_ends has shape {ends.shape}; expected [n_samples, {len(timeframes)}] "
            f"for timeframes {list(timeframes)}"
        )
    keep = np.ones(ends.shape[0], dtype=bool)
    for j, tf in enumerate(timeframes):
        n_bars = split.bars[tf].shape[0]
        if ends.size and (ends[:, j].min() < seq_len or ends[:, j].max() > n_bars):
            raise DataShapeError(
                f"{split_name}_ends column {j} (timeframe {tf!r}) points outside {split_name}_{tf} "
                f"({n_bars} bars) for windows of seq_len {seq_len}"
            )
        keep &= ends[:, j] + horizon <= n_bars
    sample_ids = np.flatnonzero(keep)
    if sample_ids.size == 0:
        raise DataShapeError(
            f"the {split_name} split has no sample with {seq_len} bars before and {horizon} after its end "
            f"in every timeframe ({ends.shape[0]} samples before filtering)"
        )
    # A private, writable copy in memory: the reader's arrays are read-only memory maps.
    arrays = [np.array(split.bars[tf], dtype=np.float32, order="C", copy=True) for tf in timeframes]
    times = [np.asarray(split.times.get(tf, ()), dtype=np.int64) for tf in timeframes]
    has_times = all(len(t) == len(a) for t, a in zip(times, arrays, strict=True))
    storage = _storage_device(sum(a.nbytes for a in arrays) + sum(t.nbytes for t in times), device)
    return WindowSource(
        times=tuple(_to(torch.from_numpy(np.array(t, copy=True)), storage) for t in times)
        if has_times
        else None,
        bars=tuple(_to(torch.from_numpy(a), storage) for a in arrays),
        ends=_to(torch.from_numpy(np.ascontiguousarray(ends[sample_ids], dtype=np.int64)), storage),
        sample_ids=sample_ids,
        seq_len=seq_len,
        horizon=horizon,
        device=device,
    )


def _storage_device(nbytes: int, device: torch.device) -> torch.device:
    if device.type != "cuda":
        return device
    free, _total = torch.cuda.mem_get_info(device)
    return device if nbytes <= DEVICE_RESIDENT_SHARE * free else torch.device("cpu")


def _to(tensor: torch.Tensor, storage: torch.device) -> torch.Tensor:
    """Copy once to ``storage``; through pinned memory so the upload to a GPU is asynchronous."""
    if storage.type == "cuda":
        return tensor.pin_memory().to(storage, non_blocking=True)
    return tensor.to(storage)


def eval_subset(n_samples: int, eval_batch_size: int, max_eval_batches: int | None) -> np.ndarray:
    """Sample numbers to evaluate: all of them, or an evenly spaced subset when capped.

    Evenly spaced rather than the first N, so a capped evaluation still covers the whole
    validation period.
    """
    if max_eval_batches is None or n_samples <= eval_batch_size * max_eval_batches:
        return np.arange(n_samples)
    count = eval_batch_size * max_eval_batches
    return np.unique(np.linspace(0, n_samples - 1, count).round().astype(np.int64))


def epoch_order(n_samples: int, steps: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Sample numbers for one epoch, ``[steps, batch_size]``, drawn on the CPU.

    Concatenated random permutations: no sample repeats until all have been seen. The
    CPU generator makes the order identical on every device for a given seed.
    """
    needed = steps * batch_size
    parts = []
    while needed > 0:
        perm = torch.randperm(n_samples, generator=generator)
        parts.append(perm[:needed])
        needed -= perm.numel()
    return torch.cat(parts).view(steps, batch_size)
