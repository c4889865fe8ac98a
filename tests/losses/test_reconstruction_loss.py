import pytest
import torch

from sllen.losses import SmoothL1Loss


def test_default_beta_suits_unit_range_images():
    assert SmoothL1Loss().beta == 0.1


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        (0.05, 0.5 * 0.05**2 / 0.1),  # below beta: quadratic
        (0.3, 0.3 - 0.05),  # above beta: linear, |x| - beta / 2
        (-0.3, 0.3 - 0.05),
        (0.1, 0.05),  # the two branches meet at beta
    ],
)
def test_known_values_on_both_sides_of_beta(diff, expected):
    target = torch.full((1, 3, 4, 4), 0.5)
    loss = SmoothL1Loss(beta=0.1)(target + diff, target)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_mean_over_pixels_and_zero_at_target():
    target = torch.full((2, 3, 2, 2), 0.5)
    enhanced = target.clone()
    enhanced[0] += 0.3  # half of the elements off by 0.3, the other half exact
    assert float(SmoothL1Loss(beta=0.1)(enhanced, target)) == pytest.approx(0.125, rel=1e-5)
    assert float(SmoothL1Loss()(target, target)) == 0.0


def test_shape_mismatch_and_bad_beta():
    with pytest.raises(ValueError):
        SmoothL1Loss()(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError):
        SmoothL1Loss(beta=-1.0)
