"""Light sources inside the picture: street lamps, lit windows, signs, a floodlit tower.

Why: the generated pairs' light is a smooth illumination map that the network learns to undo
(brighter around a light source, so less gain there). On real night photographs it then reads
a small bright object as such a light and darkens what surrounds it: a dark halo some 15
pixels wide around a floodlit monument or a lamp shade (DICM's night scenes, LIME's lamp;
docs/default-model.md, "Light sources in the picture"). An emitter is different: its
clipped core is as bright in the capture as in the ground truth, and its glow is scene light
brightened with the rest of the scene (below). Pairs that hold a few teach that a bright spot
says nothing about the exposure of its neighbourhood, and that the light itself is kept, not
brightened further.

``emitter_layer(rng, h, w)`` draws 1 to 6 emitters as additive layers in linear light (a
disc or a bar with a soft edge, its core at 1.2 to 4 times white so it clips in both images,
as a real one does, and a faint Gaussian glow of up to 0.03 of white); ``add_emitters(low,
high, layer)`` adds them to both images of a pair in linear light (the low one re-quantised
to 8 bits, as the synthesis leaves it): the core alike, the glow by default as scene light,
brightened in the ground truth by the pair's own gain (``glow="scene"``).

Why the glow follows the gain (docs/default-model.md, "The glow as scene light", V1, V2):
added alike to both images, the glow taught that the light around a lamp is as bright in the
ground truth as in the capture, so the network held back its gain there, and a floodlit
monument kept a dark band tens of pixels wide in the sky beside it (Zero-DCE's DICM photo 27:
that sky 30 % darker than the sky further out). A flare or the light a lamp casts on the
haze around it is light of the scene: a longer exposure records more of it, as it records
more of everything else. Only the clipped core stays the same. ``glow="alike"`` gives the
pairs the models bundled before 2026-12-07 were trained on: the low images bit for bit, the
ground truths to float32 rounding (within 1.2e-7: the cores and glows are summed apart now).

Why always clipping and a faint glow (docs/default-model.md, "Light sources in the picture",
L2-L7): with cores from 0.6 of white and glows to 0.09, the network also held back gain next
to unclipped bright regions of LOL's indoor scenes (GT-mean -0.4 dB on our485); a clipped
core is the cue a real lamp gives, and a glow of 0.03 kept most of the fix for a third of the
cost.
"""

from __future__ import annotations

from typing import NamedTuple

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
MAX_GAIN = 100.0  # the largest gain a scene glow is brightened by in the ground truth


def _colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.2:  # neon
        c = rng.uniform(0.05, 1.0, 3).astype(np.float32)
        return c / c.max()
    return COLOURS[rng.integers(len(COLOURS))]


GLOWS = ("scene", "alike")


class EmitterLayer(NamedTuple):
    """Linear light to add to a scene, HxWx3 float32 each: the lights' cores, and their glows."""

    core: np.ndarray
    glow: np.ndarray


def emitter_layer(rng: np.random.Generator, h: int, w: int) -> EmitterLayer:
    """1..6 emitters, their cores and glows apart (add_emitters treats them differently)."""
    side = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    core_layer = np.zeros((h, w, 3), np.float32)
    glow_layer = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(1, MAX_EMITTERS + 1))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        radius = max(0.7, side * float(np.exp(rng.uniform(np.log(0.005), np.log(0.04)))))
        aspect = float(np.exp(rng.uniform(np.log(0.125), np.log(2.0))))  # bars: towers, windows
        ry, rx = (radius / aspect, radius) if rng.random() < 0.5 else (radius, radius)
        # distance in units of the core's radii: < 1 inside, a one-pixel soft edge
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        core = np.clip((1.0 - d) * min(ry, rx) + 0.5, 0.0, 1.0)
        sigma = float(rng.uniform(2.0, 6.0))  # glow width in core radii
        # the glow's peak 0.0003-0.03 of white in the capture: a night capture's flare around
        # a lamp, above the dark scene it lies on (add_emitters brightens it with the scene)
        glow = np.exp(-0.5 * (d / sigma) ** 2) * float(np.exp(rng.uniform(np.log(0.01), 0.0)))
        peak = float(np.exp(rng.uniform(*np.log(CORE_PEAK))))
        colour = _colour(rng)
        core_layer += (peak * core)[..., None] * colour
        glow_layer += (GLOW_PEAK * glow)[..., None] * colour
    return EmitterLayer(core_layer, glow_layer)


def add_emitters(
    low: np.ndarray, high: np.ndarray, layer: EmitterLayer, glow: str = "scene"
) -> tuple[np.ndarray, np.ndarray]:
    """The pair with ``layer`` (linear light) added, clipped; float32 sRGB in [0, 1], the low
    image on the 8-bit grid it came on. The cores go into both alike; the glows too with
    ``glow="alike"``, and with "scene" into the ground truth times the pair's gain (its mean
    linear light over the low image's, 1-100)."""
    if glow not in GLOWS:
        raise ValueError(f"glow must be one of {', '.join(GLOWS)}, not {glow!r}")
    low_lin, high_lin = srgb_to_linear(low), srgb_to_linear(high)
    gain = 1.0
    if glow == "scene":
        gain = float(np.clip(high_lin.mean() / max(float(low_lin.mean()), 1e-4), 1.0, MAX_GAIN))
    new_low = linear_to_srgb(np.clip(low_lin + layer.core + layer.glow, 0.0, 1.0))
    new_high = linear_to_srgb(np.clip(high_lin + layer.core + gain * layer.glow, 0.0, 1.0))
    return (np.round(new_low * 255.0) / 255.0).astype(np.float32), new_high.astype(np.float32)
