"""Edge contrast kept (sllen.metrics.detail.edge_ratio)."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.metrics.detail import edge_ratio


def _scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((96, 128, 3), 0.4)
    for _ in range(12):  # rectangles and one-pixel lines: edges of every kind
        y, x = rng.integers(0, 80), rng.integers(0, 110)
        img[y : y + rng.integers(4, 16), x : x + rng.integers(4, 16)] = rng.random(3)
        img[rng.integers(0, 96), x : x + 30] = rng.random(3)
    return img


def _box3(img: np.ndarray) -> np.ndarray:
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return (
        sum(p[dy : dy + img.shape[0], dx : dx + img.shape[1]] for dy in range(3) for dx in range(3))
        / 9
    )


def test_identical_and_exposure_scaled_images_keep_every_edge() -> None:
    gt = _scene()
    assert edge_ratio(gt, gt) == pytest.approx(1.0)
    # exposure is set aside first (GT-mean): a darker copy keeps its edges
    assert edge_ratio(gt * 0.5, gt) == pytest.approx(1.0, abs=0.02)


def test_blur_lowers_it_and_sharpening_raises_it() -> None:
    gt = _scene()
    once = edge_ratio(_box3(gt), gt)
    twice = edge_ratio(_box3(_box3(gt)), gt)
    assert twice < once < 0.85
    sharpened = np.clip(gt + 0.8 * (gt - _box3(gt)), 0, 1)
    assert edge_ratio(sharpened, gt) > 1.1


def test_mild_noise_moves_it_less_than_blur() -> None:
    gt = _scene()
    noisy = np.clip(gt + np.random.default_rng(1).normal(0, 0.02, gt.shape), 0, 1)
    assert abs(edge_ratio(noisy, gt) - 1.0) < abs(edge_ratio(_box3(gt), gt) - 1.0)


def test_a_flat_ground_truth_has_nothing_to_lose() -> None:
    flat = np.full((16, 16, 3), 0.5)
    noisy = np.clip(flat + np.random.default_rng(2).normal(0, 0.05, flat.shape), 0, 1)
    assert edge_ratio(noisy, flat) == 1.0 and edge_ratio(flat, flat) == 1.0


def test_lightness_is_the_lab_conversions_first_channel() -> None:
    from sllen.metrics.color import lightness_lab, rgb_to_lab

    img = np.random.default_rng(3).random((24, 32, 3))
    img[0, 0] = 0.001  # the linear segment near black
    np.testing.assert_allclose(lightness_lab(img), rgb_to_lab(img)[..., 0], atol=1e-9)
