"""The embedded MSFT series loads offline and without importing pmdarima."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.config.base import DataConfig
from workflow_scripts.data import embedded
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.pipeline import preprocess


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.usefixtures("no_network")
def test_embedded_default_preprocesses_with_sockets_disabled(tmp_path: Path) -> None:
    imported_before = "pmdarima" in sys.modules
    spec = DataConfig()  # the default: path embedded, kind ohlc, timeframes d and w
    assert spec.path == embedded.EMBEDDED_PATH and spec.timeframes == embedded.DEFAULT_TIMEFRAMES
    manifest = preprocess(spec, tmp_path / "msft")
    assert imported_before or "pmdarima" not in sys.modules
    assert manifest["rows"] == {"d": 7983, "w": 1653}
    assert manifest["date_ranges"]["bars"]["d"]["last_open"].startswith("2017-11-10")
    assert all(count > 100 for count in manifest["windows"].values())
    data = load_derived(tmp_path / "msft")
    assert data.timeframes == ("d", "w") and data.seq_len == 128
    train = data.split("train")
    close = data.denormalise("d", np.asarray(train.bars["d"]))[:, 3]
    raw = embedded.load_embedded().frame.set_index("Date")["Close"]
    dates = pd.to_datetime(np.asarray(train.times["d"]), unit="ns").strftime("%Y-%m-%d")
    np.testing.assert_allclose(close, raw.loc[dates].to_numpy(), rtol=1e-5)


def test_embedded_frame_is_the_real_msft_series() -> None:
    data = embedded.load_embedded()
    assert list(data.frame.columns[:5]) == ["Date", "Open", "High", "Low", "Close"]
    assert data.frame["Date"].iloc[0] == "1986-03-13" and len(data.frame) == 7983
