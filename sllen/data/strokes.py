"""Thin strokes on a generated ground truth: curves and rows of text-like glyphs, 0.7-2.5 px wide.

Why: in the dead-leaves scenes every feature is a few pixels wide or more, so in training the
only content at the scale of one pixel is the noise of the low image; a model trained on them
learns to remove everything that fine. On LOL's real pairs the bundled model blurred whiskers,
line drawings and printed text away even from a noise-free input (docs/default-model.md,
"Thin strokes"). Strokes give the ground truths structure at that scale which the noise does
not have: long, connected, oriented lines of one colour.

``add_strokes(rng, img)`` returns a copy of ``img`` with 2-12 anti-aliased quadratic curves
(cables, whiskers, outlines of drawings) and, half the time, a block of text-like glyphs (2-4
straight segments in each cell, rows of 4-20 cells); each curve and each row of glyphs has
one colour that stands out from what lies under it, at a random contrast from faint to full.
"""

from __future__ import annotations

import numpy as np


def _stroke_alpha(
    a: np.ndarray, b: np.ndarray, width: float, height: int, wide: int
) -> tuple[np.ndarray, tuple[slice, slice]] | None:
    """Coverage (0..1) of the segments ``a[k]``-``b[k]`` (K x 2 each, y/x in pixels) drawn
    ``width`` pixels wide, over their bounding box; None when they lie outside the image."""
    pad = width / 2 + 1.0
    ends = np.concatenate([a, b])
    y0, x0 = np.floor(ends.min(axis=0) - pad).astype(int)
    y1, x1 = np.ceil(ends.max(axis=0) + pad).astype(int)
    y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, height), min(x1, wide)
    if y1 <= y0 or x1 <= x0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    pix = np.stack([yy + 0.5, xx + 0.5], axis=-1)[None]  # 1 x h x w x 2, pixel centres
    a, b = a[:, None, None, :], b[:, None, None, :]
    ab = b - a
    t = np.clip(((pix - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-6), 0.0, 1.0)
    dist = np.sqrt((((a + t[..., None] * ab) - pix) ** 2).sum(-1)).min(axis=0)
    # Box-filtered coverage of a line of this width: 1 inside, a 1-pixel linear edge.
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0), (slice(y0, y1), slice(x0, x1))


def _paint(
    rng: np.random.Generator, img: np.ndarray, a: np.ndarray, b: np.ndarray, width: float
) -> None:
    """Blend the segments ``a``-``b`` into ``img`` (in place) in one colour, set against what
    lies under them."""
    found = _stroke_alpha(a, b, width, img.shape[0], img.shape[1])
    if found is None:
        return
    alpha, box = found
    under = img[box].reshape(-1, 3).mean(axis=0)
    level = float(under.mean())
    # Dark ink on light ground, light on dark; a random hue a third of the time.
    target = 0.03 if level > 0.35 else min(1.0, level + 0.5)
    colour = np.full(3, target, dtype=np.float32)
    if rng.random() < 1 / 3:
        colour = colour * rng.uniform(0.3, 1.0, size=3).astype(np.float32) / 0.65
    contrast = rng.uniform(0.25, 1.0)
    alpha = (alpha * contrast)[..., None]
    img[box] = img[box] * (1.0 - alpha) + np.clip(colour, 0.0, 1.0) * alpha


def _curve(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A quadratic Bezier curve 10-60 % of the shorter side long, as 16 points."""
    side = min(h, w)
    start = rng.uniform([0, 0], [h, w])
    length = side * rng.uniform(0.1, 0.6)
    angle = rng.uniform(0, 2 * np.pi)
    end = start + length * np.array([np.sin(angle), np.cos(angle)])
    bend = (start + end) / 2 + rng.normal(0, 0.3 * length, size=2)
    t = np.linspace(0, 1, 16)[:, None]
    return ((1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end).astype(np.float32)


def _text(rng: np.random.Generator, img: np.ndarray) -> None:
    """Rows of glyphs: 2-4 straight segments between points of a 3x3 grid in each cell."""
    h, w = img.shape[:2]
    size = rng.uniform(5, 12)  # glyph height in pixels
    cell_w = size * rng.uniform(0.55, 0.8)
    cols = int(rng.integers(4, 21))
    rows = int(rng.integers(1, 4))
    top = rng.uniform(0, max(h - rows * size * 1.6, 1))
    left = rng.uniform(0, max(w - cols * cell_w, 1))
    width = rng.uniform(0.8, 1.6)
    unit = np.stack(np.meshgrid([0, 0.5, 1], [0, 0.5, 1], indexing="ij"), -1).reshape(-1, 2)
    for r in range(rows):  # one colour per row, painted in one pass
        starts, ends = [], []
        for c in range(cols):
            if rng.random() < 0.15:  # a space between words
                continue
            grid = unit * [size, cell_w * 0.75] + [top + r * size * 1.6, left + c * cell_w]
            for _ in range(int(rng.integers(2, 5))):
                i, j = rng.choice(9, size=2, replace=False)
                starts.append(grid[i])
                ends.append(grid[j])
        if starts:
            _paint(rng, img, np.array(starts, np.float32), np.array(ends, np.float32), width)


def add_strokes(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """``img`` (float HxWx3 in [0, 1]) with 2-12 thin curves and, half the time, text
    (module docstring); float32, clipped to [0, 1]."""
    out = np.array(img, dtype=np.float32)
    h, w = out.shape[:2]
    for _ in range(int(rng.integers(2, 13))):
        points = _curve(rng, h, w)
        _paint(rng, out, points[:-1], points[1:], float(rng.uniform(0.7, 2.5)))
    if rng.random() < 0.5:
        _text(rng, out)
    return np.clip(out, 0.0, 1.0)
