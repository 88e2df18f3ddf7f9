"""The final test pass: several mask draws, contiguous test periods and an MAE-based skill."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.training_support import write_synthetic_derived
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.training.evaluation import (
    build_eval_split,
    feature_groups,
    make_scorer,
    strongest_naive,
)
from workflow_scripts.training.final_test import (
    NaiveChoices,
    cut_periods,
    final_test_pass,
    mae_skill,
    score_parts,
    strongest_naive_mae,
)
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.running_scores import MetricResult

CPU = torch.device("cpu")


def test_periods_are_contiguous_and_equal_in_windows() -> None:
    ends = np.arange(10, 110, dtype=np.int64) * 1_000
    periods = cut_periods(ends, 4)
    assert periods.ids.tolist() == sorted(periods.ids.tolist())  # contiguous in time
    assert np.bincount(periods.ids).tolist() == [25, 25, 25, 25]
    assert periods.bounds[0] == (10_000, 34_000) and periods.bounds[-1] == (85_000, 109_000)
    assert len(cut_periods(ends[:3], 4).bounds) == 3  # never an empty period


def _result(sae: list[float], sse: list[float], count: list[float]) -> MetricResult:
    return MetricResult(0.0, sum(sse) / sum(count), sum(sae) / sum(count), (0.0,) * len(sae), 1, tuple(sse),
                        tuple(count), tuple(sae))  # fmt: skip


def test_the_mae_skill_equals_a_hand_computation() -> None:
    """Two groups: the naive MAE combines each group's own choice (chosen on validation MAE)."""
    groups = {"price": [0, 1], "other": [2]}
    model = _result([2.0, 4.0, 3.0], [9.0, 9.0, 9.0], [10.0, 10.0, 10.0])
    naive = {
        "last_value": _result([4.0, 6.0, 9.0], [1.0, 1.0, 1.0], [10.0, 10.0, 10.0]),
        "window_mean": _result([8.0, 8.0, 5.0], [1.0, 1.0, 1.0], [10.0, 10.0, 10.0]),
    }
    choice = strongest_naive_mae(naive, groups)
    assert choice == {"price": "last_value", "other": "window_mean"}
    # model MAE (2 + 4 + 3) / 30 = 0.3; naive MAE (4 + 6 + 5) / 30 = 0.5: skill 1 − 0.3 / 0.5 = 0.4
    assert mae_skill(model, naive, choice, groups) == pytest.approx(0.4)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("test_pass")
    dataset = load_derived(write_synthetic_derived(root / "derived"))
    bar_ns = [parse_timeframe(tf, "tf").ns for tf in dataset.timeframes]
    scorer = make_scorer(
        dataset, task="reconstruct", horizon=0, normalisation="window", device=CPU, bar_ns=bar_ns
    )

    def split(name: str, draw: int):  # type: ignore[no-untyped-def]
        return build_eval_split(
            name,
            dataset.split(name),
            dataset.timeframes,
            seq_len=dataset.seq_len,
            horizon=0,
            device=CPU,
            batch_size=32,
            max_batches=None,
            masking=(0.25, 4, bar_ns),
            draw=draw,
        )

    val = split("val", 0)
    naive_val = scorer.naive(val)
    groups = feature_groups(len(dataset.timeframes), list(dataset.feature_names))
    choices = NaiveChoices(strongest_naive(naive_val, groups), strongest_naive_mae(naive_val, groups))
    draws = [split("test", d) for d in range(3)]
    periods = cut_periods(np.asarray(dataset.split("test").end_times), 4)
    return scorer, draws, periods, choices, groups


def _zero(batch: Batch, _idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """A 'model' that predicts each window's visible mean (0 in window units)."""
    return {"model": torch.zeros_like(batch.target)}


def test_the_periods_of_one_draw_add_up_to_the_whole(scored) -> None:  # type: ignore[no-untyped-def]
    scorer, draws, periods, _, _ = scored
    parts = score_parts(scorer, draws[0], _zero, torch.from_numpy(periods.ids), len(periods.bounds))
    whole, rest = parts[0], parts[1:]
    assert whole is not None and all(part is not None for part in rest)
    for name in ("model", "last_value"):
        total = np.sum([part[name].channel_sse for part in rest], axis=0)  # type: ignore[index]
        assert total == pytest.approx(whole[name].channel_sse)
        counts = np.sum([part[name].channel_count for part in rest], axis=0)  # type: ignore[index]
        assert counts.tolist() == list(whole[name].channel_count)
    # the whole equals the scorer's own naive pass on the same draw
    assert whole["last_value"].loss == pytest.approx(scorer.naive(draws[0])["last_value"].loss)


def test_the_test_skill_is_the_mean_over_the_draws(scored) -> None:  # type: ignore[no-untyped-def]
    scorer, draws, periods, choices, groups = scored
    names = [f"c{i}" for i in range(4)]
    scores = final_test_pass(scorer, draws, lambda _split: _zero, periods, choices, groups, names)
    assert len(scores.draws) == 3 and len({d.skill for d in scores.draws}) == 3  # the draws differ
    assert scores.skill == pytest.approx(np.mean([d.skill for d in scores.draws]))
    assert scores.skill_mae == pytest.approx(np.mean([d.skill_mae for d in scores.draws]))
    assert len(scores.periods) == 4
    assert sum(p.n_windows for p in scores.periods) == scores.n_windows == draws[0].n_samples
    assert [p.start for p in scores.periods] == sorted(p.start for p in scores.periods)
    assert scores.strongest_naive_mae == choices.mae
    one = final_test_pass(scorer, draws[:1], lambda _split: _zero, periods, choices, groups, names)
    assert one.skill == pytest.approx(scores.draws[0].skill)  # draw 0 alone: the old single-draw number
