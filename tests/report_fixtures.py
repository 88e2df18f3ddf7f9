"""Hand-made training outputs for the collect/report tests, written exactly to DESIGN.md.

The training stage is not needed to test the report: these builders write per-run
summary.json, metrics.csv and Snakemake benchmark files with chosen numbers, so each
test controls precisely which variant wins, which overlaps and which run failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workflow_scripts.jobs.io_utils import canonical_json  # noqa: E402

VARIANTS = ("freeze", "nofreeze", "frozen_all", "baseline")
BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
TRAIN = {
    "task": "reconstruct",
    "epochs": 5,
    "steps_per_epoch": 10,
    "batch_size": 8,
    "learning_rate": 3e-4,
    "encoder_learning_rate": 1e-4,
    "grad_clip": 1.0,
    "precision": "fp32",
}
VARIANT_SHAPE = {
    "freeze": {"init": "pretrained", "freeze_epochs": 2, "description": "pretrained, frozen for 2 epochs"},
    "nofreeze": {"init": "pretrained", "freeze_epochs": 0, "description": "pretrained, trained throughout"},
    "frozen_all": {"init": "pretrained", "freeze_epochs": 5, "description": "pretrained, never trained"},
    "baseline": {"init": "random", "freeze_epochs": 0, "description": "random init, same architecture"},
}


#: The fixtures' one series and fold: their runs live under results/runs/smoke/fold0/.
SERIES = "smoke"
UNIT_DIR = f"{SERIES}/fold0"


def experiment(
    variants: Iterable[str] = VARIANTS, seeds: Iterable[int] = (0, 1), train_overrides: Mapping | None = None
) -> dict[str, Any]:
    """A canonical ExperimentConfig dict as the Snakefile passes it (--experiment-json)."""
    specs = {}
    for name in variants:
        shape = VARIANT_SHAPE.get(name, {"init": "pretrained", "freeze_epochs": 0, "description": name})
        train = dict(TRAIN)
        train.update((train_overrides or {}).get(name, {}))
        specs[name] = {
            "name": name,
            "description": shape["description"],
            "enabled": True,
            "init": shape["init"],
            "encoder": "checkpoint",
            "freeze_epochs": shape["freeze_epochs"],
            "trainable_while_frozen": "none",
            "small_encoder": {},
            "train": train,
        }
    return {
        "model": {"name_or_path": "google-t5/t5-small", "revision": None},
        "series": [{"name": SERIES, "path": "embedded", "kind": "ohlc", "timeframes": ["1h"], "folds": 1}],
        "train": dict(TRAIN),
        "seeds": list(seeds),
        "variants": specs,
    }


def test_skill(best_corr: float) -> float:
    """The fixtures' test skill: above 0 (better than the strongest naive) when best_corr > 0.05."""
    return round(best_corr - 0.05, 6)


