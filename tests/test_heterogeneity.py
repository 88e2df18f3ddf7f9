"""The arm × period heterogeneity test: calibrated on simulated studies, exact on small ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from workflow_scripts.reporting.heterogeneity import heterogeneity_test, interaction_statistic

ALPHA = 0.05


def _study(rng: np.random.Generator, effects: list[float], seeds: int = 8) -> np.ndarray:
    """Δ[s, p]: a per-period effect, a large per-seed offset shared by its periods, and noise."""
    offsets = rng.normal(0.0, 0.1, size=(seeds, 1))
    return np.asarray(effects)[None, :] + offsets + rng.normal(0.0, 0.03, size=(seeds, len(effects)))


def test_a_homogeneous_effect_is_not_called_heterogeneous_beyond_alpha() -> None:
    """200 studies whose effect is −0.1 in every period: rejections at about α (binomial bound)."""
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(200):
        result = heterogeneity_test(
            _study(rng, [-0.1] * 4), permutations=499, seed=int(rng.integers(1 << 30))
        )
        assert result is not None
        rejections += result.p <= ALPHA
    # 200 draws at a true rate of 0.05: more than 20 rejections has probability < 0.3%.
    assert rejections <= 20, rejections


def test_an_effect_that_flips_sign_in_one_period_is_detected() -> None:
    """Δ −0.1 in three periods and +0.1 in the fourth: detected in nearly every study."""
    rng = np.random.default_rng(2)
    detected = sum(
        heterogeneity_test(_study(rng, [-0.1, -0.1, -0.1, 0.1]), permutations=499, seed=k).p <= ALPHA  # type: ignore[union-attr]
        for k in range(50)
    )
    assert detected >= 45, detected


def test_the_seed_offset_does_not_hide_or_fake_an_interaction() -> None:
    """A per-seed offset 30x the cell noise is removed by permuting within seeds: a test that
    permuted across seeds would drown the flip in it."""
    rng = np.random.default_rng(3)
    flip = _study(rng, [-0.05, -0.05, 0.05, 0.05])
    flip += rng.normal(0.0, 1.0, size=(flip.shape[0], 1))
    result = heterogeneity_test(flip, permutations=999)
    assert result is not None and result.p <= ALPHA


def test_small_studies_are_enumerated_exactly() -> None:
    deltas = np.array([[0.1, -0.1], [0.2, -0.2]])
    result = heterogeneity_test(deltas)
    assert result is not None and result.permutations == "exact"
    # Hand enumeration: each seed's row kept or swapped (4 patterns); Q is largest for the
    # observed pattern and its mirror, the two patterns with both rows swapped alike.
    stats = []
    for swaps in itertools.product([False, True], repeat=2):
        rows = [row[::-1] if swap else row for row, swap in zip(deltas, swaps, strict=True)]
        stats.append(interaction_statistic(np.array(rows)))
    observed = interaction_statistic(deltas)
    assert result.p == pytest.approx(sum(s >= observed - 1e-12 for s in stats) / 4) == 0.5


def test_too_little_data_gives_no_test() -> None:
    assert heterogeneity_test(np.ones((1, 4))) is None
    assert heterogeneity_test(np.ones((5, 1))) is None
    assert heterogeneity_test(np.array([[0.1, np.nan], [0.2, 0.3]])) is None
