"""Nothing after the train split can change the train arrays or the normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.config.base import DataConfig
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.data.synthetic import synthetic_ohlc

SEQ_LEN = 12


def run(frame: pd.DataFrame, folder: Path) -> dict:
    source = folder / "bars.parquet"
    folder.mkdir()
    frame.to_parquet(source, index=False)
    spec = DataConfig(name="leak", path=str(source), timeframes=("h1", "h4", "d"), seq_len=SEQ_LEN)
    return preprocess(spec, folder / "derived")


def test_spike_after_train_end_leaves_train_files_byte_identical(tmp_path: Path) -> None:
    frame = synthetic_ohlc(2500, bar_seconds=3600)
    clean = run(frame, tmp_path / "clean")
    train_end = pd.Timestamp(clean["date_ranges"]["train"]["last_end"])
    # the train split ends mid-day, so the h4/d bars straddling it mix clean and spiked data
    assert train_end.hour % 24 != 0
    after = frame["timestamp"] >= train_end
    spiked = frame.copy()
    spiked.loc[after, ["open", "high", "low", "close"]] *= 1000.0
    first = int(np.flatnonzero(after.to_numpy())[0])
    spiked.loc[first + 3, "high"] *= 50.0
    dirty = run(spiked, tmp_path / "dirty")

    clean_dir, dirty_dir = tmp_path / "clean" / "derived", tmp_path / "dirty" / "derived"
    train_files = sorted(p.name for p in clean_dir.glob("train_*.npy"))
    assert len(train_files) == 2 + 2 * 3  # ends, end_times, bars and times per timeframe
    for name in [*train_files, "stats.json"]:
        assert (clean_dir / name).read_bytes() == (dirty_dir / name).read_bytes(), name
    # the spike did reach the later splits, so the comparison above is not vacuous
    for split in ("val", "test"):
        assert (clean_dir / f"{split}_h1.npy").read_bytes() != (dirty_dir / f"{split}_h1.npy").read_bytes()
    assert clean["windows"] == dirty["windows"]


def test_no_window_of_a_later_split_overlaps_an_earlier_one(tmp_path: Path) -> None:
    run(synthetic_ohlc(2500, bar_seconds=3600), tmp_path / "a")
    data = load_derived(tmp_path / "a" / "derived")
    hour = 3600 * 10**9
    lengths = {"h1": hour, "h4": 4 * hour, "d": 24 * hour}
    previous_end = None
    for split in ("train", "val", "test"):
        arrays = data.split(split)
        for j, tf in enumerate(data.timeframes):
            times = arrays.times[tf]
            ends = arrays.ends[:, j]
            # every bar of every window is complete at the sample's end instant
            assert np.all(times[ends - 1] + lengths[tf] <= arrays.end_times)
            if previous_end is not None:
                assert times[ends[0] - SEQ_LEN] >= previous_end
        previous_end = int(arrays.end_times[-1])
