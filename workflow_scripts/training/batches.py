"""Batches of aligned multi-timeframe windows, gathered where the model runs.

A split's bars are small next to a GPU's memory (a million bars of five features is
20 MB), so they are copied to the device once and every batch is a gather by index on
the device: no worker processes, no per-step host-to-device copy, nothing that can
starve the GPU. Splits too large for that stay in pinned host memory and each batch is
copied with ``non_blocking=True``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from workflow_scripts.jobs.gpu_pool import jobs_per_gpu
from workflow_scripts.training.masking import owner_index

#: Keep a split on the GPU when it takes at most this share of the free device memory,
#: divided by the jobs that share the GPU (``gpu_slots.jobs_per_gpu``; ``resident_budget``).
DEVICE_RESIDENT_SHARE = 0.25

#: Precompute a training split's mask owners when they take at most this much memory
#: (4 bytes per window bar); beyond it they are computed per batch instead.
OWNER_INDEX_MAX_BYTES = 1 << 30


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

    Every timeframe's bars sit in one tensor (``values``, timeframe after timeframe) and
    ``starts[i, j]`` is where sample i's window of timeframe j begins in it, so a batch
    of windows is one index gather, whatever the number of timeframes. ``sample_ids``
    maps this source's sample numbers to the split's original sample indices
    (forecasting drops samples without ``horizon`` future bars).

    ``owners`` (``[n_samples, T * seq_len]``, int32): each window bar's mask owner as a
    flat index ``timeframe * seq_len + position`` (``masking.owner_index``), computed
    once when the source is built for masked training: owners depend on the bar times
    only, never on the step, so a step only looks them up. None: computed per batch
    (no bar times, not asked for, or over ``OWNER_INDEX_MAX_BYTES``).
    """

    values: torch.Tensor
    starts: torch.Tensor
    sample_ids: np.ndarray
    seq_len: int
    horizon: int
    device: torch.device
    offsets: tuple[int, ...]
    flat_times: torch.Tensor | None = None
    owners: torch.Tensor | None = None
    bar_ns: tuple[int, ...] | None = None
    _steps: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def n_samples(self) -> int:
        return int(self.starts.shape[0])

    @property
    def storage(self) -> torch.device:
        return self.starts.device

    @property
    def times(self) -> tuple[torch.Tensor, ...] | None:
        """Each timeframe's bar open times (views of ``flat_times``); None without times."""
        if self.flat_times is None:
            return None
        bounds = (*self.offsets, int(self.flat_times.shape[0]))
        return tuple(self.flat_times[a:b] for a, b in itertools.pairwise(bounds))

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        """Input windows of samples ``idx`` (on ``storage``): float32 ``[B, T, seq_len, F]``."""
        return self._gather(idx, 0, self.seq_len, self.values)

    def window_times(self, idx: torch.Tensor) -> torch.Tensor:
        """Bar open times (int64 ns) of the windows of samples ``idx``: ``[B, T, seq_len]``, on ``device``."""
        if self.flat_times is None:
            raise DataShapeError("this split has no bar times; leak-free masks need {split}_times_{tf}.npy")
        return self._gather(idx, 0, self.seq_len, self.flat_times)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        """The ``horizon`` bars after each window: float32 ``[B, T, horizon, F]``."""
        if self.horizon < 1:
            raise ValueError("targets() needs a source built with horizon >= 1")
        return self._gather(idx, self.seq_len, self.horizon, self.values)

    def owner_index(self, idx: torch.Tensor) -> torch.Tensor:
        """Mask owners of samples ``idx`` as flat indices, int64 ``[B, T * seq_len]``, on ``device``."""
        if self.owners is not None:
            return self._to_device(self.owners.index_select(0, idx)).long()
        if self.bar_ns is None:
            raise ValueError("owner_index() needs a source built with bar_ns (masked training)")
        return owner_index(self.window_times(idx), self.bar_ns)

    def _gather(self, idx: torch.Tensor, start: int, length: int, flat: torch.Tensor) -> torch.Tensor:
        return self._to_device(self.index(idx, start, length, flat))

    def index(self, idx: torch.Tensor, start: int, length: int, flat: torch.Tensor) -> torch.Tensor:
        """``flat`` at bars ``start .. start + length`` of each window of samples ``idx``, on ``storage``."""
        key = (start, length)
        if key not in self._steps:
            self._steps[key] = torch.arange(start, start + length, device=self.storage)
        where = self.starts.index_select(0, idx)[..., None] + self._steps[key]  # [B, T, length]
        # index_select on the flattened positions: one contiguous gather, much cheaper
        # per step than advanced indexing with a 3-d index.
        return flat.index_select(0, where.flatten()).view(*where.shape, *flat.shape[1:])

    def _to_device(self, out: torch.Tensor) -> torch.Tensor:
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
    bar_ns: Sequence[int] | None = None,
) -> WindowSource:
    """Check a split's arrays against the window contract and place them for gathering.

    ``bar_ns`` (each timeframe's bar length, for masked training): also compute every
    sample's mask owners once (``WindowSource.owners``).
    """
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
    # One private, writable copy in memory: the reader's arrays are read-only memory maps.
    arrays = [np.asarray(split.bars[tf], dtype=np.float32) for tf in timeframes]
    offsets = np.cumsum([0] + [len(a) for a in arrays[:-1]]).astype(np.int64)
    times = [np.asarray(split.times.get(tf, ()), dtype=np.int64) for tf in timeframes]
    has_times = all(len(t) == len(a) for t, a in zip(times, arrays, strict=True))
    n_owner_bytes = len(sample_ids) * len(timeframes) * seq_len * 4
    with_owners = bar_ns is not None and has_times and n_owner_bytes <= OWNER_INDEX_MAX_BYTES
    nbytes = sum(a.nbytes for a in arrays) + sum(t.nbytes for t in times)
    storage = _storage_device(nbytes + (n_owner_bytes if with_owners else 0), device)
    starts = ends[sample_ids].astype(np.int64) - seq_len + offsets
    source = WindowSource(
        values=_to(torch.from_numpy(np.concatenate(arrays)), storage),
        starts=_to(torch.from_numpy(np.ascontiguousarray(starts)), storage),
        flat_times=_to(torch.from_numpy(np.concatenate(times)), storage) if has_times else None,
        sample_ids=sample_ids,
        seq_len=seq_len,
        horizon=horizon,
        device=device,
        offsets=tuple(int(o) for o in offsets),
        bar_ns=tuple(bar_ns) if bar_ns is not None else None,
    )
    if with_owners:
        source.owners = all_owners(source)
    return source


