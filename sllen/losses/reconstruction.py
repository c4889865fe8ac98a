"""Reconstruction loss: smooth L1 between the enhanced image and the ground truth (Eq. 11's
first term, after Girshick's Fast R-CNN [30]).

Why beta = 0.1 and not torch's 1.0: for images in [0, 1] every per-pixel error is below 1, so
beta = 1 would make the loss purely quadratic (0.5 * MSE), i.e. not "smooth L1" at all. With
beta = 0.1 (about 25 grey levels) large errors early in training (wrong exposure, colour cast,
noise the network cannot predict) get L1's bounded gradient, while errors below 0.1, the regime
of a model past ~20 dB PSNR (RMSE 0.1), get a quadratic loss whose gradient fades smoothly
instead of L1's constant push that jitters around the optimum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_BETA = 0.1


class SmoothL1Loss(nn.Module):
    """Mean smooth L1 over all pixels and channels.

    Per element: ``0.5 * x**2 / beta`` if ``|x| < beta`` else ``|x| - 0.5 * beta``.
    """

    def __init__(self, beta: float = DEFAULT_BETA) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = beta

    def forward(self, enhanced: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if enhanced.shape != target.shape:
            raise ValueError(
                f"enhanced {tuple(enhanced.shape)} and target {tuple(target.shape)} differ"
            )
        return F.smooth_l1_loss(enhanced, target, beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
