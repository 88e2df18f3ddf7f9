"""collect: tidy metrics, per-variant statistics, and failed or missing runs kept explicit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import BENCHMARK_HEADER, UNIT_DIR, collect_argv, summary, write_run, write_smoke_runs
from scipy import stats as scipy_stats

from workflow_scripts import collect
from workflow_scripts.reporting.runs import FAILED, MISSING, read_benchmark, run_key_from_path


def run_collect(root: Path, **kwargs) -> tuple[int, dict]:
    code = collect.main(collect_argv(root, **kwargs))
    out = root / "results" / "summary.json"
    return code, (json.loads(out.read_text()) if out.exists() else {})


def test_collect_smoke_run(tmp_path: Path) -> None:
    write_smoke_runs(tmp_path)
    code, result = run_collect(tmp_path)
    assert code == 0
    assert set(result["variants"]) == {"freeze", "nofreeze", "frozen_all", "baseline"}
    frozen = result["variants"]["frozen_all"]
    best = frozen["metrics"]["best_val_correlation"]
    assert best["n"] == 2 and best["mean"] == pytest.approx(0.31)
    low, high = scipy_stats.t.interval(0.95, df=1, loc=0.31, scale=scipy_stats.sem([0.30, 0.32]))
    assert (best["ci_low"], best["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert frozen["metrics"]["test_skill"]["mean"] == pytest.approx(0.26)
    assert frozen["metrics"]["auc_val_loss"]["mean"] == pytest.approx(1 - 0.31 / 2)
    assert frozen["metrics"]["test_skill_other"]["n"] == 0  # absent value: not averaged
    assert frozen["iqm"]["test_skill"]["iqm"] == pytest.approx(0.26)
    assert result["metric_directions"]["auc_val_loss"] == "lower"
    primary = next(
        r for r in result["contrasts"]["results"] if r["role"] == "primary" and r["metric"] == "test_skill"
    )
    assert (primary["a"], primary["b"], primary["n"]) == ("nofreeze", "baseline", 2)
    assert primary["deltas"] == pytest.approx([0.31, 0.30])
    assert primary["p"] == pytest.approx(0.5) and primary["can_reach_significance"] is False
    skipped = {(s["a"], s["b"]) for s in result["contrasts"]["skipped"]}
    assert ("frozen_all", "frozen_random") in skipped  # frozen_random has no runs here
    assert frozen["params_trainable"] == 20_000 and frozen["params_total"] == 60_000
    assert frozen["peak_rss_mb_max"] == pytest.approx(513.0)
    assert frozen["runtime_s"]["mean"] == pytest.approx(30.5)
    assert frozen["best_naive"]["name"] == "linear_interpolation"
    assert frozen["best_naive"]["loss"] == pytest.approx(0.97)
    assert frozen["beats_naive"] is True and frozen["beats_naive_clearly"] is True
    assert [r["status"] for r in frozen["runs"]] == ["completed", "completed"]

    tidy = pd.read_csv(tmp_path / "results" / "metrics.csv")
    assert list(tidy.columns[:6]) == ["variant", "series", "fold", "seed", "epoch", "train_loss"]
    assert len(tidy) == 4 * 2 * 5
    assert not tidy.duplicated(["variant", "seed", "epoch"]).any()

    table = pd.read_csv(tmp_path / "results" / "summary_table.csv")
    assert list(table["variant"]) == ["baseline", "frozen_all", "freeze", "nofreeze"]
    assert table.loc[table["variant"] == "frozen_all", "params_trainable"].item() == 20_000


def test_failed_and_missing_runs_are_never_zero(tmp_path: Path) -> None:
    write_smoke_runs(tmp_path, {"frozen_all": (0.30, 0.32), "freeze": (0.4, 0.43)})
    write_run(tmp_path, "baseline", 0, 0.11)
    write_run(tmp_path, "baseline", 1, None)  # crashed: metrics rows, no summary
    run_dir = tmp_path / "results" / "runs" / UNIT_DIR / "nofreeze"
    (run_dir / "seed0").mkdir(parents=True)
    failed = summary("nofreeze", 0, 0.5, status="failed")
    failed["error"] = "CUDA out of memory"
    (run_dir / "seed0" / "summary.json").write_text(json.dumps(failed))
    # nofreeze seed 1 left nothing at all
    code, result = run_collect(tmp_path)
    assert code == 0

    baseline = result["variants"]["baseline"]
    assert [(r["seed"], r["status"]) for r in baseline["runs"]] == [(0, "completed"), (1, FAILED)]
    assert "summary.json not written" in baseline["runs"][1]["reason"]
    assert baseline["runs"][1]["best_val_correlation"] is None
    assert baseline["metrics"]["best_val_correlation"]["n"] == 1
    assert baseline["metrics"]["best_val_correlation"]["mean"] == pytest.approx(0.11)
    assert baseline["metrics"]["best_val_correlation"]["ci_low"] is None

    nofreeze = result["variants"]["nofreeze"]
    assert [r["status"] for r in nofreeze["runs"]] == [FAILED, MISSING]
    assert "CUDA out of memory" in nofreeze["runs"][0]["reason"]
    assert nofreeze["n_ok"] == 0
    assert nofreeze["metrics"]["best_val_correlation"]["mean"] is None  # not 0.5, not 0.0
    assert nofreeze["runtime_s"]["mean"] is None and nofreeze["beats_naive"] is None

    table = pd.read_csv(tmp_path / "results" / "summary_table.csv", keep_default_na=False)
    row = table[table["variant"] == "nofreeze"].iloc[0]
    assert row["best_val_correlation_mean"] == "" and row["runtime_s_mean"] == ""
    assert row["run_status"] == f"{UNIT_DIR}/seed0:failed {UNIT_DIR}/seed1:missing"
    tidy = pd.read_csv(tmp_path / "results" / "metrics.csv")
    assert len(tidy[(tidy["variant"] == "baseline") & (tidy["seed"] == 1)]) == 1  # partial curve kept


def test_malformed_summary_fails_naming_file_and_key(tmp_path: Path, caplog) -> None:
    write_smoke_runs(tmp_path)
    bad = tmp_path / "results" / "runs" / UNIT_DIR / "freeze" / "seed1" / "summary.json"
    data = json.loads(bad.read_text())
    del data["best"]
    bad.write_text(json.dumps(data))
    assert collect.main(collect_argv(tmp_path)) == 2
    assert str(bad) in caplog.text and "'best'" in caplog.text
    assert not (tmp_path / "results" / "summary.json").exists()
    assert not (tmp_path / "results" / "metrics.csv").exists()


def test_malformed_metrics_names_column_and_row(tmp_path: Path, caplog) -> None:
    write_smoke_runs(tmp_path)
    bad = tmp_path / "results" / "runs" / UNIT_DIR / "baseline" / "seed0" / "metrics.csv"
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[3], "oops", 1)
    bad.write_text("\n".join(lines) + "\n")
    assert collect.main(collect_argv(tmp_path)) == 2
    assert "column 'val_correlation' row 4" in caplog.text


def test_variant_seed_mismatch_is_refused(tmp_path: Path, caplog) -> None:
    write_smoke_runs(tmp_path)
    path = tmp_path / "results" / "runs" / UNIT_DIR / "freeze" / "seed0" / "summary.json"
    path.write_text(json.dumps(summary("nofreeze", 0, 0.3)))
    assert collect.main(collect_argv(tmp_path)) == 2
    assert "refusing to guess" in caplog.text


def test_benchmark_parsing(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks" / "train" / UNIT_DIR / "freeze" / "seed3.tsv"
    path.parent.mkdir(parents=True)
    path.write_text(
        BENCHMARK_HEADER + "10\t0:00:10\t100.5\t1\t1\t1\t0\t0\t1\t1\n12\t0:00:12\t-\t1\t1\t1\t0\t0\t1\t1\n"
    )
    assert read_benchmark(path) == (100.5, 12.0)
    assert run_key_from_path(path) == ("freeze", "smoke", 0, 3)
    assert run_key_from_path("results/runs/eurusd/fold2/no_encoder/seed12/summary.json") == (
        "no_encoder",
        "eurusd",
        2,
        12,
    )
    assert run_key_from_path("results/runs/no_encoder/seed12/summary.json") is None  # no series/fold
    assert run_key_from_path("elsewhere/summary.json") is None
    empty = tmp_path / "b.tsv"
    empty.write_text(BENCHMARK_HEADER + "10\t0:00:10\tNA\t1\t1\t1\t0\t0\t1\t1\n")
    peak, _ = read_benchmark(empty)
    assert peak is None


def test_the_strongest_naive_is_chosen_on_validation_not_on_test() -> None:
    """A rule with the lower test loss but the higher validation loss is not the bar."""
    from workflow_scripts.reporting.aggregate import best_naive

    naive = {
        "ohlc_interpolation": {"val_loss": 0.50, "test_loss": 0.70},
        "time_interpolation": {"val_loss": 0.55, "test_loss": 0.40},
    }
    chosen = best_naive(naive)
    assert chosen is not None and chosen.name == "ohlc_interpolation"
    assert chosen.chosen_on == "val_loss" and chosen.loss == 0.70
