"""Preprocessing speed on 3.1M one-minute bars (about eight years of one FX pair).

    python -m workflow_scripts.data.benchmark [--rows 3100000] [--format parquet|csv]

prints one JSON line. The input is generated (random walk, no weekend bars) and written
before the clock starts; the timed part is exactly ``preprocess``: read, validate,
resample into six timeframes, featurise, align, split, normalise and write the derived
directory. A benchmark, not a timed test: the figure depends on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.data.spec import data_config_from_params
from workflow_scripts.data.synthetic import synthetic_ohlc

DEFAULT_ROWS = 3_100_000
TIMEFRAMES = ("m1", "m5", "m15", "m30", "h1", "h4")


def benchmark_preprocess(
    n_rows: int = DEFAULT_ROWS, *, file_format: str = "parquet", seq_len: int = 128
) -> dict[str, Any]:
    """Time ``preprocess`` on ``n_rows`` generated m1 bars into six timeframes."""
    with tempfile.TemporaryDirectory(prefix="preprocess-bench-") as tmp:
        root = Path(tmp)
        frame = synthetic_ohlc(n_rows)
        source = root / f"bench_m1.{file_format}"
        if file_format == "csv":
            frame.to_csv(source, index=False)
        else:
            frame.to_parquet(source, index=False)
        spec = data_config_from_params(
            {
                "name": "bench",
                "path": str(source),
                "kind": "ohlc",
                "timeframes": list(TIMEFRAMES),
                "seq_len": seq_len,
            }
        )
        out = root / "derived"
        start = time.perf_counter()
        manifest = preprocess(spec, out)
        seconds = time.perf_counter() - start
        output_bytes = sum(path.stat().st_size for path in out.iterdir())
    return {
        "rows": n_rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(n_rows / seconds),
        "timeframes": list(TIMEFRAMES),
        "input_format": file_format,
        "seq_len": seq_len,
        "windows": manifest["windows"],
        "output_mb": round(output_bytes / 2**20, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: print the benchmark result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m workflow_scripts.data.benchmark")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="m1 bars to generate")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args(argv)
    print(json.dumps(benchmark_preprocess(args.rows, file_format=args.format), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
