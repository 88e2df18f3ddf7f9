"""The Stage-1 task cannot be solved by copying: masks, window statistics and features, on real alignments.

Each test would fail with the earlier design: masks at the same *index* in every
timeframe (a masked day inside a visible week), statistics over the whole window
(a masked bar's value in the input through loc/scale), and delta_close (which rebuilds a
masked close from the visible bar after it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from workflow_scripts.config.base import ConfigError, DataConfig
from workflow_scripts.config.loader import load_experiment
from workflow_scripts.data.derived import DerivedDataset, load_derived
from workflow_scripts.data.pipeline import load_input, parse_timeframes, preprocess
from workflow_scripts.data.synthetic import synthetic_ohlc
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.training.batches import make_source
from workflow_scripts.training.masking import (
    aligned_span_masks,
    evaluation_masks,
    level_span_masks,
    level_spans,
    mask_owners,
    owner_span_masks,
    sample_span_masks,
)
from workflow_scripts.training.normalisation import make_batch, window_statistics

CPU = torch.device("cpu")
RATIO, SPAN = 0.15, 8


def _derived(tmp_path: Path, config: DataConfig) -> tuple[DerivedDataset, dict[str, dict[int, int]]]:
    """Preprocess ``config``; also return each bar's close instant by open instant, per timeframe."""
    preprocess(config, tmp_path / "derived")
    loaded = load_input(config, parse_timeframes(config.timeframes, config.kind))
    closes = {
        tf: dict(zip(bars.open_time.tolist(), bars.close_time.tolist(), strict=True))
        for tf, bars in zip(config.timeframes, loaded.bars, strict=True)
    }
    return load_derived(tmp_path / "derived"), closes


def _val_masks(dataset: DerivedDataset) -> tuple[np.ndarray, torch.Tensor]:
    """(open times ``[N, T, L]``, masks) of every validation window, as training scores them."""
    source = make_source(
        dataset.split("val"), dataset.timeframes, dataset.seq_len, device=CPU, split_name="val"
    )
    times = source.window_times(torch.arange(source.n_samples))
    bar_ns = [parse_timeframe(tf, "tf").ns for tf in dataset.timeframes]
    return times.numpy(), evaluation_masks(times, bar_ns, RATIO, SPAN, "val")


def _assert_leak_free(
    times: np.ndarray, masks: torch.Tensor, closes: dict[str, dict[int, int]], tfs: list[str]
) -> int:
    """Bar by bar: no visible bar of one timeframe overlaps in time a masked bar of another."""
    mask = masks.numpy()
    close = np.stack([np.vectorize(closes[tf].__getitem__)(times[:, j]) for j, tf in enumerate(tfs)], axis=1)
    checked = 0
    for a in range(len(tfs)):
        for b in range(len(tfs)):
            if a == b:
                continue
            # [N, L, L]: bar p of a overlaps bar q of b
            overlap = (times[:, a, :, None] < close[:, b, None, :]) & (
                times[:, b, None, :] < close[:, a, :, None]
            )
            leak = overlap & ~mask[:, a, :, None] & mask[:, b, None, :]
            assert not leak.any(), (
                f"visible {tfs[a]} bar overlaps a masked {tfs[b]} bar in sample {leak.any((1, 2)).argmax()}"
            )
            checked += int((overlap & mask[:, b, None, :]).sum())
    return checked


def _masked_share(masks: torch.Tensor) -> list[float]:
    return masks.float().mean(dim=(0, 2)).tolist()


def test_daily_and_weekly_masks_hide_the_same_time_on_the_embedded_series(tmp_path: Path) -> None:
    config = DataConfig(name="msft", timeframes=("d", "w"), seq_len=32, patch_len=8, sample_stride=2)
    dataset, closes = _derived(tmp_path, config)
    times, masks = _val_masks(dataset)
    overlapping = _assert_leak_free(times, masks, closes, ["d", "w"])
    assert overlapping > 100  # masked weeks that hold daily bars exist, and hide them all
    shares = _masked_share(masks)
    assert all(0.5 * RATIO < share < 2 * RATIO for share in shares), shares
    # the index-aligned masks of the old design leaked on the same data: same index, other time
    old = masks[:, :1, :].expand_as(masks)
    with pytest.raises(AssertionError, match="overlaps a masked"):
        _assert_leak_free(times, old, closes, ["d", "w"])


