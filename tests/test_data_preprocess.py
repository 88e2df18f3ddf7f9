"""The preprocess entry point end to end, each input kind, the reader and the benchmark."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.config.base import DataConfig
from workflow_scripts.data.benchmark import benchmark_preprocess
from workflow_scripts.data.derived import DerivedFormatError, load_derived
from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.data.synthetic import synthetic_ohlc
from workflow_scripts.jobs.io_utils import sha256_file
from workflow_scripts.preprocess import main

OHLC = {"open": "first", "high": "max", "low": "min", "close": "last"}


@pytest.fixture(autouse=True)
def restore_log_handlers() -> Iterator[None]:
    """main() adds a stderr handler bound to this test's captured stream; drop it afterwards."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)


def m5_frame() -> pd.DataFrame:
    return synthetic_ohlc(3000, bar_seconds=300, seed=3)


def test_entry_point_end_to_end_on_csv(tmp_path: Path) -> None:
    source = tmp_path / "eurusd_m5.csv"
    m5_frame().to_csv(source, index=False)
    params = {
        "name": "fx",
        "path": str(source),
        "kind": "ohlc",
        "timeframes": ["m5", "m15", "h1"],
        "seq_len": 16,
    }
    out = tmp_path / "derived" / "fx" / "fold0"  # as rules/data.smk calls it
    assert main(["--data-json", json.dumps(params), "--fold", "0", "--out-dir", str(out)]) == 0
    data = load_derived(out)
    assert data.timeframes == ("m5", "m15", "h1")
    assert data.feature_names == ("open", "high", "low", "close")
    manifest = data.manifest
    assert manifest["inputs"][0]["sha256"] == sha256_file(source)
    assert manifest["config"] == DataConfig.from_params(params).to_params()
    assert manifest["rows"] == {"m5": 3000, "m15": 1000, "h1": 250}
    for split in ("train", "val", "test"):
        arrays = data.split(split)
        assert len(arrays) == manifest["windows"][split] > 0
        assert arrays.ends.shape == (len(arrays), 3)
        window = arrays.window(0, data.seq_len)
        assert [w.shape for w in window.values()] == [(16, 4)] * 3  # open, high, low, close
    train = np.asarray(data.split("train").bars["m15"], dtype=np.float64)
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-4)
    assert (manifest["fold"], manifest["folds"]) == (0, 1)
    assert sorted(p.name for p in out.parent.iterdir()) == ["fold0"]  # no temporary sibling left


def test_entry_point_builds_the_fold_it_is_given(tmp_path: Path) -> None:
    """--fold F builds fold F of data.folds: the last fold has the single split's windows, the
    earlier fold trains on fewer (an expanding window)."""
    source = tmp_path / "eurusd_m5.csv"
    m5_frame().to_csv(source, index=False)
    params = {"name": "fx", "path": str(source), "timeframes": ["m5", "m15", "h1"], "seq_len": 16}
    single = preprocess(DataConfig(**params), tmp_path / "single")  # data.folds = 1
    folds = {**params, "folds": 2}
    out = tmp_path / "derived" / "fx"
    for fold in (0, 1):
        argv = ["--data-json", json.dumps(folds), "--fold", str(fold), "--out-dir", str(out / f"fold{fold}")]
        assert main(argv) == 0
    first, last = (load_derived(out / f"fold{fold}").manifest for fold in (0, 1))
    assert (first["fold"], first["folds"], last["fold"], last["folds"]) == (0, 2, 1, 2)
    assert last["windows"] == single["windows"]
    assert first["windows"]["train"] < last["windows"]["train"]
    assert sorted(p.name for p in out.iterdir()) == ["fold0", "fold1"]


def test_derived_dir_gives_the_same_arrays_as_resampling(tmp_path: Path) -> None:
    frame = m5_frame()
    raw = tmp_path / "bars.parquet"
    frame.to_parquet(raw, index=False)
    spec = {"name": "fx", "path": str(raw), "timeframes": ("m5", "m15", "h1"), "seq_len": 16}
    preprocess(DataConfig(**spec), tmp_path / "from_raw")

    folder = tmp_path / "dir"
    folder.mkdir()
    indexed = frame.set_index("timestamp")
    indexed.to_parquet(folder / "eurusd_m5.parquet")
    indexed.resample("15min").agg(OHLC).dropna().reset_index().to_parquet(folder / "eurusd_M15.parquet")
    # no timeframe token in the name: inferred from the bar spacing
    indexed.resample("1h").agg(OHLC).dropna().to_parquet(folder / "eurusd-hourly.parquet")
    indexed.resample("1D").agg(OHLC).dropna().to_parquet(folder / "eurusd_d.parquet")  # not configured
    manifest = preprocess(
        DataConfig(**{**spec, "path": str(folder), "kind": "derived_dir"}), tmp_path / "from_dir"
    )

    assert [i["timeframe"] for i in manifest["inputs"]] == ["m5", "m15", "h1"]
    assert manifest["inputs"][2]["path"].endswith("eurusd-hourly.parquet")
    for file in [*sorted((tmp_path / "from_raw").glob("*.npy")), tmp_path / "from_raw" / "stats.json"]:
        assert file.read_bytes() == (tmp_path / "from_dir" / file.name).read_bytes(), file.name


