"""Low-light synthesis: a normal-light float image -> a plausible dark, noisy capture of it.

Everything physical happens in linear light. For a float image ``img`` (HxWx3 sRGB in [0, 1]):

1. ``lin = srgb_to_linear(img)``, the exact IEC 61966-2-1 transfer function.
2. Colour shift: ``lin *= gains``, one gain per channel, uniform in 1 +- ``color_shift``
   (default 0.10): the white-balance error of a camera in dim, tinted light.
3. Illumination: ``lin *= exposure * light``. ``exposure`` is log-uniform in
   ``exposure_range`` (default 0.02 .. 0.25, i.e. 2.0 to 5.6 stops darker) or exactly
   ``fixed_exposure``. ``light`` is 1 everywhere, or with probability ``inhomogeneous_prob``
   (default 0.5) a smooth map in (0, 1] (see ``illumination_map``): an ambient floor plus 1..3
   Gaussian light sources plus a linear ramp, divided by its maximum, so ``exposure`` is the
   scale at the brightest point and darker regions get less.
4. Sensor noise, with probability ``noise_prob`` (default 1), Poisson-Gaussian as in
   "Unprocessing Images for Learned Raw Denoising" (Brooks et al., CVPR 2019):
   ``lin = Poisson(lin * photons) / photons + Normal(0, read_std)``, then clipped to [0, 1].
   ``1 / photons`` (the shot-noise variance per unit signal) is log-uniform in
   ``shot_range`` (default 1e-4 .. 1.2e-2, i.e. 83 to 10,000 photo-electrons at white), and
   ``log(read_std**2) = 2.18 * log(1 / photons) + 1.2 + Normal(0, 0.26)``, the fit of that
   paper to real phone and DSLR sensors (read noise rises with gain).
5. ``low = linear_to_srgb(lin)`` quantised to 8 bits: the result is float32 and an exact
   multiple of 1/255, like a real 8-bit low-light photo.

``SynthesisParams(degradation="camera")`` replaces steps 1-5 by the raw-domain camera
pipeline of ``sllen.data.camera`` (mosaic, gain-dependent noise, banding, chroma blotches,
ISP, JPEG); ``"mixed"`` uses it for a share ``camera_share`` of the images (default
``MIXED_CAMERA_SHARE``).

``black_point`` (default 0 = off) gives the camera pipeline's ISP a black point drawn
uniformly from ``black_point / 2`` to ``black_point`` times the read noise
(``CameraParams.black_point``).

``bright_share`` (default 0) gives that share of the images a well-lit capture instead: the
exposure log-uniform in ``bright_range`` (default 0.25 .. 1, up to 2 stops under) at low gain
(the simple path's shot noise from the lower half of its range in log; the camera's scene
light 0.1 .. 1 of a proper exposure, so its auto-exposure hardly raises the gain). Every
other pair is at least 2 stops under, so without these a model has never seen an input that
needs little or no brightening, and washes out a photo that is already well lit.

API: ``SynthesisParams`` holds the ranges; ``sample_params(rng, cfg)`` draws one concrete
``Darkening`` (resolution-independent: light positions are in image-relative units);
``darken(img, darkening, rng)`` applies it (``rng`` draws the noise); ``synthesize_low(img,
rng, cfg)`` does both and returns ``(low, darkening.as_dict())``. For evaluation at a chosen
level, ``SynthesisParams.fixed(exposure=0.05, inhomogeneous=False, noise=True)`` makes every
draw use that exposure, with or without the light map and noise; pass a seed for repeatable
noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from sllen.runtime.errors import InputError

if TYPE_CHECKING:
    from .camera import CameraParams

# ---------------------------------------------------------------------------- transfer


def srgb_to_linear(img: np.ndarray) -> np.ndarray:
    """Exact sRGB decoding (piecewise: linear toe below 0.04045, power 2.4 above)."""
    img = np.asarray(img, dtype=np.float32)
    return np.where(
        img <= 0.04045, img / 12.92, ((np.maximum(img, 0.04045) + 0.055) / 1.055) ** 2.4
    ).astype(np.float32)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Exact sRGB encoding, the inverse of ``srgb_to_linear``."""
    lin = np.asarray(lin, dtype=np.float32)
    return np.where(
        lin <= 0.0031308,
        lin * 12.92,
        1.055 * np.maximum(lin, 0.0031308) ** (1.0 / 2.4) - 0.055,
    ).astype(np.float32)


