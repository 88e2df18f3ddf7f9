"""Reading the files one training run leaves behind, failures and gaps included.

The original study showed a crashed baseline as "FAILED" with no numbers and, elsewhere,
as zeros. Here every planned run becomes exactly one :class:`RunRecord` whose ``status``
says what happened (``completed``, ``early_stopped``, ``failed`` or ``missing``); a run
without numbers carries ``None``, never ``0.0``, so no average can silently absorb it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from workflow_scripts.jobs.cli import InputError
from workflow_scripts.jobs.typed_json import ResultFormatError, decode
from workflow_scripts.reporting.units import Unit
from workflow_scripts.training.run_contract import METRIC_COLUMNS, RunSummary

LOG = logging.getLogger(__name__)

OK_STATUSES = ("completed", "early_stopped")
FAILED = "failed"
MISSING = "missing"

#: metrics.csv columns in the order DESIGN.md lists them; extra columns are kept after these.
REQUIRED_METRIC_COLUMNS = ("epoch", "val_loss", "val_correlation")
REQUIRED_SUMMARY_KEYS = ("variant", "series", "fold", "seed", "status")
BENCHMARK_MEMORY_COLUMN = "max_rss"

_RUN_PATH = re.compile(
    r"(?:^|/)(?P<series>[^/]+)/fold(?P<fold>\d+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)(?:/[^/]+|\.tsv)$"
)
RUN_LAYOUT = ".../{series}/fold{fold}/{variant}/seed{seed}"


class RunKey(NamedTuple):
    """Which run: a variant on one unit (series, fold, seed); sorts by variant, then unit."""

    variant: str
    series: str
    fold: int
    seed: int

    @property
    def unit(self) -> Unit:
        return Unit(self.series, self.fold, self.seed)

    def __str__(self) -> str:
        return f"variant '{self.variant}' {self.unit.label}"


@dataclass(frozen=True)
class RunRecord:
    """Everything known about one (series, fold, variant, seed) run, whether or not it finished."""

    variant: str
    series: str
    fold: int
    seed: int
    status: str
    reason: str = ""
    summary: RunSummary | None = None
    metrics: pd.DataFrame | None = None
    peak_rss_mb: float | None = None
    benchmark_s: float | None = None

    @property
    def unit(self) -> Unit:
        """The paired unit: the run of another variant with the same unit is its pair."""
        return Unit(self.series, self.fold, self.seed)

    @property
    def ok(self) -> bool:
        """A run whose numbers may enter the statistics."""
        return self.status in OK_STATUSES

    def value(self, section: str, key: str) -> float | None:
        """``summary.section.key`` as a finite float, or ``None`` when there is none."""
        if not self.ok or self.summary is None:
            return None
        return finite_or_none(getattr(getattr(self.summary, section), key, None))

    def top(self, key: str) -> float | None:
        """A top-level numeric field of the summary (runtime_s, params_total, ...)."""
        if not self.ok or self.summary is None:
            return None
        return finite_or_none(getattr(self.summary, key))


def finite_or_none(value: Any) -> float | None:
    """A finite float, or ``None`` for null, NaN, inf, booleans and non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_key_from_path(path: str | Path) -> RunKey | None:
    """The run of a contract path such as ``results/runs/s/fold0/v/seed0/summary.json`` or
    ``benchmarks/train/s/fold0/v/seed0.tsv``; ``None`` if the path does not follow the layout."""
    match = _RUN_PATH.search(Path(path).as_posix())
    if match is None:
        return None
    return RunKey(
        match.group("variant"), match.group("series"), int(match.group("fold")), int(match.group("seed"))
    )


@dataclass(frozen=True)
class ReportedFailure:
    """A run summary whose status says the run did not finish, and the detail it gave."""

    key: RunKey
    status: str
    detail: str


