"""Geometric self-ensemble: the mean of the model's results on the frame flipped four ways.

Run the network on the frame as it is, mirrored left-right, upside down and both, flip each
result back and average them (EDSR's "self-ensemble", without the 90-degree turns so a
frame keeps its shape: an engine built for 1080x1920 could not take 1920x1080). The four
results differ in their noise and in the network's small decisions, not in the picture, so
their mean is cleaner; it costs four inferences per frame. With the bundled model, LOL
eval15 gains 0.15 dB PSNR and 0.002 SSIM (docs/runtime.md, "Pre- and post-processing").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FLIP_COUNT = 4


def _flips(h_axis: int, w_axis: int) -> tuple[tuple[int, ...], ...]:
    """The axes each of the four passes mirrors: none, width, height, both."""
    return ((), (w_axis,), (h_axis,), (h_axis, w_axis))


def flip_ensemble(
    run: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    axes: tuple[int, int] = (-2, -1),
) -> np.ndarray:
    """The mean of ``run`` over ``x`` flipped four ways, each result flipped back (float32).

    ``axes`` are the height and width axes of both ``x`` and ``run``'s result: (-2, -1) for
    NCHW batches, (0, 1) for HxWxC images. ``run`` must return an array of its input's height
    and width (any other axes may differ: the result's channels are the model's outputs).
    """
    total: np.ndarray | None = None
    for flip in _flips(*axes):
        xi = np.ascontiguousarray(np.flip(x, flip)) if flip else x
        out = run(xi)
        if flip:
            out = np.flip(out, flip)
        total = out.astype(np.float32, copy=True) if total is None else total + out
    assert total is not None
    return total * np.float32(1 / FLIP_COUNT)
