"""Calibration of the paired statistics on simulated per-seed results (fixed RNG, no training)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import report_fixtures  # noqa: F401  (puts the repository on sys.path)

from workflow_scripts.reporting import paired, power, stats

STUDIES = 2000
ALPHA = 0.05


def _mc_bound(rate: float, studies: int = STUDIES) -> float:
    """rate + 3 Monte-Carlo standard errors."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / studies)


@pytest.mark.parametrize("n", [6, 10])
def test_null_false_positive_rate_is_the_exact_tests_size(n: int) -> None:
    """Under the null p <= α happens exactly for the 2·⌊α·2^n / 2⌋ most extreme of the 2^n
    equally likely sign patterns (they come in mirror pairs): 2/64 with 6 seeds, 50/1024 with
    10. A one-sided or anti-conservative p lands visibly above, an over-conservative one below.
    (5 seeds would prove nothing: the smallest p, 2/32, is above α, so the rate is 0 anyway.)"""
    studies = 4000
    rng = np.random.default_rng(1234 + n)
    deltas = rng.normal(0.0, 1.0, size=(studies, n))
    p = paired.sign_flip_pvalues(deltas)
    size = 2 * math.floor(ALPHA * 2**n / 2) / 2**n
    assert 0 < size <= ALPHA
    rate = (p <= ALPHA).mean()
    assert abs(rate - size) <= 3 * math.sqrt(size * (1 - size) / studies), (rate, size)


def test_power_at_one_and_a_half_sd_with_ten_seeds() -> None:
    rng = np.random.default_rng(7)
    deltas = rng.normal(1.5, 1.0, size=(STUDIES, 10))
    p = paired.sign_flip_pvalues(deltas)
    assert (p <= ALPHA).mean() >= 0.80


def test_holm_keeps_familywise_error_under_global_null() -> None:
    rng = np.random.default_rng(99)
    n = 10
    p = np.stack([paired.sign_flip_pvalues(rng.normal(size=(STUDIES, n))) for _ in range(3)], axis=1)
    adjusted = np.array([paired.holm(list(row)) for row in p], dtype=float)
    assert (adjusted <= ALPHA).any(axis=1).mean() <= _mc_bound(ALPHA)
    # without the correction the family-wise error would be visibly larger
    assert (p <= ALPHA).any(axis=1).mean() > 0.08


def test_holm_matches_the_step_down_definition() -> None:
    assert paired.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert paired.holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]


@pytest.mark.parametrize("n", [3, 5, 10])
def test_smallest_attainable_p_is_two_over_two_to_the_n(n: int) -> None:
    deltas = np.arange(1.0, n + 1.0)
    p, test = paired.paired_test(deltas)
    assert p == pytest.approx(2 / 2**n) == pytest.approx(paired.min_attainable_p(n))
    assert test == paired.SIGN_FLIP


def test_three_seeds_can_never_reach_significance() -> None:
    rng = np.random.default_rng(3)
    p = paired.sign_flip_pvalues(rng.normal(5.0, 0.01, size=(500, 3)))
    assert p.min() >= 0.25 > ALPHA
    assert power.minimum_detectable_effect(0.1, 3) == math.inf


def test_exact_p_matches_brute_force_enumeration() -> None:
    deltas = np.array([0.3, -0.1, 0.2, 0.25, -0.05])
    count = 0
    for code in range(32):
        signs = np.array([1 - 2 * ((code >> i) & 1) for i in range(5)])
        count += abs((signs * deltas).sum()) >= abs(deltas.sum()) - 1e-12
    assert paired.paired_test(deltas)[0] == pytest.approx(count / 32)


def _mc_tolerance(p: float) -> float:
    """4 Monte-Carlo sd of a sign-flip p from SIGN_FLIP_DRAWS random patterns, plus its +1."""
    draws = paired.SIGN_FLIP_DRAWS
    return 4 * math.sqrt(p * (1 - p) / draws) + 2 / (1 + draws)


@pytest.mark.parametrize("n", [16, 17, 18])
def test_monte_carlo_sign_flip_agrees_with_the_exact_p(n: int) -> None:
    """Forced onto the Monte Carlo path (exact_max_n below n), the p is the exact one within
    its Monte-Carlo error: a one-sided count, a missing +1 or a biased sign draw lands outside."""
    rng = np.random.default_rng([5, n])
    for shift in (0.0, 0.3, 0.6):
        deltas = rng.normal(shift, 1.0, size=n)
        exact, exact_name = paired.paired_test(deltas)
        mc, mc_name = paired.paired_test(deltas, exact_max_n=n - 1)
        assert (exact_name, mc_name) == (paired.SIGN_FLIP, paired.SIGN_FLIP_MC)
        assert abs(mc - exact) <= _mc_tolerance(exact), (n, shift, mc, exact)


def test_monte_carlo_sign_flip_above_twenty_units() -> None:
    """24 units (3 folds × 8 seeds), every Δ positive: only the observed pattern and its mirror
    reach |Σ Δ| (2 in 2^24), so p is the Monte Carlo floor 1/(1 + B), the min attainable p."""
    deltas = np.linspace(0.01, 0.3, 24)
    p, test = paired.paired_test(deltas)
    floor = 1 / (1 + paired.SIGN_FLIP_DRAWS)
    assert (
        test
        == paired.SIGN_FLIP_MC
        == "paired sign-flip permutation test (Monte Carlo, 100,000 sign patterns)"
    )
    assert floor <= p <= 3 * floor
    assert paired.min_attainable_p(24) == floor == paired.min_attainable_p(60)
    assert paired.paired_test(deltas) == (p, test)  # fixed seed: the report is reproducible
    # Δ = 0 has no sign to flip: 16 nonzero among 22 units is still tested exactly.
    mixed = np.concatenate([np.zeros(6), np.random.default_rng(2).normal(0.2, 1.0, 16)])
    assert paired.paired_test(mixed) == paired.paired_test(mixed[6:])
    assert paired.paired_test(mixed).test == paired.SIGN_FLIP