def read_summary(path: Path) -> RunSummary | ReportedFailure | None:
    """A run's summary.json as the typed :class:`RunSummary` the train job wrote (a
    :class:`ReportedFailure` when its status is not a finished one); ``None`` if the file
    does not exist. A missing, renamed or mistyped key is refused, naming the file and key."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON run summary ({exc}).") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a run summary must be a JSON object, got {type(data).__name__}.")
    for key in REQUIRED_SUMMARY_KEYS:
        if key not in data:
            raise InputError(f"{path}: missing required key '{key}' in the run summary.")
    if not isinstance(data["variant"], str) or not data["variant"]:
        raise InputError(f"{path}: key 'variant' must be a non-empty string.")
    for name in ("seed", "fold"):
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{path}: key '{name}' must be an integer, got {value!r}.")
    if not isinstance(data["series"], str) or not data["series"]:
        raise InputError(f"{path}: key 'series' must be a non-empty string.")
    if data["status"] not in OK_STATUSES:
        detail = str(data.get("error") or data.get("reason") or "")
        run = RunKey(data["variant"], data["series"], data["fold"], data["seed"])
        return ReportedFailure(run, str(data["status"]), detail)
    try:
        return decode(RunSummary, data)  # type: ignore[no-any-return]
    except ResultFormatError as exc:
        raise InputError(f"{path}: {exc}") from exc


def read_metrics(path: Path) -> pd.DataFrame | None:
    """Parse and check a run's metrics.csv; ``None`` if the file does not exist."""
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a readable metrics CSV ({exc}).") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: empty file, expected a header row of metric columns.") from exc
    missing = [c for c in REQUIRED_METRIC_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}."
        )
    epochs = pd.to_numeric(frame["epoch"], errors="coerce")
    bad = epochs.isna() | (epochs != epochs.round())
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{path}: column 'epoch' row {row + 2} (line in file) is {frame['epoch'].iloc[row]!r}, "
            "expected an integer epoch number."
        )
    frame["epoch"] = epochs.astype("int64")
    for column in REQUIRED_METRIC_COLUMNS[1:]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"{path}: column '{column}' row {row + 2} (line in file) is "
                f"{frame[column].iloc[row]!r}, expected a number."
            )
        frame[column] = values.astype("float64")
    return frame


def read_benchmark(path: Path) -> tuple[float | None, float | None]:
    """Peak resident memory (MB) and wall time (s) from a Snakemake benchmark TSV.

    A benchmark file may hold several rows (``repeat()``); the peak is their maximum.
    Snakemake writes ``-``/``NA`` where it could not measure; those become ``None``.
    """
    if not path.exists():
        return None, None
    try:
        frame = pd.read_csv(path, sep="\t", na_values=["-", "NA", "n/a"])
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable Snakemake benchmark TSV ({exc}).") from exc
    if BENCHMARK_MEMORY_COLUMN not in frame.columns:
        raise InputError(
            f"{path}: missing column '{BENCHMARK_MEMORY_COLUMN}' (expected Snakemake's benchmark "
            f"header 's h:m:s max_rss ...'); found {', '.join(map(str, frame.columns))}."
        )
    rss = pd.to_numeric(frame[BENCHMARK_MEMORY_COLUMN], errors="coerce").dropna()
    wall = (
        pd.to_numeric(frame["s"], errors="coerce").dropna()
        if "s" in frame.columns
        else pd.Series(dtype="float64")
    )
    peak = float(rss.max()) if len(rss) else None
    seconds = float(wall.max()) if len(wall) else None
    return peak, seconds


def status_of(summary: RunSummary | ReportedFailure | None, metrics: pd.DataFrame | None) -> tuple[str, str]:
    """(status, reason) of a run from what it left behind.

    No summary but some metric rows means training started and died (``failed``); neither
    file means the run never produced anything (``missing``).
    """
    if summary is None:
        if metrics is not None:
            return FAILED, (
                f"summary.json not written; metrics.csv holds {len(metrics)} epoch(s), "
                "so training started but did not finish"
            )
        return MISSING, "no summary.json or metrics.csv for this run"
    if isinstance(summary, RunSummary):
        return summary.status, ""
    reason = f"run reported status '{summary.status}'" + (f": {summary.detail}" if summary.detail else "")
    return FAILED, reason


def _summary_key(summary: RunSummary | ReportedFailure) -> RunKey:
    if isinstance(summary, ReportedFailure):
        return summary.key
    return RunKey(summary.variant, summary.series, summary.fold, summary.seed)


