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

``eps`` is relative to the output's level, not the dark input's: each window's fit is that of
the guide brought to the output's brightness by the window's own gain (output over input mean
grey), so one number serves any exposure or uneven light. Every op is local (box means as
separable depthwise convolutions, normalised by the pixels inside the image; pointwise maths;
a mean over channels), so ONNX Runtime's row-band execution and TensorRT take it as it is.
In FP16 its box means round (each alone costs 74-80 dB against FP32 on sllen-export's check
frames, together the FP16 file's 58 dB, within the 40 dB budget), so the FP16 export treats
it like the rest of the graph. INT8 leaves its box-filter convolutions in float.

The colour stage (``chroma_radius`` > 0) then works on the refined image's colour alone, the
RGB channels minus their mean, at a larger scale: the darkest inputs leave colour blotches of
several pixels (mottle) that the 5x5 windows keep. In (2R+1)^2 windows it fits the colour as an
affine function of the refined grey (ridge ``chroma_eps``), and keeps the part of the colour
that fit misses only where that part is stronger than the noise to expect there:
``keep = max(E - n^2, 0) / E`` (a Wiener-like gate), with E the residual colour's local energy
and ``n^2 = chroma_noise^2 * gain^2 * E_in``, E_in the local energy of the input's fine colour
(its colour minus a 3x3 mean: in a dark capture mostly sensor noise) and gain the window's
output over input brightness. A well-lit or clean input keeps its colour detail; a noisy one
brightened many times loses the colour texture finer than the window that its grey level does
not show, which there is mostly noise the network left.

Measured with the bundled model (docs/default-model.md, "Guided refinement"): radius 2 and
eps 3e-4 were chosen on 30 LOL training pairs (our485), then scored once elsewhere; the colour
stage's radius 8, eps 1e-2 and noise share 0.25 on 31 our485 pairs (the only setting tried
that lost nothing there), with well-lit photographs passed through it (71 dB from themselves).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Floor of a window's mean input grey (a fraction of white): 8-bit black is 0.
_MIN_LEVEL = 1e-3
# The statistics run on the input's grey times this constant (exact in real arithmetic: the
# gain absorbs it) so that FP16 engines cannot overflow: the squared gain stays below
# (1 / (1e-3 * 64))^2 = 244 where it could reach 10^6 (FP16's maximum is 65,504), and a white
# pixel's square is 4096.
GUIDE_SCALE = 64.0
# The colour stage's residual is scaled by this before it is squared, so that its energy stays
# in FP16's normal range (a residual of 0.004 squares to 4e-3, not 1.6e-5).
CHROMA_SCALE = 16.0


def box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum over a (2r+1)^2 window (zeros outside the image) divided by (2r+1)^2: two depthwise
    1-D convolutions. Not avg_pool2d: ONNX Runtime's CPU AveragePool is a direct loop
    (measured 716 ms for one 15x15 channel at 1280x720, 2 threads; a separable depthwise Conv
    30 ms), and the constant kernels are built here, so they are not weights of the model."""
    c, k = x.shape[1], 2 * radius + 1
    rows = torch.full((c, 1, 1, k), 1.0 / k, dtype=x.dtype, device=x.device)
    cols = torch.full((c, 1, k, 1), 1.0 / k, dtype=x.dtype, device=x.device)
    x = F.conv2d(x, rows, padding=(0, radius), groups=c)
    return F.conv2d(x, cols, padding=(radius, 0), groups=c)


BoxMean = Callable[[torch.Tensor], torch.Tensor]


def window_stats(
    guide: torch.Tensor, target: torch.Tensor, radius: int
) -> tuple[BoxMean, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A guided filter's window statistics over (2r+1)^2 windows inside the image: the box
    mean itself, the guide's mean and variance, the target's mean and their covariance.

    Separate box means on pointwise products, no concat/slice: a band segment of ONNX
    Runtime's row-band execution takes only row-local ops (runtime/backends/band_rules.py).
    Each window is normalised by its share of pixels inside the image, its ones made
    pointwise, as ones_like exports a ConstantOfShape, which is not a row-band op."""
    norm = box_sum(guide * 0.0 + 1.0, radius)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return box_sum(t, radius) / norm

    mean_i, mean_p = mean(guide), mean(target)
    var_i = mean(guide * guide) - mean_i * mean_i
    return mean, mean_i, var_i, mean_p, mean(guide * target) - mean_i * mean_p