def test_monte_carlo_sign_flip_is_calibrated_on_heavy_tailed_heterogeneous_units() -> None:
    """Under the null, Δ_u = s_u · t(3) with a unit scale s_u spread over two decades (series
    and folds of very different difficulty): the rejection rate at α = 0.05 over 1000 studies
    of 24 units is α within 3 binomial standard errors, on both sides."""
    studies, n = 1000, 24
    rng = np.random.default_rng(24)
    scales = 10 ** rng.uniform(-1, 1, size=n)
    deltas = scales * rng.standard_t(3, size=(studies, n))
    rate = float((paired.sign_flip_mc_pvalues(deltas) <= ALPHA).mean())
    bound = 3 * math.sqrt(ALPHA * (1 - ALPHA) / studies)
    assert abs(rate - ALPHA) <= bound, rate


def test_pooled_sign_flip_over_units_equals_hand_enumeration() -> None:
    """2 series × 2 folds × 2 seeds = 8 units, pooled: p is the share of the 2^8 sign patterns
    whose |Σ ε Δ| reaches the observed |Σ Δ|. Dyadic Δ keep every sum exact, so ties are ties."""
    units = itertools.product(("series_a", "series_b"), (0, 1), (0, 1))
    numerators = [20, -8, 18, 3, 28, -5, 12, 15]
    deltas = {unit: k / 64 for unit, k in zip(units, numerators, strict=True)}
    values = list(deltas.values())
    observed = abs(sum(values))
    count = 0
    for signs in itertools.product((1, -1), repeat=len(values)):
        count += abs(sum(e * d for e, d in zip(signs, values, strict=True))) >= observed
    result = paired.paired_test(values)
    assert result.test == paired.SIGN_FLIP
    assert result.p == count / 2**8
    assert 2 / 2**8 < result.p < 0.1  # neither the floor nor trivially large: the check has teeth


def test_effect_size_probability_of_improvement_and_iqm() -> None:
    assert paired.cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert paired.probability_of_improvement([1, 2], [2, 0], higher_is_better=True) == pytest.approx(0.625)
    assert paired.probability_of_improvement([1, 2], [2, 0], higher_is_better=False) == pytest.approx(0.375)
    assert paired.probability_of_improvement([math.inf], [3.0], higher_is_better=False) == 0.0
    assert paired.paired_share([1.0, -1.0, 0.0, 2.0], higher_is_better=True) == pytest.approx(0.625)
    assert paired.paired_share([1.0, -1.0, 0.0, 2.0], higher_is_better=False) == pytest.approx(0.375)
    assert stats.iqm([0.0, 1.0, 2.0, 3.0, 100.0, -100.0, 1.5, 2.5]) == pytest.approx(1.75)
    low, high = stats.iqm_interval([0.1, 0.2, 0.3, 0.4, 0.5])
    assert low is not None and high is not None and 0.1 <= low < high <= 0.5


def test_a_censored_contrast_favours_the_side_its_rank_test_points_to() -> None:
    """16 seeds where a reaches naive one step earlier, 14 where a never does and b does
    early: most seeds favour a, but the mean rank difference (what is tested) favours b."""
    from workflow_scripts.reporting.contrasts import compare_pair

    a = {s: 10.0 for s in range(16)} | {s: math.inf for s in range(16, 30)}
    b = {s: 11.0 for s in range(16)} | {s: 5.0 for s in range(16, 30)}
    row = compare_pair(a, b, "first_step_beats_naive")
    assert row.paired_share > 0.5  # the majority of seeds says a
    assert row.improvement < 0  # the ranks (lower is better) say b


def test_pairs_with_zero_difference_do_not_count_towards_the_smallest_p() -> None:
    from workflow_scripts.reporting.contrasts import compare_pair

    a = {s: float(v) for s, v in enumerate([0, 0, 0, 1, 2, 3])}
    b = {s: 0.0 for s in range(6)}
    row = compare_pair(a, b, "test_skill")
    assert row.min_attainable_p == pytest.approx(2 / 2**3)
    assert row.p >= row.min_attainable_p


def test_mde_and_seeds_needed_are_at_holms_first_step_level() -> None:
    from study_builders import arm, run

    from workflow_scripts.reporting.contrasts import analyse

    rng = np.random.default_rng(4)
    runs = {
        name: arm([run(s, float(v)) for s, v in enumerate(values)])
        for name, values in {
            "a": rng.normal(1.0, 1.0, 10),
            "b": rng.normal(0.0, 1.0, 10),
            "c": rng.normal(0.0, 1.0, 10),
            "d": rng.normal(0.0, 1.0, 10),
        }.items()
    }
    specs = [{"a": "a", "b": x, "role": "secondary"} for x in ("b", "c", "d")]
    row = next(r for r in analyse(runs, specs, metrics=("test_skill",)).results if r.b == "b")
    level = 0.05 / 3
    assert row.power_alpha == pytest.approx(level)
    assert row.mde == pytest.approx(power.minimum_detectable_effect(row.sd_delta, 10, level))
    assert row.mde > power.mde_sd_units(10, 0.05) * row.sd_delta
    assert power.power_method(row.n) == power.SIMULATED and row.mde_power >= 0.8