def all_owners(source: WindowSource, chunk: int = 4096) -> torch.Tensor:
    """Every sample's mask owners, int32 ``[n_samples, T * seq_len]`` on ``storage``, in chunks."""
    if source.bar_ns is None or source.flat_times is None:
        raise ValueError("mask owners need bar times and bar_ns")
    parts = []
    for first in range(0, source.n_samples, chunk):
        idx = torch.arange(first, min(first + chunk, source.n_samples), device=source.storage)
        times = source.index(idx, 0, source.seq_len, source.flat_times)
        parts.append(owner_index(times, source.bar_ns).to(torch.int32))
    return torch.cat(parts)


def resident_budget(free_bytes: int, jobs_per_gpu: int) -> float:
    """Bytes of a GPU's free memory one job's split may take: its fair part of the share.

    k jobs that start together on one GPU each see the same free memory; without the
    division they could claim k quarters of it before any of them has run a step.
    """
    return DEVICE_RESIDENT_SHARE * free_bytes / jobs_per_gpu


def _storage_device(
    nbytes: int, device: torch.device, environ: Mapping[str, str] = os.environ
) -> torch.device:
    """Where a split of ``nbytes`` lives: on ``device`` if it fits its budget, else pinned host memory."""
    if device.type != "cuda":
        return device
    free, _total = torch.cuda.mem_get_info(device)
    return device if nbytes <= resident_budget(free, jobs_per_gpu(environ)) else torch.device("cpu")


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
