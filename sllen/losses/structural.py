"""Structural loss: 1 - SSIM between the enhanced image and the ground truth.

Not one of Eq. 11's terms: an option (weight 0 by default) for the gap the paper's terms leave
on this project's machines. Eq. 11 pairs smooth L1 with a VGG16 perceptual loss, which needs
ImageNet weights as a local file (sllen never downloads them); without it nothing in the loss
speaks for local structure, and SSIM on real pairs is where the LOL reproduction falls short
(docs/reproduce.md). SSIM is differentiable and needs no weights.

The definition is exactly sllen-eval's (sllen.metrics.psnr_ssim): Gaussian window 11 x 11,
sigma 1.5, K1 = 0.01, K2 = 0.03, population covariances, the 'valid' region only, per RGB
channel, averaged; so the logged value is 1 - the SSIM that sllen-eval would report for the
crop. Computed in float32 whatever the autocast dtype: the variances are differences of
nearly equal means, which bfloat16 cannot resolve.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sllen.metrics.psnr_ssim import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, gaussian_kernel1d


class SSIMLoss(nn.Module):
    """Mean of 1 - SSIM over the batch (images in [0, 1], N x C x H x W, H and W >= 11)."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.from_numpy(gaussian_kernel1d(SSIM_WINDOW, SSIM_SIGMA)).float()
        self.kernel: torch.Tensor
        self.register_buffer("kernel", k, persistent=False)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian, 'valid' region, each channel on its own."""
        c, n = x.shape[1], self.kernel.numel()
        kh = self.kernel.view(1, 1, 1, n).expand(c, 1, 1, n)
        kv = self.kernel.view(1, 1, n, 1).expand(c, 1, n, 1)
        return F.conv2d(F.conv2d(x, kh, groups=c), kv, groups=c)

    def forward(self, enhanced: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if enhanced.shape != target.shape:
            raise ValueError(
                f"enhanced {tuple(enhanced.shape)} and target {tuple(target.shape)} differ"
            )
        if min(enhanced.shape[-2:]) < SSIM_WINDOW:
            raise ValueError(f"SSIM needs crops of at least {SSIM_WINDOW} pixels a side")
        with torch.autocast(enhanced.device.type, enabled=False):
            x, y = enhanced.float(), target.float()
            mx, my = self._blur(x), self._blur(y)
            vx = self._blur(x * x) - mx * mx
            vy = self._blur(y * y) - my * my
            cov = self._blur(x * y) - mx * my
            c1, c2 = SSIM_K1**2, SSIM_K2**2
            ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / (
                (mx * mx + my * my + c1) * (vx + vy + c2)
            )
            return 1.0 - ssim_map.mean()
