"""Unit tests of the training building blocks: masks, metrics, baselines, schedule, precision, state."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from workflow_scripts.training.batches import DataShapeError, epoch_order, eval_subset, make_source
from workflow_scripts.training.masking import evaluation_masks, sample_span_masks, span_count
from workflow_scripts.training.naive import (
    forecast_baselines,
    reconstruct_baselines,
    season_length,
    timeframe_seconds,
)
from workflow_scripts.training.optim import Schedule
from workflow_scripts.training.outputs import METRIC_COLUMNS, metrics_csv_text
from workflow_scripts.training.precision import PrecisionError, resolve_precision
from workflow_scripts.training.resume import MODEL_FILE, ResumeStore
from workflow_scripts.training.running_scores import (
    StreamingMetrics,
    masked_mse,
    pearson_from_sums,
    to_channels,
)

CPU = torch.device("cpu")


# ---------------------------------------------------------------------- masking


def test_span_masks_are_contiguous_non_overlapping_and_about_the_ratio() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = sample_span_masks(200, 128, 0.15, 8, generator=generator)
    count, span = span_count(128, 0.15, 8)
    assert masks.shape == (200, 128) and masks.dtype == torch.bool
    assert torch.all(masks.sum(1) == count * span)  # spans never overlap
    assert abs(count * span / 128 - 0.15) < 0.05
    # every run of masked bars is a multiple of the span length (adjacent spans may touch)
    for row in masks[:20]:
        padded = torch.cat([torch.tensor([False]), row, torch.tensor([False])]).int()
        edges = torch.diff(padded)
        lengths = (edges == -1).nonzero().flatten() - (edges == 1).nonzero().flatten()
        assert torch.all(lengths % span == 0)


def test_evaluation_masks_are_fixed_whatever_the_global_rng_and_differ_between_splits() -> None:
    minute = 60_000_000_000
    times = torch.stack([torch.arange(32) * minute, torch.arange(32) * 4 * minute])[None].repeat(50, 1, 1)
    times = times + torch.arange(50)[:, None, None] * 4 * minute
    torch.manual_seed(1)
    first = evaluation_masks(times, [minute, 4 * minute], 0.25, 4, "val")
    torch.manual_seed(2)
    torch.rand(10)
    assert torch.equal(first, evaluation_masks(times, [minute, 4 * minute], 0.25, 4, "val"))
    assert not torch.equal(first, evaluation_masks(times, [minute, 4 * minute], 0.25, 4, "test"))


def test_span_count_validates_and_caps() -> None:
    assert span_count(8, 0.5, 16) == (1, 8)
    with pytest.raises(ValueError, match="mask_ratio"):
        span_count(32, 0.0, 4)


# ---------------------------------------------------------------------- metrics


def test_running_scores_match_scipy_and_numpy_over_batches_with_masks() -> None:
    rng = np.random.default_rng(0)
    n, channels = 1000, 5
    target = rng.standard_normal((n, channels))
    pred = 0.6 * target + 0.8 * rng.standard_normal((n, channels)) + 0.3
    weight = rng.random(n) < 0.3
    metrics = StreamingMetrics(channels)
    for start in range(0, n, 97):  # uneven batches: per-batch averaging would differ
        sl = slice(start, start + 97)
        metrics.update(torch.tensor(pred[sl]), torch.tensor(target[sl]), torch.tensor(weight[sl]))
    result = metrics.result()
    p, t = pred[weight], target[weight]
    expected_r = [stats.pearsonr(p[:, c], t[:, c]).statistic for c in range(channels)]
    np.testing.assert_allclose(result.channel_correlation, expected_r, rtol=1e-10)
    assert result.correlation == pytest.approx(np.mean(expected_r), rel=1e-10)
    assert result.loss == pytest.approx(np.mean((p - t) ** 2), rel=1e-10)
    assert result.mae == pytest.approx(np.mean(np.abs(p - t)), rel=1e-10)
    np.testing.assert_allclose(result.channel_sse, ((p - t) ** 2).sum(0), rtol=1e-10)
    assert result.group_mse([1, 3]) == pytest.approx(np.mean((p - t)[:, [1, 3]] ** 2), rel=1e-10)
    assert result.count == int(weight.sum())


def test_constant_prediction_counts_as_zero_correlation_not_nan() -> None:
    n = np.full(2, 10.0)
    x = np.array([3.0] * 10)
    y = np.arange(10.0)
    r = pearson_from_sums(n, np.full(2, x.sum()), np.full(2, y.sum()), np.full(2, (x * x).sum()),
                          np.full(2, (y * y).sum()), np.full(2, (x * y).sum()))  # fmt: skip
    assert np.all(r == 0.0)


def test_to_channels_orders_timeframe_then_feature() -> None:
    values = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # B, T, L, F
    flat = to_channels(values)
    assert flat.shape == (8, 15)
    assert flat[1 * 4 + 2, 2 * 5 + 3] == values[1, 2, 2, 3]


def test_masked_mse_uses_masked_bars_only() -> None:
    pred = torch.zeros(1, 2, 4, 3)
    target = torch.ones(1, 2, 4, 3)
    target[:, :, 0] = 5.0  # unmasked bar with a large error must not count
    mask = torch.tensor([[False, True, True, False]]).expand(1, 2, 4)
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    assert masked_mse(pred, target, None).item() == pytest.approx((25 * 6 + 18) / 24)
    only_first = mask.clone()
    only_first[:, 1] = False  # masks differ per timeframe: only timeframe 0's cells count
    target[:, 1] = 100.0
    assert masked_mse(pred, target, only_first).item() == pytest.approx(1.0)


# ---------------------------------------------------------------------- naive baselines


def test_linear_interpolation_and_last_value_fill_masked_spans() -> None:
    windows = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).reshape(1, 1, 8, 1) ** 2
    mask = torch.tensor([[[False, True, True, False, False, False, True, True]]])
    loc = windows[0, 0][~mask[0, 0]].mean().reshape(1, 1, 1, 1)
    out = reconstruct_baselines(windows, mask[:, :, :], loc)
    assert set(out) == {"window_mean", "last_value", "linear_interpolation"}  # no OHLC columns given
    assert torch.all(out["window_mean"] == loc)
    mask = mask[0]
    interp = out["linear_interpolation"].flatten()
    assert interp[1].item() == pytest.approx(0 + (9 - 0) / 3)
    assert interp[2].item() == pytest.approx(0 + 2 * (9 - 0) / 3)
    assert interp[6:].tolist() == [25.0, 25.0]  # trailing span: the last visible bar
    assert out["last_value"].flatten()[1:3].tolist() == [0.0, 0.0]
    assert torch.equal(interp[~mask[0]], windows.flatten()[~mask[0]])


def test_forecast_baselines_repeat_last_bar_and_last_season() -> None:
    windows = torch.arange(10.0).reshape(1, 1, 10, 1)
    out = forecast_baselines(windows, horizon=5, seasons=[3])
    assert out["last_value"].flatten().tolist() == [9.0] * 5
    assert out["window_mean"].flatten().tolist() == [4.5] * 5
    assert out["seasonal_naive"].flatten().tolist() == [7.0, 8.0, 9.0, 7.0, 8.0]


def test_season_length_from_names_and_from_bar_times() -> None:
    assert timeframe_seconds("m5") == 300 and timeframe_seconds("1h") == 3600
    assert timeframe_seconds("d") == 86400 and timeframe_seconds("quarterly") is None
    assert season_length("h1", 128, 16) == 24
    assert season_length("d", 128, 16) == 7
    day = 86_400 * 10**9
    weekdays = np.array([d * day for d in range(70) if d % 7 < 5], dtype=np.int64)
    assert season_length("d", 128, 16, weekdays) == 5  # a trading week
    assert season_length("m1", 128, 16) == 16  # a day of minutes exceeds the window: horizon


# ---------------------------------------------------------------------- schedule and precision


def test_schedule_warms_up_decays_to_min_and_delays_the_encoder() -> None:
    schedule = Schedule(total_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert schedule.factor(0) == pytest.approx(0.1)
    assert schedule.factor(9) == pytest.approx(1.0)
    assert schedule.factor(99) == pytest.approx(0.1, abs=1e-3)
    assert schedule.factor(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule.factor(19, start_step=20) == 0.0
    assert schedule.factor(20, start_step=20) == pytest.approx(0.1 * schedule.factor(20))


def test_fp16_with_t5_is_refused_unless_forced() -> None:
    with pytest.raises(PrecisionError, match="float16"):
        resolve_precision("fp16", CPU, model_type="t5")
    assert resolve_precision("fp16", CPU, model_type="t5", force_fp16=True).name == "fp16"
    assert resolve_precision("fp16", CPU, model_type="bert").uses_grad_scaler
    assert resolve_precision("fp32", CPU, model_type="t5").autocast_dtype is None
    assert resolve_precision("auto", CPU, model_type="t5").name in ("bf16", "fp32")


# ---------------------------------------------------------------------- batches


class _Split:
    def __init__(self, bars: dict[str, np.ndarray], ends: np.ndarray) -> None:
        self.bars, self.ends = bars, ends
        self.times = {
            tf: np.arange(len(values), dtype=np.int64) * (1 + i)
            for i, (tf, values) in enumerate(bars.items())
        }


def test_windows_and_forecast_targets_follow_the_ends_contract() -> None:
    bars = {
        "a": np.arange(40, dtype=np.float32).reshape(20, 2),
        "b": np.arange(20, dtype=np.float32).reshape(10, 2),
    }
    ends = np.array([[4, 3], [10, 5], [18, 9]])
    source = make_source(_Split(bars, ends), ("a", "b"), 3, horizon=2, device=CPU, split_name="val")
    assert source.sample_ids.tolist() == [0, 1]  # sample 2 has no 2 future bars in "b"
    idx = torch.tensor([1])
    windows, targets = source.windows(idx), source.targets(idx)
    assert windows.shape == (1, 2, 3, 2) and targets.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(windows[0, 0].numpy(), bars["a"][7:10])
    np.testing.assert_array_equal(targets[0, 1].numpy(), bars["b"][5:7])
    with pytest.raises(DataShapeError, match="timeframe 'a'"):
        make_source(_Split(bars, np.array([[2, 3]])), ("a", "b"), 3, device=CPU, split_name="train")


def test_epoch_order_covers_samples_before_repeating_and_eval_subset_spreads() -> None:
    order = epoch_order(10, 3, 4, torch.Generator().manual_seed(0))
    assert order.shape == (3, 4)
    assert sorted(order.flatten()[:10].tolist()) == list(range(10))
    subset = eval_subset(1000, 10, 3)
    assert len(subset) == 30 and subset[0] == 0 and subset[-1] == 999
    assert len(eval_subset(20, 10, 3)) == 20


# ---------------------------------------------------------------------- resume state and outputs


def _save(store: ResumeStore, epoch: int) -> None:
    tensors = {"w": torch.full((3,), float(epoch))}
    store.save(epoch, {"history": [], "x": epoch}, tensors, {"state": {}, "param_groups": []}, tensors)


def test_resume_store_round_trip_and_keeps_only_the_latest_epoch(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path, "key")
    _save(store, 1)
    _save(store, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0002"]
    loaded = ResumeStore(tmp_path, "key").load()
    assert loaded is not None and loaded.epoch == 2 and loaded.state["x"] == 2
    assert torch.equal(loaded.model["w"], torch.full((3,), 2.0))


def test_corrupted_resume_state_is_discarded_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ResumeStore(tmp_path, "key")
    _save(store, 1)
    target = tmp_path / "epoch-0001" / MODEL_FILE
    target.write_bytes(target.read_bytes()[:-7])  # truncated
    with caplog.at_level(logging.WARNING):
        assert ResumeStore(tmp_path, "key").load() is None
    assert "corrupted" in caplog.text and "checksum" in caplog.text
    assert not list(tmp_path.iterdir())


def test_resume_state_of_another_configuration_is_never_loaded(tmp_path: Path) -> None:
    _save(ResumeStore(tmp_path, "old-key"), 1)
    assert ResumeStore(tmp_path, "new-key").load() is None
    assert not list(tmp_path.iterdir())
    manifest = tmp_path / "epoch-0001" / "manifest.json"
    _save(ResumeStore(tmp_path, "k"), 1)
    manifest.write_text(json.dumps({"key": "k"}))
    assert ResumeStore(tmp_path, "k").load() is None


def test_metrics_csv_has_the_design_columns_and_exact_floats() -> None:
    row = {column: 0.1 + i for i, column in enumerate(METRIC_COLUMNS)}
    row.update(epoch=1, encoder_frozen=True)
    text = metrics_csv_text([row])
    header, line = text.splitlines()
    assert header.split(",") == list(METRIC_COLUMNS)
    values = line.split(",")
    assert values[0] == "1" and values[METRIC_COLUMNS.index("encoder_frozen")] == "1"
    assert float(values[METRIC_COLUMNS.index("train_loss")]) == row["train_loss"]
    del row["test_skill"]  # test numbers exist only on the kept epoch's row: elsewhere the cell is empty
    assert metrics_csv_text([row]).splitlines()[1].split(",")[METRIC_COLUMNS.index("test_skill")] == ""
