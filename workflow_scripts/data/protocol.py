"""The one dataset protocol: what training, scoring and the pretraining source read of a dataset.

``derived.DerivedDataset`` (a loaded data directory) and ``source_split.SourceDataset``
(the pretraining's view of a train split) both provide it.
"""

from __future__ import annotations

from typing import Any, Protocol

from workflow_scripts.data.derived import SplitArrays


class DatasetLike(Protocol):
    """Timeframes, features and window length, the train-split statistics, the manifest, the splits."""

    @property
    def timeframes(self) -> tuple[str, ...]: ...
    @property
    def feature_names(self) -> tuple[str, ...]: ...
    @property
    def seq_len(self) -> int: ...
    @property
    def stats(self) -> dict[str, Any]: ...
    @property
    def manifest(self) -> dict[str, Any]: ...
    def split(self, name: str) -> SplitArrays: ...
