"""The gradient level G: known answers, numpy and torch agree."""

import numpy as np
import pytest
import torch

from sllen.data.gradient_level import estimate_gradient_level, gradient_level


def test_vertical_ramp():
    h, w = 11, 7
    ramp = np.repeat(np.linspace(0, 1, h, dtype=np.float32)[:, None, None], 3, axis=2)
    ramp = np.broadcast_to(ramp, (h, w, 3))
    # dy = 1/(h-1) everywhere, dx = 0: G = 0.5 * 1/(h-1)
    assert gradient_level(ramp) == pytest.approx(0.5 / (h - 1))
    assert gradient_level(ramp.transpose(1, 0, 2)) == pytest.approx(0.5 / (h - 1))


def test_constant_and_checkerboard():
    assert gradient_level(np.full((5, 5, 3), 0.3)) == 0.0
    checker = (np.indices((6, 6)).sum(axis=0) % 2).astype(np.float32)
    assert gradient_level(np.stack([checker] * 3, axis=2)) == pytest.approx(1.0)
    # channels are averaged before differencing: one channel of three
    one = np.zeros((6, 6, 3))
    one[..., 0] = checker
    assert gradient_level(one) == pytest.approx(1.0 / 3.0)


def test_torch_tensors_match_numpy_images():
    img = np.random.default_rng(0).random((9, 13, 3)).astype(np.float32)
    tensor = torch.from_numpy(img).permute(2, 0, 1)
    assert gradient_level(tensor) == pytest.approx(gradient_level(img), rel=1e-6)
    assert estimate_gradient_level([tensor, img]) == pytest.approx(gradient_level(img), rel=1e-6)


def test_level_is_the_plain_mean_over_images_of_any_size():
    a = np.zeros((4, 4, 3))
    b = np.repeat(np.linspace(0, 1, 21)[:, None, None], 3, axis=2) * np.ones((1, 40, 1))
    expected = 0.5 * (0.0 + 0.5 / 20)
    assert estimate_gradient_level(iter([a, b])) == pytest.approx(expected)


def test_bad_input():
    with pytest.raises(ValueError):
        estimate_gradient_level([])
    with pytest.raises(ValueError):
        gradient_level(np.zeros((3, 8, 8)))  # channels-first numpy is not a float image
    with pytest.raises(ValueError):
        gradient_level(np.zeros((1, 8, 3)))
