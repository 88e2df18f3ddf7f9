"""Power, minimum detectable effect and units needed for the test the report actually runs.

Why not the noncentral-t formula: up to 20 units the report tests with the exact sign-flip
test (:mod:`workflow_scripts.reporting.paired`), whose discreteness costs power. At the
noncentral-t MDE its real power is 0.62 (6 units), 0.74 (8 units, α/3) and 0.79 (10 units),
so "80% power" from the t formula overstated what the study can show.

Model and method (deterministic):

- Per-seed differences ``Δ_s ~ Normal(δ, σ²)``, independent. The sign-flip p-value does not
  change when every Δ is multiplied by a positive number, so the power depends only on
  ``δ/σ``, ``n`` and the level.
- Up to ``EXACT_MAX_N`` units the power is the share of ``STUDIES`` simulated studies that
  the exact two-sided sign-flip test rejects at ``p ≤ level``. The studies' noise is drawn
  once per ``n`` from ``numpy.random.default_rng([SEED, n])`` and reused for every δ
  (common random numbers), so the same question always gets the same answer and the power
  curve is a reproducible step function. Monte-Carlo standard error: about 0.006 at power
  0.8 (``sqrt(0.8·0.2/STUDIES)``).
- Each study's exact p is counted by meeting in the middle: with half sums ``a`` (first
  ``n//2`` units, all sign patterns) and ``b`` (the rest), the number of the ``2^n``
  patterns with ``|a + b| ≥ |Σ Δ|`` is ``2·#{a + b ≥ |Σ Δ|}`` (the pattern set is symmetric),
  counted with a sorted ``b`` and ``searchsorted`` in ``O(2^(n/2) log)`` per study instead
  of ``O(2^n)``. It agrees with :func:`paired.sign_flip_pvalues` (tested).
- Above ``EXACT_MAX_N`` the report runs the same sign-flip test by Monte Carlo
  (:func:`paired.sign_flip_mc_pvalues`), and its power is approximated by the paired t-test's
  noncentral-t formula (:func:`t_test_power`). The approximation is good there: with more
  than 2^20 sign patterns the test is no longer visibly discrete, for normal Δ the
  permutation test's power approaches the t-test's (its critical value tends to the t's),
  and the Monte-Carlo sd of a p near α is ``√(α(1−α)/SIGN_FLIP_DRAWS)`` ≈ 0.0007. Measured
  at the noncentral-t MDE on 8,000 normal studies per cell (exact sign-flip counts, the limit of
  the Monte Carlo test): power 0.79–0.80 at 21, 24 and 30 units for α, α/3 and α/4 (sd
  0.0045); tests/test_power.py checks the Monte Carlo test itself at 24 units.
- The MDE is the smallest ``δ/σ`` (to 0.5%, below its Monte-Carlo error) at which that power reaches ``power``
  (regula falsi on the step function, keeping a point that reaches it); units needed is the
  smallest ``n`` whose power at the observed ``δ/σ`` reaches ``power``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize
from scipy import stats as _st

from workflow_scripts.reporting.paired import ALPHA, EXACT_MAX_N, min_attainable_p

#: the power every minimum detectable effect and "units needed" is computed for
POWER = 0.8
STUDIES = 4000
SEED = 20260422
#: studies counted at once (keeps each half-sum block small enough for the CPU cache)
CHUNK = 64
#: relative precision of the MDE in sd units
MDE_RTOL = 5e-3
SIMULATED = f"exact sign-flip test, power simulated on {STUDIES} normal studies, seed {SEED}"
NONCENTRAL_T = "Monte Carlo sign-flip test, power by the paired t-test's noncentral t"


def t_test_power(effect_sd_units: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test for a true mean Δ of ``effect_sd_units`` sd:
    noncentral t with ``n − 1`` degrees of freedom and ``ncp = δ √n / sd``."""
    if n < 2:
        return 0.0
    df = n - 1
    crit = _st.t.ppf(1 - alpha / 2, df)
    ncp = abs(effect_sd_units) * math.sqrt(n)
    power = float(_st.nct.sf(crit, df, ncp) + _st.nct.cdf(-crit, df, ncp))
    return 1.0 if math.isnan(power) else power


def power_method(n: int) -> str:
    """How the power of a contrast with ``n`` units is computed (named in the report)."""
    return NONCENTRAL_T if n > EXACT_MAX_N else SIMULATED


def _all_sums(x: np.ndarray) -> np.ndarray:
    """``Σ ε_i x_i`` for every sign pattern ε, one row per row of ``x`` (``2^k`` columns);
    built by doubling, without a matrix product."""
    sums = np.zeros((x.shape[0], 1))
    for i in range(x.shape[1]):
        column = x[:, i : i + 1]
        sums = np.concatenate([sums + column, sums - column], axis=1)
    return sums


@lru_cache(maxsize=EXACT_MAX_N + 1)
def _noise(n: int) -> np.ndarray:
    noise = np.random.default_rng([SEED, n]).standard_normal((STUDIES, n))
    noise.flags.writeable = False
    return noise


