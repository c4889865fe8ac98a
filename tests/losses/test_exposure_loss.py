"""The exposure term: zero for equal means, the per-channel mean gap otherwise, and a push that
moves the image's brightness towards the target's."""

import pytest
import torch

from sllen.losses import ExposureLoss


def test_value_is_the_mean_gap_per_channel() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 16, 20, generator=g)
    assert ExposureLoss()(target, target).item() == 0.0
    # A texture with the same means costs nothing: only brightness and colour cast count.
    shuffled = target.flatten(2)[:, :, torch.randperm(320, generator=g)].view_as(target)
    assert ExposureLoss()(shuffled, target).item() == pytest.approx(0.0, abs=1e-6)
    darker = target - torch.tensor([0.1, 0.0, 0.2]).view(1, 3, 1, 1)
    assert ExposureLoss()(darker, target).item() == pytest.approx(0.1, abs=1e-6)


def test_gradient_lifts_a_dark_image_evenly() -> None:
    target = torch.full((1, 3, 8, 8), 0.5)
    out = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)).mul(0.3)
    out.requires_grad_(True)
    ExposureLoss()(out, target).backward()
    assert out.grad is not None
    assert (out.grad < 0).all()  # descent raises every pixel
    assert torch.allclose(out.grad, out.grad.flatten()[0].expand_as(out.grad))


def test_other_shapes_are_refused() -> None:
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="shapes differ"):
        ExposureLoss()(a, a[:, :, :8])
