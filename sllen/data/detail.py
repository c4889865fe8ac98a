"""Photo-like detail added to a generated scene's image (the LLE ground truths only).

The dead-leaves scenes are flat patches with a few periodic textures; a fine-tune on real
photographs darkened by the same degradation restored LOL's real pairs 1.1 dB better
(GT-mean) than one on the scenes (docs/default-model.md, "Generated scenes or the
degradation?"). ``add_detail`` adds three things rooms have and dead leaves lack, none of
which needs labels (the SS stage keeps plain scenes):

- 1/f ("pink") albedo variation over every surface, at all scales (stains, grain, wear),
  of 20-100 % of ``albedo`` (default 10 %) of the level;
- with probability 0.5, a shelf: rows of thin upright rectangles of many colours and heights
  on darker boards (books, bottles, files), the dense straight edges of indoor scenes;
- with probability 0.7, light falling off from one point across the whole scene, with the
  mean brightness kept (the scene's exposure prior is unchanged).
"""

from __future__ import annotations

import colorsys

import numpy as np

from .strokes import add_strokes


def pink_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Zero-mean, unit-std noise with a 1/f amplitude spectrum, HxW float32."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
    spec[0, 0] = 0.0
    noise = np.fft.irfft2(spec, s=(height, width))
    return (noise / max(float(noise.std()), 1e-8)).astype(np.float32)


def _shelf(rng: np.random.Generator, img: np.ndarray) -> None:
    """Paint a shelf unit (in place) over a random part of ``img``."""
    h, w = img.shape[:2]
    sh, sw = int(h * rng.uniform(0.3, 0.8)), int(w * rng.uniform(0.3, 0.8))
    y0, x0 = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    rows = int(rng.integers(1, 4))
    board = np.asarray(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.12), 0.5, rng.uniform(0.1, 0.5)))
    img[y0 : y0 + sh, x0 : x0 + sw] = board * 0.6  # the shelf's dark inside
    row_h = sh / rows
    for r in range(rows):
        top, bottom = y0 + int(r * row_h), y0 + int((r + 1) * row_h)
        thick = max(1, int(row_h * 0.08))
        img[bottom - thick : bottom, x0 : x0 + sw] = board  # the board under the row
        x = x0 + int(rng.integers(0, 4))
        while x < x0 + sw:
            bw = int(rng.integers(2, 11))
            bh = int((bottom - thick - top) * rng.uniform(0.55, 0.95))
            colour = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9))
            img[bottom - thick - bh : bottom - thick, x : min(x + bw, x0 + sw)] = colour
            x += bw + int(rng.integers(0, 2))


def _falloff(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    cy, cx = rng.uniform(-0.3, 1.3) * h, rng.uniform(-0.3, 1.3) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / max(h, w)
    light = 1.0 / (1.0 + rng.uniform(0.5, 4.0) * d * d)
    out = img * light[:, :, None]
    return out * (float(img.mean()) / max(float(out.mean()), 1e-6))


ALBEDO = 0.1  # the default largest 1/f albedo variation (a fraction of the level)


def add_detail(
    rng: np.random.Generator, img: np.ndarray, albedo: float = ALBEDO, strokes: float = 0.0
) -> np.ndarray:
    """``img`` (float HxWx3 in [0, 1]) with the detail above; float32, clipped to [0, 1].
    Every ``albedo`` draws the same numbers, so 0 removes the 1/f variation and keeps the
    same shelves and light falloff (an ablation of that part alone). ``strokes`` is the
    probability of thin strokes on top (sllen.data.strokes); they are drawn last and only
    when it is above 0, so 0 gives the pairs of before."""
    img = np.array(img, dtype=np.float32)
    h, w = img.shape[:2]
    if rng.random() < 0.5:
        _shelf(rng, img)
    amplitude = rng.uniform(0.02, 0.1) * (albedo / ALBEDO)
    img *= 1.0 + amplitude * pink_noise(rng, h, w)[:, :, None]
    if rng.random() < 0.7:
        img = _falloff(rng, img)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    if strokes > 0 and rng.random() < strokes:
        img = add_strokes(rng, img)
    return img
