import pytest
import torch

from sllen.losses import GradientLoss, mean_gradient


def _ramp(w: int, h: int = 6) -> torch.Tensor:
    row = torch.linspace(0.0, 1.0, w)  # step 1 / (W - 1) horizontally, constant vertically
    return row.view(1, 1, 1, w).expand(1, 3, h, w).clone()


def test_mean_gradient_of_a_ramp():
    w = 11
    assert mean_gradient(_ramp(w)).tolist() == pytest.approx([0.5 / (w - 1)], rel=1e-6)
    vertical = _ramp(w).transpose(2, 3)  # the same ramp along the height
    assert mean_gradient(vertical).tolist() == pytest.approx([0.5 / (w - 1)], rel=1e-6)


def test_mean_gradient_is_per_image_and_uses_gray():
    flat = torch.full((1, 3, 5, 5), 0.3)
    colour = torch.zeros(1, 3, 5, 5)
    colour[:, 0, :, ::2] = 1.0  # red stripes: gray alternates 1/3, 0
    g = mean_gradient(torch.cat([flat, colour]))
    assert g.shape == (2,)
    assert g.tolist() == pytest.approx([0.0, 0.5 * (1 / 3)], rel=1e-6)


def test_loss_zero_at_target_and_l1_elsewhere():
    w = 11
    img = _ramp(w)
    assert float(GradientLoss(0.5 / (w - 1))(img)) == pytest.approx(0.0, abs=1e-7)
    batch = torch.cat([img, torch.full_like(img, 0.2)])  # g = 0.05 and 0
    assert float(GradientLoss(0.03)(batch)) == pytest.approx((0.02 + 0.03) / 2, rel=1e-5)


def test_gradient_flows_and_level_validated():
    img = torch.rand(2, 3, 8, 8, requires_grad=True)
    GradientLoss(1.0)(img).backward()
    assert img.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        GradientLoss(-0.1)


def test_same_definition_as_the_data_side_estimate():
    data = pytest.importorskip("sllen.data.gradient_level")
    torch.manual_seed(0)
    imgs = torch.rand(3, 3, 9, 13)
    ours = mean_gradient(imgs).tolist()
    theirs = [data.gradient_level(im) for im in imgs]
    assert ours == pytest.approx(theirs, rel=1e-5)
