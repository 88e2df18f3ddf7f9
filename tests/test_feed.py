"""Batches built several steps at a time (issue 20) are the batches built one step at a time.

``feed.epoch_batches`` builds up to ``MAX_STEPS_AHEAD`` steps' batches in one pass of
tensor ops. That is only a speed change if every batch, mask and statistic is the same
to the bit, the generators end in the same state, and a whole run is unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch

from tests.tiny_models import make_tiny_t5
from tests.training_support import variant, write_synthetic_derived
from workflow_scripts.data.derived import DerivedDataset, load_derived
from workflow_scripts.training import feed, masking
from workflow_scripts.training.bench_hooks import make_step_fn, time_loop_steps
from workflow_scripts.training.build import Run, build_run
from workflow_scripts.training.identity import RunIdentity
from workflow_scripts.training.loop import fit
from workflow_scripts.training.masking import level_span_masks, owner_span_masks
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.optim import clip_gradients
from workflow_scripts.training.outputs import TIMING_COLUMNS

CPU = torch.device("cpu")
FIELDS = ("inputs", "target", "windows", "mask", "loc", "scale")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DerivedDataset:
    return load_derived(write_synthetic_derived(tmp_path_factory.mktemp("derived")))


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5"))


@pytest.fixture
def group_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of steps of each group ``feed.train_batches`` builds, in order."""
    sizes: list[int] = []
    build = feed.train_batches

    def recording(run: Run, idx: torch.Tensor, generator: torch.Generator) -> list[Batch]:
        sizes.append(int(idx.shape[0]))
        return build(run, idx, generator)

    monkeypatch.setattr(feed, "train_batches", recording)
    return sizes


