"""The whole preprocess stage as one function: configuration in, derived directory out.

Everything is computed in memory first and written last, inside ``atomic_directory``,
so bad input fails before anything exists on disk and a crash while writing leaves no
partial directory behind.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workflow_scripts.data import embedded
from workflow_scripts.data.bars import Bars
from workflow_scripts.data.derived import FORMAT_VERSION, SplitArrays, write_derived
from workflow_scripts.data.features import (
    OHLC_FEATURES,
    fit_normalisation,
    normalise,
    ohlc_features,
)
from workflow_scripts.data.readers import (
    PARQUET_SUFFIXES,
    Table,
    is_csv,
    numeric_bars,
    ohlc_bars,
    read_frame,
    table_from_frame,
)
from workflow_scripts.data.resample import check_resample_target, resample_mean, resample_ohlc
from workflow_scripts.data.spec import DataSpec, check_spec
from workflow_scripts.data.timeframes import (
    Timeframe,
    infer_timeframe,
    parse_timeframe,
    timeframe_from_filename,
)
from workflow_scripts.data.validation import DataValidationError, Source, iso_utc
from workflow_scripts.data.folds import plan_folds
from workflow_scripts.data.windows import (
    SPLITS,
    SampleGrid,
    SplitPlan,
    bar_ranges,
    build_samples,
)
from workflow_scripts.jobs.io_utils import atomic_directory, config_hash, sha256_file

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedInput:
    """Feature bars per configured timeframe (config order) and what the manifest records."""

    bars: list[Bars]
    raw_rows: dict[str, int]
    inputs: list[dict[str, Any]]
    label: str


def preprocess(spec: DataSpec, out_dir: Path, fold: int = 0) -> dict[str, Any]:
    """Build ``out_dir`` (data/derived/{series}/fold{fold}) from the configured input: fold
    ``fold`` of ``spec.folds`` rolling-origin folds (data.folds); return the manifest."""
    check_spec(spec)
    if not 0 <= fold < spec.folds:
        raise DataValidationError(
            f"fold {fold} does not exist: data.folds = {spec.folds} gives folds 0..{spec.folds - 1}"
        )
    timeframes = parse_timeframes(spec.timeframes, spec.kind)
    loaded = load_input(spec, timeframes)
    for tf, series in zip(timeframes, loaded.bars, strict=True):
        LOG.info("%s: %d bars", tf.name, len(series))
    grid = build_samples(loaded.bars, spec.seq_len, spec.sample_stride)
    try:
        plan = plan_folds(grid, spec.train_fraction, spec.val_fraction, spec.folds)[fold]
    except DataValidationError as error:
        raise DataValidationError(f"{loaded.label} (series {spec.name}): {error}") from None
    require_every_split(plan, grid, loaded, spec, timeframes)
    splits, stats = assemble_splits(loaded.bars, timeframes, grid, plan, spec.seq_len)
    manifest = build_manifest(spec, timeframes, loaded, grid, plan, splits)
    manifest["fold"], manifest["folds"] = fold, spec.folds
    LOG.info("samples per split: %s", manifest["windows"])
    with atomic_directory(out_dir) as tmp:
        write_derived(tmp, stats, manifest, splits)
    LOG.info("wrote %s", out_dir)
    return manifest


def parse_timeframes(names: Sequence[str], kind: str) -> list[Timeframe]:
    """Parse ``data.timeframes``; the first is the base and must be the shortest."""
    timeframes = [parse_timeframe(name, f"data.timeframes[{i}]") for i, name in enumerate(names)]
    seen: dict[str, int] = {}
    for i, tf in enumerate(timeframes):
        if tf.name in seen:
            raise DataValidationError(
                f"data.timeframes[{i}]: {names[i]!r} repeats data.timeframes[{seen[tf.name]}]"
            )
        seen[tf.name] = i
    base = timeframes[0]
    for i, tf in enumerate(timeframes[1:], start=1):
        where = f"data.timeframes[{i}]"
        if kind == "derived_dir":
            if tf.seconds <= base.seconds:
                raise DataValidationError(
                    f"{where}: {tf.name!r} must be longer than the first (base) timeframe "
                    f"{base.name!r}; list the shortest timeframe first"
                )
        else:
            check_resample_target(base, tf, where)
    return timeframes


def load_input(spec: DataSpec, timeframes: Sequence[Timeframe]) -> LoadedInput:
    """Read, validate and featurise the input of any kind."""
    if spec.path == embedded.EMBEDDED_PATH:
        return _load_embedded(spec, timeframes)
    path = Path(spec.path)
    if spec.kind == "derived_dir":
        return _load_derived_dir(spec, path, timeframes)
    if path.is_dir():
        raise DataValidationError(
            f"{spec.path}: is a directory; use data.kind: derived_dir for a directory of "
            "per-timeframe Parquet files"
        )
    source = Source(spec.path, csv=is_csv(path))
    table = table_from_frame(read_frame(path, spec.path), source, spec.timestamp_column)
    record = _file_record(path, spec.path, len(table.frame), None)
    return _from_single_table(spec, table, timeframes, [record])


def _load_embedded(spec: DataSpec, timeframes: Sequence[Timeframe]) -> LoadedInput:
    if spec.kind == "derived_dir":
        raise DataValidationError(
            "data.path 'embedded' is one daily OHLC series, not a directory; use data.kind ohlc"
        )
    data = embedded.load_embedded()
    table = table_from_frame(data.frame, Source(data.label, csv=True), spec.timestamp_column)
    record = {
        "path": embedded.EMBEDDED_PATH,
        "source": data.label,
        "description": embedded.DESCRIPTION,
        "package_version": importlib.metadata.version(embedded.PACKAGE),
        "sha256": sha256_file(data.archive),
        "size": data.archive.stat().st_size,
        "rows": len(data.frame),
        "timeframe": None,
    }
    return _from_single_table(spec, table, timeframes, [record])


def _from_single_table(
    spec: DataSpec, table: Table, timeframes: Sequence[Timeframe], inputs: list[dict[str, Any]]
) -> LoadedInput:
    """One base table: validate it, resample the higher timeframes, compute features."""
    base = timeframes[0]
    if spec.kind == "generic":
        raw = [numeric_bars(table, base, spec.columns)]
        raw += [resample_mean(raw[0], tf) for tf in timeframes[1:]]
        featured = raw
    else:
        raw = [ohlc_bars(table, base, spec.columns)]
        raw += [resample_ohlc(raw[0], tf) for tf in timeframes[1:]]
        featured = [ohlc_features(series, spec.features) for series in raw]
    rows = {tf.name: len(series) for tf, series in zip(timeframes, raw, strict=True)}
    return LoadedInput(featured, rows, inputs, table.source.label)


def _load_derived_dir(spec: DataSpec, path: Path, timeframes: Sequence[Timeframe]) -> LoadedInput:
    """One Parquet file per timeframe; the timeframe comes from the name or the spacing."""
    if not path.is_dir():
        raise DataValidationError(
            f"{spec.path}: not a directory (data.kind derived_dir expects a directory of "
            "per-timeframe Parquet files)"
        )
    wanted = {tf.name for tf in timeframes}
    found: dict[str, tuple[Path, Table | None]] = {}
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIXES))
    for file in files:
        label = str(Path(spec.path) / file.name)
        tf = timeframe_from_filename(file.name.split(".")[0])
        table = None
        if tf is None:
            table = _read_table(file, label, spec.timestamp_column)
            tf = infer_timeframe(table.times)
            if tf is None:
                raise DataValidationError(
                    f"{label}: cannot tell the timeframe: the last '_' token of the file name is "
                    "not a timeframe (e.g. eurusd_m5.parquet) and the most common bar spacing "
                    "is not a supported bar length"
                )
        if tf.name not in wanted:
            continue
        if tf.name in found:
            raise DataValidationError(
                f"{label}: timeframe {tf.name!r} is also given by {found[tf.name][0].name}; "
                "keep one file per timeframe"
            )
        found[tf.name] = (file, table)
    missing = [tf.name for tf in timeframes if tf.name not in found]
    if missing:
        raise DataValidationError(
            f"{spec.path}: no Parquet file for timeframe(s) {missing}; found "
            f"{[f.name for f in files]} (the timeframe is the file name's last '_' token, "
            "e.g. usdjpy_h1.parquet, or the bar spacing)"
        )
    raw: list[Bars] = []
    records: list[dict[str, Any]] = []
    for tf in timeframes:
        file, table = found[tf.name]
        label = str(Path(spec.path) / file.name)
        table = table or _read_table(file, label, spec.timestamp_column)
        raw.append(ohlc_bars(table, tf, spec.columns))
        records.append(_file_record(file, label, len(table.frame), tf.name))
    rows = {tf.name: len(series) for tf, series in zip(timeframes, raw, strict=True)}
    return LoadedInput([ohlc_features(series, spec.features) for series in raw], rows, records, spec.path)


def _read_table(file: Path, label: str, timestamp_column: str | None) -> Table:
    return table_from_frame(read_frame(file, label), Source(label), timestamp_column)


def _file_record(path: Path, label: str, rows: int, timeframe: str | None) -> dict[str, Any]:
    return {
        "path": label,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "rows": rows,
        "timeframe": timeframe,
    }


def require_every_split(
    plan: SplitPlan,
    grid: SampleGrid,
    loaded: LoadedInput,
    spec: DataSpec,
    timeframes: Sequence[Timeframe],
) -> None:
    """Every split needs at least one sample, or training/evaluation would be meaningless."""
    sizes = {split: plan.size(split) for split in SPLITS}
    if min(sizes.values()) > 0:
        return
    base, longest = timeframes[0], max(timeframes)
    raise DataValidationError(
        f"{loaded.label}: too few rows for data.seq_len = {spec.seq_len}: "
        f"{loaded.raw_rows[base.name]} {base.name} rows give {len(grid)} aligned samples "
        f"(each needs {spec.seq_len} complete bars of every timeframe "
        f"{[tf.name for tf in timeframes]}), split as {sizes} after the gaps of at least one "
        f"{longest.name} window between splits; every split needs at least one sample. "
        "Use more rows, a smaller data.seq_len or shorter timeframes"
    )


def assemble_splits(
    bars: Sequence[Bars],
    timeframes: Sequence[Timeframe],
    grid: SampleGrid,
    plan: SplitPlan,
    seq_len: int,
) -> tuple[dict[str, SplitArrays], dict[str, Any]]:
    """Cut each split's bars, fit the statistics on train only, normalise every split."""
    names = [tf.name for tf in timeframes]
    cuts = {split: bar_ranges(grid, plan.ranges[split], seq_len) for split in SPLITS}
    mean: dict[str, list[float]] = {}
    std: dict[str, list[float]] = {}
    for j, name in enumerate(names):
        lo, hi = cuts["train"][j]
        mean[name], std[name] = fit_normalisation(bars[j].values[lo:hi])
    splits: dict[str, SplitArrays] = {}
    for split in SPLITS:
        start, stop = plan.ranges[split]
        offsets = np.array([lo for lo, _ in cuts[split]], dtype=np.int64)
        splits[split] = SplitArrays(
            bars={
                name: normalise(bars[j].values[lo:hi], mean[name], std[name])
                for j, (name, (lo, hi)) in enumerate(zip(names, cuts[split], strict=True))
            },
            ends=grid.ends[start:stop] - offsets,
            end_times=grid.end_times[start:stop],
            times={
                name: bars[j].open_time[lo:hi]
                for j, (name, (lo, hi)) in enumerate(zip(names, cuts[split], strict=True))
            },
        )
    features = list(bars[0].columns)
    stats = {"timeframes": names, "features": features, "mean": mean, "std": std}
    return splits, stats


