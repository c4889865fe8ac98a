"""Scoring the model on the validation pairs during training (rank 0 only)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from sllen.data.sampler import SizedDataset
from sllen.metrics import gt_mean_psnr_ssim, psnr, ssim
from sllen.model.sllen import SLLEN
from sllen.train.stages import to_numpy_image


class Validation(NamedTuple):
    """Mean scores over the validation pairs."""

    psnr: float
    ssim: float
    psnr_gm: float  # GT-mean rescaled (sllen.metrics.gt_mean)
    ssim_gm: float


@torch.no_grad()
def validate(model: SLLEN, val: SizedDataset, device: torch.device) -> Validation:
    """Mean PSNR/SSIM, plain and GT-mean, of the model's enhanced pairs."""
    model.eval()
    scores = []
    for i in range(len(val)):  # map-style: items 0 .. len - 1
        item = val[i]
        out = model.enhance(item["low"].to(device))
        pred, gt = to_numpy_image(out), to_numpy_image(item["high"])
        scores.append((psnr(pred, gt), ssim(pred, gt), *gt_mean_psnr_ssim(pred, gt)))
    return Validation(*(float(v) for v in np.mean(scores, axis=0)))
