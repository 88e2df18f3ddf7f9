"""Paired, calibrated statistics for comparing two variants trained on the same seeds.

One seed fixes the new layers' initialisation, the data order and the masks for every
variant, so the unit of evidence is the per-seed difference ``Δ_s = metric(a, s) −
metric(b, s)``. Everything here is a pure function of arrays of numbers (numpy and scipy
only: no Snakemake, no torch), so the calibration tests can run it on simulated studies.

Definitions (all two-sided, ``α = 0.05`` unless given):

- **sign-flip p-value**: under the null "a and b are exchangeable within a seed" every
  sign pattern of the Δ is equally likely. The exact p is the share of the ``2^n`` sign
  patterns whose ``|mean|`` is at least the observed ``|mean|``. Enumerated exactly for
  ``n ≤ EXACT_MAX_N = 20``. Above that (3 folds × 8 seeds = 24 units is common) the same test
  by Monte Carlo: ``B = SIGN_FLIP_DRAWS`` sign patterns ``ε`` drawn uniformly from a generator
  seeded with ``SIGN_FLIP_SEED``, ``p = (1 + #{|Σ ε_i Δ_i| ≥ |Σ Δ_i|}) / (1 + B)``. The ``+1``
  counts the observed pattern, which keeps the p valid with a finite ``B`` (Phipson & Smyth
  2010); its Monte-Carlo sd is ``√(p(1−p)/B)``, 0.0007 at p = 0.05. Both are valid for
  paired differences of any distribution and any heterogeneity across units (only the sign
  symmetry of each Δ under the null is used), unlike a t-test. A Δ of exactly 0 has no sign to
  flip and is dropped first (the exact p is unchanged by it). The output names the test.
- **smallest attainable p**: with every Δ of one sign, only the observed pattern and its
  mirror reach the observed ``|mean|``: ``2 / 2^n`` (0.25 for 3 seeds, 0.0625 for 5); by
  Monte Carlo ``max(2 / 2^n, 1 / (1 + B))``.
- **Holm**: step-down family-wise correction; sorted p's ``p_(i)`` become
  ``max_{j ≤ i} min(1, (m − j + 1)·p_(j))``.
- **Cohen's d_z**: ``mean Δ / sd Δ`` (sd with ddof = 1).
- **probability of improvement** (rliable, Agarwal et al. 2021): ``P(X_a > X_b)`` over all
  ``n_a × n_b`` pairs of runs, ties counting 1/2, oriented so that "better" respects the
  metric's direction.
- **paired share**: the share of seeds whose Δ favours a (direction-aware), ties 1/2.
- **transfer ratio**: ``mean Δ_primary / mean Δ_control`` over the seeds both contrasts
  share, with a percentile interval of the paired bootstrap (seeds resampled together).

Intervals and the IQM over one variant's seeds are in :mod:`workflow_scripts.reporting.stats`;
power, minimum detectable effect and seeds needed in :mod:`workflow_scripts.reporting.power`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _st

from workflow_scripts.reporting.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

ALPHA = 0.05
#: the most nonzero Δ whose 2^n sign patterns are enumerated (2^20 ≈ 10^6); Monte Carlo above
EXACT_MAX_N = 20
#: random sign patterns of the Monte Carlo sign-flip test above ``EXACT_MAX_N``
SIGN_FLIP_DRAWS = 100_000
#: seed of their generator, so the report's p is reproducible
SIGN_FLIP_SEED = 20260422
#: sign patterns drawn and tested per block (memory: block × studies floats)
SIGN_FLIP_BLOCK = 4096
SIGN_FLIP = "exact paired sign-flip permutation test"
SIGN_FLIP_MC = f"paired sign-flip permutation test (Monte Carlo, {SIGN_FLIP_DRAWS:,} sign patterns)"
#: share of bootstrap resamples whose control Δ may change sign before the ratio's
#: interval is unbounded (the two tails of a 95% interval)
RATIO_SIGN_CHANGE_LIMIT = 0.025


class PairedTest(NamedTuple):
    """The two-sided p of a paired test and the name of the test that produced it."""

    p: float
    test: str


@dataclass(frozen=True)
class TransferRatio:
    """``mean Δ_primary / mean Δ_control`` and its paired-bootstrap percentile interval
    over ``n`` shared seeds; ``low``/``high`` are ``∓inf`` when the interval is unbounded."""

    ratio: float
    low: float
    high: float
    n: int


def _sign_matrix(n: int) -> np.ndarray:
    """All ``2^n`` sign patterns as a ``(2^n, n)`` array of ±1."""
    codes = np.arange(2**n, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(n, dtype=np.int64)) & 1
    return (1 - 2 * bits).astype(np.float64)


def sign_flip_pvalues(deltas: np.ndarray) -> np.ndarray:
    """Exact two-sided sign-flip p-values, one per row of a ``(studies, n)`` array.

    p = share of the ``2^n`` sign patterns with ``|Σ ε_i Δ_i| ≥ |Σ Δ_i|`` (a relative
    tolerance of 1e-12 counts floating-point ties as ties). Vectorised over studies so
    thousands of simulated studies run in one call.
    """
    data = np.atleast_2d(np.asarray(deltas, dtype=np.float64))
    n = data.shape[1]
    if n > EXACT_MAX_N:
        raise ValueError(f"exact enumeration is limited to n <= {EXACT_MAX_N}, got {n}")
    if n == 0:
        return np.ones(data.shape[0])
    signs = _sign_matrix(n)
    observed = np.abs(data.sum(axis=1))
    permuted = np.abs(data @ signs.T)
    tolerance = 1e-12 * np.maximum(np.abs(data).sum(axis=1), 1e-300)
    hits = permuted >= (observed - tolerance)[:, None]
    result: np.ndarray = hits.mean(axis=1)
    return result


def sign_flip_mc_pvalues(
    deltas: np.ndarray, draws: int = SIGN_FLIP_DRAWS, seed: int = SIGN_FLIP_SEED
) -> np.ndarray:
    """Monte Carlo two-sided sign-flip p-values, one per row of a ``(studies, n)`` array.

    ``p = (1 + #{|Σ ε_i Δ_i| ≥ |Σ Δ_i|}) / (1 + draws)`` over ``draws`` sign patterns ε, each
    sign ±1 with probability 1/2, from ``numpy.random.default_rng([seed, n, block])`` in blocks
    of ``SIGN_FLIP_BLOCK`` patterns (so memory stays at block × studies floats, and the
    patterns depend only on ``n``: every row is tested against the same ones). Ties as in
    :func:`sign_flip_pvalues`.
    """
    data = np.atleast_2d(np.asarray(deltas, dtype=np.float64))
    n = data.shape[1]
    if n == 0:
        return np.ones(data.shape[0])
    observed = np.abs(data.sum(axis=1))
    threshold = observed - 1e-12 * np.maximum(np.abs(data).sum(axis=1), 1e-300)
    hits = np.zeros(data.shape[0], dtype=np.int64)
    for block, start in enumerate(range(0, draws, SIGN_FLIP_BLOCK)):
        rng = np.random.default_rng([seed, n, block])
        bits = rng.integers(0, 2, size=(min(SIGN_FLIP_BLOCK, draws - start), n), dtype=np.int8)
        signs = (1 - 2 * bits).astype(np.float64)
        hits += np.count_nonzero(np.abs(data @ signs.T) >= threshold[:, None], axis=1)
    result: np.ndarray = (1.0 + hits) / (1.0 + draws)
    return result


def paired_test(deltas: ArrayLike, exact_max_n: int = EXACT_MAX_N) -> PairedTest:
    """(p, test name) of the two-sided sign-flip test on the nonzero Δ: exact for at most
    ``exact_max_n`` of them, Monte Carlo (:func:`sign_flip_mc_pvalues`) above."""
    values = np.asarray(deltas, dtype=np.float64).ravel()
    values = values[values != 0.0]
    if values.size <= exact_max_n:
        return PairedTest(float(sign_flip_pvalues(values[None, :])[0]), SIGN_FLIP)
    return PairedTest(float(sign_flip_mc_pvalues(values[None, :])[0]), SIGN_FLIP_MC)


def min_attainable_p(n: int) -> float:
    """Smallest two-sided p the test can return with ``n`` nonzero pairs: ``2/2^n`` (exact
    test, ``n ≤ EXACT_MAX_N``), ``max(2/2^n, 1/(1 + SIGN_FLIP_DRAWS))`` by Monte Carlo above
    (the +1 of the observed pattern); 1 with no pairs."""
    if n <= 0:
        return 1.0
    if n > EXACT_MAX_N:
        return max(2.0 / 2.0**n, 1.0 / (1.0 + SIGN_FLIP_DRAWS))
    return min(1.0, 2.0 / 2.0**n)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in the input order; ``None`` stays ``None`` and is
    not counted in the family."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def cohens_dz(deltas: ArrayLike) -> float | None:
    """Cohen's d_z = mean Δ / sd Δ (ddof = 1); ``None`` when n < 2 or sd = 0."""
    values = np.asarray(deltas, dtype=np.float64)
    if values.size < 2:
        return None
    sd = float(values.std(ddof=1))
    return None if sd == 0.0 else float(values.mean()) / sd


def probability_of_improvement(a: ArrayLike, b: ArrayLike, higher_is_better: bool) -> float | None:
    """rliable's P(X_a better than X_b) over every (a run, b run) pair, ties counting 1/2.

    Values may be ``±inf`` (a censored "never" is ``+inf`` for a lower-is-better metric).
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.size == 0 or xb.size == 0:
        return None
    if not higher_is_better:
        xa, xb = -xa, -xb
    wins = (xa[:, None] > xb[None, :]).mean()
    ties = (xa[:, None] == xb[None, :]).mean()
    return float(wins + 0.5 * ties)


def paired_share(deltas: ArrayLike, higher_is_better: bool) -> float | None:
    """Share of seeds on which a beats b (direction-aware), ties counting 1/2."""
    values = np.asarray(deltas, dtype=np.float64)
    if values.size == 0:
        return None
    oriented = values if higher_is_better else -values
    return float((oriented > 0).mean() + 0.5 * (oriented == 0).mean())


def pooled_ranks(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of a's and b's values in the pooled sample (``inf`` ranks last, ties
    share their mean rank): the scale a censored metric is tested on."""
    xa = np.asarray(a, dtype=np.float64)
    ranks = _st.rankdata(np.concatenate([xa, np.asarray(b, dtype=np.float64)]), method="average")
    return ranks[: xa.size], ranks[xa.size :]


def transfer_ratio(
    primary: ArrayLike,
    control: ArrayLike,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> TransferRatio | None:
    """``mean(primary) / mean(control)`` of two Δ arrays aligned by seed, with a 95% paired
    bootstrap percentile interval: the seeds are resampled with replacement together
    (``resamples`` draws from ``numpy.random.default_rng(seed)``).

    ``None`` with fewer than 2 seeds or a control mean of 0. When the resampled control
    mean changes sign (or vanishes) in more than ``RATIO_SIGN_CHANGE_LIMIT`` of the
    resamples the ratio is unbounded there, and the interval is ``(-inf, inf)`` rather than
    a percentile of a distribution with a pole in it.
    """
    x = np.asarray(primary, dtype=np.float64)
    y = np.asarray(control, dtype=np.float64)
    n = int(x.size)
    if n < 2 or y.mean() == 0:
        return None
    ratio = float(x.mean() / y.mean())
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    den = y[idx].mean(axis=1)
    if np.mean(np.sign(den) != np.sign(y.mean())) > RATIO_SIGN_CHANGE_LIMIT:
        return TransferRatio(ratio, -math.inf, math.inf, n)
    low, high = np.percentile(x[idx].mean(axis=1) / den, [2.5, 97.5])
    return TransferRatio(ratio, float(low), float(high), n)
