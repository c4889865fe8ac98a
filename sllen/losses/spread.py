"""Brightness-spread loss: the spread of the batch's mean lightness against the ground truths'.

Not one of Eq. 11's terms: an option (weight 0 by default) for the brightness-slope goal
(docs/default-model.md, "Where the goals stand"). A per-image term cannot raise the slope: the
network cannot know how bright a scene should be, so every per-pixel or per-image loss is
minimised by a guess pulled towards the average scene, and dark scenes come out as bright as
bright ones, a slope below 1. This term compares the batch's images with each other: it is the
absolute difference between the standard deviation of the outputs' mean CIE L* and that of the
ground truths', so a batch whose outputs all sit at one brightness costs what the ground
truths' spread is. Where the network has a cue to a scene's brightness, it is pushed to follow
it further than the per-pixel terms alone would. (At an exact collapse, every output of the
batch at one brightness, the value is that spread but the standard deviation has no
gradient: the push starts once the outputs differ, which real batches always do.)

L* is sllen-eval's (sllen.metrics.color: sRGB decoded, D65 luminance, CIE 1976) and divided by
100, so the value is in the units of the images' [0, 1]. Computed in float32.
"""

from __future__ import annotations

import torch
from torch import nn

# CIE 1976: L* = 116 Y^(1/3) - 16 above (6/29)^3, linear below.
_EPS = (6.0 / 29.0) ** 3
_KAPPA = 24389.0 / 27.0


def mean_lightness(image: torch.Tensor) -> torch.Tensor:
    """Mean CIE L* / 100 of each sRGB image in [0, 1] (N x 3 x H x W -> N)."""
    x = image.float().clamp(0.0, 1.0)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    y = 0.2126 * lin[:, 0] + 0.7152 * lin[:, 1] + 0.0722 * lin[:, 2]
    # The clamp keeps the cube root's gradient finite where the other branch is taken.
    cube = 1.16 * y.clamp_min(_EPS) ** (1.0 / 3.0) - 0.16
    lightness = torch.where(y > _EPS, cube, y * (_KAPPA / 100.0))
    return lightness.mean(dim=(1, 2))


class BrightnessSpreadLoss(nn.Module):
    """abs(std over the batch of the outputs' mean L* - the same of the ground truths') / 100.

    Needs a batch of at least two images (N x 3 x H x W): one image has no spread.
    """

    def forward(self, enhanced: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if enhanced.shape != target.shape:
            raise ValueError(f"shapes differ: {tuple(enhanced.shape)} vs {tuple(target.shape)}")
        if enhanced.dim() != 4 or enhanced.shape[1] != 3 or enhanced.shape[0] < 2:
            raise ValueError(
                "the brightness-spread term needs a batch of at least 2 RGB images "
                f"(N x 3 x H x W), got {tuple(enhanced.shape)}"
            )
        spread = mean_lightness(enhanced).std()
        spread_gt = mean_lightness(target).std()
        return (spread - spread_gt).abs()
