"""The learned reference: a ridge on each masked bar's visible neighbours (issues 18 and 27).

The ridge sees every field of the visible neighbours (issue 27): a test builds a series whose
masked close lies in the neighbours' highs and lows, where the old target-field-only ridge
cannot reach it. Its intercept is not penalised: a test with a large-mean target and a large
λ fails if it is (``tests/mutation_check.py penalised_intercept``). No masked value, in any
timeframe, reaches a feature.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from workflow_scripts.config.base import DataConfig, TrainConfig
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.training import ridge
from workflow_scripts.training.evaluation import skill
from workflow_scripts.training.normalisation import make_batch
from workflow_scripts.training.reference import fit_reference

#: Columns of the synthetic cells of the ridge's unit tests (any number of features will do).
K = 10
DAY_NS = 86_400 * 10**9
FIELDS = ("open", "high", "low", "close")


def _linear_cells(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells whose answer is linear in their features: y = X·w + 0.3, with a little noise."""
    x = torch.randn(n, K, generator=generator)
    x[:, 1] = 0.5 * x[:, 0] + 0.2 * torch.randn(n, generator=generator)  # correlated neighbours
    w = torch.tensor([0.6, 0.3, -0.2, 0.1, 0.4, 0.0, 0.05, -0.3, 0.2, 0.1])
    return x, x @ w + 0.3 + 0.01 * torch.randn(n, generator=generator)


def test_the_ridge_recovers_a_linear_answer_with_skill_close_to_one() -> None:
    generator = torch.Generator().manual_seed(0)
    train, val, test = (_linear_cells(n, generator) for n in (2000, 500, 500))
    fit, losses = ridge.choose_lambda(train, val)
    assert set(losses) == set(ridge.LAMBDAS) and fit.lam == min(losses, key=losses.__getitem__)
    x, y = test
    naive = x[:, 2]  # one feature alone, as a naive rule would use it
    model_mse = float((fit.predict(x) - y).square().mean())
    assert skill(model_mse, float((naive - y).square().mean())) > 0.99


def test_lambda_is_the_one_with_the_lowest_validation_loss() -> None:
    """Few, noisy training rows: validation prefers a strong penalty over the least-squares fit."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(12, K, generator=generator)
    y = torch.randn(12, generator=generator)  # pure noise: any fitted slope is overfitting
    val = (torch.randn(400, K, generator=generator), torch.randn(400, generator=generator))
    fit, losses = ridge.choose_lambda((x, y), val)
    assert fit.lam == min(losses, key=losses.__getitem__) and fit.lam >= 10.0


def test_a_large_mean_target_is_not_shrunk_by_a_large_penalty() -> None:
    """The intercept is not penalised: with y around 10,000 and λ up to 10⁶ the prediction stays
    on y's mean. A penalised intercept would be n·ȳ/(n + λ): 2,857 at λ = 1,000 and n = 400."""
    generator = torch.Generator().manual_seed(2)
    x, y = _linear_cells(400, generator)
    x_test, y_test = _linear_cells(400, generator)
    for lam in (ridge.LAMBDAS[-1], 1e6):
        fit = ridge.fit_ridge(x, y + 1e4, lam)
        assert abs(float(fit.weights[-1]) - float((y + 1e4).double().mean())) < 1e-6
        assert abs(float((fit.predict(x_test) - (y_test + 1e4)).mean())) < 0.2
    # and λ is still chosen on validation among fits that all keep the mean
    fit, losses = ridge.choose_lambda((x, y + 1e4), (x_test, y_test + 1e4))
    assert max(losses.values()) < float(y_test.var()) * 1.5 and fit.lam < ridge.LAMBDAS[-1]


def _bars_whose_close_is_in_the_neighbours(b: int, length: int, seed: int) -> torch.Tensor:
    """Prices ``[b, 1, length, 4]`` (open, high, low, close) in which every close is the mean of
    the previous bar's high and the next bar's low: the answer lies in other fields."""
    generator = torch.Generator().manual_seed(seed)
    level = 100.0 + torch.randn(b, length, generator=generator).cumsum(dim=1)
    spread = 0.5 + 2.0 * torch.rand(b, length, generator=generator)
    high = level + spread * torch.rand(b, length, generator=generator)
    low = level - spread * torch.rand(b, length, generator=generator)
    opened = level + 0.3 * torch.randn(b, length, generator=generator)
    close = level.clone()
    close[:, 1:-1] = (high[:, :-2] + low[:, 2:]) / 2
    return torch.stack([opened, high, low, close], dim=-1)[:, None]


