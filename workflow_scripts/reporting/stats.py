"""Summary statistics over seeds: mean, Student-t and bootstrap intervals, IQM.

A handful of seeds is all a training study can afford, so the interval has to use the
t distribution (a normal approximation is far too narrow for n = 2 or 3), and a single
seed must say that it has no interval instead of pretending to a zero-width one.

Definitions (each function's docstring states its own):

- **Student-t interval** of a mean: ``mean ± t(1 − (1−c)/2, n−1)·sd/√n``, sd with ddof = 1;
- **interquartile mean (IQM)** (rliable, Agarwal et al. 2021): the mean of the middle 50%
  of the values, ``scipy.stats.trim_mean(x, 0.25)``;
- **percentile bootstrap**: ``BOOTSTRAP_RESAMPLES`` resamples of the seeds with replacement
  from ``numpy.random.default_rng(BOOTSTRAP_SEED)``, the interval between the
  ``(1−c)/2`` and ``1 − (1−c)/2`` percentiles of the statistic over the resamples.

All functions are pure (numpy and scipy only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
#: resamples of every bootstrap interval in the report (IQM, transfer ratio)
BOOTSTRAP_RESAMPLES = 2000
#: seed of every bootstrap's RNG, so the report is reproducible
BOOTSTRAP_SEED = 0


class Interval(NamedTuple):
    """A confidence interval ``[low, high]``; both ``None`` when there is none."""

    low: float | None
    high: float | None


@dataclass(frozen=True)
class SummaryStats:
    """Mean, spread and confidence interval of one metric over the seeds that produced it.

    ``n`` counts only finite values: a failed or diverged seed lowers ``n`` and is never
    folded in as a zero. ``std`` and the interval are ``None`` when ``n < 2``; ``note``
    says why in words the report can print.
    """

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = CONFIDENCE
    values: tuple[float, ...] = field(default=())
    note: str = ""
    #: written beside the fields in results/summary.json (jobs.typed_json)
    JSON_DERIVED: ClassVar[dict[str, str]] = {"ci_half_width": "half_width"}

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form used in results/summary.json (``None`` becomes ``null``)."""
        return {
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci_half_width": self.half_width,
            "confidence": self.confidence,
            "values": list(self.values),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SummaryStats:
        """Inverse of :meth:`to_dict`, so the report can work from results/summary.json."""
        return cls(
            n=int(data["n"]),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
            ci_low=_opt_float(data.get("ci_low")),
            ci_high=_opt_float(data.get("ci_high")),
            confidence=float(data.get("confidence", CONFIDENCE)),
            values=tuple(float(v) for v in data.get("values", ())),
            note=str(data.get("note", "")),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def finite_values(values: Iterable[Any]) -> list[float]:
    """Keep only real, finite numbers: ``None``, NaN and markers such as ``"never"`` mean
    "no value", not zero."""
    kept: list[float] = []
    for value in values:
        if value is None or isinstance(value, bool | str):
            continue
        number = float(value)
        if math.isfinite(number):
            kept.append(number)
    return kept


def t_critical(n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t critical value for ``n`` samples (``n - 1`` degrees of freedom)."""
    if n < 2:
        raise ValueError(f"a t interval needs at least 2 samples, got {n}")
    return float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1))


def describe(values: Iterable[Any], confidence: float = CONFIDENCE) -> SummaryStats:
    """Mean, sample std (ddof=1) and the t confidence interval of the finite ``values``."""
    kept = finite_values(values)
    n = len(kept)
    if n == 0:
        return SummaryStats(0, None, None, None, None, confidence, (), "no finite value")
    mean = math.fsum(kept) / n
    if n == 1:
        note = "a single seed: no standard deviation or confidence interval"
        return SummaryStats(1, mean, None, None, None, confidence, tuple(kept), note)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / (n - 1))
    half = t_critical(n, confidence) * std / math.sqrt(n)
    return SummaryStats(n, mean, std, mean - half, mean + half, confidence, tuple(kept))


def t_interval(values: ArrayLike, confidence: float = CONFIDENCE) -> Interval:
    """Student-t interval of the mean: ``mean ± t(1 − (1−c)/2, n−1)·sd/√n`` (sd with
    ddof = 1); no interval for fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return Interval(None, None)
    half = float(t_critical(x.size, confidence) * x.std(ddof=1) / math.sqrt(x.size))
    mean = float(x.mean())
    return Interval(mean - half, mean + half)


def iqm(values: ArrayLike) -> float | None:
    """Interquartile mean (rliable): mean of the middle 50%, ``trim_mean(x, 0.25)``."""
    x = np.asarray(values, dtype=np.float64)
    return None if x.size == 0 else float(_scipy_stats.trim_mean(x, 0.25))


def iqm_interval(
    values: ArrayLike,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Percentile bootstrap interval of the IQM, resampling seeds with replacement.

    With one task this is rliable's stratified bootstrap (one stratum). The RNG is fixed
    (``seed``) so the report is reproducible. No interval for fewer than 2 values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return Interval(None, None)
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, x.size, size=(resamples, x.size))]
    stats = _scipy_stats.trim_mean(samples, 0.25, axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return Interval(float(low), float(high))
