"""U-Net building blocks shared by SSaN and LLEmN (encoder E, decoders D_s and D_l).

All convolutions are 3x3 as in the paper. No normalisation layers: brightness statistics are
the signal in low-light enhancement, and batch statistics from small training batches would
leak between images. Upsampling is bilinear + convolution (no transposed convolutions: no
checkerboard artefacts, and it exports to a plain ONNX Resize).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions with ReLU: one U-Net stage."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            conv3x3(cin, cout), nn.ReLU(inplace=True), conv3x3(cout, cout), nn.ReLU(inplace=True)
        )


class UNetEncoder(nn.Module):
    """Encoder E: one ConvBlock per level, 2x max pooling between levels.

    Returns the features of every level, full resolution first; the last one is the bottleneck
    F_l (Eq. 2).
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        widths = (in_channels, *channels)
        self.stages = nn.ModuleList(
            ConvBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            if i:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            feats.append(x)
        return feats


class UpBlock(nn.Module):
    """Decoder stage: upsample 2x, concatenate the encoder skip, ConvBlock."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.block = ConvBlock(cin + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


class UNetDecoder(nn.Module):
    """Decoder (D_s or D_l) with skips from E.

    Stage i (0 = deepest) outputs ``channels[-2 - i]`` channels at the resolution of encoder
    level ``-2 - i``: the same shape as that encoder feature, which is what the knowledge
    distillation loss (Eq. 7) pairs. Returns the head's output and every stage's features.
    """

    def __init__(self, channels: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        rev = channels[::-1]
        self.stages = nn.ModuleList(
            UpBlock(rev[i], rev[i + 1], rev[i + 1]) for i in range(len(rev) - 1)
        )
        self.head = nn.Conv2d(channels[0], out_channels, kernel_size=1)

    def forward(
        self, bottleneck: torch.Tensor, skips: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = bottleneck
        feats = []
        for stage, skip in zip(self.stages, reversed(skips[:-1]), strict=True):
            x = stage(x, skip)
            feats.append(x)
        return self.head(x), feats
