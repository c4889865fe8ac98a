"""HSBAB, the high-level semantic based attention block (Eq. 4).

F_hl = softmax(Q K^T / sqrt(d)) V over the spatial positions of the bottleneck, with Q and K
1x1 projections of F_h (semantic affinity decides which positions mix) and V a 1x1 projection
of F_l (what gets mixed is low-level content). Multi-head: the projection width is split into
``heads`` heads of size d = attention_dim / heads; an output 1x1 projection returns to F_l's
width. This is the network's one attention block, the one the deployment side gives a custom
kernel.

How the attention product is computed is a switch (``mode``), so the exporter can choose the
graph it writes:
- ``sdpa``: torch's scaled_dot_product_attention (training, PyTorch inference);
- ``decomposed``: explicit MatMul-Softmax-MatMul, the pattern TensorRT fuses in FP16;
- ``plugin``: one custom ``sllen::Attention`` node (see sllen.export) for the TensorRT plugin;
- ``mha``: one ``com.microsoft::MultiHeadAttention`` node (see sllen.export), which ONNX
  Runtime's CPU provider runs with a flash-attention kernel whose memory is linear in the number
  of tokens. Outside an export it computes what ``sdpa`` computes.
``fold_scale()`` multiplies the Q projection by 1/sqrt(d) once, so the exported graph has no
scaling pass over the N x N score matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

AttentionMode = Literal["sdpa", "decomposed", "plugin", "mha"]
# Queries per block when the token count is large (see attention()).
QUERY_CHUNK = 2048
# The exporter registers the plugin-node implementation here (it needs ONNX-only machinery).
PLUGIN_ATTENTION: dict[str, Callable[..., torch.Tensor]] = {}
# The same for the ONNX Runtime node of ``mode="mha"`` (registered only while exporting).
MHA_ATTENTION: dict[str, Callable[..., torch.Tensor]] = {}


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    mode: AttentionMode = "sdpa",
) -> torch.Tensor:
    """Scaled dot-product attention on (B, heads, N, d) tensors."""
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if mode == "mha" and "fn" in MHA_ATTENTION:
        return MHA_ATTENTION["fn"](q, k, v, scale)
    if mode in ("sdpa", "mha"):
        n = q.shape[-2]
        if n > QUERY_CHUNK and not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            # Exact (softmax is per query row) and memory linear in N: torch's CPU kernel
            # materialises the N x N scores, 2.4 GB per head for a 6 MP photo.
            return torch.cat(
                [
                    F.scaled_dot_product_attention(
                        q[..., i : i + QUERY_CHUNK, :], k, v, scale=scale
                    )
                    for i in range(0, n, QUERY_CHUNK)
                ],
                dim=-2,
            )
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    if mode == "decomposed":
        if scale != 1.0:
            q = q * scale
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
    if mode == "plugin":
        if "fn" not in PLUGIN_ATTENTION:
            raise RuntimeError("plugin attention is only available while exporting to ONNX")
        return PLUGIN_ATTENTION["fn"](q, k, v, scale)
    raise ValueError(f"unknown attention mode {mode!r}")


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
        self.mode: AttentionMode = "sdpa"
        self.scale: float | None = None  # None: 1/sqrt(d); 1.0 once folded into Q
        # An attention implementation that replaces `mode` (the runtime's custom CUDA kernel).
        self.attention_fn: Callable[..., torch.Tensor] | None = None

    @property
    def head_dim(self) -> int:
        return self.q.out_channels // self.heads

    @torch.no_grad()
    def fold_scale(self) -> None:
        """Fold 1/sqrt(d) into the Q projection (idempotent); outputs are unchanged."""
        if self.scale is not None:
            return
        s = 1.0 / math.sqrt(self.head_dim)
        self.q.weight.mul_(s)
        if self.q.bias is not None:
            self.q.bias.mul_(s)
        self.scale = 1.0

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.heads, c // self.heads, h * w).transpose(-1, -2)

    def forward(self, f_h: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
        b, _, h, w = f_l.shape
        q, k, v = self._split(self.q(f_h)), self._split(self.k(f_h)), self._split(self.v(f_l))
        if self.attention_fn is not None:
            scale = self.scale if self.scale is not None else 1.0 / math.sqrt(self.head_dim)
            out = self.attention_fn(q.contiguous(), k.contiguous(), v.contiguous(), scale)
        else:
            out = attention(q, k, v, scale=self.scale, mode=self.mode)
        out = out.transpose(-1, -2).reshape(b, -1, h, w)
        return self.proj(out)