def summary(variant: str, seed: int, best_corr: float, *, epochs: int = 5, status: str = "completed") -> dict:
    """A run summary.json following DESIGN.md's train output contract."""
    return {
        "variant": variant,
        "series": SERIES,
        "fold": 0,
        "seed": seed,
        "status": status,
        "task": "reconstruct",
        "normalisation": "window",
        "epochs_completed": epochs,
        "best_epoch": epochs,
        "selection": {"metric": "val_loss", "epoch": epochs},
        "best": {
            "val_correlation": best_corr,
            "val_loss": 1.0 - best_corr,
            "val_mae": 0.5,
            "val_skill": best_corr / 2,
        },
        "final": {
            "train_loss": 0.9 - best_corr,
            "val_correlation": best_corr - 0.01,
            "val_loss": 1.01 - best_corr,
            "val_mae": 0.51,
            "val_skill": best_corr / 2 - 0.01,
        },
        "test": {
            "skill": test_skill(best_corr),
            "skill_price": test_skill(best_corr) / 2,
            "skill_other": None,
            "loss": 0.97 * (1 - test_skill(best_corr)),
            "naive_loss": 0.97,
            "correlation": best_corr,
            "mae": 0.5,
            "n_windows": 40,
            "strongest_naive": {"price": "linear_interpolation"},
            "channel_skill": {"d.close": test_skill(best_corr)},
            "skill_mae": test_skill(best_corr) * 0.8,
            "strongest_naive_mae": {"price": "linear_interpolation"},
            "draws": [
                {"skill": test_skill(best_corr) + shift, "skill_mae": test_skill(best_corr) * 0.8 + shift}
                for shift in (-0.01, 0.01)
            ],
            "periods": [
                {
                    "start": f"2020-0{p + 1}-01T00:00:00+00:00",
                    "end": f"2020-0{p + 1}-28T00:00:00+00:00",
                    "n_windows": 20,
                    "skill": test_skill(best_corr) + (0.02 if p else -0.02),
                    "skill_mae": test_skill(best_corr) * 0.8,
                }
                for p in range(2)
            ],
        },
        "learning": {
            "auc_val_loss": round(1.0 - best_corr / 2, 6),
            "first_step_beats_naive": None if test_skill(best_corr) <= 0 else int(100 * (1 - best_corr)),
            "total_steps": epochs * 10,
        },
        # the budget curve: skill rising to the final value; still improving (not converged)
        "budget_curve": [
            {
                "step": 10 * e,
                "test_skill": test_skill(best_corr) * e / epochs,
                "test_loss": 1.0,
                "val_loss": 1.0,
            }
            for e in range(1, epochs + 1)
        ],
        "convergence": {
            "last_quarter_gain": 0.05,
            "best_in_last_quarter": True,
            "converged": False,
            "quarter_from": 10 * max(1, 3 * epochs // 4),
        },
        "naive_baselines": {
            "linear_interpolation": {
                "val_correlation": 0.05,
                "val_loss": 0.97,
                "test_loss": 0.97,
                "val_mae": 0.6,
            },
            "last_value": {"val_correlation": 0.02, "val_loss": 1.02, "test_loss": 1.01, "val_mae": 0.7},
        },
        "runtime_s": 30.0 + seed,
        "samples_per_s": 800.0 - 10 * seed,
        "params_total": 60_000,
        "params_trainable": 20_000 if variant == "frozen_all" else 60_000,
        "params_encoder": 40_000,
        "embedding_scale": 1.0,
        "device": "cpu",
        "precision": "fp32",
        "resumed_from_epoch": None,
        "config_hash": f"cfg-{variant}",
        "model_hash": "modelhash",
        "data_hash": "datahash",
        "description": VARIANT_SHAPE.get(variant, {}).get("description", variant),
    }


def metrics_csv(best_corr: float, epochs: int = 5) -> str:
    """metrics.csv rows rising towards ``best_corr`` (one row per epoch, all DESIGN columns)."""
    lines = [
        "epoch,train_loss,val_loss,val_correlation,val_mae,val_mae_price,grad_norm,lr,encoder_lr,"
        "encoder_frozen,epoch_time_s,samples_per_s"
    ]
    for epoch in range(1, epochs + 1):
        corr = best_corr * epoch / epochs
        lines.append(
            f"{epoch},{1.1 - corr:.6f},{1.0 - corr:.6f},{corr:.6f},0.5,2.0,{1.5 / epoch:.6f},"
            f"3e-4,1e-4,{epoch <= 2},6.0,800.0"
        )
    return "\n".join(lines) + "\n"


def run_dir(root: Path, variant: str, seed: int) -> Path:
    """results/runs/<series>/fold<f>/<variant>/seed<seed> of the fixtures' one unit layout."""
    return root / "results" / "runs" / UNIT_DIR / variant / f"seed{seed}"


def benchmark_path(root: Path, variant: str, seed: int) -> Path:
    return root / "benchmarks" / "train" / UNIT_DIR / variant / f"seed{seed}.tsv"


def write_run(
    root: Path,
    variant: str,
    seed: int,
    best_corr: float | None,
    *,
    epochs: int = 5,
    status: str = "completed",
    rss: float = 512.0,
) -> None:
    """Write one run's files; ``best_corr=None`` leaves a run that crashed mid-training."""
    directory = run_dir(root, variant, seed)
    directory.mkdir(parents=True, exist_ok=True)
    if best_corr is None:
        (directory / "metrics.csv").write_text(metrics_csv(0.1, epochs=1))
        return
    (directory / "summary.json").write_text(
        json.dumps(summary(variant, seed, best_corr, epochs=epochs, status=status))
    )
    (directory / "metrics.csv").write_text(metrics_csv(best_corr, epochs))
    bench = benchmark_path(root, variant, seed)
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(BENCHMARK_HEADER + f"31.2\t0:00:31\t{rss + seed}\t900\t400\t420\t1.0\t2.0\t95.0\t29.0\n")


SMOKE_CORR = {
    "baseline": (0.10, 0.12),
    "frozen_all": (0.30, 0.32),
    "freeze": (0.40, 0.43),
    "nofreeze": (0.41, 0.42),
}


def write_smoke_runs(root: Path, values: Mapping[str, Iterable[float | None]] = SMOKE_CORR) -> None:
    """4 variants x 2 seeds, plus the model verification and data manifest the report reads."""
    for variant, per_seed in values.items():
        for seed, corr in enumerate(per_seed):
            write_run(root, variant, seed, corr)
    model_dir = root / "resources" / "models" / "google-t5--t5-small"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "verification.json").write_text(
        json.dumps(
            {
                "checks": {"sha256": "passed", "param_count": "passed"},
                "architecture": "T5ForConditionalGeneration",
                "model_type": "t5",
                "dtype": "float32",
                "params_full": 60_506_624,
                "params_encoder": 35_330_816,
                "params_embedding": 16_449_536,
                "expected": None,
                "weights": [{"path": "model.safetensors", "sha256": "ab" * 32, "size": 242_041_896}],
                "resolved_revision": "df1b051c49625cf57a3d0d8d3863ed4d13564fe4",
                "name_or_path": "google-t5/t5-small",
            }
        )
    )
    data_dir = root / "data" / "derived" / UNIT_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "manifest.json").write_text(
        json.dumps({"input": {"sha256": "cd" * 32}, "rows": {"1h": 1000}, "dataset": SERIES, "fold": 0})
    )


