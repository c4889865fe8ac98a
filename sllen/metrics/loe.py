"""Lightness order error (LOE), the Wang et al. 2013 (NPE paper) variant (pure numpy).

Protocol (write it next to every number you report; public LOE implementations differ in
the resize and the lightness, so numbers are comparable only within one variant):

* Arguments: ``loe(reference, enhanced)``. The reference is the **low-light input**, as in
  the standard no-reference usage (DICM, NPE, MEF, LIME...), not a ground truth.
  ``(H, W, 3)`` RGB, float in [0, 1] or uint8 (divided by 255); same shape. Lower is better.
* Lightness: ``L = max(R, G, B)`` per pixel, on the 0-255 scale (``255 * float value``).
  No rounding to integers and no local-maximum filtering, so any strictly increasing global
  tone curve (gamma, ...) gives exactly 0. (Order comparisons are scale-free: the 0-255
  scale only matters for rounding, which is not done.)
* Downsampling (before the comparisons, to make them affordable): with ``size = 50`` and
  ``r = size / min(H, W)``, both lightness maps are resized to ``Hd x Wd`` with
  ``Hd = round(H * r)``, ``Wd = round(W * r)`` (round half to even; the smaller side becomes
  exactly 50) by **nearest-neighbour sampling on pixel centres**: output row ``i`` takes
  input row ``min(floor((i + 0.5) * H / Hd), H - 1)``, likewise for columns. This is MATLAB
  ``imresize(L, [Hd Wd], 'nearest')`` (up to floating-point ties). Images whose smaller side
  is already <= ``size`` are **not** resized (no upsampling); ``size=None`` disables the
  resize entirely (cost grows with (H * W)**2).
* Score: with ``U(p, q) = 1 if L(p) >= L(q) else 0`` on the downsampled maps,
  ``LOE = (1 / n) * sum_x sum_y [U_in(x, y) != U_out(x, y)]`` over all ``n = Hd * Wd``
  pixels x and y (x = y included; it never counts). Units: "number of pixel pairs per
  pixel", between 0 and n - 1.
"""

from __future__ import annotations

import numpy as np

from sllen.metrics._image import check_pair

__all__ = ["LOE_SIZE", "loe", "lightness", "downsample_nearest"]

LOE_SIZE = 50
_CHUNK_ELEMENTS = 1 << 22  # pairwise comparisons per chunk (~4 MiB of booleans per array)


def lightness(image: np.ndarray) -> np.ndarray:
    """``max(R, G, B)`` of a float [0, 1] ``(H, W, 3)`` image, on the 0-255 scale (no rounding)."""
    return image.max(axis=2) * 255.0


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Nearest-neighbour source indices on pixel centres (MATLAB ``imresize`` 'nearest')."""
    idx = np.floor((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out)).astype(np.int64)
    return np.minimum(idx, n_in - 1)


def downsample_nearest(lmap: np.ndarray, size: int | None = LOE_SIZE) -> np.ndarray:
    """Resize a 2-D map so its smaller side is ``size``, as the module docstring defines.

    Maps whose smaller side is already <= ``size`` (or ``size=None``) are returned unchanged.
    """
    if size is not None and size < 1:
        raise ValueError(f"size must be a positive integer or None, got {size}")
    h, w = lmap.shape
    if size is None or min(h, w) <= size:
        return lmap
    r = size / min(h, w)
    hd, wd = max(1, round(h * r)), max(1, round(w * r))
    return lmap[np.ix_(_nearest_indices(h, hd), _nearest_indices(w, wd))]


def _order_mismatches(l_in: np.ndarray, l_out: np.ndarray) -> int:
    """Count pairs (x, y) with ``[l_in[x] >= l_in[y]] != [l_out[x] >= l_out[y]]``, in chunks."""
    n = l_in.size
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    total = 0
    for start in range(0, n, chunk):
        u_in = l_in[start : start + chunk, None] >= l_in[None, :]
        u_out = l_out[start : start + chunk, None] >= l_out[None, :]
        total += int(np.count_nonzero(u_in != u_out))
    return total


def loe(reference: np.ndarray, enhanced: np.ndarray, size: int | None = LOE_SIZE) -> float:
    """Lightness order error of ``enhanced`` relative to ``reference`` (the low-light input).

    NPE-paper (Wang et al. 2013) LOE on ``max(R, G, B)`` lightness, both maps downsampled to a
    smaller side of ``size`` = 50 by nearest sampling; see the module docstring for the exact
    definition. Returns the mean number of order flips per pixel (0 = order preserved).
    """
    a, b = check_pair(reference, enhanced, names=("reference", "enhanced"))
    l_in = downsample_nearest(lightness(a), size).ravel()
    l_out = downsample_nearest(lightness(b), size).ravel()
    return _order_mismatches(l_in, l_out) / l_in.size
