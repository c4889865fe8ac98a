"""Frames larger than a model accepts, enhanced in overlapping tiles blended without seams.

An engine's optimization profile has a maximum size, and a 4K frame on a Jetson may not fit in
memory at all; tiles of at most that size are cut with an overlap, each is enhanced, and the
results are blended with weights that ramp linearly across the overlap and are normalised to
sum to one at every pixel, so there is no seam. The network decides each tile's exposure and
colour from what that tile shows, so neighbours disagree; with ``match`` each tile's image
gets one gain per channel that makes it agree with its neighbours where they overlap (least
squares over the frame, ``runtime/tile_gains.py``), so the tiles make one exposure, not broad
bands of several. The tiles' results are held until all are in (a little more than the frame with
the grids fit_tiles chooses, segmentation logits included when asked for).

SLLEN's attention sees the whole (tile) bottleneck, so tiles lose some global context: the
runtime tiles only when the frame does not fit, in as few tiles as fit, overlapping by 64
pixels (at most a quarter of a tile).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from sllen.runtime.tile_gains import match_gains

DEFAULT_OVERLAP = 64
# The smallest tile side fit_tiles chooses (16 x 16 attention tokens at the bottleneck's 1/16).
MIN_SIDE = 256


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of `tile` overlapping by >= `overlap`."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    n = -(-(length - tile) // step) + 1
    # Spread the tiles evenly so every overlap is about the same width.
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _count(length: int, tile: int, overlap: int) -> int:
    """How many tiles of ``tile`` enhance_tiled cuts along ``length`` (its overlap cap too)."""
    return len(_starts(length, tile, min(overlap, max(1, tile // 4))))


def _smallest(length: int, count: int, cap: int, overlap: int, multiple: int) -> int:
    """The smallest side, a multiple of ``multiple`` (or ``length``) and at most ``cap``, that
    covers ``length`` in at most ``count`` tiles; ``cap`` itself must."""
    lo, hi = 1, max(1, cap // multiple)  # in units of `multiple`
    if cap >= length and count == 1:
        return length
    while lo < hi:
        mid = (lo + hi) // 2
        if _count(length, mid * multiple, overlap) <= count:
            hi = mid
        else:
            lo = mid + 1
    return min(length, lo * multiple)


@functools.lru_cache(maxsize=64)  # once per frame size, not per frame of a video
def fit_tiles(
    height: int, width: int, limit: tuple[int, int], budget: int | None, multiple: int, overlap: int
) -> tuple[int, int]:
    """The tile size for a frame larger than ``limit`` (per side) or ``budget`` (pixels): of
    the grids whose tiles fit both, the one that enhances the fewest pixels (then the fewest
    tiles), each tile no larger than its grid needs. Tiles as large as the limit would cover
    the frame with overlaps of most of a tile: a 12 MP photo under a 4K budget took four
    4K-sized tiles, nearly three times the frame's work; two tiles of half the frame do it
    (the overlaps stay enhance_tiled's)."""
    cap_h = height if limit[0] >= height else max(multiple, limit[0] // multiple * multiple)
    cap_w = width if limit[1] >= width else max(multiple, limit[1] // multiple * multiple)
    # No side below MIN_SIDE (or the budget's square): thin strips would enhance the fewest
    # pixels but give the attention little of the picture to see.
    side = MIN_SIDE if budget is None else min(MIN_SIDE, math.isqrt(budget) // multiple * multiple)
    side = max(side, multiple)
    floor_h, floor_w = min(side, cap_h), min(side, cap_w)
    best: tuple[tuple[int, int], tuple[int, int]] | None = None
    for rows in range(_count(height, cap_h, overlap), _count(height, floor_h, overlap) + 1):
        th = max(floor_h, _smallest(height, rows, cap_h, overlap, multiple))
        if _count(height, th, overlap) < rows:
            continue  # the same tiles as a smaller row count
        max_w = cap_w if budget is None else min(cap_w, budget // th // multiple * multiple)
        if max_w < floor_w:
            continue  # tiles this tall do not fit the budget at a width worth tiling
        cols = _count(width, max_w, overlap)
        tw = max(floor_w, _smallest(width, cols, max_w, overlap, multiple))
        key = (rows * cols * th * tw, rows * cols)
        if best is None or key < best[0]:
            best = (key, (th, tw))
    if best is None:  # a budget below the floor's square: the floor's tiles
        return floor_h, floor_w
    return best[1]


def _ramp(length: int, lo_overlap: int, hi_overlap: int) -> np.ndarray:
    """1D weights: ramps up over the overlap with the previous tile and down over the next."""
    w = np.ones(length, dtype=np.float32)
    if lo_overlap > 0:
        w[:lo_overlap] = (np.arange(lo_overlap, dtype=np.float32) + 0.5) / lo_overlap
    if hi_overlap > 0:
        w[length - hi_overlap :] = np.minimum(
            w[length - hi_overlap :],
            (np.arange(hi_overlap, 0, -1, dtype=np.float32) - 0.5) / hi_overlap,
        )
    return w


def _overlaps(starts: list[int], size: int, index: int) -> tuple[int, int]:
    lo = starts[index - 1] + size - starts[index] if index > 0 else 0
    hi = starts[index] + size - starts[index + 1] if index + 1 < len(starts) else 0
    return max(lo, 0), max(hi, 0)


def enhance_tiled(
    image: np.ndarray,
    enhance: Callable[[list[np.ndarray]], list[np.ndarray]],
    tile: tuple[int, int],
    overlap: int = DEFAULT_OVERLAP,
    batch: int = 1,
    match: int = 0,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Enhance float HxWxC `image` through `enhance` (a list of tiles -> a list of results).

    ``match``: how many leading channels of the results (3: the image, not the segmentation
    logits) get per-tile gains that make neighbouring tiles agree where they overlap; the
    network decides each tile's exposure and colour from what the tile shows, and blended
    disagreements would be broad bands. 0: the results as they are. ``on_tile(done, total)``
    hears the progress after each batch of tiles (a 12 MP photo on a CPU takes minutes).
    """
    height, width = image.shape[:2]
    th, tw = min(tile[0], height), min(tile[1], width)
    # At most a quarter of a tile (on each axis): a small --tile with the full overlap would
    # step by a pixel.
    ys = _starts(height, th, min(overlap, max(1, th // 4)))
    xs = _starts(width, tw, min(overlap, max(1, tw // 4)))
    boxes = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    results: dict[tuple[int, int], np.ndarray] = {}
    for first in range(0, len(boxes), batch):
        group = boxes[first : first + batch]
        tiles = [image[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] for iy, ix in group]
        results.update(zip(group, enhance(tiles), strict=True))
        if on_tile is not None:
            on_tile(len(results), len(boxes))
    gains = match_gains(results, ys, xs, (th, tw), match) if match and len(results) > 1 else {}
    out: np.ndarray | None = None
    total = np.zeros((height, width), dtype=np.float32)
    for iy, ix in boxes:
        res = results.pop((iy, ix))  # blended tiles are let go: the peak is the first one
        if out is None:
            out = np.zeros((height, width, res.shape[2]), dtype=np.float32)
        if (iy, ix) in gains:
            res = res.copy()
            res[..., :match] *= gains[(iy, ix)]
        wy = _ramp(th, *_overlaps(ys, th, iy))
        wx = _ramp(tw, *_overlaps(xs, tw, ix))
        weight = wy[:, None] * wx[None, :]
        out[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] += res * weight[..., None]
        total[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] += weight
    assert out is not None
    # Two neighbours' ramps already sum to one; dividing also covers corners where tiles that
    # overlap by more than half their size stack three deep.
    return out / total[..., None]
