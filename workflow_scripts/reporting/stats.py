"""Summary statistics over seeds, with Student-t confidence intervals.

A handful of seeds is all a training study can afford, so the interval has to use the
t distribution (a normal approximation is far too narrow for n = 2 or 3), and a single
seed must say that it has no interval instead of pretending to a zero-width one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scipy import stats as _scipy_stats

CONFIDENCE = 0.95


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
