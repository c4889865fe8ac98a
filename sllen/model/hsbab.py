"""HSBAB, the high-level semantic based attention block (Eq. 4).

F_hl = softmax(Q K^T / sqrt(d)) V over the spatial positions of the bottleneck, with Q and K
1x1 projections of F_h (semantic affinity decides which positions mix) and V a 1x1 projection
of F_l (what gets mixed is low-level content). Multi-head: the projection width is split into
``heads`` heads of size d = attention_dim / heads; an output 1x1 projection returns to F_l's
width. This is the network's one attention block, the one the deployment side gives a custom
kernel; ``attention`` is kept a separate function so the exporter can swap its implementation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention on (B, heads, N, d) tensors."""
    return F.scaled_dot_product_attention(q, k, v)


class HSBAB(nn.Module):
    def __init__(self, semantic_channels: int, feature_channels: int, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError("attention dim must be divisible by the number of heads")
        self.heads = heads
        self.q = nn.Conv2d(semantic_channels, dim, kernel_size=1)
        self.k = nn.Conv2d(semantic_channels, dim, kernel_size=1)
        self.v = nn.Conv2d(feature_channels, dim, kernel_size=1)
        self.proj = nn.Conv2d(dim, feature_channels, kernel_size=1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.heads, c // self.heads, h * w).transpose(-1, -2)

    def forward(self, f_h: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
        b, _, h, w = f_l.shape
        out = attention(
            self._split(self.q(f_h)), self._split(self.k(f_h)), self._split(self.v(f_l))
        )
        out = out.transpose(-1, -2).reshape(b, -1, h, w)
        return self.proj(out)