def quantize_8bit(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to the nearest multiple of 1/255 (float32)."""
    return (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


# ---------------------------------------------------------------------------- parameters

Degradation = Literal["simple", "camera", "mixed"]
DEGRADATIONS: tuple[str, ...] = ("simple", "camera", "mixed")
# "mixed": this share of images goes through the camera pipeline, the rest through the simple
# one (a model fine-tuned from the simple path keeps what it learnt there).
MIXED_CAMERA_SHARE = 0.75
# The camera pipeline's largest black point, in read-noise stds (CameraParams.black_point):
# with the default noise ranges 20 stds stay below 0.13 of white.
MAX_BLACK_POINT = 20.0


@dataclass(frozen=True)
class SynthesisParams:
    """Ranges the darkening parameters are drawn from (defaults: module docstring)."""

    exposure_range: tuple[float, float] = (0.02, 0.25)
    fixed_exposure: float | None = None
    inhomogeneous_prob: float = 0.5
    num_lights: tuple[int, int] = (1, 3)
    ambient_range: tuple[float, float] = (0.05, 0.4)
    color_shift: float = 0.10
    noise_prob: float = 1.0
    shot_range: tuple[float, float] = (1e-4, 1.2e-2)
    # simple: the steps above; camera: sllen.data.camera's raw pipeline (its own defaults);
    # mixed: camera with probability camera_share, else simple.
    degradation: Degradation = "simple"
    camera_share: float = MIXED_CAMERA_SHARE
    # Well-lit captures (module docstring): their share and exposure range.
    bright_share: float = 0.0
    bright_range: tuple[float, float] = (0.25, 1.0)
    # The camera pipeline's black point: up to this many times the read noise (0 = none).
    black_point: float = 0.0

    def __post_init__(self) -> None:
        if self.degradation not in DEGRADATIONS:
            raise InputError(
                f"degradation must be one of {', '.join(DEGRADATIONS)}, not {self.degradation!r}"
            )
        if not 0.0 <= self.camera_share <= 1.0:
            raise InputError(f"camera_share must be in [0, 1], got {self.camera_share}")
        for name in ("exposure_range", "bright_range"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi <= 1.0:
                raise InputError(f"{name} must satisfy 0 < lo <= hi <= 1, got {lo}, {hi}")
        if not 0.0 <= self.bright_share <= 1.0:
            raise InputError(f"bright_share must be in [0, 1], got {self.bright_share}")
        if not 0.0 <= self.black_point <= MAX_BLACK_POINT:
            raise InputError(
                f"black_point must be in [0, {MAX_BLACK_POINT:g}], got {self.black_point}"
            )
        if self.fixed_exposure is not None and not 0.0 < self.fixed_exposure <= 1.0:
            raise InputError(f"fixed_exposure must be in (0, 1], got {self.fixed_exposure}")
        if not 0.0 <= self.color_shift < 1.0:
            raise InputError(f"color_shift must be in [0, 1), got {self.color_shift}")
        if not 1 <= self.num_lights[0] <= self.num_lights[1]:
            raise InputError(f"num_lights must be 1 <= lo <= hi, got {self.num_lights}")
        if not 0.0 < self.ambient_range[0] <= self.ambient_range[1]:
            raise InputError(f"ambient_range must be positive, got {self.ambient_range}")
        if not 0.0 < self.shot_range[0] <= self.shot_range[1]:
            raise InputError(f"shot_range must be positive, got {self.shot_range}")

    @classmethod
    def fixed(
        cls,
        exposure: float = 0.05,
        inhomogeneous: bool = False,
        noise: bool = True,
        color_shift: bool = False,
    ) -> SynthesisParams:
        """An evaluation setting: one exposure, light map and noise switched on or off."""
        return cls(
            fixed_exposure=exposure,
            inhomogeneous_prob=1.0 if inhomogeneous else 0.0,
            noise_prob=1.0 if noise else 0.0,
            color_shift=0.10 if color_shift else 0.0,
        )


@dataclass(frozen=True)
class Light:
    """A Gaussian light source; positions and width in units of the image's longer side."""

    y: float
    x: float
    sigma: float
    amplitude: float


@dataclass(frozen=True)
class Illumination:
    """(ambient + sum of lights) * (1 + ramp * (unit vector(angle) . centred position)), / max."""

    ambient: float
    lights: tuple[Light, ...]
    ramp: float
    angle: float


@dataclass(frozen=True)
class Darkening:
    """One concrete draw: what ``darken`` does to an image (noise values drawn separately)."""

    exposure: float
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    illumination: Illumination | None = None
    photons: float | None = None  # None: no noise
    read_std: float = 0.0

    def as_dict(self) -> dict:
        """Plain-Python description (JSON-serialisable) for logs and manifests."""
        return asdict(self)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_illumination(
    rng: np.random.Generator,
    prob: float,
    num_lights: tuple[int, int],
    ambient_range: tuple[float, float],
) -> tuple[bool, Illumination]:
    """(use the light map?, the map): drawn whether used or not, so the random stream does
    not depend on the switch. Shared by the simple synthesis and the camera pipeline."""
    use_map = rng.random() < prob
    n = int(rng.integers(num_lights[0], num_lights[1] + 1))
    lights = tuple(
        Light(
            y=float(rng.uniform(-0.25, 1.25)),
            x=float(rng.uniform(-0.25, 1.25)),
            sigma=float(rng.uniform(0.15, 0.6)),
            amplitude=float(rng.uniform(0.3, 1.0)),
        )
        for _ in range(n)
    )
    illumination = Illumination(
        ambient=float(rng.uniform(*ambient_range)),
        lights=lights,
        ramp=float(rng.uniform(0.0, 0.5)),
        angle=float(rng.uniform(0.0, 2.0 * math.pi)),
    )
    return use_map, illumination


def sample_params(rng: np.random.Generator, cfg: SynthesisParams | None = None) -> Darkening:
    """Draw one Darkening from the ranges in ``cfg`` (defaults if None)."""
    cfg = cfg or SynthesisParams()
    # Every draw happens regardless of the switches, so toggling one option does not shift
    # the random stream of the others (same seed -> same exposure with or without noise).
    exposure = _log_uniform(rng, *cfg.exposure_range)
    gains = rng.uniform(1.0 - cfg.color_shift, 1.0 + cfg.color_shift, size=3)
    use_map, illumination = sample_illumination(
        rng, cfg.inhomogeneous_prob, cfg.num_lights, cfg.ambient_range
    )
    use_noise = rng.random() < cfg.noise_prob
    shot = _log_uniform(rng, *cfg.shot_range)
    read_var = math.exp(2.18 * math.log(shot) + 1.20 + rng.normal(0.0, 0.26))
    return Darkening(
        exposure=cfg.fixed_exposure if cfg.fixed_exposure is not None else exposure,
        gains=(float(gains[0]), float(gains[1]), float(gains[2])),
        illumination=illumination if use_map else None,
        photons=1.0 / shot if use_noise else None,
        read_std=math.sqrt(read_var) if use_noise else 0.0,
    )


# ---------------------------------------------------------------------------- rendering


def illumination_map(height: int, width: int, spec: Illumination) -> np.ndarray:
    """The light map of ``spec`` at a resolution: float32 HxW, smooth, max 1, min > 0."""
    scale = float(max(height, width))
    ys = ((np.arange(height, dtype=np.float32) + 0.5) / scale)[:, None]
    xs = ((np.arange(width, dtype=np.float32) + 0.5) / scale)[None, :]
    light = np.full((height, width), spec.ambient, dtype=np.float32)
    for s in spec.lights:
        gy = np.exp(-((ys - s.y) ** 2) / (2.0 * s.sigma**2))
        gx = np.exp(-((xs - s.x) ** 2) / (2.0 * s.sigma**2))
        light += s.amplitude * gy * gx  # separable: an outer product, not a HxW exp
    # Sampled ramps (<= 0.5) keep the factor >= 0.64; the floor only guards hand-made specs
    # with steeper ramps, which would otherwise reach zero or below.
    ramp = spec.ramp * (math.cos(spec.angle) * (xs - 0.5) + math.sin(spec.angle) * (ys - 0.5))
    light = np.maximum(light * (1.0 + ramp), spec.ambient * 0.25)
    return (light / light.max()).astype(np.float32)


def darken(img: np.ndarray, params: Darkening, rng: np.random.Generator) -> np.ndarray:
    """Apply ``params`` to a float image; ``rng`` draws the sensor noise."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"expected an HxWx3 float image, got shape {img.shape}")
    lin = srgb_to_linear(np.clip(img, 0.0, 1.0))
    scale = params.exposure * np.asarray(params.gains, dtype=np.float32)
    lin = lin * scale[None, None, :]
    if params.illumination is not None:
        lin *= illumination_map(img.shape[0], img.shape[1], params.illumination)[:, :, None]
    if params.photons is not None:
        lin = rng.poisson(np.clip(lin, 0.0, None) * params.photons) / params.photons
        lin = lin + rng.normal(0.0, params.read_std, size=lin.shape)
    return quantize_8bit(linear_to_srgb(np.clip(lin, 0.0, 1.0)))


def synthesize_low(
    img: np.ndarray,
    rng: np.random.Generator | int,
    cfg: SynthesisParams | None = None,
) -> tuple[np.ndarray, dict]:
    """Darken a float image with freshly drawn parameters: ``(low, params as a dict)``.

    ``rng`` may be a seed; the same seed and image always give the same result.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    cfg = cfg or SynthesisParams()
    # Each coin is drawn only where its option is on, so the random stream of a setting
    # without it (and every model trained with one) is unchanged.
    bright = cfg.bright_share > 0.0 and rng.random() < cfg.bright_share
    if cfg.degradation != "simple":
        if cfg.degradation == "camera" or rng.random() < cfg.camera_share:
            from .camera import synthesize_camera_low  # camera imports this module

            camera = _camera_params(cfg, bright)
            low, draw = synthesize_camera_low(img, rng, camera)
            return low, {"degradation": "camera", **draw, **_bright_tag(bright)}
    if bright:
        lo, hi = cfg.shot_range
        cfg = replace(cfg, exposure_range=cfg.bright_range, shot_range=(lo, math.sqrt(lo * hi)))
    params = sample_params(rng, cfg)
    return darken(img, params, rng), {**params.as_dict(), **_bright_tag(bright)}


def _camera_params(cfg: SynthesisParams, bright: bool) -> CameraParams | None:
    from .camera import CameraParams  # camera imports this module

    kwargs: dict = {}
    if bright:  # light enough that auto-exposure reaches its target at low gain
        kwargs.update(scene_light=(0.1, 1.0), ae_target=cfg.bright_range)
    if cfg.black_point > 0:
        kwargs["black_point"] = (cfg.black_point / 2.0, cfg.black_point)
    return CameraParams(**kwargs) if kwargs else None


def _bright_tag(bright: bool) -> dict:
    # Only well-lit draws are tagged: descriptions of the others stay as they were.
    return {"bright": True} if bright else {}