class GuidedRefine(nn.Module):
    """``forward(low, enhanced)``: ``enhanced`` refined with ``low``'s grey level as the guide.

    ``low``: the network's input, B x 3 x H x W in [0, 1]; ``enhanced``: its output, same
    shape. Returns B x 3 x H x W in [0, 1].
    """

    def __init__(
        self,
        radius: int,
        eps: float,
        chroma_radius: int = 0,
        chroma_eps: float = 1e-2,
        chroma_noise: float = 0.25,
    ) -> None:
        super().__init__()
        if radius < 1:
            raise ValueError(f"refine radius must be >= 1, got {radius}")
        if eps <= 0:
            raise ValueError(f"refine eps must be > 0, got {eps}")
        if chroma_radius < 0 or chroma_eps <= 0 or chroma_noise < 0:
            raise ValueError(
                "chroma radius must be >= 0, chroma eps > 0 and chroma noise >= 0, got "
                f"{chroma_radius}, {chroma_eps}, {chroma_noise}"
            )
        self.radius = radius
        self.eps = eps
        self.chroma_radius = chroma_radius
        self.chroma_eps = chroma_eps
        self.chroma_noise = chroma_noise

    def forward(self, low: torch.Tensor, enhanced: torch.Tensor) -> torch.Tensor:
        guide = low.mean(dim=1, keepdim=True) * GUIDE_SCALE
        mean, mean_i, var_i, mean_p, cov_ip = window_stats(guide, enhanced, self.radius)
        # eps is in units of the output's level: the dark guide brought to the output's
        # brightness by each window's gain g, a = g^2 cov / (g^2 var + eps) for the guide itself.
        gain = mean_p.mean(dim=1, keepdim=True) / mean_i.clamp_min(_MIN_LEVEL * GUIDE_SCALE)
        g2 = gain * gain
        a = g2 * cov_ip / (g2 * var_i + self.eps)
        b = mean_p - a * mean_i
        refined = (mean(a) * guide + mean(b)).clamp(0.0, 1.0)
        if self.chroma_radius:
            refined = self._colour(low, refined)
        return refined

    def _colour(self, low: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The colour stage (module docstring): ``image``'s colour refitted at the larger scale
        where what the fit misses is within the noise to expect from ``low``'s."""
        grey = image.mean(dim=1, keepdim=True)
        colour = image - grey
        mean, mean_y, var_y, mean_c, cov = window_stats(grey, colour, self.chroma_radius)
        a = cov / (var_y + self.chroma_eps)
        fitted = mean(a) * grey + mean(mean_c - a * mean_y)
        rest = (colour - fitted) * CHROMA_SCALE
        # Energy over the three channels (3 x their mean: ReduceMean is a row-band op) in 5x5.
        ones = grey * 0.0 + 1.0
        energy = box_sum((rest * rest).mean(dim=1, keepdim=True) * 3.0, 2) / box_sum(ones, 2)
        # The noise to expect: the input's fine colour (its colour minus a 3x3 mean), whose
        # energy in a dark input is mostly sensor noise, brought to the output's level by the
        # window's gain; chroma_noise is the share of it taken to survive the network.
        low = low * GUIDE_SCALE
        grey_in = low.mean(dim=1, keepdim=True)
        colour_in = low - grey_in
        fine = colour_in - box_sum(colour_in, 1) / box_sum(ones, 1)
        gain = mean_y / mean(grey_in).clamp_min(_MIN_LEVEL * GUIDE_SCALE)
        # gain^2 * energy is g^2 * E in unscaled terms (the guide's scale cancels); capped, as
        # a lone bright pixel in a black window could pass FP16's range, far above any energy
        # (share before the energy: an overflow times a zero share would be NaN).
        share = (self.chroma_noise * CHROMA_SCALE) ** 2
        fine_energy = mean((fine * fine).mean(dim=1, keepdim=True) * 3.0)
        noise2 = (gain * gain * share * fine_energy).clamp(max=1e4)
        keep = (energy - noise2).clamp_min(0.0) / (energy + 1e-3)
        return (grey + fitted + keep * rest / CHROMA_SCALE).clamp(0.0, 1.0)
