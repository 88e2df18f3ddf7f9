"""The reported power is the power of the test the report runs, checked on fresh simulations.

The MDE and seeds needed come from :mod:`workflow_scripts.reporting.power` (its own fixed
simulation). These tests draw *other* studies (other RNG seeds), run the report's real test
(:func:`paired.sign_flip_pvalues`, and :func:`paired.holm` for the family) on them, and check
that the power at the reported MDE is 0.80 within Monte-Carlo error: an MDE solved with the
noncentral-t formula (power 0.62 at 6 seeds, 0.74 at 8 seeds and α/3) fails here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import report_fixtures  # noqa: F401  (puts the repository on sys.path)
from scipy import stats as scipy_stats

from workflow_scripts.reporting import paired, power

ALPHA = 0.05
STUDIES = 4000
SD = 0.03  # any sd: the test is scale-free, so the MDE must scale with it
# 3 standard errors of (fresh estimate − the module's own estimate), both ~0.8 on 4000 studies
BOUND = 3 * math.sqrt(0.8 * 0.2 / STUDIES + 0.8 * 0.2 / power.STUDIES)


@pytest.mark.parametrize("n", [6, 8, 10])
@pytest.mark.parametrize("family", [1, 3, 4])
def test_power_at_the_reported_mde_is_eighty_percent(n: int, family: int) -> None:
    level = ALPHA / family
    mde = power.minimum_detectable_effect(SD, n, level)
    assert mde is not None
    if paired.min_attainable_p(n) > level:  # 6 seeds: 2/64 > 0.05/3, nothing can be detected
        assert math.isinf(mde)
        assert power.sign_flip_power(10.0, n, level) == 0.0
        return
    rng = np.random.default_rng([7, n, family])
    primary = rng.normal(mde, SD, size=(STUDIES, n))
    p = paired.sign_flip_pvalues(primary)
    rate = float((p <= level).mean())
    assert abs(rate - 0.80) <= BOUND, f"n={n}, α/{family}: power {rate:.3f} at the reported MDE {mde:.4f}"
    # In the Holm family (the other contrasts null) the primary is declared at least this often.
    nulls = [paired.sign_flip_pvalues(rng.normal(0.0, SD, size=(STUDIES, n))) for _ in range(family - 1)]
    declared = np.array([paired.holm([a, *rest])[0] for a, *rest in zip(p, *nulls, strict=True)]) <= ALPHA
    assert declared.mean() >= 0.80 - BOUND


def test_the_noncentral_t_mde_overstated_the_exact_tests_power() -> None:
    """The reason for the module: at the t formula's MDE the exact test falls short."""
    t_mde = power.mde_sd_units(25, ALPHA)  # above 20 seeds the noncentral t approximates it
    assert power.sign_flip_power(t_mde, 25, ALPHA) == pytest.approx(0.8, abs=1e-6)
    from scipy import optimize

    at_t = optimize.brentq(lambda d: power.t_test_power(d, 6) - 0.8, 0.1, 10)
    assert power.sign_flip_power(at_t, 6) < 0.7
    assert power.mde_sd_units(6) > at_t


def test_fast_counting_agrees_with_the_reports_exact_p() -> None:
    rng = np.random.default_rng(11)
    for n in range(1, 13):
        deltas = rng.normal(0.6, 1.0, size=(500, n))
        p = paired.sign_flip_pvalues(deltas)
        for level in (ALPHA, ALPHA / 3, ALPHA / 4, 0.2):
            assert (power.sign_flip_rejects(deltas, level) == (p <= level)).all(), (n, level)


def test_mde_scales_with_sd_and_is_deterministic() -> None:
    one = power.minimum_detectable_effect(1.0, 10)
    assert one is not None and power.minimum_detectable_effect(2.0, 10) == pytest.approx(2 * one)
    assert power.minimum_detectable_effect(None, 10) is None
    assert power.minimum_detectable_effect(1.0, 1) is None
    power.mde_sd_units.cache_clear()
    power._noise.cache_clear()
    assert power.minimum_detectable_effect(1.0, 10) == one
    # more seeds, smaller MDE; Holm's stricter level, larger MDE
    assert power.mde_sd_units(12) < one < power.mde_sd_units(10, ALPHA / 3)


def test_units_needed_is_the_smallest_n_with_eighty_percent_power() -> None:
    for effect in (0.9, 1.3, 2.0):
        needed = power.units_needed(effect, 1.0)
        assert needed is not None
        assert power.sign_flip_power(effect, needed) >= 0.8
        assert needed == 6 or power.sign_flip_power(effect, needed - 1) < 0.8
    # a huge effect still needs 2/2^n <= 0.05, i.e. n >= 6; at α/3, 2/2^n <= 0.0167: n >= 7
    assert power.units_needed(10.0, 1.0) == 6
    assert power.units_needed(10.0, 1.0, ALPHA / 3) == 7
    # a small effect needs more than 20 seeds: the noncentral t (the Monte Carlo sign-flip's
    # power there, checked below) decides
    small = power.units_needed(0.4, 1.0)
    assert small is not None and small > 20
    assert power.t_test_power(0.4, small) >= 0.8 > power.t_test_power(0.4, small - 1)
    assert power.units_needed(0.0, 1.0) is None and power.units_needed(1.0, 0.0) is None


@pytest.mark.parametrize("family", [1, 3])
def test_above_twenty_units_the_noncentral_t_is_the_monte_carlo_sign_flips_power(family: int) -> None:
    """24 units (3 folds × 8 seeds): at the reported MDE the report's Monte Carlo sign-flip test
    (paired.paired_test's path above 20) rejects 80% of fresh normal studies, within 3
    Monte-Carlo standard errors (2000 studies: 0.027). A power formula for a one-sided or a
    normal-approximation test, or a sign-flip p that lost its power, lands outside."""
    n, level, studies = 24, ALPHA / family, 2000
    assert n > paired.EXACT_MAX_N and power.power_method(n) == power.NONCENTRAL_T
    mde = power.minimum_detectable_effect(SD, n, level)
    assert mde is not None
    rng = np.random.default_rng([8, n, family])
    rate = float((paired.sign_flip_mc_pvalues(rng.normal(mde, SD, size=(studies, n))) <= level).mean())
    assert abs(rate - 0.80) <= 3 * math.sqrt(0.8 * 0.2 / studies), rate


@pytest.mark.parametrize(("effect", "n"), [(1.0, 8), (0.5, 25)])
def test_t_test_power_matches_a_simulated_two_sided_t_test(effect: float, n: int) -> None:
    """Against scipy's t-test on fresh studies: a one-sided or normal-approximation power fails."""
    rng = np.random.default_rng([3, n])
    data = rng.normal(effect, 1.0, size=(STUDIES, n))
    rate = float((scipy_stats.ttest_1samp(data, 0.0, axis=1).pvalue <= ALPHA).mean())
    expected = power.t_test_power(effect, n)
    assert abs(rate - expected) <= 3 * math.sqrt(expected * (1 - expected) / STUDIES)


def test_an_unreachable_level_is_inf_even_when_every_delta_is_equal() -> None:
    """sd of Δ = 0 (every seed's Δ the same) with too few seeds for the level: inf, not NaN."""
    unreachable = power.minimum_detectable_effect(0.0, 4, level=0.05)
    assert unreachable is not None and math.isinf(unreachable)
    assert power.minimum_detectable_effect(0.0, 10) == 0.0
