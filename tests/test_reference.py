"""The learned reference: a ridge on each masked bar's visible neighbours (issue 18)."""

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
from workflow_scripts.training.reference import fit_reference


def _linear_cells(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells whose answer is linear in their features: y = X·w + 0.3, with a little noise."""
    x = torch.randn(n, len(ridge.FEATURES), generator=generator)
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
    x = torch.randn(12, len(ridge.FEATURES), generator=generator)
    y = torch.randn(12, generator=generator)  # pure noise: any fitted slope is overfitting
    val = (torch.randn(400, len(ridge.FEATURES), generator=generator), torch.randn(400, generator=generator))
    fit, losses = ridge.choose_lambda((x, y), val)
    assert fit.lam == min(losses, key=losses.__getitem__) and fit.lam >= 10.0


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
