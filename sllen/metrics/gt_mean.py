"""GT-mean rescaling: the output scaled so that its mean grey level equals the ground truth's,
then clipped to [0, 1], before PSNR/SSIM.

Why: LOL's ground-truth exposure is the photographer's choice, not a property of the dark
input (on LOL-v1's 485 training pairs the ground truths' mean brightness is uncorrelated with
the inputs', r = 0.06), so plain PSNR mixes "how bright" with "how well restored". Low-light
papers report both (LLFlow, Retinexformer: "GT-mean"); the paper's Table III and sllen-eval's
PSNR/SSIM columns do not rescale, the GT-mean columns do. Grey is ITU-R BT.601 luma
(0.299 R + 0.587 G + 0.114 B, as OpenCV's RGB2GRAY in those papers' evaluation code).
"""

from __future__ import annotations

import numpy as np

from sllen.metrics._image import check_pair
from sllen.metrics.psnr_ssim import psnr, ssim

__all__ = ["LUMA", "gt_mean_psnr_ssim", "gt_mean_rescale"]

LUMA = np.array([0.299, 0.587, 0.114])


def gt_mean_rescale(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``pred`` (float64, [0, 1]) times mean_grey(target) / mean_grey(pred), clipped to [0, 1];
    an all-black ``pred`` stays black (no gain brings it to the target)."""
    a, b = check_pair(pred, target)
    mean_pred = float((a @ LUMA).mean())
    if mean_pred <= 0.0:
        return np.zeros_like(a)
    return np.clip(a * (float((b @ LUMA).mean()) / mean_pred), 0.0, 1.0)


def gt_mean_psnr_ssim(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of the GT-mean-rescaled ``pred`` against ``target``."""
    scaled = gt_mean_rescale(pred, target)
    return psnr(scaled, target), ssim(scaled, target)
