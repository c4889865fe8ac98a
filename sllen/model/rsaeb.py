"""RSAEB, the random semantic aware enhancement block (Eq. 5): F_r = gamma * F_l + beta.

gamma and beta (F_l's size) are predicted from the intermediate embedding feature F_i by a
few convolutions with non-linearities, a spatial feature transform. gamma is predicted as
1 + delta (as SFT-GAN's implementation does) so the block starts close to the identity and
F_l is not wiped out by a random gamma at initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sllen.model.blocks import conv3x3


class RSAEB(nn.Module):
    def __init__(self, ief_channels: int, feature_channels: int, hidden: int) -> None:
        super().__init__()
        self.shared = conv3x3(ief_channels, hidden)
        self.gamma = nn.Sequential(
            conv3x3(hidden, hidden),
            nn.LeakyReLU(0.1, inplace=True),
            conv3x3(hidden, feature_channels),
        )
        self.beta = nn.Sequential(
            conv3x3(hidden, hidden),
            nn.LeakyReLU(0.1, inplace=True),
            conv3x3(hidden, feature_channels),
        )

    def forward(self, f_i: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.shared(f_i), 0.1)
        return (1 + self.gamma(h)) * f_l + self.beta(h)