def build_manifest(
    spec: DataSpec,
    timeframes: Sequence[Timeframe],
    loaded: LoadedInput,
    grid: SampleGrid,
    plan: SplitPlan,
    splits: dict[str, SplitArrays],
) -> dict[str, Any]:
    """Provenance and shape of the output; deterministic (no wall-clock time) by design."""
    params = spec.to_params()
    names = [tf.name for tf in timeframes]
    date_ranges: dict[str, Any] = {
        "bars": {
            tf: {"first_open": iso_utc(series.open_time[0]), "last_open": iso_utc(series.open_time[-1])}
            for tf, series in zip(names, loaded.bars, strict=True)
        }
    }
    for split in SPLITS:
        start, stop = plan.ranges[split]
        date_ranges[split] = {
            "first_window_start": iso_utc(grid.starts[start]),
            "first_end": iso_utc(grid.end_times[start]),
            "last_end": iso_utc(grid.end_times[stop - 1]),
        }
    return {
        "format_version": FORMAT_VERSION,
        "dataset": spec.name,
        "kind": spec.kind,
        "inputs": loaded.inputs,
        "timeframes": names,
        "base_timeframe": names[0],
        "features": list(loaded.bars[0].columns),
        "feature_definitions": _feature_definitions(loaded.bars[0].columns),
        "seq_len": spec.seq_len,
        "sample_stride": spec.sample_stride,
        "rows": loaded.raw_rows,
        "bars": {tf: len(series) for tf, series in zip(names, loaded.bars, strict=True)},
        "windows": {split: len(splits[split]) for split in SPLITS},
        "split_bars": {split: {tf: len(a) for tf, a in splits[split].bars.items()} for split in SPLITS},
        "gap_samples": plan.gap_samples,
        "date_ranges": date_ranges,
        "normalisation": "z-score per timeframe and feature, mean/std of the train split only",
        "config": params,
        "config_hash": config_hash(params),
    }


def _feature_definitions(columns: Sequence[str]) -> dict[str, str]:
    definitions = {
        "open": "first open of the bar",
        "high": "highest high",
        "low": "lowest low",
        "close": "last close",
        "delta_close": "close minus the previous bar's close (same timeframe)",
        "body_ratio": "(close - open) / (high - low); 0 when high == low",
    }
    if not set(columns) <= set(OHLC_FEATURES):
        return {name: "input column (higher timeframes: mean over the bucket)" for name in columns}
    return {name: definitions[name] for name in columns}
