"""Well-exposed frames pass through: the input itself where it needs no enhancing.

The network was trained on dark captures only (every generated pair is at least 2 stops
under), so it brightens whatever it is given: a well-exposed photograph comes out about
11 L* brighter with a fifth more chroma (docs/default-model.md, "Well-lit inputs"). A camera's
auto-exposure aims a frame's mean at middle grey (18% in linear light); a frame that is
already there needs nothing, and a video that leaves a tunnel or a room whose lights come on
should not turn white. So the result is a crossfade of the model's output and the input,
weighted by how well exposed the input is: the model's output alone up to a mean linear
luminance of ``LOW`` (about 1.8 stops under middle grey; LOL's real low-light captures, what
the model is for, are 0.016 at most on its test pairs), the input alone from ``HIGH`` (middle
grey), and a smooth step between. One weight per frame (never per pixel) so nothing is mixed
locally and a lamp in a dark scene does not switch it on. ``well_exposed="enhance"`` turns it off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np

from sllen.runtime.errors import InputError
from sllen.runtime.exposure import LEVELS, apply_table, srgb_to_linear
from sllen.runtime.images import REC709_LUMA

LOW = 0.05  # mean linear luminance up to which the model's output is used as it is
HIGH = 0.18  # middle grey: from here on the frame is already exposed, the input is kept
MODES = ("keep", "enhance")  # keep: the blend above; enhance: the model's output always
DEFAULT_MODE = "keep"
# Seconds over which a video's crossfade weight follows its brightness (ClipKeepWeight): twice
# the output smoothing's, so a flicker's single frames move it little
KEEP_TIME_CONSTANT = 1.0


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"--well-exposed must be 'keep' or 'enhance', not {mode!r}")
    return mode


@cache
def _decode_table() -> np.ndarray:
    """sRGB level i / 65535 -> linear light (float32), for exposure.apply_table: an indexing
    pass instead of a power per pixel."""
    return srgb_to_linear(np.linspace(0.0, 1.0, LEVELS, dtype=np.float64)).astype(np.float32)


def mean_linear_luminance(image: np.ndarray, samples: int = 16384) -> float:
    """Mean luminance in linear light of a float sRGB HxWx3 image in [0, 1], on about
    `samples` pixels (a regular stride: plenty for a mean, cheap on 4K frames)."""
    h, w = image.shape[:2]
    step = max(1, int(math.sqrt(h * w / samples)))
    return float((apply_table(image[::step, ::step, :3], _decode_table()) @ REC709_LUMA).mean())


def keep_weight(mean_linear: float) -> float:
    """How much of the input to keep: 0 up to LOW, 1 from HIGH, a smooth step between."""
    t = min(max((mean_linear - LOW) / (HIGH - LOW), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def blend(source: np.ndarray, enhanced: np.ndarray, weight: float) -> np.ndarray:
    """`weight` of `source` and the rest of `enhanced` (float32), a crossfade of the sRGB
    values. Not in linear light: three passes over the frame instead of three table look-ups
    and two conversions (0.1 s per 1080p frame on a CPU core, too slow for a Jetson's video
    at dusk, when every frame is mixed); one weight per frame of two aligned pictures of the
    same scene looks alike either way (docs/default-model.md has both measured)."""
    if weight <= 0.0:
        return enhanced
    src = np.clip(source[..., :3], 0.0, 1.0, dtype=np.float32)
    if weight >= 1.0:
        return src
    src -= enhanced
    src *= np.float32(weight)
    src += enhanced
    return src


def keep_well_exposed(
    source: np.ndarray, enhanced: np.ndarray, weigh: Callable[[float], float] = keep_weight
) -> np.ndarray:
    """The result for `source` (float HxWx3 sRGB in [0, 1]) given the model's `enhanced`;
    ``weigh``: mean linear luminance -> the input's share (a clip's: ClipKeepWeight)."""
    return blend(source, enhanced, weigh(mean_linear_luminance(source)))


class ClipKeepWeight:
    """``keep_weight`` of a video's brightness steadied over time (an exponential moving
    average of the log mean luminance, ``time_constant`` seconds), for frames in clip order.

    Why: the model lifts a dark frame above middle grey, so while the crossfade moves to the
    input the output darkens. Frame by frame, footage whose brightness flickers inside the
    crossfade's range came out with the flicker inverted (a timelapse frame 18 % brighter
    came out 9 % darker, walkthrough M). Steadied, the weight moves with the scene's light
    over a second or two, as a camera's exposure does, and a frame's own jump goes through
    the model, which follows it. A frame ``jump`` times brighter or darker than the one before
    starts afresh (a cut from a dark shot to a lit one came out near white for two seconds);
    the smoothing's content-cut detector is not used: it takes a headlight burst for a cut."""

    def __init__(
        self, fps: float, time_constant: float = KEEP_TIME_CONSTANT, jump: float = 1.5
    ) -> None:
        tau_frames = time_constant * float(fps)
        self.alpha = 1.0 - math.exp(-1.0 / tau_frames) if tau_frames > 0 else 1.0
        self.log_jump = math.log(jump)
        self.reset()

    def reset(self) -> None:
        self._level: float | None = None
        self._last: float | None = None

    def __call__(self, mean_linear: float) -> float:
        x = math.log(max(mean_linear, 1e-6))
        cut = self._last is not None and abs(x - self._last) > self.log_jump
        if self._level is None or cut:
            self._level = x
        else:
            self._level += self.alpha * (x - self._level)
        self._last = x
        return keep_weight(math.exp(self._level))
