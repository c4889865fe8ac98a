"""Light sources inside the picture: street lamps, lit windows, signs, a floodlit tower.

Why: the generated pairs' light is a smooth illumination map that the network learns to undo
(brighter around a light source, so less gain there). On real night photographs it then reads
a small bright object as such a light and darkens what surrounds it: a dark halo some 15
pixels wide around a floodlit monument or a lamp shade (DICM's night scenes, LIME's lamp;
docs/default-model.md, "Light sources in the picture"). An emitter is different: it is bright
in the capture and in the ground truth alike, by the same amount, with its glow. Pairs that
hold a few teach that a bright spot says nothing about the exposure of its neighbourhood, and
that the light itself is kept, not brightened further.

``emitter_layer(rng, h, w)`` draws 1 to 6 emitters as an additive layer in linear light (a
disc or a bar with a soft edge, its core at 1.2 to 4 times white so it clips in both images,
as a real one does, and a faint Gaussian glow of up to 0.03 of white); ``add_emitters(low,
high, layer)`` adds it to both images of a pair in linear light (the low one re-quantised to
8 bits, as the synthesis leaves it).

Why always clipping and a faint glow (docs/default-model.md, "Light sources in the picture",
L2-L7): with cores from 0.6 of white and glows to 0.09, the network also held back gain next
to unclipped bright regions of LOL's indoor scenes (GT-mean -0.4 dB on our485); a clipped
core is the cue a real lamp gives, and a glow of 0.03 kept most of the fix for a third of the
cost.
"""

from __future__ import annotations

import numpy as np

from sllen.data.synthesis import linear_to_srgb, srgb_to_linear

# Linear RGB of common night lights: sodium vapour, tungsten, white LED, cool LED / moonlit
# sign; a neon sign takes a random saturated hue instead.
COLOURS = np.array(
    [[1.0, 0.45, 0.12], [1.0, 0.66, 0.35], [1.0, 0.95, 0.88], [0.75, 0.88, 1.0]], np.float32
)
MAX_EMITTERS = 6
CORE_PEAK = (1.2, 4.0)  # times white, log-uniform: a core always clips
GLOW_PEAK = 0.03  # the brightest glow, in white; each emitter's is 1-100 % of it


def _colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.2:  # neon
        c = rng.uniform(0.05, 1.0, 3).astype(np.float32)
        return c / c.max()
    return COLOURS[rng.integers(len(COLOURS))]


def emitter_layer(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """HxWx3 float32, linear light, to be added to a scene: 1..6 emitters."""
    side = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    layer = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(1, MAX_EMITTERS + 1))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        radius = max(0.7, side * float(np.exp(rng.uniform(np.log(0.005), np.log(0.04)))))
        aspect = float(np.exp(rng.uniform(np.log(0.125), np.log(2.0))))  # bars: towers, windows
        ry, rx = (radius / aspect, radius) if rng.random() < 0.5 else (radius, radius)
        # distance in units of the core's radii: < 1 inside, a one-pixel soft edge
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        core = np.clip((1.0 - d) * min(ry, rx) + 0.5, 0.0, 1.0)
        sigma = float(rng.uniform(2.0, 6.0))  # glow width in core radii
        # the glow's peak 0.0003-0.03 of white: a night capture's flare around a lamp, above
        # the dark scene it lies on, faint on the lit ground truth
        glow = np.exp(-0.5 * (d / sigma) ** 2) * float(np.exp(rng.uniform(np.log(0.01), 0.0)))
        peak = float(np.exp(rng.uniform(*np.log(CORE_PEAK))))
        layer += (peak * core + GLOW_PEAK * glow)[..., None] * _colour(rng)
    return layer


def add_emitters(
    low: np.ndarray, high: np.ndarray, layer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pair with `layer` (linear light) added to both, clipped; float32 sRGB in [0, 1],
    the low image on the 8-bit grid it came on."""

    def add(img: np.ndarray) -> np.ndarray:
        return linear_to_srgb(np.clip(srgb_to_linear(img) + layer, 0.0, 1.0)).astype(np.float32)

    new_low = np.round(add(low) * 255.0) / 255.0
    return new_low.astype(np.float32), add(high)
