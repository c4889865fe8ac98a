"""GT-mean rescaling (sllen.metrics.gt_mean): exposure set aside before PSNR/SSIM."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.metrics import gt_mean_psnr_ssim, psnr
from sllen.metrics.gt_mean import LUMA, gt_mean_rescale


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.6, (32, 40, 3))


def test_a_pure_exposure_error_scores_perfectly() -> None:
    gt = _image()
    dark = gt * 0.5  # the right picture, half as bright: plain PSNR punishes it
    assert psnr(dark, gt) < 15
    p, s = gt_mean_psnr_ssim(dark, gt)
    assert p == 100.0 and s == pytest.approx(1.0)


def test_the_rescaled_output_has_the_targets_mean_grey() -> None:
    gt, out = _image(1), _image(2) * 0.3
    scaled = gt_mean_rescale(out, gt)
    assert float((scaled @ LUMA).mean()) == pytest.approx(float((gt @ LUMA).mean()))
    # a structural error survives the rescaling
    assert gt_mean_psnr_ssim(out, gt)[0] < 30


def test_clipping_and_black() -> None:
    gt = np.full((16, 16, 3), 0.9)
    out = np.zeros((16, 16, 3))
    out[:8] = 0.5  # mean 0.25: a gain of 3.6 clips the bright half to 1.0
    assert gt_mean_rescale(out, gt).max() == 1.0
    assert not gt_mean_rescale(np.zeros_like(gt), gt).any()
    u8 = (gt * 255).astype(np.uint8)  # uint8 is read as /255, like the other metrics
    assert gt_mean_rescale(u8 // 2, u8).max() <= 1.0


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="same shape"):
        gt_mean_rescale(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