def _isolated_masks(b: int, length: int, seed: int) -> torch.Tensor:
    """Masks ``[b, 1, length]`` of single bars, each with a visible bar on both sides."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, length, dtype=torch.bool)
    for start in range(1, length - 2, 4):
        offset = torch.randint(0, 2, (b,), generator=generator)
        mask[torch.arange(b), 0, start + offset] = True
    return mask


def _close_cells(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked closes of a constructed split: (features ``[n, k]``, targets ``[n]``), window units."""
    b, length = 64, 32
    mean, std = torch.tensor([[100.0, 101.0, 99.0, 100.0]]), torch.tensor([[10.0, 12.0, 8.0, 11.0]])
    windows = (_bars_whose_close_is_in_the_neighbours(b, length, seed) - mean) / std
    mask = _isolated_masks(b, length, seed)
    batch = make_batch(windows, mask, None, "window")
    features = ridge.cell_features(
        batch,
        to_prices=(mean, std),
        ohlc_columns=[0, 1, 2, 3],
        open_times=(torch.arange(length) * DAY_NS).expand(b, 1, length),
        bar_ns=[DAY_NS],
    )
    cells = ridge.masked_cells(features, batch.target, mask)
    return cells.features[3], cells.targets[3]


def test_the_ridge_reads_a_masked_close_off_the_neighbours_high_and_low() -> None:
    """close = (previous high + next low) / 2: linear in the new features, out of the old ridge's
    reach (the neighbours' closes, the interpolations, the gap and the volatility only)."""
    names = ridge.feature_names(FIELDS)
    assert {"before.high", "after.low", "before.range", "after.open"} <= set(names)
    old = [i for i, name in enumerate(names) if not name.startswith(ridge.SIDES) or name.endswith(".close")]
    assert len(old) == 10  # the target-field-only ridge before issue 27
    train, val, test = (_close_cells(seed) for seed in (0, 1, 2))
    naive = float((test[0][:, names.index("time_interpolation")] - test[1]).square().mean())

    def test_skill(columns: list[int]) -> float:
        fit, _ = ridge.choose_lambda((train[0][:, columns], train[1]), (val[0][:, columns], val[1]))
        return skill(float((fit.predict(test[0][:, columns]) - test[1]).square().mean()), naive)

    new_skill, old_skill = test_skill(list(range(len(names)))), test_skill(old)
    assert new_skill > 0.999, new_skill
    assert old_skill < 0.8, old_skill


def test_no_masked_value_in_any_timeframe_reaches_a_feature() -> None:
    """Every masked bar (the span in every timeframe) set to an absurd value: every feature of
    every cell, masked or not, stays the same to the bit."""
    generator = torch.Generator().manual_seed(3)
    b, length = 16, 24
    windows = torch.randn(b, 2, length, 4, generator=generator).cumsum(dim=2)
    mask = torch.zeros(b, 2, length, dtype=torch.bool)
    for i in range(b):
        start = int(torch.randint(0, length - 8, (1,), generator=generator))
        mask[i, 0, start : start + 6] = True  # six days and the two weeks that hold them
        mask[i, 1, start // 4 : start // 4 + 2] = True
    altered = windows.clone()
    altered[mask] = 1000.0
    times = torch.stack([torch.arange(length) * DAY_NS, torch.arange(length) * 7 * DAY_NS])

    def features(values: torch.Tensor) -> torch.Tensor:
        return ridge.cell_features(
            make_batch(values, mask, None, "window"),
            to_prices=(torch.full((2, 4), 50.0), torch.full((2, 4), 5.0)),
            ohlc_columns=[0, 1, 2, 3],
            open_times=times.expand(b, 2, length),
            bar_ns=[DAY_NS, 7 * DAY_NS],
        )

    first, second = features(windows), features(altered)
    assert first.shape[-1] == len(ridge.feature_names(FIELDS))
    assert torch.equal(first, second)


@pytest.fixture(scope="module")
def msft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = DataConfig(name="msft", seq_len=32, patch_len=8, sample_stride=4)
    out = tmp_path_factory.mktemp("derived") / "msft"
    preprocess(spec, out)
    return out


CFG = TrainConfig(eval_batch_size=128, max_eval_batches=3, max_test_batches=3, device="cpu")


def test_the_reference_is_scored_like_a_run_and_never_chooses_on_test(msft: Path) -> None:
    dataset = load_derived(msft)
    first = fit_reference(dataset, CFG, torch.device("cpu"))
    assert first["test_skill"] is not None and first["val_skill"] is not None
    assert set(first["channel_skill"]) == {
        f"{tf}.{f}" for tf in ("d", "w") for f in ("open", "high", "low", "close")
    }
    assert first["features"] == list(ridge.feature_names(FIELDS))
    assert first["strongest_naive"]["price"] in ("ohlc_interpolation", "time_interpolation")
    # every test bar changed: λ, the naive choice and the validation numbers stay; test moves
    test = dataset.split("test")
    shifted = {tf: (bars * np.float32(1.5)).astype(np.float32) for tf, bars in test.bars.items()}
    dataset.split("test")  # loads the cached splits, then the test split is swapped in place
    dataset._splits["test"] = dataclasses.replace(test, bars=shifted)
    second = fit_reference(dataset, CFG, torch.device("cpu"))
    assert second["lambda"] == first["lambda"] and second["strongest_naive"] == first["strongest_naive"]
    assert second["val_skill"] == first["val_skill"]
    assert second["test_loss"] != first["test_loss"]