def test_generic_numeric_columns(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=400, freq="h")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"time": times, "load": rng.normal(size=400), "temp": np.arange(400.0), "site": "A"})
    source = tmp_path / "sensors.csv"
    frame.to_csv(source, index=False)
    spec = DataConfig(name="g", path=str(source), kind="generic", timeframes=("h1", "h4"), seq_len=8)
    manifest = preprocess(spec, tmp_path / "g")
    data = load_derived(tmp_path / "g")
    assert data.feature_names == ("load", "temp") and manifest["rows"] == {"h1": 400, "h4": 100}
    h4 = data.denormalise("h4", np.asarray(data.split("train").bars["h4"]), features=None)
    # h4 bars are bucket means: temp 0..3 -> 1.5, 4..7 -> 5.5, ...
    np.testing.assert_allclose(h4[:, 1] % 4, 1.5, atol=1e-4)
    picked = DataConfig(
        name="g", path=str(source), kind="generic", timeframes=("h1",), seq_len=8, columns=("temp",)
    )
    preprocess(picked, tmp_path / "g1")
    assert load_derived(tmp_path / "g1").feature_names == ("temp",)


ENCODINGS = {
    "aware_dst_offsets": (lambda t: t.dt.tz_convert("Europe/Berlin").astype(str), "csv"),
    "dukascopy_layout": (lambda t: t.dt.strftime("%d.%m.%Y %H:%M:%S.000"), "csv"),
    "epoch_ms": (lambda t: t.astype("int64") // 10**6, "csv"),
    "naive_datetime64": (lambda t: t.dt.tz_localize(None), "parquet"),
    "yyyymmdd_int": (lambda t: t.dt.strftime("%Y%m%d").astype(int), "csv"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_timestamp_encodings_give_identical_output(tmp_path: Path, encoding: str) -> None:
    encode, suffix = ENCODINGS[encoding]
    daily = encoding == "yyyymmdd_int"
    frame = synthetic_ohlc(600, bar_seconds=86_400 if daily else 3600)
    reference = tmp_path / "ref.parquet"
    frame.to_parquet(reference, index=False)
    spec = {"name": "t", "timeframes": ("d", "w") if daily else ("h1", "h4"), "seq_len": 8}
    preprocess(DataConfig(path=str(reference), **spec), tmp_path / "a")
    frame["timestamp"] = encode(frame["timestamp"])
    other = tmp_path / f"other.{suffix}"
    if suffix == "csv":
        frame.to_csv(other, index=False)
    else:
        frame.to_parquet(other, index=False)
    preprocess(DataConfig(path=str(other), **spec), tmp_path / "b")
    for file in (tmp_path / "a").glob("*.npy"):
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name


def test_failed_run_keeps_the_previous_output(tmp_path: Path) -> None:
    source = tmp_path / "bars.csv"
    frame = synthetic_ohlc(600, bar_seconds=3600)
    frame.to_csv(source, index=False)
    spec = DataConfig(name="t", path=str(source), timeframes=("h1", "h4"), seq_len=8)
    preprocess(spec, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    frame.loc[300, "close"] = float("nan")
    frame.to_csv(source, index=False)
    with pytest.raises(ValueError, match="row 300"):
        preprocess(spec, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.csv", "out"]


def test_load_derived_refuses_incomplete_directories(tmp_path: Path) -> None:
    source = tmp_path / "bars.parquet"
    synthetic_ohlc(600, bar_seconds=3600).to_parquet(source)
    preprocess(DataConfig(name="t", path=str(source), timeframes=("h1", "h4"), seq_len=8), tmp_path / "d")
    (tmp_path / "d" / "val_h4.npy").unlink()
    with pytest.raises(DerivedFormatError, match=r"val_h4\.npy: missing"):
        load_derived(tmp_path / "d")
    np.save(tmp_path / "d" / "val_h4.npy", np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(DerivedFormatError, match=r"val_h4\.npy: shape"):
        load_derived(tmp_path / "d")


def test_benchmark_reports_its_figures() -> None:
    result = benchmark_preprocess(20_000, seq_len=8)
    assert result["rows"] == 20_000 and result["seconds"] > 0 and result["rows_per_s"] > 0
    assert result["timeframes"] == ["m1", "m5", "m15", "m30", "h1", "h4"]
    assert min(result["windows"].values()) > 0
