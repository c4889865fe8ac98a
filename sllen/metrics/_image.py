"""Input handling shared by the image metrics (pure numpy).

Protocol for image inputs:

* Shape ``(H, W, 3)``, RGB, channel last. Both images of a pair must have the same shape.
* ``uint8`` images are converted to float64 by dividing by 255, so they land on the [0, 1]
  scale; floating images are converted to float64 and used as given (no clipping, no
  quantisation). Clip (and, to match metrics on saved PNGs, quantise) network outputs before
  calling a metric. Other dtypes (uint16, int, bool) are rejected rather than guessed at.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_float_rgb", "check_pair"]


def to_float_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as a float64 ``(H, W, 3)`` array on the [0, 1] scale.

    ``uint8`` is divided by 255; floating dtypes are cast to float64 unchanged.

    Raises:
        TypeError: for dtypes other than uint8 or floating point.
        ValueError: if the array is not ``(H, W, 3)``.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must be an RGB image of shape (H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64, copy=False)
    raise TypeError(f"{name} must be uint8 (0-255) or floating point ([0, 1]), got {arr.dtype}")


def check_pair(
    pred: np.ndarray, target: np.ndarray, names: tuple[str, str] = ("pred", "target")
) -> tuple[np.ndarray, np.ndarray]:
    """Convert both images with :func:`to_float_rgb` and check that their shapes match.

    Raises:
        ValueError: if the shapes differ (or either is not ``(H, W, 3)``).
    """
    a = to_float_rgb(pred, names[0])
    b = to_float_rgb(target, names[1])
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}"
        )
    return a, b
