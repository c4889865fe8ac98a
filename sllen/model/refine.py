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
separable depthwise convolutions, normalised by the pixels inside the image, several maps in
one convolution; pointwise maths; means, stacking and splitting over channels; 2x pooling and
bilinear upsampling), so ONNX Runtime's row-band execution and TensorRT take it as it is.
In FP16 its box means round (each alone costs 74-80 dB against FP32 on sllen-export's check
frames, together the FP16 file's 58 dB, within the 40 dB budget), so the FP16 export treats
it like the rest of the graph. INT8 leaves its box-filter convolutions in float.

The colour stage (``chroma_radius`` > 0) then works on the refined image's colour alone, the
RGB channels minus their mean, at a larger scale: the darkest inputs leave colour blotches of
several pixels (mottle) that the 5x5 windows keep. In windows of about 2R+2 pixels it fits the
colour as an affine function of the refined grey (ridge ``chroma_eps``), and keeps the part of
the colour that fit misses only where that part is stronger than the noise to expect there:
``keep = max(E - n^2, 0) / E`` (a Wiener-like gate), with E the residual colour's local energy
and ``n^2 = chroma_noise^2 * gain^2 * E_in``, E_in the local energy of the input's fine colour
(its colour minus a 3x3 mean: in a dark capture mostly sensor noise) and gain the window's
output over input brightness. A well-lit or clean input keeps its colour detail; a noisy one
brightened many times loses the colour texture finer than the window that its grey level does
not show, which there is mostly noise the network left. The fit and the noise level are
computed on the 2x2-averaged frame in (2(R//2)+1)^2 windows and their coefficients upsampled
bilinearly (He and Sun, "Fast Guided Filter", 2015): the mottle is coarse, and at full
resolution the stage cost about a fifth of a 1280x720 frame on a 2-core CPU. Its output is
68.6 dB from the full-resolution fit's on 31 our485 pairs, 62.5 dB on the built-in set's
darkest frames and 87 dB on well-lit photographs (mean PSNR); the residual's energy and the
gate stay at full resolution.

Measured with the bundled model (docs/default-model.md, "Guided refinement"): radius 2 and
eps 3e-4 were chosen on 30 LOL training pairs (our485), then scored once elsewhere; the colour
stage's radius 8, eps 1e-2 and noise share 0.25 on 31 our485 pairs (the only setting tried
that lost nothing there), with well-lit photographs passed through it (71 dB from themselves).
"""

from __future__ import annotations

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


def box_means(ones: torch.Tensor, tensors: list[torch.Tensor], radius: int) -> list[torch.Tensor]:
    """Each tensor's mean over the (2r+1)^2 windows inside the image (``ones``: B x 1 x H x W
    of ones, whose box sum is each window's share of pixels inside the image).

    All in one depthwise convolution pair over the channels concatenated: ONNX Runtime's CPU
    provider runs a one-channel convolution as sixteen (its NCHWc layout pads the output
    channels to its block), so separate box means of one-channel maps cost 20-24 ms each at
    1280x720 against 1.5-7 ms per channel together (one thread, measured 2026-12-06). Four or
    eight channels are padded to sixteen as well (35 ms for four at radius 1), so those
    counts get one more channel of ones. Concat and Split on the channels are row-local: a
    band segment of the row-band execution takes them (runtime/backends/band_rules.py)."""
    sizes = [1] + [t.shape[1] for t in tensors]
    extra = [ones] if sum(sizes) in (4, 8) else []
    sums = box_sum(torch.cat([ones, *tensors, *extra], dim=1), radius)
    norm, *means = torch.split(sums, sizes + [1] * len(extra), dim=1)
    return [m / norm for m in means[: len(tensors)]]


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
        if chroma_radius == 1 or chroma_radius < 0 or chroma_eps <= 0 or chroma_noise < 0:
            raise ValueError(
                "chroma radius must be 0 or >= 2, chroma eps > 0 and chroma noise >= 0, got "
                f"{chroma_radius}, {chroma_eps}, {chroma_noise}"
            )
        self.radius = radius
        self.eps = eps
        self.chroma_radius = chroma_radius
        self.chroma_eps = chroma_eps
        self.chroma_noise = chroma_noise

    def forward(self, low: torch.Tensor, enhanced: torch.Tensor) -> torch.Tensor:
        guide = low.mean(dim=1, keepdim=True) * GUIDE_SCALE
        ones = guide * 0.0 + 1.0  # not ones_like: ConstantOfShape is not a row-band op
        stats = [guide, guide * guide, enhanced, guide * enhanced]
        mean_i, mean_ii, mean_p, mean_ip = box_means(ones, stats, self.radius)
        var_i = mean_ii - mean_i * mean_i
        # eps is in units of the output's level: the dark guide brought to the output's
        # brightness by each window's gain g, a = g^2 cov / (g^2 var + eps) for the guide itself.
        gain = mean_p.mean(dim=1, keepdim=True) / mean_i.clamp_min(_MIN_LEVEL * GUIDE_SCALE)
        g2 = gain * gain
        a = g2 * (mean_ip - mean_i * mean_p) / (g2 * var_i + self.eps)
        mean_a, mean_b = box_means(ones, [a, mean_p - a * mean_i], self.radius)
        refined = (mean_a * guide + mean_b).clamp(0.0, 1.0)
        if self.chroma_radius:
            tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
            if not tracing and (low.shape[-1] % 2 or low.shape[-2] % 2):
                raise ValueError(
                    f"the colour stage needs an even height and width, got {tuple(low.shape[-2:])}"
                )
            refined = self._colour(low, refined, ones)
        return refined

    def _colour(self, low: torch.Tensor, image: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
        """The colour stage (module docstring): ``image``'s colour refitted at the larger scale
        where what the fit misses is within the noise to expect from ``low``'s."""
        grey = image.mean(dim=1, keepdim=True)
        colour = image - grey
        # The noise to expect: the input's fine colour (its colour minus a 3x3 mean), whose
        # energy in a dark input is mostly sensor noise.
        low = low * GUIDE_SCALE
        grey_in = low.mean(dim=1, keepdim=True)
        colour_in = low - grey_in
        (mean_colour_in,) = box_means(ones, [colour_in], 1)
        fine = colour_in - mean_colour_in
        fine_energy = (fine * fine).mean(dim=1, keepdim=True) * 3.0
        # The fit and the noise level at half resolution (He and Sun's fast guided filter:
        # the coefficients are smooth at the window's scale), brought back by bilinear
        # upsampling and applied to the full-resolution grey.
        half = F.avg_pool2d(torch.cat([grey, colour, grey_in, fine_energy], dim=1), 2)
        y, c, y_in, e_in = torch.split(half, [1, 3, 1, 1], dim=1)
        ones_half = y * 0.0 + 1.0
        r = self.chroma_radius // 2
        mean_y, mean_yy, mean_c, mean_yc, mean_in, mean_e = box_means(
            ones_half, [y, y * y, c, y * c, y_in, e_in], r
        )
        a = (mean_yc - mean_y * mean_c) / (mean_yy - mean_y * mean_y + self.chroma_eps)
        # n^2: the fine energy brought to the output's level by the window's gain (the guide's
        # scale cancels), times the share taken to survive the network; capped, as a lone
        # bright pixel in a black window could pass FP16's range, far above any energy (share
        # before the energy: an overflow times a zero share would be NaN).
        gain = mean_y / mean_in.clamp_min(_MIN_LEVEL * GUIDE_SCALE)
        share = (self.chroma_noise * CHROMA_SCALE) ** 2
        noise2 = (gain * gain * share * mean_e).clamp(max=1e4)
        coeffs = torch.cat([*box_means(ones_half, [a, mean_c - a * mean_y], r), noise2], dim=1)
        full = F.interpolate(coeffs, scale_factor=2.0, mode="bilinear", align_corners=False)
        mean_a, mean_b, noise2 = torch.split(full, [3, 3, 1], dim=1)
        fitted = mean_a * grey + mean_b
        rest = (colour - fitted) * CHROMA_SCALE
        # Energy over the three channels (3 x their mean: ReduceMean is a row-band op) in 5x5.
        (energy,) = box_means(ones, [(rest * rest).mean(dim=1, keepdim=True) * 3.0], 2)
        keep = (energy - noise2).clamp_min(0.0) / (energy + 1e-3)
        return (grey + fitted + keep * rest / CHROMA_SCALE).clamp(0.0, 1.0)