def _key_for(path: Path, summary: RunSummary | ReportedFailure | None) -> RunKey:
    """Run identity: the summary's own fields, cross-checked against the path layout."""
    from_path = run_key_from_path(path)
    if summary is not None:
        key = _summary_key(summary)
        if from_path is not None and from_path != key:
            raise InputError(
                f"{path}: the summary says {key}, but the path says {from_path}; "
                "refusing to guess which is right."
            )
        return key
    if from_path is None:
        raise InputError(
            f"{path}: file does not exist and its path does not follow "
            f"'{RUN_LAYOUT}/...', so the missing run cannot be named."
        )
    return from_path


def _metrics_key(path: Path, dirs: Mapping[Path, RunKey]) -> RunKey:
    key = dirs.get(path.parent.resolve()) or run_key_from_path(path)
    if key is None:
        raise InputError(
            f"{path}: cannot tell which run this metrics file belongs to: it is not next to "
            f"a summary.json and its path does not follow '{RUN_LAYOUT}/metrics.csv'."
        )
    return key


def _benchmark_key(path: Path) -> RunKey:
    key = run_key_from_path(path)
    if key is None:
        raise InputError(
            f"{path}: benchmark path does not follow '{RUN_LAYOUT}.tsv', so its run cannot be named."
        )
    return key


def load_runs(
    summary_paths: Sequence[Path],
    metrics_paths: Sequence[Path] = (),
    benchmark_paths: Sequence[Path] = (),
) -> list[RunRecord]:
    """One :class:`RunRecord` per run named by any input path, sorted by :class:`RunKey`.

    metrics.csv is matched to the summary in the same directory (or, failing that, by its
    path layout); benchmark files are matched by ``RUN_LAYOUT.tsv``.
    """
    summaries: dict[RunKey, RunSummary | ReportedFailure | None] = {}
    dirs: dict[Path, RunKey] = {}
    for path in summary_paths:
        summary = read_summary(path)
        key = _key_for(path, summary)
        if key in summaries:
            raise InputError(f"{path}: a second summary for {key}.")
        summaries[key] = summary
        dirs[path.parent.resolve()] = key

    metrics: dict[RunKey, pd.DataFrame | None] = {}
    for path in metrics_paths:
        key = _metrics_key(path, dirs)
        if key in metrics:
            raise InputError(f"{path}: a second metrics file for {key}.")
        metrics[key] = read_metrics(path)

    benchmarks = {_benchmark_key(path): read_benchmark(path) for path in benchmark_paths}

    records = []
    for key in sorted(set(summaries) | set(metrics) | set(benchmarks)):
        summary = summaries.get(key)
        frame = metrics.get(key)
        status, reason = status_of(summary, frame)
        if status in OK_STATUSES and frame is None:
            LOG.warning("run %s finished but has no metrics.csv", key)
        peak, seconds = benchmarks.get(key, (None, None))
        typed = summary if isinstance(summary, RunSummary) else None
        records.append(RunRecord(*key, status, reason, typed, frame, peak, seconds))
    return records


def tidy_metrics(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """All epochs of all runs in one long table: variant, series, fold, seed, epoch, then metric
    columns.

    Rows of failed runs are kept (their partial curves are evidence); the report decides
    what to plot from each run's status.
    """
    keys = ["variant", "series", "fold", "seed"]
    frames = []
    for run in runs:
        if run.metrics is None or run.metrics.empty:
            continue
        frame = run.metrics.copy()
        for position, name in enumerate(keys):
            frame.insert(position, name, getattr(run, name))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*keys, *METRIC_COLUMNS])
    tidy = pd.concat(frames, ignore_index=True, sort=False)
    known = [c for c in METRIC_COLUMNS if c in tidy.columns]
    extra = sorted(c for c in tidy.columns if c not in {*keys, *METRIC_COLUMNS})
    tidy = tidy[[*keys, *known, *extra]]
    return tidy.sort_values([*keys, "epoch"], kind="stable").reset_index(drop=True)
