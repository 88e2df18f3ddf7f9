"""The measures the report aggregates and compares (a run's per-seed numbers), with their direction.

"a better than b" must respect direction: skill and correlation are higher-is-better;
losses, the area under the validation-loss curve and the first step that beats the naive
baseline are lower-is-better. ``first_step_beats_naive`` is *censored*: a finished run that
never beat the naive baseline has no step, recorded as :data:`NEVER` and ranked worse than
any observed step.
"""

from __future__ import annotations

from dataclasses import dataclass

NEVER = "never"


@dataclass(frozen=True)
class MetricSpec:
    """Where a metric lives in a run's summary.json, which way is better, and whether the
    report's results table shows it (one line here adds a per-run number to the report)."""

    section: str
    key: str
    higher_is_better: bool
    title: str
    censored: bool = False
    in_results_table: bool = True

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"


#: summary.json metric name -> its spec; the first is the primary metric.
METRICS: dict[str, MetricSpec] = {
    "test_skill": MetricSpec("test", "skill", True, "test skill"),
    "test_skill_mae": MetricSpec("test", "skill_mae", True, "test skill on absolute errors"),
    "test_skill_price": MetricSpec("test", "skill_price", True, "test skill (price)", in_results_table=False),
    "test_skill_other": MetricSpec(
        "test", "skill_other", True, "test skill (other features)", in_results_table=False
    ),
    "auc_val_loss": MetricSpec("learning", "auc_val_loss", False, "area under the val-loss curve"),
    "first_step_beats_naive": MetricSpec(
        "learning", "first_step_beats_naive", False, "first step beating naive", censored=True
    ),
    "best_val_loss": MetricSpec("best", "val_loss", False, "best val_loss"),
    "best_val_correlation": MetricSpec("best", "val_correlation", True, "best val_correlation"),
}
#: THE primary metric: 1 − MSE(model)/MSE(strongest naive) on the held-out test split.
PRIMARY_METRIC = "test_skill"
#: The robust second metric: 1 − MAE(model)/MAE(strongest naive by validation MAE). A control is
#: detected only where both metrics detect it; the headline says whether the two answers agree.
MAE_METRIC = "test_skill_mae"
#: the paired learning-speed contrasts, computed for every planned contrast.
SPEED_METRICS = ("auc_val_loss", "first_step_beats_naive")
CONTRAST_METRICS = (PRIMARY_METRIC, MAE_METRIC, *SPEED_METRICS)
#: the test metrics scored under every mask draw and in every test period
TEST_METRICS = (PRIMARY_METRIC, MAE_METRIC)
