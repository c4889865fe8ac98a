"""Guided-filter refinement of the enhanced image (not in the paper).

The network denoises by smoothing: on real captures it also smooths fine structure that the
dark input still shows (seat rows, railings, hair), and on the darkest ones it leaves colour
speckle. A guided filter (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013) with the
input's luma as the guide fixes both without parameters: in every (2r+1)^2 window each output
channel becomes an affine function of the guide, ``q = a * I + b``, fitted to the network's
output by least squares with ridge ``eps``. Where the network's output follows the input's
structure, the input's sharper version of it comes back (``a`` large); in flat noisy regions
the output does not correlate with the guide's noise and stays smooth (``a`` near 0); and as
the guide is one grey channel, colour can only change at the scale of the window, which
removes speckle smaller than that.

The guide is the input's grey level brought to the output's brightness by a local gain
(box means over ``GAIN_RADIUS``), so ``eps`` is relative to the output's level, not the dark
input's, and stays one number for any exposure or uneven light. Every op is local (box means
as average pools that exclude padding, pointwise maths, a mean over channels), so ONNX
Runtime's row-band execution and TensorRT take it as it is. Its variances are differences of
box means, which FP16 rounds, but ``eps`` is larger than that rounding: the FP16 export of the
bundled model with the refinement in FP16 matched FP32 at 80 dB on three LOL frames, closer
than with it kept in FP32 islands (64 dB: the ONNX Runtime converter still stores the tensors
between such nodes in FP16), so the exports treat it like the rest of the graph.

Measured with the bundled model (docs/default-model.md, "Guided refinement"): radius 2 and
eps 3e-4 were chosen on 30 LOL training pairs (our485), then scored once elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Radius of the box means that set the guide's local gain: wider than the filter so the gain
# is a smooth brightness map, not a copy of the structure the filter should take from the guide.
GAIN_RADIUS = 7
# Floor of the input's local mean grey (dark input as a fraction of white): 8-bit black is 0.
_MIN_LEVEL = 1e-3


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, counting only pixels inside the image (He et al.'s
    normalised box filter), so borders are not darkened."""
    k = 2 * radius + 1
    return F.avg_pool2d(x, k, stride=1, padding=radius, count_include_pad=False)


class GuidedRefine(nn.Module):
    """``forward(low, enhanced)``: ``enhanced`` refined with ``low``'s grey level as the guide.

    ``low``: the network's input, B x 3 x H x W in [0, 1]; ``enhanced``: its output, same
    shape. Returns B x 3 x H x W in [0, 1].
    """

    def __init__(self, radius: int, eps: float) -> None:
        super().__init__()
        if radius < 1:
            raise ValueError(f"refine radius must be >= 1, got {radius}")
        if eps <= 0:
            raise ValueError(f"refine eps must be > 0, got {eps}")
        self.radius = radius
        self.eps = eps

    def forward(self, low: torch.Tensor, enhanced: torch.Tensor) -> torch.Tensor:
        grey_in = low.mean(dim=1, keepdim=True)
        grey_out = enhanced.mean(dim=1, keepdim=True)
        gain = box_mean(grey_out, GAIN_RADIUS) / box_mean(grey_in, GAIN_RADIUS).clamp_min(
            _MIN_LEVEL
        )
        guide = grey_in * gain
        # Separate pools, no concat/slice: a band segment of ONNX Runtime's row-band execution
        # takes only row-local ops (runtime/backends/band_rules.py).
        mean_i = box_mean(guide, self.radius)
        var_i = box_mean(guide * guide, self.radius) - mean_i * mean_i
        mean_p = box_mean(enhanced, self.radius)
        cov_ip = box_mean(guide * enhanced, self.radius) - mean_i * mean_p
        a = cov_ip / (var_i + self.eps)
        b = mean_p - a * mean_i
        return (box_mean(a, self.radius) * guide + box_mean(b, self.radius)).clamp(0.0, 1.0)
