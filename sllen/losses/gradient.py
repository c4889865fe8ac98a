"""Gradient loss, Eq. 10, built like Zero-DCE's exposure-control loss [14]: pull each enhanced
image's mean gradient magnitude to a desired level G (Sec. III-B: measured on well-lit images).

:func:`mean_gradient` is THE definition shared with the data side that estimates G from the
well-lit training images; the two must stay identical or the target level is meaningless.

Distance: L1, ``mean_b |g_b - G|``. g is small (about 0.01-0.05 for natural images), so a squared
error would be ~1e-4 with a gradient that vanishes near G; L1 pulls with constant force until
the level is reached, as Zero-DCE's exposure loss does.

Per image, not per batch mean: every image is pulled to G although natural images differ
(0.014-0.034 measured on four 256x256 photos), so the term is not 0 at the ground truth; its
weight must stay small (see total.py).
"""

from __future__ import annotations

import torch
from torch import nn


def mean_gradient(img: torch.Tensor) -> torch.Tensor:
    """Mean gradient magnitude of each image of a Bx3xHxW batch, shape (B,).

    gray = img.mean(dim=1); dx / dy = forward differences along width / height;
    g = 0.5 * (mean|dx| + mean|dy|), the means over each image's H and W.
    """
    gray = img.mean(dim=1)
    dx = gray[:, :, 1:] - gray[:, :, :-1]
    dy = gray[:, 1:, :] - gray[:, :-1, :]
    return 0.5 * (dx.abs().mean(dim=(1, 2)) + dy.abs().mean(dim=(1, 2)))


class GradientLoss(nn.Module):
    """Eq. 10: ``mean over the batch of |mean_gradient(enhanced) - G|``."""

    def __init__(self, level: float) -> None:
        super().__init__()
        if not level >= 0:
            raise ValueError(f"gradient level G must be >= 0, got {level}")
        self.level = float(level)

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return (mean_gradient(enhanced) - self.level).abs().mean()

    def extra_repr(self) -> str:
        return f"level={self.level}"
