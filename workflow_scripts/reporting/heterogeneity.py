"""Does the effect differ between test periods? A paired permutation test of arm × period.

Each unit (series, fold, seed) scores both arms of a contrast in every sub-period of its test
split, so the data of one contrast is a matrix ``Δ[s, p] = metric(a, s, p) − metric(b, s, p)``
(units × periods). A unit's own offset (its initialisation, batch order, data) is shared by its
periods, so the test works within units, as the headline's test does.

Definitions (rliable-style: each function states its own):

- **period means**: ``m_p = mean_s Δ[s, p]``; **overall mean** ``m = mean_p m_p``.
- **interaction statistic**: ``Q = Σ_p (m_p − m)²``, the spread of the period means around
  their mean (0 when every period shows the same Δ).
- **within-unit permutation p**: under the null "the effect is the same in every period"
  (no arm × period interaction), a unit's Δ are exchangeable across its periods, so each
  unit's row is permuted independently. ``p = (1 + #{Q_perm ≥ Q}) / (1 + B)`` over ``B``
  random permutations from ``numpy.random.default_rng(seed)`` (exact enumeration when the
  ``(P!)^S`` permutations number at most ``B``). The ``+1`` keeps the test valid with a
  finite ``B`` (Phipson & Smyth 2010).

Pure functions of arrays (numpy only); calibrated by simulation in tests/test_heterogeneity.py.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: random within-seed permutations of the heterogeneity test
PERMUTATIONS = 9999
#: seed of their RNG, so the report is reproducible
PERMUTATION_SEED = 0


@dataclass(frozen=True)
class Heterogeneity:
    """The interaction test of one contrast over units × periods."""

    statistic: float
    p: float
    n_units: int
    n_periods: int
    #: how p was computed: "exact" (every permutation) or the number of random permutations
    permutations: str


def interaction_statistic(deltas: np.ndarray) -> float:
    """``Q = Σ_p (m_p − m)²`` of a units × periods matrix of paired differences."""
    period_means = deltas.mean(axis=0)
    return float(((period_means - period_means.mean()) ** 2).sum())


def _exact_rows(n_periods: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n_periods))), dtype=np.int64)


def heterogeneity_test(
    deltas: ArrayLike, permutations: int = PERMUTATIONS, seed: int = PERMUTATION_SEED
) -> Heterogeneity | None:
    """The within-seed permutation test of "the effect is the same in every period" (see the
    module docstring); ``None`` with fewer than 2 units or 2 periods, or a missing value."""
    matrix = np.asarray(deltas, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 2 or not np.isfinite(matrix).all():
        return None
    n_units, n_periods = matrix.shape
    observed = interaction_statistic(matrix)
    orders = _exact_rows(n_periods)
    total = math.factorial(n_periods) ** n_units
    if total <= permutations:
        stats = [
            interaction_statistic(np.take_along_axis(matrix, orders[list(choice)], axis=1))
            for choice in itertools.product(range(len(orders)), repeat=n_units)
        ]
        p = float(np.mean(np.asarray(stats) >= observed - 1e-12))
        return Heterogeneity(observed, p, n_units, n_periods, "exact")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(orders), size=(permutations, n_units))
    permuted = np.take_along_axis(matrix[None, :, :], orders[picks], axis=2)
    means = permuted.mean(axis=1)
    stats_array = ((means - means.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    exceed = int(np.count_nonzero(stats_array >= observed - 1e-12))
    return Heterogeneity(observed, (1 + exceed) / (1 + permutations), n_units, n_periods, str(permutations))
