import math

import pytest
import torch
import torch.nn.functional as F

from sllen.losses import SegmentationLoss, segmentation_loss


def test_uniform_logits_give_log_k():
    logits = torch.zeros(2, 21, 8, 8)
    labels = torch.randint(0, 21, (2, 8, 8))
    assert float(SegmentationLoss()(logits, labels)) == pytest.approx(math.log(21), rel=1e-6)


def test_matches_torch_mean_without_ignored_pixels():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 5, 6, 7), torch.randint(0, 5, (2, 6, 7))
    expected = F.cross_entropy(logits, labels)
    assert float(segmentation_loss(logits, labels)) == pytest.approx(float(expected), rel=1e-6)


def test_ignored_pixels_contribute_nothing():
    torch.manual_seed(0)
    logits, labels = torch.randn(1, 4, 5, 5), torch.randint(0, 4, (1, 5, 5))
    labels[0, :2] = 255
    garbage = logits.clone()
    garbage[0, :, :2] = 1e4 * torch.randn(4, 2, 5)  # would dominate if not ignored
    valid = labels != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], labels[valid])
    assert float(segmentation_loss(garbage, labels)) == pytest.approx(float(expected), rel=1e-5)


def test_all_ignored_batch_is_zero_not_nan():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((2, 4, 4), 255, dtype=torch.long))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_uint8_labels_and_shape_check():
    logits = torch.zeros(1, 3, 4, 4)
    labels = torch.zeros(1, 4, 4, dtype=torch.uint8)
    assert float(segmentation_loss(logits, labels)) == pytest.approx(math.log(3), rel=1e-6)
    with pytest.raises(ValueError, match="differ"):
        segmentation_loss(logits, torch.zeros(1, 4, 5, dtype=torch.long))
