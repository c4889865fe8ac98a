"""Video flicker smoothing: steady frame-to-frame brightness of the enhanced output, no ghosts.

Enhancing every frame on its own lets the output's brightness pump: the network re-decides
the global tone of each frame from noisy, slightly different input, and camera exposure or
mains-light flicker in the input comes through as well. :class:`TemporalSmoother` measures
one number per frame (the log of the mean luminance, on a subsample), smooths it over time
with an exponential moving average whose time constant is in seconds (so 15 and 60 fps
behave the same), and multiplies the whole output frame by ``exp(smoothed - current)``.

Why this shape:

- One global gain per frame, never a blend of pixels across frames, so moving objects cannot
  leave trails (ghosts). The correction is clamped (``max_correction``, default +-25%) so a
  real brightness change that slips past the cut detector is followed within a few time
  constants instead of fought.
- Scene cuts reset the state: a cut is a large change between consecutive input frames of a
  coarse luminance grid normalised by its mean (content changed) or of the mean itself
  (light switched on). A false alarm only skips smoothing for one frame.
- ``target="output"`` (default) smooths the output's own brightness, which removes flicker
  from the model and from the input alike; ``target="gain"`` smooths only the gain the model
  applied (output/input), which keeps every brightness change of the input and removes only
  what the model added. docs/video.md has the measurements behind the default.

numpy only; statistics on at most ~65k pixels, so the cost is the final multiply (about
4 ms per 1280x720 frame on one CPU core, measured in docs/video.md).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from sllen.runtime.errors import InputError
from sllen.runtime.images import REC709_LUMA  # the exact weights barely matter for a ratio of means

_EPS = 1e-4  # keeps log() finite on black frames (fades): 1e-4 is far below one 8-bit level
TARGETS = ("output", "gain")
# On for video by default: measured to cut frame-to-frame brightness change 2.5-3.7x on the
# sample, exposure-jitter, cut and ramp clips with no ghosting (docs/video.md, "Measurement").
DEFAULT_SMOOTHING = True
DEFAULT_TIME_CONSTANT = 0.5  # seconds: 0.25 follows lighting faster, 1.0 smooths more


def _channels_last(image: np.ndarray) -> np.ndarray:
    """HxWx3 view of an HxWx3, 3xHxW or 1x3xHxW array (no copy)."""
    a = np.asarray(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or 3 not in (a.shape[0], a.shape[-1]):
        raise InputError(f"expected an RGB image HxWx3 or 3xHxW, got shape {a.shape}")
    return a if a.shape[-1] == 3 else a.transpose(1, 2, 0)


def luminance_stats(
    image: np.ndarray, *, samples: int = 65536, grid: tuple[int, int] = (9, 16)
) -> tuple[float, np.ndarray]:
    """(mean luminance in [0, 1], grid x grid block means) of an RGB image, on a subsample.

    uint8 is scaled by 1/255; float is taken as [0, 1]. About `samples` pixels are read
    (a regular stride), which is plenty for a mean and keeps 4K frames cheap.
    """
    hwc = _channels_last(image)
    h, w = hwc.shape[:2]
    step = max(1, int(math.sqrt(h * w / samples)))
    sub = hwc[::step, ::step].astype(np.float32)
    luma = sub @ REC709_LUMA
    if hwc.dtype == np.uint8:
        luma *= np.float32(1 / 255)
    gh, gw = min(grid[0], luma.shape[0]), min(grid[1], luma.shape[1])
    bh, bw = luma.shape[0] // gh, luma.shape[1] // gw
    blocks = luma[: gh * bh, : gw * bw].reshape(gh, bh, gw, bw).mean(axis=(1, 3))
    return float(luma.mean()), blocks


class TemporalSmoother:
    """Per-frame global gain that steadies the output brightness of a video (module doc).

    ``fps``: the video's frame rate; ``time_constant``: seconds of the moving average (longer
    is steadier but follows real changes later); ``strength``: 0..1, how much of the
    correction to apply; ``max_correction``: the largest relative gain change (0.25: the
    gain stays in [1/1.25, 1.25]); ``cut_threshold``: grid change (mean absolute difference
    of the mean-normalised grids) above which a frame starts a new scene; ``cut_ratio``:
    input brightness ratio between consecutive frames above which likewise.

    ``apply(input, output)`` takes the frame the model saw (uint8 or float, HxWx3 or 3xHxW)
    and its float output in [0, 1] (same layouts), and returns the corrected output (a new
    array; the output itself when no correction is needed). ``last_gain`` and ``last_cut``
    say what the last call did; ``cuts`` counts the scene cuts seen.
    """

    def __init__(
        self,
        fps: float | Fraction,
        *,
        time_constant: float = DEFAULT_TIME_CONSTANT,
        strength: float = 1.0,
        max_correction: float = 0.25,
        target: str = "output",
        cut_threshold: float = 0.2,
        cut_ratio: float = 1.5,
        enabled: bool = True,
    ) -> None:
        if not fps or fps <= 0:
            raise InputError(f"fps must be positive, got {fps}")
        if time_constant < 0:
            raise InputError(f"time_constant must be >= 0 seconds, got {time_constant}")
        if not 0.0 <= strength <= 1.0:
            raise InputError(f"strength must be in [0, 1], got {strength}")
        if target not in TARGETS:
            raise InputError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
        self.fps = float(fps)
        self.time_constant = float(time_constant)
        self.strength = float(strength)
        self.max_log = math.log1p(max(0.0, max_correction))
        self.target = target
        self.cut_threshold = cut_threshold
        self.log_cut_ratio = math.log(cut_ratio)
        self.enabled = enabled
        # Weight of the new frame in the moving average: 1 - exp(-dt / tau).
        tau_frames = self.time_constant * self.fps
        self.alpha = 1.0 - math.exp(-1.0 / tau_frames) if tau_frames > 0 else 1.0
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the past (a new clip, or a seek)."""
        self._level: float | None = None  # smoothed log brightness (or log gain)
        self._prev_grid: np.ndarray | None = None
        self._prev_log_in: float | None = None
        self.last_gain = 1.0
        self.last_cut = False

    def _is_cut(self, log_in: float, grid: np.ndarray) -> bool:
        prev, prev_log = self._prev_grid, self._prev_log_in
        self._prev_grid, self._prev_log_in = grid, log_in
        if prev is None or prev_log is None or prev.shape != grid.shape:
            return prev is not None  # a size change is a new scene too
        if abs(log_in - prev_log) > self.log_cut_ratio:
            return True
        a = grid / (grid.mean() + _EPS)
        b = prev / (prev.mean() + _EPS)
        return float(np.abs(a - b).mean()) > self.cut_threshold

    def apply(self, input: np.ndarray, output: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return output
        mean_in, grid = luminance_stats(input)
        mean_out, _ = luminance_stats(output, grid=(1, 1))
        log_in = math.log(mean_in + _EPS)
        x = math.log(mean_out + _EPS)
        if self.target == "gain":
            x -= log_in
        self.last_cut = self._is_cut(log_in, grid)
        if self._level is None or self.last_cut:
            self.cuts += self.last_cut
            self._level = x
            self.last_gain = 1.0
            return output
        self._level += self.alpha * (x - self._level)
        log_gain = self.strength * (self._level - x)
        log_gain = min(self.max_log, max(-self.max_log, log_gain))
        self.last_gain = math.exp(log_gain)
        if log_gain == 0.0:
            return output
        out = np.multiply(output, np.float32(self.last_gain), dtype=np.float32)
        return np.clip(out, 0.0, 1.0, out=out)
