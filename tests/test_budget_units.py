"""The budget curve's inputs: the test schedule in the config and each run's convergence (issue 18)."""

from __future__ import annotations

import pytest
import yaml

from workflow_scripts.config.base import ConfigError
from workflow_scripts.config.loader import load_experiment
from workflow_scripts.training.evaluation import budget_curve, convergence
from workflow_scripts.training.run_contract import CONVERGED_GAIN, BudgetScore


def _history(losses: list[float], steps: int = 25) -> list[dict[str, float]]:
    return [{"epoch": e, "step": e * steps, "val_loss": v} for e, v in enumerate(losses, start=1)]


def test_a_run_still_improving_in_its_last_quarter_has_not_converged() -> None:
    result = convergence(_history([1.0, 0.8, 0.7, 0.65, 0.6, 0.58, 0.55, 0.53]))
    assert result["quarter_from"] == 150  # k = 6 of 8 epochs
    assert result["last_quarter_gain"] == pytest.approx((0.58 - 0.53) / 0.58)
    assert result["best_in_last_quarter"] is True and result["converged"] is False


def test_a_flat_last_quarter_has_converged_and_a_noisy_rise_counts_as_no_gain() -> None:
    flat = convergence(_history([1.0, 0.6, 0.55, 0.5, 0.5, 0.5, 0.5 * (1 - CONVERGED_GAIN / 2), 0.51]))
    assert flat["converged"] is True and flat["best_in_last_quarter"] is True
    risen = convergence(_history([1.0, 0.6, 0.5, 0.55, 0.56, 0.57, 0.6, 0.62]))
    assert risen["last_quarter_gain"] == 0.0 and risen["best_in_last_quarter"] is False
    assert convergence(_history([1.0]))["converged"] is False  # one epoch says nothing


def test_budget_curve_keeps_only_the_scheduled_rows() -> None:
    rows = _history([1.0, 0.9, 0.8])
    rows[0].update(budget_test_skill=-0.5, budget_test_loss=1.5)
    rows[2].update(budget_test_skill=-0.1, budget_test_loss=1.1)
    assert [p.step for p in budget_curve(rows)] == [25, 75]
    assert budget_curve(rows)[1] == BudgetScore(step=75, test_skill=-0.1, test_loss=1.1, val_loss=0.8)


def test_test_budgets_must_be_epoch_ends_within_the_run() -> None:
    with open("config/offline.yaml", encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    raw["train"]["test_budgets"] = "every_epoch"
    every = load_experiment(raw).variants["baseline"].train
    assert every.budget_steps() == tuple(range(25, 201, 25))
    raw["train"]["test_budgets"] = [50, 200]
    assert load_experiment(raw).variants["baseline"].train.budget_steps() == (50, 200)
    raw["train"]["test_budgets"] = [60, 400]
    with pytest.raises(ConfigError, match=r"test_budgets: \[60, 400\] are not epoch ends"):
        load_experiment(raw)
