"""The brightness-spread term: sllen-eval's L*, zero when the batch's spread matches the ground
truths', the whole spread when every output has one brightness, and a push that moves dark
and bright outputs apart."""

import numpy as np
import pytest
import torch

from sllen.losses import BrightnessSpreadLoss, mean_lightness
from sllen.metrics.color import lightness_lab


def test_mean_lightness_is_sllen_evals_l_star() -> None:
    g = torch.Generator().manual_seed(0)
    # Deep shadows (the linear branch of L*) and bright areas in one batch.
    images = torch.rand(3, 3, 12, 10, generator=g) * torch.tensor([0.02, 0.3, 1.0]).view(3, 1, 1, 1)
    expected = [
        lightness_lab(im.permute(1, 2, 0).numpy().astype(np.float64)).mean() / 100 for im in images
    ]
    assert mean_lightness(images).tolist() == pytest.approx(expected, abs=1e-5)


def test_value_is_the_gap_between_the_spreads() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.rand(4, 3, 8, 8, generator=g) * torch.tensor([0.1, 0.3, 0.6, 1.0]).view(
        4, 1, 1, 1
    )
    loss = BrightnessSpreadLoss()
    assert loss(target, target).item() == 0.0
    # The same spread in another order costs nothing: only the spread counts.
    assert loss(target.flip(0), target).item() == pytest.approx(0.0, abs=1e-6)
    # Every output at one brightness costs the ground truths' whole spread.
    flat = torch.full_like(target, 0.4)
    assert loss(flat, target).item() == pytest.approx(mean_lightness(target).std().item(), rel=1e-5)


def test_gradient_moves_dark_and_bright_outputs_apart() -> None:
    target = torch.stack([torch.full((3, 8, 8), v) for v in (0.05, 0.8)])
    out = torch.stack([torch.full((3, 8, 8), v) for v in (0.3, 0.4)]).requires_grad_(True)
    BrightnessSpreadLoss()(out, target).backward()
    assert out.grad is not None
    assert (out.grad[0] > 0).all() and (out.grad[1] < 0).all()  # descent darkens 0, lifts 1
    # A black output (the linear branch and the clamp) keeps the gradient finite.
    black = torch.zeros(2, 3, 4, 4, requires_grad=True)
    BrightnessSpreadLoss()(black, target[:, :, :4, :4]).backward()
    assert black.grad is not None and torch.isfinite(black.grad).all()


def test_one_image_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BrightnessSpreadLoss()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
