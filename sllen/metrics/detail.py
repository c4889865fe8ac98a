"""How much of the ground truth's edge contrast an enhanced image keeps (blur against sharp).

``edge_ratio(pred, target)``: both images as lightness L* (CIELAB), the output first scaled
to the ground truth's mean grey (sllen.metrics.gt_mean: exposure set aside, which would scale
every gradient); the gradient magnitude (central differences) of each; the ratio of their
means over the ground truth's strongest edges (its top ``EDGE_FRACTION`` of gradient
magnitudes). 1 keeps the edges, < 1 blurs them (0.5: half their contrast gone), > 1
over-sharpens. Noise adds little there: at a strong edge the edge dominates the gradient.
A flat ground truth (no edges) scores 1.

PSNR and SSIM mix blur with noise and exposure; this number isolates the blur a denoiser
trades for clean flat areas (the bundled model on LOL, docs/default-model.md).
"""

from __future__ import annotations

import numpy as np

from sllen.metrics.color import lightness_lab
from sllen.metrics.gt_mean import gt_mean_rescale

EDGE_FRACTION = 0.1  # the share of the ground truth's pixels counted as its edges
FLAT = 1e-3  # L* per pixel: below this mean gradient on its edges a ground truth is flat


def _gradient_magnitude(lightness: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(lightness)
    return np.hypot(gy, gx)


def edge_ratio(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean gradient of ``pred`` over mean gradient of ``target`` at the target's strongest
    edges (module docstring); HxWx3 RGB, uint8 or float in [0, 1]."""
    grad_p = _gradient_magnitude(lightness_lab(gt_mean_rescale(pred, target)))
    grad_t = _gradient_magnitude(lightness_lab(target))
    edges = grad_t >= np.quantile(grad_t, 1.0 - EDGE_FRACTION)
    strength = float(grad_t[edges].mean())
    if strength < FLAT:  # a flat ground truth has no edges to keep or lose
        return 1.0
    return float(grad_p[edges].mean() / strength)
