"""FFB, the feature fusion block (Eq. 6): F_f = w * Conv(F_hl) + (1 - w) * Conv(F_r)."""

from __future__ import annotations

import torch
from torch import nn

from sllen.model.blocks import conv3x3


class FFB(nn.Module):
    """Learned trade-off w between the attention branch and the RSAEB branch.

    w = sigmoid(a) keeps it in (0, 1) as Eq. 6 implies; a starts at 0 (equal weights).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_hl = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True))
        self.conv_r = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True))
        self.logit_w = nn.Parameter(torch.zeros(()))

    @property
    def w(self) -> torch.Tensor:
        return torch.sigmoid(self.logit_w)

    def forward(self, f_hl: torch.Tensor, f_r: torch.Tensor) -> torch.Tensor:
        w = self.w
        return w * self.conv_hl(f_hl) + (1 - w) * self.conv_r(f_r)