def _equal(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


def _same(one: Batch, other: Batch) -> bool:
    return all(_equal(getattr(one, name), getattr(other, name)) for name in FIELDS)


@pytest.mark.parametrize("task", ["reconstruct", "forecast"])
def test_the_batches_of_several_steps_equal_one_step_at_a_time(
    dataset: DerivedDataset, t5_dir: Path, task: str
) -> None:
    extra = {"task": "forecast", "horizon": 4} if task == "forecast" else {}
    run = build_run(variant(steps_per_epoch=7, **extra), 0, dataset, t5_dir, patch_len=8)
    order, first = feed.epoch_generators(run, 1)
    one_at_a_time = [feed.train_batch(run, order[step], first) for step in range(7)]
    _order, second = feed.epoch_generators(run, 1)
    together = feed.train_batches(run, order, second)
    assert len(together) == 7
    assert all(_same(a, b) for a, b in zip(one_at_a_time, together, strict=True))
    assert torch.equal(first.get_state(), second.get_state())  # the same draws were made
    assert (task == "forecast") == (together[0].mask is None)
    if task == "reconstruct":
        assert together[3].mask is not None and together[3].mask.any()
        assert not torch.equal(together[0].mask, together[1].mask)  # each step draws its own


def test_an_epoch_is_built_in_groups_of_steps_ahead_with_a_shorter_last_group(
    dataset: DerivedDataset, t5_dir: Path, monkeypatch: pytest.MonkeyPatch, group_sizes: list[int]
) -> None:
    run = build_run(variant(steps_per_epoch=7), 0, dataset, t5_dir, patch_len=8)
    monkeypatch.setattr(feed, "MAX_STEPS_AHEAD", 3)
    order, generator = feed.epoch_generators(run, 1)
    grouped = list(feed.epoch_batches(run, order, generator))
    assert group_sizes == [3, 3, 1]
    _order, fresh = feed.epoch_generators(run, 1)
    assert all(_same(a, feed.train_batch(run, order[i], fresh)) for i, a in enumerate(grouped))


def test_a_timed_loop_step_carries_its_share_of_the_batches_built_ahead(
    dataset: DerivedDataset, t5_dir: Path, monkeypatch: pytest.MonkeyPatch, group_sizes: list[int]
) -> None:
    """bench's timings cover whole groups of steps, so each holds its batch building once."""
    run = build_run(variant(steps_per_epoch=50), 0, dataset, t5_dir, patch_len=8)
    monkeypatch.setattr(feed, "MAX_STEPS_AHEAD", 4)
    calls = 0
    step = make_step_fn(run)

    def counted() -> None:
        nonlocal calls
        calls += 1
        step()

    time_loop_steps(counted, run, iters=5)  # a warm-up group, then 5 rounded up to 8
    assert calls == 12 and group_sizes == [4, 4, 4]


def test_steps_ahead_is_bounded_by_the_bytes_built_ahead(
    dataset: DerivedDataset, t5_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = build_run(variant(), 0, dataset, t5_dir, patch_len=8)
    window = feed.train_batch(run, torch.arange(16), torch.Generator().manual_seed(0)).windows
    per_step = window.numel() * window.element_size()
    assert feed.steps_ahead(run) == feed.MAX_STEPS_AHEAD
    monkeypatch.setattr(feed, "BYTES_AHEAD", 3 * per_step + 1)
    assert feed.steps_ahead(run) == 3
    monkeypatch.setattr(feed, "BYTES_AHEAD", per_step // 2)
    assert feed.steps_ahead(run) == 1


def _metric_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(handle)]


def test_a_run_built_one_step_at_a_time_is_the_same_run(
    dataset: DerivedDataset, t5_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every loss, grad norm and score of a two-epoch run, with groups of 4 and of 1 step."""
    identity = RunIdentity("config", "model", "data", "resume-key")
    config = variant("freeze", freeze_epochs=1, epochs=2, steps_per_epoch=9)
    runs = {}
    for ahead in (4, 1):
        monkeypatch.setattr(feed, "MAX_STEPS_AHEAD", ahead)
        root = tmp_path / str(ahead)
        run = build_run(config, 0, dataset, t5_dir, patch_len=8)
        summary = fit(run, root / "out", root / "tb", root / "resume", identity)
        runs[ahead] = (_metric_rows(root / "out" / "metrics.csv"), summary.test)
    assert runs[4] == runs[1]
    assert len(runs[4][0]) == 2


def test_masks_of_several_batches_at_once_equal_one_call_per_batch() -> None:
    bar_ns = (86_400, 604_800)
    first, second = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    per_call = [level_span_masks(5, 32, 0.3, 4, bar_ns, generator=first, device=CPU) for _ in range(3)]
    at_once = level_span_masks(5, 32, 0.3, 4, bar_ns, generator=second, device=CPU, batches=3)
    assert at_once.shape == (15, 2, 32)
    assert torch.equal(torch.cat(per_call), at_once)
    assert torch.equal(first.get_state(), second.get_state())


def test_masks_of_one_seed_are_the_same_whichever_device_consumes_them(
    dataset: DerivedDataset, t5_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mask generator is a CPU generator on every device; its draws move to the device.

    A CUDA generator draws other numbers than the CPU's for the same seed, so masks drawn
    on the device would differ between a CPU and a GPU run of one seed. Simulated here:
    a run whose device is CUDA (on this CPU build a CUDA generator cannot even be
    made), and a mask consumer on the ``meta`` device (no values, but the draws must
    still come from the CPU generator and be the CPU consumer's draws).
    """
    run = build_run(variant(steps_per_epoch=5), 0, dataset, t5_dir, patch_len=8)
    order, on_cpu = feed.epoch_generators(run, 1)
    cpu_batches = feed.train_batches(run, order, on_cpu)
    on_cuda = dataclasses.replace(run, device=torch.device("cuda", 0))  # the data stay where they are
    gpu_order, on_gpu = feed.epoch_generators(on_cuda, 1)
    assert on_gpu.device == CPU and torch.equal(gpu_order, order)
    gpu_batches = feed.train_batches(on_cuda, gpu_order, on_gpu)
    assert all(_same(a, b) for a, b in zip(cpu_batches, gpu_batches, strict=True))

    drawn: dict[str, list[torch.Tensor]] = {"cpu": [], "meta": []}
    draw = masking.draw_offsets
    owners = torch.arange(2 * 32).repeat(6, 1)
    ends = {}
    for name in drawn:

        def recording(*args: object, _into: list[torch.Tensor] = drawn[name]) -> torch.Tensor:
            _into.append(draw(*args))  # type: ignore[arg-type]
            return _into[-1]

        monkeypatch.setattr(masking, "draw_offsets", recording)
        generator = torch.Generator().manual_seed(11)
        bar_ns = (86_400, 604_800)
        mask = owner_span_masks(owners.to(name), 32, 0.3, 4, bar_ns, generator=generator, batches=2)
        assert mask.device.type == name and mask.shape == (6, 2, 32)
        ends[name] = generator.get_state()
    assert drawn["cpu"] and all(offsets.device == CPU for offsets in drawn["meta"])
    assert all(torch.equal(a, b) for a, b in zip(drawn["cpu"], drawn["meta"], strict=True))
    assert torch.equal(ends["cpu"], ends["meta"])  # the consumer's device changed no draw


def test_owners_that_do_not_split_into_the_batches_are_refused() -> None:
    owners = torch.zeros(7, 2 * 8, dtype=torch.long)
    with pytest.raises(ValueError, match="7 rows of owners do not split into 2 batches"):
        owner_span_masks(owners, 8, 0.25, 2, (60, 300), generator=torch.Generator(), batches=2)


@pytest.mark.parametrize("max_norm", [0.0, 0.5, 1e6])
def test_clip_gradients_is_clip_grad_norm_to_the_bit(max_norm: float) -> None:
    generator = torch.Generator().manual_seed(4)
    shapes = [(64, 32), (32,), (32, 32), (7,), (3, 5)]
    params = [torch.nn.Parameter(torch.randn(*shape, generator=generator)) for shape in shapes]
    for param in params[:-1]:  # the last one has no gradient (a frozen tensor)
        param.grad = 3 * torch.randn(param.shape, generator=generator)
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for copy, param in zip(reference, params, strict=True):
        copy.grad = None if param.grad is None else param.grad.clone()
    if max_norm > 0:
        expected = torch.nn.utils.clip_grad_norm_(reference, max_norm)
    else:
        expected = torch.nn.utils.get_total_norm([p.grad for p in reference if p.grad is not None])
    got = clip_gradients(params, max_norm)
    assert torch.equal(got, expected)
    assert all(_equal(a.grad, b.grad) for a, b in zip(params, reference, strict=True))
    after = float(torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]))
    assert after == pytest.approx(0.5 if max_norm == 0.5 else float(got), rel=1e-5)
    assert float(clip_gradients([params[-1]], max_norm)) == 0.0