def sign_flip_rejects(deltas: np.ndarray, level: float) -> np.ndarray:
    """Whether the exact two-sided sign-flip test rejects at ``p ≤ level``, one bool per row
    of a ``(studies, n)`` array (``n ≤ EXACT_MAX_N``), counted by meeting in the middle."""
    data = np.atleast_2d(np.asarray(deltas, dtype=np.float64))
    studies, n = data.shape
    if n > EXACT_MAX_N:
        raise ValueError(f"exact enumeration is limited to n <= {EXACT_MAX_N}, got {n}")
    if n == 0:
        return np.zeros(studies, dtype=bool)
    # p is scale-free: each row scaled to Σ|Δ| = 1, so every half sum lies in [-1, 1].
    data = data / np.maximum(np.abs(data).sum(axis=1, keepdims=True), 1e-300)
    half = n // 2
    limit = level * 2.0**n
    result = np.zeros(studies, dtype=bool)
    for start in range(0, studies, CHUNK):
        rows = data[start : start + CHUNK]
        observed = np.abs(rows.sum(axis=1)) - 1e-9  # the observed pattern always counts itself
        a = np.sort(_all_sums(rows[:, :half]), axis=1)[:, ::-1]
        b = np.sort(_all_sums(rows[:, half:]), axis=1)
        # Rows side by side in one sorted array (offset 4 > the span of a row), and the
        # queries observed - a ascending too, so searchsorted walks forward.
        offset = 4.0 * np.arange(rows.shape[0])[:, None]
        below = np.searchsorted((b + offset).ravel(), (observed[:, None] - a + offset).ravel())
        below = below.reshape(a.shape) - np.arange(rows.shape[0])[:, None] * b.shape[1]
        count = 2 * (b.shape[1] - below).sum(axis=1)
        result[start : start + CHUNK] = (observed > 0) & (count <= limit)
    return result


def sign_flip_power(effect_sd_units: float, n: int, level: float = ALPHA) -> float:
    """Power of the test the report runs with ``n`` units, for a true mean Δ of
    ``effect_sd_units`` sd, two-sided at ``level`` (see the module docstring)."""
    if n > EXACT_MAX_N:
        return t_test_power(effect_sd_units, n, level)
    if n < 1 or min_attainable_p(n) > level:
        return 0.0
    return float(sign_flip_rejects(abs(effect_sd_units) + _noise(n), level).mean())


@lru_cache(maxsize=512)
def mde_sd_units(n: int, level: float = ALPHA, power: float = POWER) -> float:
    """Smallest δ/σ whose power (:func:`sign_flip_power`) reaches ``power``; ``inf`` when
    the test cannot reach ``level`` with ``n`` units."""
    if n > EXACT_MAX_N:
        return float(optimize.brentq(lambda d: t_test_power(d, n, level) - power, 1e-9, 20.0))
    if n < 2 or min_attainable_p(n) > level:
        return math.inf
    # The t formula's answer is a close lower guess: bracket the crossing from there.
    low = high = float(optimize.brentq(lambda d: t_test_power(d, n, level) - power, 1e-9, 20.0))
    f_low = f_high = sign_flip_power(high, n, level) - power
    step = 1.02
    while f_high < 0:
        low, f_low, high = high, f_high, high * step
        f_high, step = sign_flip_power(high, n, level) - power, step**2
    step = 1.02
    while f_low >= 0 and low > 1e-6:
        high, f_high, low = low, f_low, low / step
        f_low, step = sign_flip_power(low, n, level) - power, step**2
    if f_low >= 0:
        return low
    # Illinois regula falsi: f is a step function, so keep a point with f >= 0.
    side = 0
    while high - low > MDE_RTOL * high:
        guess = (low * f_high - high * f_low) / (f_high - f_low)
        guess = min(max(guess, low + 0.1 * (high - low)), high - 0.1 * (high - low))
        f_guess = sign_flip_power(guess, n, level) - power
        if f_guess >= 0:
            high, f_high = guess, f_guess
            f_low = f_low / 2 if side == 1 else f_low
            side = 1
        else:
            low, f_low = guess, f_guess
            f_high = f_high / 2 if side == -1 else f_high
            side = -1
    return high


def minimum_detectable_effect(
    sd: float | None, n: int, level: float = ALPHA, power: float = POWER
) -> float | None:
    """Smallest |mean Δ| the report's test detects with ``power`` at ``n`` units and two-sided
    ``level``, given the sd of Δ; ``None`` when ``n < 2`` or sd is unknown, ``inf`` when the
    exact test cannot reach ``level`` at all (whatever the sd: ``inf × 0`` would be NaN, which
    summary.json cannot hold)."""
    if sd is None or n < 2 or not math.isfinite(sd):
        return None
    units = mde_sd_units(n, level, power)
    return math.inf if math.isinf(units) else units * sd


def units_needed(
    delta: float | None, sd: float | None, level: float = ALPHA, power: float = POWER, max_n: int = 1000
) -> int | None:
    """Smallest n whose test (exact sign-flip up to 20 units; above, the Monte Carlo sign-flip
    test, its power by the noncentral t) detects the observed ``delta`` with ``power``;
    ``None`` if Δ or sd is 0/unknown or more than ``max_n`` units would be needed."""
    if delta is None or sd is None or sd <= 0 or delta == 0 or not math.isfinite(delta):
        return None
    effect = abs(delta) / sd
    floor = next((n for n in range(2, max_n + 1) if min_attainable_p(n) <= level), None)
    if floor is None:
        return None
    # Start where the t formula says (a lower bound up to Monte-Carlo noise), then walk.
    if t_test_power(effect, max_n, level) < power:
        return None
    low, n = floor - 1, max_n  # t power rises with n: bisect for the first n that reaches it
    while n - low > 1:
        middle = (low + n) // 2
        low, n = (low, middle) if t_test_power(effect, middle, level) >= power else (middle, n)
    while n <= max_n and sign_flip_power(effect, n, level) < power:
        n += 1
    while n - 1 >= floor and sign_flip_power(effect, n - 1, level) >= power:
        n -= 1
    return n if n <= max_n else None