def test_hourly_four_hourly_and_daily_masks_are_leak_free(tmp_path: Path) -> None:
    frame = synthetic_ohlc(24 * 5 * 120, bar_seconds=3600, seed=5)
    frame.to_csv(tmp_path / "fx_h1.csv", index=False)
    config = DataConfig(
        name="fx", path=str(tmp_path / "fx_h1.csv"), timeframes=("h1", "h4", "d"), seq_len=48, patch_len=8,
        sample_stride=3,
    )  # fmt: skip
    dataset, closes = _derived(tmp_path, config)
    times, masks = _val_masks(dataset)
    assert _assert_leak_free(times, masks, closes, ["h1", "h4", "d"]) > 100
    shares = _masked_share(masks)
    # h1 and h4 are masked a whole day at a time, so their share varies more from window to window
    assert all(0.3 * RATIO < share < 3 * RATIO for share in shares), shares
    assert (masks.any(dim=(1, 2))).float().mean() > 0.5  # most windows are masked somewhere


def test_every_test_mask_draw_is_leak_free_the_same_for_every_run_and_they_cover_the_bars(
    tmp_path: Path,
) -> None:
    """The final test pass scores K draws: each obeys the leak-free rule, drawing them again (as
    every run does) gives the very same positions, and over the K draws each test bar is masked
    K x mask_ratio times on average (about once per 1 / mask_ratio draws), not on one draw's luck."""
    config = DataConfig(name="msft", timeframes=("d", "w"), seq_len=32, patch_len=8, sample_stride=2)
    dataset, closes = _derived(tmp_path, config)
    source = make_source(
        dataset.split("test"), dataset.timeframes, dataset.seq_len, device=CPU, split_name="test"
    )
    times = source.window_times(torch.arange(source.n_samples))
    bar_ns = [parse_timeframe(tf, "tf").ns for tf in dataset.timeframes]
    draws = 7
    masks = [evaluation_masks(times, bar_ns, RATIO, SPAN, "test", draw) for draw in range(draws)]
    for mask in masks:
        assert _assert_leak_free(times.numpy(), mask, closes, ["d", "w"]) > 0
    assert all(
        torch.equal(m, evaluation_masks(times, bar_ns, RATIO, SPAN, "test", d)) for d, m in enumerate(masks)
    )
    assert not torch.equal(masks[0], masks[1])
    counts = torch.stack(masks).sum(dim=0).float()  # times each (window, timeframe, bar) is masked
    daily = counts[:, 0, :]
    assert daily.mean().item() == pytest.approx(draws * RATIO, rel=0.25)
    assert (daily > 0).float().mean().item() > 0.5  # most bars are hidden by some draw


def test_training_masks_are_drawn_through_the_same_owners(tmp_path: Path) -> None:
    config = DataConfig(name="msft", timeframes=("d", "w"), seq_len=32, patch_len=8, sample_stride=2)
    dataset, closes = _derived(tmp_path, config)
    source = make_source(dataset.split("train"), ("d", "w"), 32, device=CPU, split_name="train")
    idx = torch.arange(0, source.n_samples, 7)
    times = source.window_times(idx)
    bar_ns = [parse_timeframe(tf, "tf").ns for tf in ("d", "w")]
    generator = torch.Generator().manual_seed(0)
    masks = aligned_span_masks(mask_owners(times, bar_ns), RATIO, SPAN, bar_ns, generator=generator)
    _assert_leak_free(times.numpy(), masks, closes, ["d", "w"])
    assert ((~masks).sum(dim=2) >= 2).all()  # every window keeps visible bars for its statistics


def test_a_masked_bar_changes_neither_the_model_input_nor_the_window_statistics() -> None:
    generator = torch.Generator().manual_seed(1)
    windows = torch.randn(4, 2, 16, 3, generator=generator).cumsum(dim=2)
    mask = torch.zeros(4, 2, 16, dtype=torch.bool)
    mask[:, :, 5:9] = True
    altered = windows.clone()
    altered[mask] = 1000.0  # every masked bar of every channel gets an absurd value
    first, second = make_batch(windows, mask, None, "window"), make_batch(altered, mask, None, "window")
    assert torch.equal(first.inputs, second.inputs)
    assert torch.equal(first.loc, second.loc) and torch.equal(first.scale, second.scale)
    assert not torch.equal(first.target, second.target)  # the answer is only in the target
    # whole-window statistics (what the mask must prevent) would have moved
    loc_all, _ = window_statistics(altered, None)
    assert not torch.allclose(loc_all, first.loc)
    # window units: each visible channel has mean 0 and std 1
    visible = (~mask)[..., None].float()
    mean = (first.inputs * visible).sum(dim=2) / visible.sum(dim=2)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)


