"""The embedded default dataset: real MSFT daily OHLCV bars from the pmdarima wheel.

pmdarima (MIT licence) ships ``datasets/data/msft.tar.gz``, a tar archive with one CSV,
``msft.csv`` (Date, Open, High, Low, Close, Volume, OpenInt; 7,983 trading days from
1986-03-13 to 2017-11-10, from the Kaggle "Huge Stock Market Dataset"). The file is read
straight from the installed package directory: importing pmdarima would pull in its
compiled extensions, statsmodels and scikit-learn, and one of its modules creates an HTTP
pool at import time. Locating the package with ``importlib.util.find_spec`` executes none
of its code, so this works offline and with pmdarima installed without its dependencies.
No data is copied into this repository.
"""

from __future__ import annotations

import importlib.util
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workflow_scripts.data.validation import DataValidationError

EMBEDDED_PATH = "embedded"
PACKAGE = "pmdarima"
ARCHIVE = Path("datasets") / "data" / "msft.tar.gz"
MEMBER = "msft.csv"
DEFAULT_TIMEFRAMES = ("d", "w")
DESCRIPTION = (
    "MSFT daily OHLCV 1986-03-13..2017-11-10 (Kaggle 'Huge Stock Market Dataset'), "
    "shipped in the pmdarima wheel (MIT)"
)


@dataclass(frozen=True)
class EmbeddedData:
    """The embedded table plus what the manifest records about where it came from."""

    frame: pd.DataFrame
    archive: Path
    label: str


def archive_path() -> Path:
    """Path of ``msft.tar.gz`` inside the installed pmdarima package, without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / ARCHIVE
        if candidate.is_file():
            return candidate
    raise DataValidationError(
        f"data.path 'embedded': needs the {PACKAGE} package, which ships the data file "
        f"{ARCHIVE.as_posix()}; install it (pip install {PACKAGE}; its dependencies are not "
        "needed for this) or point data.path at your own file"
    )


def load_embedded() -> EmbeddedData:
    """Read the MSFT CSV member of the archive into a DataFrame (no extraction to disk)."""
    path = archive_path()
    label = f"embedded:{PACKAGE}/{ARCHIVE.as_posix()}#{MEMBER}"
    try:
        with tarfile.open(path, "r:gz") as archive:
            handle = archive.extractfile(MEMBER)
            if handle is None:
                raise KeyError(MEMBER)
            frame = pd.read_csv(handle)
    except (OSError, KeyError, tarfile.TarError, ValueError) as exc:
        raise DataValidationError(f"{label}: cannot read the embedded data: {exc}") from exc
    return EmbeddedData(frame=frame, archive=path, label=label)
