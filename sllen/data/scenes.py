"""Procedural scenes with per-pixel class labels, so both SLLEN branches train without data.

``generate_scene(rng, height, width, num_classes=8)`` returns ``(image, label)``: a float
image (float32 HxWx3 RGB in [0, 1]) and an int64 HxW label map with values in
[0, num_classes). Class 0 is the background; classes 1.. are objects.

A scene is a dead-leaves picture:
- Background (class 0): one of a sky-like vertical gradient, a sky with a textured ground
  plane below a horizon, or a textured wall (bricks or blotches) lit from one side.
- Objects: 15..45 shapes painted back to front, each occluding what lies under it, with radii
  drawn from a power law p(r) ~ r^-2 between 4% and 50% of the shorter side, so most are
  small and a few are large (the scale statistics of dead-leaves models of natural images).
- Each object class has a fixed ``ClassStyle``, the same in every scene: a colour
  distribution (hue centre and spread, saturation and value ranges), a texture (smooth,
  stripes, checker, dots, blotchy noise, fine grain) with its own period and contrast, and a
  preferred shape (used 60% of the time; otherwise any of disc, ellipse, rectangle, convex
  polygon). Colour and texture together make the classes learnable from pixels. The first
  eleven styles are written by hand to cover natural colours (vivid orange, blue, foliage
  green, skin, greys, red, brown wood, yellow, purple, teal, near-black); further classes get
  generated styles (golden-ratio hues, cycling textures and shapes).
- Objects are shaded by a random linear light gradient (discs sometimes spherically).
- Depth: the canvas is blurred (0..2 binomial passes) after the farther part of the objects
  is painted; the whole image then gets one gentle [1, 2, 1] pass so edges are not aliased.
  Labels are never blurred: they stay the hard masks.
- Tone: a per-scene gamma (log-normal) and contrast change spread the scenes' mean
  brightness, so dim, bright, flat and contrasty scenes all occur.

Everything is vectorised numpy over each shape's bounding box; a 128x128 scene takes a few
milliseconds. The result depends only on the generator's state.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sllen.runtime.errors import InputError

TEXTURES = ("smooth", "stripes", "checker", "dots", "noise", "grain")
SHAPES = ("disc", "ellipse", "rect", "polygon")
MAX_CLASSES = 255  # 255 is the ignore label


@dataclass(frozen=True)
class ClassStyle:
    """What one object class looks like in every scene.

    hue is a centre in [0, 1) with +-hue_spread; sat and val are uniform ranges. The texture
    mixes the object's colour with a darker one (value times 1 - contrast); period is in
    pixels.
    """

    hue: float
    hue_spread: float
    sat: tuple[float, float]
    val: tuple[float, float]
    texture: str
    period: tuple[float, float]
    contrast: tuple[float, float]
    shape: str


_HAND_STYLES = (
    ClassStyle(0.07, 0.02, (0.75, 1.0), (0.75, 1.0), "smooth", (8, 8), (0, 0), "disc"),  # orange
    ClassStyle(0.60, 0.04, (0.50, 0.9), (0.40, 0.9), "stripes", (5, 9), (0.4, 0.7), "rect"),
    ClassStyle(0.30, 0.06, (0.40, 0.85), (0.25, 0.7), "noise", (8, 8), (0.4, 0.7), "ellipse"),
    ClassStyle(0.06, 0.02, (0.20, 0.5), (0.45, 0.95), "smooth", (8, 8), (0, 0), "ellipse"),  # skin
    ClassStyle(0.00, 0.50, (0.0, 0.08), (0.15, 0.9), "grain", (2, 2), (0.2, 0.4), "polygon"),
    ClassStyle(0.99, 0.02, (0.70, 1.0), (0.40, 0.9), "checker", (6, 12), (0.5, 0.8), "rect"),
    ClassStyle(0.07, 0.02, (0.50, 0.8), (0.20, 0.5), "stripes", (2, 4), (0.2, 0.4), "polygon"),
    ClassStyle(0.14, 0.02, (0.60, 1.0), (0.70, 1.0), "dots", (6, 10), (0.5, 0.8), "disc"),
    ClassStyle(0.78, 0.04, (0.40, 0.8), (0.30, 0.8), "checker", (3, 6), (0.3, 0.5), "ellipse"),
    ClassStyle(0.50, 0.03, (0.50, 0.9), (0.35, 0.8), "noise", (8, 8), (0.3, 0.5), "rect"),
    ClassStyle(0.00, 0.50, (0.0, 0.15), (0.03, 0.15), "grain", (2, 2), (0.2, 0.5), "disc"),
)


@lru_cache(maxsize=MAX_CLASSES)
def class_style(k: int) -> ClassStyle:
    """The style of object class ``k`` >= 1 (fixed, independent of any scene's generator)."""
    if not 1 <= k < MAX_CLASSES:
        raise InputError(f"object classes are 1..{MAX_CLASSES - 1}, got {k}")
    if k <= len(_HAND_STYLES):
        return _HAND_STYLES[k - 1]
    sats = ((0.1, 0.35), (0.5, 0.9), (0.3, 0.7))
    vals = ((0.5, 0.95), (0.25, 0.6), (0.4, 0.85))
    return ClassStyle(
        hue=(k * 0.618034) % 1.0,
        hue_spread=0.03,
        sat=sats[k % 3],
        val=vals[(k // 3) % 3],
        texture=TEXTURES[k % len(TEXTURES)],
        period=(3.0 + k % 5, 6.0 + k % 5),
        contrast=(0.3, 0.6),
        shape=SHAPES[(k // 2) % len(SHAPES)],
    )


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


# ---------------------------------------------------------------------------- filters


def _blur(img: np.ndarray, passes: int) -> np.ndarray:
    """``passes`` separable [1, 2, 1] / 4 filters over the first two axes, edges clamped."""
    for _ in range(passes):
        p = np.pad(img, ((1, 1), (0, 0)) + ((0, 0),) * (img.ndim - 2), mode="edge")
        img = 0.25 * (p[:-2] + p[2:]) + 0.5 * p[1:-1]
        p = np.pad(img, ((0, 0), (1, 1)) + ((0, 0),) * (img.ndim - 2), mode="edge")
        img = 0.25 * (p[:, :-2] + p[:, 2:]) + 0.5 * p[:, 1:-1]
    return img


def resize_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a small 2-D grid to HxW (numpy only: value-noise fields here, the
    camera pipeline's chroma-noise field)."""
    gh, gw = grid.shape
    ys = np.linspace(0.0, gh - 1.0, height)
    xs = np.linspace(0.0, gw - 1.0, width)
    y0 = np.minimum(ys.astype(int), gh - 2)
    x0 = np.minimum(xs.astype(int), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


class _Fields:
    """Per-scene noise fields that textures cut their patches from (cheaper than per shape)."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        cells = (max(2, height // 12 + 2), max(2, width // 12 + 2))
        self.smooth = resize_bilinear(rng.random(cells), height, width)
        self.fine = _blur(rng.random((height, width)), 1)
        self.fine = (self.fine - self.fine.min()) / max(float(np.ptp(self.fine)), 1e-6)


# ---------------------------------------------------------------------------- background


def _background(rng: np.random.Generator, h: int, w: int, fields: _Fields) -> np.ndarray:
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    kind = rng.integers(3)
    # Sky: clear blue, overcast grey or dusk orange, lighter towards the horizon.
    sky_hue, sky_sat = [(0.58, 0.55), (0.6, 0.05), (0.06, 0.6)][rng.integers(3)]
    top = _hsv(
        sky_hue + rng.uniform(-0.03, 0.03), sky_sat * rng.uniform(0.6, 1.4), rng.uniform(0.4, 0.9)
    )
    bottom = _hsv(sky_hue, sky_sat * rng.uniform(0.2, 0.7), rng.uniform(0.7, 1.0))
    if kind == 0:  # sky only
        return np.repeat(top + (bottom - top) * ys, w, axis=1)
    if kind == 1:  # sky above a ground plane, texture denser towards the horizon
        horizon = int(h * rng.uniform(0.25, 0.65))
        sky = top + (bottom - top) * np.clip(ys * h / max(horizon, 1), 0, 1)
        img = np.repeat(sky, w, axis=1)
        ground = _hsv(rng.choice([0.25, 0.08, 0.1]), rng.uniform(0.0, 0.7), rng.uniform(0.2, 0.6))
        depth = np.clip((ys[horizon:] * h - horizon) / max(h - horizon, 1), 0, 1)
        tex = fields.smooth[horizon:, :, None] * (0.5 + 0.5 * depth)
        img[horizon:] = ground * (0.7 + 0.3 * depth) * (0.75 + 0.5 * tex)
        return img
    # Wall: a muted colour, bricks or blotches, lit from one side.
    wall = _hsv(rng.random(), rng.uniform(0.0, 0.4), rng.uniform(0.3, 0.9))
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    light = 1.0 - rng.uniform(0.0, 0.5) * (xs if rng.random() < 0.5 else 1.0 - xs)
    if rng.random() < 0.5:
        bh = rng.uniform(6, 14)
        row = np.floor(np.arange(h)[:, None] / bh)
        xoff = np.arange(w)[None, :] + (row % 2) * bh
        mortar = (np.arange(h)[:, None] % bh < 1.5) | (xoff % (2.2 * bh) < 1.5)
        pattern = np.where(mortar, 0.6, 0.9 + 0.2 * fields.fine)[:, :, None]
    else:
        pattern = (0.8 + 0.4 * fields.smooth)[:, :, None]
    return wall * light * pattern


# ---------------------------------------------------------------------------- objects


def _radius(rng: np.random.Generator, lo: float, hi: float, alpha: float = 2.0) -> float:
    """Inverse-CDF draw from p(r) ~ r^-alpha on [lo, hi]."""
    e = 1.0 - alpha
    return float((lo**e + rng.random() * (hi**e - lo**e)) ** (1.0 / e))


def _mask(
    shape: str, rng: np.random.Generator, u: np.ndarray, v: np.ndarray, r: float
) -> np.ndarray:
    b = r * rng.uniform(0.35, 1.0)
    if shape == "disc":
        return u * u + v * v <= r * r
    if shape == "ellipse":
        return (u / r) ** 2 + (v / b) ** 2 <= 1.0
    if shape == "rect":
        return (np.abs(u) <= r) & (np.abs(v) <= b)
    # Convex polygon: vertices at sorted angles, inside = left of every edge.
    n = int(rng.integers(3, 8))
    ang = np.sort(rng.uniform(0.0, 2.0 * math.pi, n))
    rad = r * rng.uniform(0.7, 1.0, n)
    px, py = rad * np.cos(ang), rad * np.sin(ang)
    ex, ey = np.roll(px, -1) - px, np.roll(py, -1) - py
    cross = ex[:, None, None] * (v[None] - py[:, None, None]) - ey[:, None, None] * (
        u[None] - px[:, None, None]
    )
    return np.all(cross >= 0.0, axis=0)


def _pattern(
    style: ClassStyle,
    rng: np.random.Generator,
    u: np.ndarray,
    v: np.ndarray,
    fine: np.ndarray,
    smooth: np.ndarray,
) -> np.ndarray:
    """Texture in [0, 1] (0 = base colour, 1 = second colour) over a shape's box."""
    f = 1.0 / rng.uniform(*style.period)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    if style.texture == "stripes":
        return np.clip(0.5 + 2.0 * np.sin(2 * math.pi * f * u + phase), 0.0, 1.0)
    if style.texture == "checker":
        return (np.sin(2 * math.pi * f * u + phase) * np.sin(2 * math.pi * f * v) > 0).astype(
            np.float32
        )
    if style.texture == "dots":
        cu = (u * f + phase) % 1.0 - 0.5
        cv = (v * f) % 1.0 - 0.5
        return (cu * cu + cv * cv < 0.09).astype(np.float32)
    if style.texture == "noise":
        return smooth
    if style.texture == "grain":
        return fine
    return np.zeros_like(u)


def _paint(
    rng: np.random.Generator,
    img: np.ndarray,
    label: np.ndarray,
    k: int,
    fields: _Fields,
    short: int,
) -> None:
    """Paint one object of class ``k`` over ``img`` and ``label`` (in place)."""
    h, w = label.shape
    style = class_style(k)
    shape = style.shape if rng.random() < 0.6 else SHAPES[rng.integers(len(SHAPES))]
    r = _radius(rng, max(2.0, 0.04 * short), 0.5 * short)
    cy, cx = rng.uniform(-0.1 * h, 1.1 * h), rng.uniform(-0.1 * w, 1.1 * w)
    y0, y1 = max(0, int(cy - r)), min(h, int(cy + r) + 2)
    x0, x1 = max(0, int(cx - r)), min(w, int(cx + r) + 2)
    if y0 >= y1 or x0 >= x1:
        return
    theta = rng.uniform(0.0, math.pi)
    c, s = math.cos(theta), math.sin(theta)
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
    u, v = c * dx + s * dy, c * dy - s * dx
    mask = _mask(shape, rng, u, v, r)
    if not mask.any():
        return
    hue = style.hue + rng.uniform(-style.hue_spread, style.hue_spread)
    sat, val = rng.uniform(*style.sat), rng.uniform(*style.val)
    base = _hsv(hue, sat, val)
    second = _hsv(hue, sat, val * (1.0 - rng.uniform(*style.contrast)))
    box = (slice(y0, y1), slice(x0, x1))
    pattern = _pattern(style, rng, u, v, fields.fine[box], fields.smooth[box])
    colour = base + (second - base) * pattern[:, :, None]
    if shape == "disc" and rng.random() < 0.5:  # a lit sphere
        shade = 0.45 + 0.55 * np.sqrt(np.clip(1.0 - (u * u + v * v) / (r * r), 0.0, 1.0))
    else:
        phi = rng.uniform(0.0, 2.0 * math.pi)
        shade = 1.0 + rng.uniform(0.0, 0.35) * (math.cos(phi) * u + math.sin(phi) * v) / r
    colour *= np.clip(shade, 0.2, 1.3)[:, :, None]
    img[box][mask] = colour[mask]
    label[box][mask] = k


# ---------------------------------------------------------------------------- scene


def _tone(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    img = np.clip(img, 0.0, 1.0) ** math.exp(rng.normal(0.0, 0.4))
    mean = float(img.mean())
    return mean + (img - mean) * rng.uniform(0.6, 1.3)


def generate_scene(
    rng: np.random.Generator, height: int, width: int, num_classes: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """A random scene: (float32 HxWx3 image in [0, 1], int64 HxW labels in [0, num_classes))."""
    if height < 4 or width < 4:
        raise InputError(f"scenes need at least 4x4 pixels, got {height}x{width}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise InputError(f"num_classes must be in 2..{MAX_CLASSES}, got {num_classes}")
    fields = _Fields(rng, height, width)
    img = _background(rng, height, width, fields).astype(np.float32)
    label = np.zeros((height, width), dtype=np.int64)
    n = int(rng.integers(15, 46))
    far, far_blur = int(n * rng.uniform(0.2, 0.6)), int(rng.integers(0, 3))
    for i in range(n):
        if i == far and far_blur:
            img = _blur(img, far_blur)
        _paint(rng, img, label, int(rng.integers(1, num_classes)), fields, min(height, width))
    img = _tone(rng, _blur(img, 1))
    return np.clip(img, 0.0, 1.0).astype(np.float32), label
