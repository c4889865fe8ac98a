"""Exposure loss: L1 between the per-channel means of the enhanced image and the ground truth.

Not one of Eq. 11's terms: an option (weight 0 by default). On real pairs (LOL) most of the
remaining PSNR error is the image's overall brightness and white balance, a whole-image
property (docs/reproduce.md: scaling each output to its ground truth's mean grey is worth
2.9 dB). The per-pixel terms pull each pixel towards its own target, so pixels whose errors
disagree in sign cancel; this term gives every pixel of an image the same push towards the
ground truth's mean, per channel (exposure and colour cast), which PSNR, a mean of squared
errors, rewards.
"""

from __future__ import annotations

import torch
from torch import nn


class ExposureLoss(nn.Module):
    """Mean over the batch and channels of |mean(enhanced) - mean(target)| per image channel
    (N x C x H x W), computed in float32."""

    def forward(self, enhanced: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if enhanced.shape != target.shape:
            raise ValueError(f"shapes differ: {tuple(enhanced.shape)} vs {tuple(target.shape)}")
        diff = enhanced.float().mean(dim=(2, 3)) - target.float().mean(dim=(2, 3))
        return diff.abs().mean()
