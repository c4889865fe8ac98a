"""Exposure compensation of the enhanced image, in stops (EV), applied in linear light.

The network decides how bright a scene should be from the dark input alone, and no single
decision suits every photograph (docs/default-model.md: a night street should stay darker
than a dim room). ``--exposure`` lets the user move that decision as a camera's exposure
compensation does: -1 EV halves the light, +1 doubles it. The gain is applied to linear light
(sRGB decoded, scaled, encoded again), so mid-tones and shadows move as they would on a
camera and hue is kept; above +0 EV highlights that reach white clip, as they would.

A lookup table of 65,536 entries (the 16-bit output's precision) keeps it to an indexing
pass per frame, so video at GPU rates is not slowed by a per-pixel power function.
"""

from __future__ import annotations

import math

import numpy as np

from sllen.runtime.errors import InputError

MAX_STOPS = 4.0  # beyond +-4 EV (16x) the result is black or white, not a correction
LEVELS = 65536  # table size: apply_table indexes any table built on this many levels


def check_exposure(ev: float) -> float:
    """`ev` as a float, or a one-line InputError when it is not a usable exposure."""
    ev = float(ev)
    if not math.isfinite(ev) or abs(ev) > MAX_STOPS:
        raise InputError(
            f"--exposure must be between -{MAX_STOPS:g} and {MAX_STOPS:g} stops, not {ev:g}"
        )
    return ev


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def exposure_table(ev: float) -> np.ndarray:
    """float32 table: sRGB value i / 65535 -> the same value `ev` stops brighter, clipped."""
    x = np.linspace(0.0, 1.0, LEVELS, dtype=np.float64)
    y = linear_to_srgb(np.minimum(srgb_to_linear(x) * 2.0 ** check_exposure(ev), 1.0))
    return y.astype(np.float32)


def apply_table(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map a float image in [0, 1] through `table` (nearest of 65,536 levels)."""
    idx = np.rint(np.clip(image, 0.0, 1.0) * (LEVELS - 1)).astype(np.uint16)
    return table[idx]
