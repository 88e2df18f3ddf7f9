"""How close the workflow runs to the hardware, measured on the machine at hand.

    python -m workflow_scripts.bench [--quick] [--scaling] [--model tiny|mini|t5-small] [--efficiency-only]

The last line of output is one JSON object. Everything is generated in a temporary
directory: a synthetic 1-minute series preprocessed by the real pipeline, and T5
encoders built from a config (weights do not change step time, so no download).

* ``train_step_efficiency``: bare PyTorch step time / project step time for the same
  model, batch and dtype. Under 1 is the price of the loop's own work (batch gathering,
  masking, clipping, schedule, bookkeeping); the target is >= 0.90 with the tiny encoder
  (the closest a CPU gets to a short GPU step) and >= 0.97 with t5-small.
* ``host_ms_per_step``: that price in milliseconds, project step - bare step; on a GPU
  it is host-side work that a short step cannot hide. ``batch_ms_per_step``: the part
  of it that builds the batch (gather, mask draws, window statistics), timed alone, per
  step of a group of ``batch_steps_ahead`` steps built together as the loop builds them.
* ``samples_per_s``: training windows per second of the project step, per variant.
* ``bf16_vs_fp32_speedup``: fp32 step time / bf16-autocast step time on this device; on
  CUDA, where "fp32" runs TF32 matmuls (``training.device.configure_backends``), it is
  named ``bf16_vs_tf32_speedup``, and ``fp32_runs_as`` says which it was.
* ``dag_dry_run_s``: ``snakemake -n`` on the full default DAG.
* ``preprocess_m1_rows_per_s``: the data stage's benchmark (3.1M rows, 300k with --quick).
* ``scaling`` (with --scaling or --scaling-only): step time and the memory the steps
  add, against seq_len, batch size, number of timeframes and model size, each point in
  a fresh process.

Absolute times hold only for the machine recorded under ``machine``; ratios measured in
one run are what carries over.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workflow_scripts.config.loader import load_experiment
from workflow_scripts.data.benchmark import benchmark_preprocess
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.data.spec import data_config_from_params
from workflow_scripts.data.synthetic import synthetic_ohlc
from workflow_scripts.jobs.io_utils import atomic_write_json
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.models.known_models import T5_ARCHITECTURES

# torch, transformers and the training modules (which import transformers) are imported
# inside the functions that use them: huggingface_hub reads HF_HUB_OFFLINE when it is
# imported, and main() sets it first.

MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 64},
    "mini": {"d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 2, "num_heads": 4, "vocab_size": 1024},
    "t5-small": T5_ARCHITECTURES["google-t5/t5-small"],
}
VARIANTS = {
    "nofreeze": {"init": "random", "freeze_epochs": 0},
    "freeze": {"init": "random", "freeze_epochs": 2},
    "frozen_all": {"init": "random", "freeze_epochs": "all"},
    "baseline": {"init": "random", "freeze_epochs": 0},
}
ALL_TIMEFRAMES = ("m1", "m5", "m15", "m30", "h1", "h4")


@dataclasses.dataclass(frozen=True)
class Point:
    """One training-step measurement setting."""

    model: str = "tiny"
    seq_len: int = 128
    patch_len: int = 32
    batch_size: int = 64
    n_timeframes: int = 2
    precision: str = "fp32"
    variant: str = "nofreeze"


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_model_config(directory: Path, size: str) -> Path:
    """A T5 config of the given size; ``init: random`` builds the encoder from it alone."""
    from transformers import T5Config

    directory.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {**MODEL_SIZES[size], "decoder_start_token_id": 0, "pad_token_id": 0}
    T5Config(**settings, eos_token_id=1).save_pretrained(directory)
    return directory


def write_dataset(directory: Path, point: Point, n_rows: int = 40_000) -> Path:
    """Synthetic m1 bars through the real preprocess pipeline."""

    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "bars_m1.parquet"
    synthetic_ohlc(n_rows).to_parquet(source, index=False)
    spec = data_config_from_params(
        {
            "name": "bench",
            "path": str(source),
            "kind": "ohlc",
            "timeframes": list(ALL_TIMEFRAMES[: point.n_timeframes]),
            "seq_len": point.seq_len,
            "patch_len": point.patch_len,
        }
    )
    out = directory / "derived"
    preprocess(spec, out)
    return out


def build_bench_run(point: Point, root: Path) -> Any:
    from workflow_scripts.training.build import build_run

    data_dir = write_dataset(root / f"data-{point.seq_len}-{point.patch_len}-{point.n_timeframes}", point)
    model_dir = write_model_config(root / f"model-{point.model}", point.model)
    experiment = load_experiment(
        {
            "train": {"batch_size": point.batch_size, "precision": point.precision, "steps_per_epoch": 50},
            "variants": {point.variant: VARIANTS[point.variant]},
        }
    )
    variant = experiment.variants[point.variant]
    # The model directory holds an architecture only (every arm starts random), so there is
    # no pretrained token table to take the embedding scale from; speed does not depend on it.
    return build_run(
        variant, 0, load_derived(data_dir), model_dir, patch_len=point.patch_len, experiment_rms=1.0
    )


def step_times(point: Point, root: Path, iters: int, rounds: int = 3) -> dict[str, Any]:
    """Best seconds per project step and per bare step at ``point``.

    The two are timed in alternating rounds and each keeps its best round, so a burst
    of background load or a cold cache does not land on one side only. The loop builds
    its batches several steps at a time (``feed.steps_ahead``), so every timing covers
    whole groups of those steps: ``iters`` is rounded up to a multiple of the group.
    """
    from workflow_scripts.training.bench_hooks import (
        make_bare_step_fn,
        make_step_fn,
        time_loop_steps,
        time_steps,
        whole_groups,
    )
    from workflow_scripts.training.feed import epoch_generators, steps_ahead, train_batches

    run = build_bench_run(point, root)
    project_step, bare_step = make_step_fn(run), make_bare_step_fn(run)
    order, mask_generator = epoch_generators(run, 1)
    ahead, steps = steps_ahead(run), whole_groups(run, iters)

    def batch_group() -> None:
        train_batches(run, order[:ahead], mask_generator)

    project = bare = batch = float("inf")
    for _ in range(rounds):
        project = min(project, time_loop_steps(project_step, run, iters=iters))
        bare = min(bare, time_steps(bare_step, run.device, iters=steps))
        batch = min(batch, time_steps(batch_group, run.device, iters=steps // ahead) / ahead)
    return {
        "project_s": project,
        "bare_s": bare,
        "batch_s": batch,
        "steps_ahead": ahead,
        "device": run.device,
    }


def measure_training(
    point: Point, root: Path, iters: int, *, efficiency_only: bool = False
) -> dict[str, Any]:
    """Efficiency of the loop, throughput per variant, and bf16 against fp32.

    ``efficiency_only``: the loop's figures only (efficiency, step times, host and batch
    milliseconds); the variants and the emulated bf16 of a large encoder on a CPU take
    many minutes.
    """
    from workflow_scripts.training.bench_hooks import make_step_fn, time_loop_steps
    from workflow_scripts.training.device import fp32_name

    nofreeze = step_times(point, root, iters)
    fp32 = fp32_name(nofreeze["device"])
    result: dict[str, Any] = {
        "fp32_runs_as": fp32,
        "train_step_efficiency": round(nofreeze["bare_s"] / nofreeze["project_s"], 3),
        "train_step_s": round(nofreeze["project_s"], 5),
        "bare_step_s": round(nofreeze["bare_s"], 5),
        "host_ms_per_step": round(1000 * (nofreeze["project_s"] - nofreeze["bare_s"]), 3),
        "batch_ms_per_step": round(1000 * nofreeze["batch_s"], 3),
        "batch_steps_ahead": nofreeze["steps_ahead"],
    }
    if efficiency_only:
        return result
    samples = {}
    for name in VARIANTS:
        run = build_bench_run(dataclasses.replace(point, variant=name), root)
        seconds = time_loop_steps(make_step_fn(run, epoch=1), run, iters=iters)
        samples[name] = round(point.batch_size / seconds, 1)
    bf16 = step_times(dataclasses.replace(point, precision="bf16"), root, iters)
    result["samples_per_s"] = samples
    result[f"bf16_vs_{fp32}_speedup"] = round(nofreeze["project_s"] / bf16["project_s"], 3)
    return result


def measure_dag_dry_run(repeats: int = 3) -> float:
    """Best wall time of ``snakemake -n`` on the default config, from the repository root."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--quiet", "all"],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def measure_point_in_subprocess(point: Point, iters: int) -> dict[str, Any]:
    """One scaling point in a fresh process, so its peak memory is its own."""
    command = [
        sys.executable,
        "-m",
        "workflow_scripts.bench",
        "--point",
        json.dumps(dataclasses.asdict(point)),
    ]
    command += ["--iters", str(iters)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def run_point(point: Point, iters: int) -> dict[str, Any]:
    """Step time and the memory the training steps themselves add (model and data excluded).

    On Linux the peak-RSS mark is reset (``/proc/self/clear_refs``) once the run is
    built, so the peak read afterwards belongs to the steps: activations, gradients and
    optimizer state. On CUDA the device's peak is reset at the same moment
    (``bench_hooks.reset_device_peak``), so ``cuda_peak_mb`` is the steps' peak too.
    """
    from workflow_scripts.training.bench_hooks import (
        device_peak_mb,
        make_step_fn,
        reset_device_peak,
        time_loop_steps,
    )

    with tempfile.TemporaryDirectory(prefix="bench-point-") as tmp:
        run = build_bench_run(point, Path(tmp))
        Path("/proc/self/clear_refs").write_text("5")
        reset_device_peak(run.device)
        before_mb = _status_mb("VmRSS")
        step_s = time_loop_steps(make_step_fn(run), run, iters=iters)
        peak_mb = _status_mb("VmHWM")
    result = {**dataclasses.asdict(point), "step_s": round(step_s, 5)}
    result.update(rss_before_steps_mb=round(before_mb), step_memory_mb=round(peak_mb - before_mb))
    cuda_peak = device_peak_mb(run.device)
    if cuda_peak is not None:
        result["cuda_peak_mb"] = cuda_peak
    return result


def measure_scaling(base: Point, iters: int) -> dict[str, list[dict[str, Any]]]:
    axes = {
        "seq_len": [dataclasses.replace(base, seq_len=n) for n in (64, 128, 256)],
        "batch_size": [dataclasses.replace(base, batch_size=n) for n in (16, 64, 256)],
        "n_timeframes": [dataclasses.replace(base, n_timeframes=n) for n in (1, 2, 4)],
        "model": [dataclasses.replace(base, model=name, batch_size=16) for name in MODEL_SIZES],
        # Where the encoder dominates the step, frozen_all skips its weight gradients.
        "variant": [
            dataclasses.replace(base, model="t5-small", batch_size=16, variant=name)
            for name in ("nofreeze", "frozen_all")
        ],
    }
    return {
        axis: [measure_point_in_subprocess(point, iters) for point in points] for axis, points in axes.items()
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: finishes in under a minute on 2 cores"
    )
    parser.add_argument("--scaling", action="store_true", help="also measure how step time and memory scale")
    parser.add_argument("--scaling-only", action="store_true", help="measure only the scaling points")
    parser.add_argument("--model", choices=sorted(MODEL_SIZES), help="encoder size for the step measurements")
    parser.add_argument("--iters", type=int, help="timed steps per measurement")
    parser.add_argument(
        "--steps-only", action="store_true", help="only the training-step figures (no dry run, no preprocess)"
    )
    parser.add_argument(
        "--efficiency-only",
        action="store_true",
        help="only the efficiency, host and batch figures (implies --steps-only; for t5-small on a CPU)",
    )
    parser.add_argument("--point", help=argparse.SUPPRESS)  # internal: one scaling point (JSON)
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.point:
        print(json.dumps(run_point(Point(**json.loads(args.point)), args.iters or 5)))
        return 0

    log = setup_logging("workflow_scripts.bench")
    iters = args.iters or (5 if args.quick else 20)
    point = Point(model=args.model or ("tiny" if args.quick else "mini"), batch_size=32 if args.quick else 64)
    result: dict[str, Any] = {"machine": machine(), "quick": args.quick, "setting": dataclasses.asdict(point)}
    if not args.scaling_only:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            log.info("training steps: %s", point)
            result.update(measure_training(point, Path(tmp), iters, efficiency_only=args.efficiency_only))
    if not (args.scaling_only or args.steps_only or args.efficiency_only):
        log.info("snakemake -n on the default DAG")
        result["dag_dry_run_s"] = measure_dag_dry_run(1 if args.quick else 3)
        rows = 300_000 if args.quick else 3_100_000
        log.info("preprocess %d m1 rows", rows)
        result["preprocess_m1_rows_per_s"] = benchmark_preprocess(rows)["rows_per_s"]
    if args.scaling or args.scaling_only:
        log.info("scaling points (one process each)")
        result["scaling"] = measure_scaling(dataclasses.replace(point, model="tiny"), iters)
    line = json.dumps(result)
    if args.out:
        atomic_write_json(args.out, result)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
