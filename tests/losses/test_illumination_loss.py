import pytest
import torch

from sllen.losses import IlluminationTVLoss, illumination_map, total_variation


def test_zero_for_constant_illumination():
    torch.manual_seed(0)
    low = 0.05 + 0.2 * torch.rand(2, 3, 16, 16)
    enhanced = 4.0 * low  # R = k * I_low  =>  L = 1/k everywhere
    assert float(IlluminationTVLoss(eps=0.0)(enhanced, low)) == pytest.approx(0.0, abs=1e-6)


def test_known_value_for_a_horizontal_step():
    w = 8
    low = torch.full((1, 3, 4, w), 0.5)
    enhanced = torch.full((1, 3, 4, w), 0.5)
    enhanced[..., : w // 2] = 1.0  # L = 0.5 on the left, 1.0 on the right
    # one jump of 0.5 per row among W - 1 horizontal differences; no vertical change
    loss = IlluminationTVLoss(eps=0.0)(enhanced, low)
    assert float(loss) == pytest.approx(0.5 / (w - 1), rel=1e-6)


def test_tv_is_anisotropic_l1_over_both_directions():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0  # a spike: 2 of 6 horizontal and 2 of 6 vertical differences are 1
    assert float(total_variation(x)) == pytest.approx(2 / 6 + 2 / 6)


def test_eps_and_negative_outputs_keep_illumination_finite():
    low = torch.full((1, 3, 2, 2), 0.1)
    enhanced = torch.tensor([-0.5, 0.0, 0.05, 0.15]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    lmap = illumination_map(low, enhanced, eps=0.05)
    assert torch.isfinite(lmap).all() and (lmap > 0).all()
    assert lmap[0, 0, 0, 0] == lmap[0, 0, 0, 1]  # negative output clamped to 0, no sign flip
    assert float(lmap[0, 0, 1, 1]) == pytest.approx(0.5)


def test_gradient_reaches_enhanced():
    torch.manual_seed(0)
    low = 0.1 * torch.rand(1, 3, 8, 8)
    enhanced = torch.rand(1, 3, 8, 8, requires_grad=True)
    IlluminationTVLoss()(enhanced, low).backward()
    assert enhanced.grad.abs().sum() > 0
