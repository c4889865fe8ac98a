"""The desired gradient level G of the paper's gradient loss (Eq. 10), measured on images.

Definition (the losses implement the same formula in torch; keep them identical):
for a float image in [0, 1], ``gray`` = mean over the colour channels,
``dx = gray[:, 1:] - gray[:, :-1]``, ``dy = gray[1:, :] - gray[:-1, :]`` and
``G(image) = 0.5 * (mean(|dx|) + mean(|dy|))``; the level of a set of images is the plain
mean of G over the images (each image counts once, whatever its size).

Images may be numpy float images (HxWx3, channels last), torch tensors (3xHxW, channels
first) or single-channel HxW arrays/tensors. torch is not imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError


def _gray(image: Any) -> np.ndarray:
    if hasattr(image, "detach"):  # a torch tensor: channels first
        arr, axis = image.detach().cpu().double().numpy(), 0
    else:
        arr, axis = np.asarray(image, dtype=np.float64), 2
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3 or arr.shape[axis] not in (1, 3):
        layout = "3xHxW tensor" if axis == 0 else "HxWx3 array"
        raise InputError(f"expected a {layout} or an HxW image, got shape {arr.shape}")
    return arr.mean(axis=axis)


def gradient_level(image: Any) -> float:
    """G of one image (see the module docstring)."""
    gray = _gray(image)
    if gray.shape[0] < 2 or gray.shape[1] < 2:
        raise InputError(f"expected an image of at least 2x2 pixels, got shape {gray.shape}")
    dx = np.abs(gray[:, 1:] - gray[:, :-1]).mean()
    dy = np.abs(gray[1:, :] - gray[:-1, :]).mean()
    return float(0.5 * (dx + dy))


def estimate_gradient_level(images: Iterable[Any]) -> float:
    """Mean G over ``images`` (float images HxWx3 or tensors 3xHxW)."""
    levels = [gradient_level(image) for image in images]
    if not levels:
        raise InputError("estimate_gradient_level needs at least one image")
    return float(np.mean(levels))
