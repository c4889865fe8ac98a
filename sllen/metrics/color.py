"""Colour and brightness faults of an enhanced image against its ground truth.

Protocol: sRGB (D65) -> CIELAB with the standard formulas (numpy, no colour-management
library). Per image:
- ``saturation_ratio``: mean chroma C* = sqrt(a*^2 + b*^2) of the output over that of the
  ground truth; 1 is right, < 1 desaturated (orange turning brown, blue sky grey).
- ``color_cast``: distance in the a*b* plane between the output's and the ground truth's
  mean colour (a global cast; ~2 is at the edge of visible, > 5 obvious).
- ``mean_lightness``: mean L* (0..100); over a set, the least-squares slope of the output's
  mean L* against the ground truth's (``brightness_slope``) says whether bright scenes stay
  bright and dim ones dim (1) or all end up at one level (0).
- ``chroma_noise``: RMS of the high-pass (image minus a 5x5 box blur) of a* and b*: colour
  speckle; compared with the ground truth's own fine chroma detail as a ratio.
"""

from __future__ import annotations

import numpy as np

from sllen.metrics._image import to_float_rgb

_M = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _linear(img: np.ndarray) -> np.ndarray:
    x = np.clip(to_float_rgb(img).astype(np.float64), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _f(t: np.ndarray) -> np.ndarray:
    d = 6 / 29
    return np.where(t > d**3, np.cbrt(t), t / (3 * d * d) + 4 / 29)


def lightness_lab(img: np.ndarray) -> np.ndarray:
    """CIELAB L* alone (rgb_to_lab's first channel, from Y only: a third of its work)."""
    return 116 * _f(_linear(img) @ _M[1]) - 16


def rgb_to_lab(img: np.ndarray) -> np.ndarray:
    f = _f(_linear(img) @ _M.T / _WHITE)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def _box5(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, 2, mode="reflect")
    c = np.cumsum(np.cumsum(np.pad(p, ((1, 0), (1, 0))), 0), 1)
    return (c[5:, 5:] - c[:-5, 5:] - c[5:, :-5] + c[:-5, :-5]) / 25.0


def color_stats(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Per-image colour statistics (see the module docstring)."""
    lp, lt = rgb_to_lab(pred), rgb_to_lab(target)
    if lp.shape != lt.shape:
        raise ValueError(f"shapes differ: {lp.shape} vs {lt.shape}")
    cp = np.hypot(lp[..., 1], lp[..., 2]).mean()
    ct = np.hypot(lt[..., 1], lt[..., 2]).mean()
    cast = np.hypot(*(lp[..., 1:].reshape(-1, 2).mean(0) - lt[..., 1:].reshape(-1, 2).mean(0)))

    def noise(lab: np.ndarray) -> float:
        hp = [lab[..., k] - _box5(lab[..., k]) for k in (1, 2)]
        return float(np.sqrt(np.mean(hp[0] ** 2 + hp[1] ** 2)))

    return {
        "saturation_ratio": float(cp / max(ct, 1e-6)),
        "color_cast": float(cast),
        "lightness": float(lp[..., 0].mean()),
        "lightness_gt": float(lt[..., 0].mean()),
        "chroma_noise": noise(lp),
        "chroma_noise_gt": noise(lt),
    }


def brightness_slope(lightness: list[float], lightness_gt: list[float]) -> float:
    """Least-squares slope of output mean L* on ground-truth mean L* across images."""
    x, y = np.asarray(lightness_gt), np.asarray(lightness)
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])
