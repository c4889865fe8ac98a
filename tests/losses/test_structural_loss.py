"""The 1 - SSIM loss equals 1 - sllen-eval's SSIM, and trains towards the target."""

import numpy as np
import pytest
import torch

from sllen.losses import SSIMLoss
from sllen.metrics import ssim


def _pair(seed: int = 0, size: tuple[int, int] = (37, 52)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(1, 3, *size, generator=g)
    noisy = (target * 0.8 + 0.2 * torch.rand(1, 3, *size, generator=g)).clamp(0, 1)
    return noisy, target


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).double().numpy()


def test_equals_one_minus_the_metric() -> None:
    a, b = _pair()
    expected = 1.0 - ssim(_hwc(a), _hwc(b))
    assert SSIMLoss()(a, b).item() == pytest.approx(expected, abs=1e-5)
    assert SSIMLoss()(b, b).item() == pytest.approx(0.0, abs=1e-6)


def test_batch_mean_and_float32_under_bfloat16_inputs() -> None:
    (a1, b1), (a2, b2) = _pair(1), _pair(2)
    loss = SSIMLoss()
    both = loss(torch.cat([a1, a2]), torch.cat([b1, b2])).item()
    assert both == pytest.approx((loss(a1, b1).item() + loss(a2, b2).item()) / 2, abs=1e-6)
    low = loss(a1.bfloat16(), b1.bfloat16())
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(loss(a1, b1).item(), abs=0.01)  # only the inputs rounded


def test_gradient_descent_raises_ssim() -> None:
    a, b = _pair(3)
    x = a.clone().requires_grad_(True)
    loss = SSIMLoss()
    start = loss(x, b).item()
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        loss(x, b).backward()
        opt.step()
    assert loss(x, b).item() < 0.5 * start


def test_bad_shapes_fail_clearly() -> None:
    a, b = _pair()
    with pytest.raises(ValueError, match="differ"):
        SSIMLoss()(a, b[..., :-1])
    with pytest.raises(ValueError, match="at least 11"):
        SSIMLoss()(a[..., :10, :10], b[..., :10, :10])
