"""Classical baselines the default model must beat (float RGB in [0, 1] in and out).

- ``gamma_auto``: one global gamma chosen so the mean brightness becomes 0.45 (solved by
  bisection on the exact mean, not the log-ratio approximation, which misses badly on
  skewed dark histograms).
- ``clahe``: contrast-limited adaptive histogram equalisation of CIELAB lightness only
  (scikit-image's equalize_adapthist with its defaults), chroma kept.
"""

from __future__ import annotations

import numpy as np

TARGET_MEAN = 0.45


def gamma_auto(img: np.ndarray, target: float = TARGET_MEAN) -> np.ndarray:
    x = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    if x.mean() >= target or x.max() <= 0:
        return x.astype(np.float32)
    # mean(x ** g) decreases with g; find g in (0, 1] with mean = target.
    lo, hi = 1e-3, 1.0
    for _ in range(40):
        g = 0.5 * (lo + hi)
        if (x**g).mean() > target:
            lo = g
        else:
            hi = g
    return (x ** (0.5 * (lo + hi))).astype(np.float32)


def clahe(img: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb, rgb2lab
    from skimage.exposure import equalize_adapthist

    lab = rgb2lab(np.clip(img, 0.0, 1.0))
    lab[..., 0] = equalize_adapthist(lab[..., 0] / 100.0) * 100.0
    return np.clip(lab2rgb(lab), 0.0, 1.0).astype(np.float32)


BASELINES = {"gamma": gamma_auto, "clahe": clahe}