def collect_argv(root: Path, variants: Iterable[str] = VARIANTS, seeds: Iterable[int] = (0, 1)) -> list[str]:
    """The collect CLI exactly as the rule calls it, over every planned run."""
    runs = [(v, s) for v in variants for s in seeds]
    return [
        "--summaries",
        *(str(run_dir(root, v, s) / "summary.json") for v, s in runs),
        "--run-metrics",
        *(str(run_dir(root, v, s) / "metrics.csv") for v, s in runs),
        "--benchmarks",
        *(str(benchmark_path(root, v, s)) for v, s in runs),
        "--out-metrics",
        str(root / "results" / "metrics.csv"),
        "--out-summary",
        str(root / "results" / "summary.json"),
        "--out-table",
        str(root / "results" / "summary_table.csv"),
    ]


def report_argv(root: Path, experiment_config: Mapping[str, Any]) -> list[str]:
    """The report CLI exactly as the rule calls it."""
    return [
        "--summary",
        str(root / "results" / "summary.json"),
        "--tidy-metrics",
        str(root / "results" / "metrics.csv"),
        "--experiment-json",
        canonical_json(dict(experiment_config)),
        "--verification",
        str(root / "resources" / "models" / "google-t5--t5-small" / "verification.json"),
        "--data-manifests",
        str(root / "data" / "derived" / UNIT_DIR / "manifest.json"),
        "--out-html",
        str(root / "results" / "report.html"),
        "--out-md",
        str(root / "results" / "report.md"),
        "--plots-dir",
        str(root / "results" / "plots"),
    ]