def test_the_delta_close_identity_recovers_no_masked_close_with_the_default_features(tmp_path: Path) -> None:
    config = DataConfig(name="msft", timeframes=("d", "w"), seq_len=32, patch_len=8, sample_stride=2)
    dataset, _ = _derived(tmp_path, config)
    assert dataset.feature_names == ("open", "high", "low", "close")  # nothing encodes a neighbour
    # with the change features, close_t = close_{t+1} - delta_close_{t+1} would give it away
    changes = DataConfig(
        name="msft-changes", timeframes=("d", "w"), seq_len=32, patch_len=8, sample_stride=2,
        features="bars_and_changes",
    )  # fmt: skip
    leaky, _ = _derived(tmp_path / "changes", changes)
    bars = np.asarray(leaky.split("val").bars["d"], dtype=np.float64)
    stats = leaky.stats
    close = bars[:, 3] * stats["std"]["d"][3] + stats["mean"]["d"][3]
    delta = bars[:, 4] * stats["std"]["d"][4] + stats["mean"]["d"][4]
    rebuilt = close[1:] - delta[1:]
    assert np.mean(np.isclose(rebuilt, close[:-1], rtol=1e-5)) > 0.9  # the leak the default removes
    with pytest.raises(ConfigError, match="bars_and_changes with task reconstruct is refused"):
        load_experiment({"data": {"features": "bars_and_changes"}})


def test_owners_computed_once_with_the_source_equal_the_per_batch_ones(tmp_path: Path) -> None:
    """The lean step looks owners up (issue 20); they are exactly what each batch used to compute."""
    config = DataConfig(name="msft", timeframes=("d", "w"), seq_len=32, patch_len=8, sample_stride=2)
    dataset, _closes = _derived(tmp_path, config)
    bar_ns = [parse_timeframe(tf, "tf").ns for tf in ("d", "w")]
    source = make_source(
        dataset.split("train"), ("d", "w"), 32, device=CPU, split_name="train", bar_ns=bar_ns
    )
    assert source.owners is not None and source.owners.shape == (source.n_samples, 2 * 32)
    idx = torch.randperm(source.n_samples, generator=torch.Generator().manual_seed(1))[:300]
    owner_tf, owner_pos = mask_owners(source.window_times(idx), bar_ns)
    per_batch = (owner_tf * 32 + owner_pos).reshape(len(idx), -1)
    assert torch.equal(source.owner_index(idx), per_batch)
    assert (source.owner_index(idx) >= 32).any()  # some daily bars are owned by a weekly bar
    # The same masks, draw for draw, as the per-timeframe draws over the per-batch owners.
    first, second = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    looked_up = owner_span_masks(source.owner_index(idx), 32, RATIO, SPAN, bar_ns, generator=first)
    computed = aligned_span_masks((owner_tf, owner_pos), RATIO, SPAN, bar_ns, generator=second)
    assert torch.equal(looked_up, computed) and looked_up.any()


@pytest.mark.parametrize("bar_ns", [(60,), (60, 300), (86_400, 604_800, 3_600)])
def test_span_masks_of_all_timeframes_at_once_equal_one_draw_per_timeframe(bar_ns: tuple[int, ...]) -> None:
    for length, ratio, span, batch in [
        (8, 0.5, 3, 7),
        (32, 0.15, 8, 64),
        (128, 0.15, 8, 32),
        (128, 0.9, 40, 5),
    ]:
        first, second = torch.Generator().manual_seed(length), torch.Generator().manual_seed(length)
        spans = level_spans(span, bar_ns)
        one_by_one = torch.stack(
            [sample_span_masks(batch, length, ratio, s, generator=first) for s in spans], 1
        )
        at_once = level_span_masks(batch, length, ratio, span, bar_ns, generator=second, device=CPU)
        assert torch.equal(one_by_one, at_once)
        assert torch.equal(first.get_state(), second.get_state())  # the same draws were made
