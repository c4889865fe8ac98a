import pytest
import torch

from sllen.losses import DistillationLoss, distillation_loss, match_by_shape


def _pyramid(value: float = 0.0) -> list[torch.Tensor]:
    return [torch.full((2, c, 16 // 2**i, 16 // 2**i), value) for i, c in enumerate((4, 8, 16))]


def test_zero_when_features_equal():
    torch.manual_seed(0)
    enc = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    assert float(distillation_loss(enc, [f.clone() for f in enc])) == 0.0


def test_known_value_is_mean_over_pairs_of_mse():
    enc = _pyramid(0.0)[:2]
    dec = [torch.full_like(enc[1], 3.0), torch.full_like(enc[0], 1.0)]  # any order
    # pair MSEs: 1 (full resolution) and 9 (half resolution)
    assert float(DistillationLoss()(enc, dec)) == pytest.approx(5.0)


def test_only_matching_shapes_are_paired():
    enc = _pyramid(0.0)  # 4x16x16, 8x8x8, 16x4x4 (the bottleneck has no decoder partner)
    dec = [
        torch.full((2, 8, 8, 8), 2.0),
        torch.full((2, 4, 16, 16), 2.0),
        torch.full((2, 3, 16, 16), 1e6),  # head-like output: no encoder partner
        torch.full((2, 4, 8, 8), 1e6),  # same H, W as an encoder level, other channels
    ]
    pairs = match_by_shape(enc, dec)
    assert [tuple(t.shape) for t, _ in pairs] == [(2, 4, 16, 16), (2, 8, 8, 8)]
    assert float(distillation_loss(enc, dec)) == pytest.approx(4.0)


def test_no_matching_pair_raises():
    with pytest.raises(ValueError, match="no encoder/decoder feature pair"):
        distillation_loss([torch.zeros(1, 4, 8, 8)], [torch.zeros(1, 4, 4, 4)])


def test_teacher_gets_no_gradient():
    teacher = torch.randn(1, 4, 8, 8, requires_grad=True)
    student = torch.randn(1, 4, 8, 8, requires_grad=True)
    distillation_loss([teacher], [student]).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
