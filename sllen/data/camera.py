"""Raw-domain camera degradation: a normal-light sRGB image -> what a phone or compact camera
would have saved of the same scene in dim light.

``synthesis.py`` adds Poisson-Gaussian noise to each RGB pixel independently; real night
photos look different: colour speckle (the mosaic's noise spread by demosaicing), blotchy
low-frequency chroma noise (read-out patterns and the camera's own chroma noise reduction)
and horizontal banding, all after a tone curve and JPEG. This module simulates the chain
that produces them, after Brooks et al., "Unprocessing Images for Learned Raw Denoising"
(CVPR 2019):

1. Unprocess (``unprocess``): inverse tone curve, sRGB -> linear, inverse colour correction
   (a random camera's RGB -> camera-RGB matrix), inverse white balance; the result is the
   scene as the sensor's colour filters saw it, at full exposure.
2. Light: optionally the smooth inhomogeneous light map of ``synthesis.illumination_map``.
3. Exposure and analogue gain as auto-exposure sets them (``sample_camera``): the camera
   aims at a target brightness; in bright light it shortens the shutter, in dim light it
   opens it fully and then raises the analogue gain up to the sensor's maximum; what is
   still missing is underexposure. Gain multiplies shot noise and the pre-amplifier read
   noise, so darker scenes are noisier, as in real cameras.
4. RGGB Bayer mosaic, then heteroscedastic noise in electrons: Poisson shot noise
   (full-well capacity per camera), Gaussian read noise before and after the amplifier, a
   per-row offset (banding) and a smooth per-colour field (low-frequency chroma noise).
5. Quantisation of the raw to 10-14 bits above a black level (negative noise survives, as
   in real raw files, until the ISP clips).
6. The ISP: white balance from an imperfect estimate (a cast in dim tinted light), bilinear
   demosaic, colour correction, optionally a black point above the sensor's (``black_point``,
   off by default: the shadows and their clipped noise go to black), sRGB gamma, the
   camera's tone curve, sometimes a chroma noise reduction (which turns speckle into the
   blotches seen in phone photos), then JPEG at a random quality (or lossless 8 bits).

Bilinear demosaicing is deliberate: it is what cheap ISPs and many video pipelines use, it is
fast in numpy, and it spreads each raw pixel's noise over a 3x3 neighbourhood with
colour-dependent weights, which is the fine colour speckle real photos show; better
demosaicers correlate noise over similar distances, so a model robust to this one generalises.

API mirrors ``synthesis``: ``CameraParams`` holds the ranges, ``sample_camera(rng, cfg)``
draws one ``CameraDraw``, ``camera_darken(img, draw, rng)`` renders it, and
``synthesize_camera_low(img, rng, cfg)`` does both and returns ``(low, draw.as_dict())``.
numpy and Pillow only (no torch): evaluation machines import it.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from sllen.runtime.errors import InputError

from .scenes import resize_bilinear
from .synthesis import (
    MAX_BLACK_POINT,
    Illumination,
    illumination_map,
    linear_to_srgb,
    sample_illumination,
    srgb_to_linear,
)

# XYZ -> camera matrices of four real cameras (Brooks et al. 2019, Table/code: Canon, Nikon,
# ...); random convex mixtures of them span plausible sensor colour responses.
_XYZ2CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    ]
)
_RGB2XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_LUT = np.linspace(0.0, 1.0, 4097)


# ---------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class CameraParams:
    """Ranges the camera and the capture are drawn from (log-uniform unless said otherwise).

    Chosen on LOL's training pairs (our485; never eval15): brightness 0.2-18 % of normal
    light (median 2.8 %) to span the 0.4-6 % measured there; noise so that, in flat regions,
    the luma noise relative to the local level spans LOL's (median 0.090 against 0.074,
    quartiles 0.07-0.18 against 0.05-0.12; the simple synthesis: 0.12) and the chroma noise
    is close to it (0.056 against 0.077), with a share of captures given the chroma noise
    reduction and JPEG that phone photos have. Read noise is a few electrons, as on phone to
    APS-C sensors. (Measured with the flat-region noise script described in docs/training.md.)
    """

    # Light at the sensor with the longest shutter at base gain, relative to a proper exposure.
    scene_light: tuple[float, float] = (3e-4, 0.1)
    # Auto-exposure target relative to a proper exposure: night modes keep shots dark to
    # protect highlights and keep the shutter short.
    ae_target: tuple[float, float] = (0.015, 0.2)
    max_gain: tuple[float, float] = (4.0, 32.0)
    # Electrons at the ground truth's white at base gain (a normal photo's white sits below
    # saturation, so this is above a small sensor's full well).
    full_well: tuple[float, float] = (15_000.0, 150_000.0)
    read_electrons: tuple[float, float] = (0.5, 3.0)  # before the amplifier (scales with gain)
    adc_std: tuple[float, float] = (5e-5, 5e-4)  # after the amplifier, fraction of white
    row_frac: tuple[float, float] = (0.0, 0.3)  # uniform: banding std / read std
    chroma_frac: tuple[float, float] = (0.0, 0.3)  # uniform: low-freq field std / noise std
    chroma_cell: tuple[int, int] = (8, 32)  # pixels per control point of that field
    bits: tuple[int, ...] = (10, 12, 14)
    black_level: float = 0.0625  # fraction of the raw range below white
    wb_error: float = 0.08  # uniform: white-balance estimate off by +- this per channel
    tone_strength: tuple[float, float] = (0.0, 1.0)  # uniform: 0 = gamma only, 1 = smoothstep
    chroma_nr_prob: float = 0.3
    chroma_nr_sigma: tuple[float, float] = (1.0, 3.0)  # uniform, pixels
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (70, 98)  # uniform, inclusive
    inhomogeneous_prob: float = 0.5
    num_lights: tuple[int, int] = (1, 3)
    ambient_range: tuple[float, float] = (0.05, 0.4)
    # Uniform: the ISP's black point in multiples of the read noise (0 = none, the default).
    # Camera ISPs set black above the sensor's black level, so shadows, and the noise that
    # clipping at zero would lift, go to black: relative to their ground truths, LOL's dark
    # captures (our485) have darker shadows than midtones, where this pipeline without one
    # lifts them (scripts/shadow_profile.py; docs/training.md, --black-point).
    black_point: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.black_point[0] <= self.black_point[1] <= MAX_BLACK_POINT:
            raise InputError(
                f"black_point must satisfy 0 <= lo <= hi <= {MAX_BLACK_POINT:g}, "
                f"got {self.black_point}"
            )
        for name in ("scene_light", "ae_target", "max_gain", "full_well", "read_electrons"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise InputError(f"{name} must satisfy 0 < lo <= hi, got {lo}, {hi}")
        if self.max_gain[0] < 1.0:
            raise InputError(f"max_gain must be >= 1, got {self.max_gain}")
        if not all(b in (8, 10, 12, 14, 16) for b in self.bits):
            raise InputError(f"bits must be among 8, 10, 12, 14, 16, got {self.bits}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise InputError(f"jpeg_quality must be within 1..100, got {self.jpeg_quality}")
        if not 0.0 <= self.wb_error < 1.0:
            raise InputError(f"wb_error must be in [0, 1), got {self.wb_error}")


@dataclass(frozen=True)
class CameraDraw:
    """One concrete camera and capture (noise values are drawn when rendering)."""

    rgb2cam: tuple[tuple[float, float, float], ...]
    wb_gains: tuple[float, float, float]  # the true white balance (R, G, B multipliers)
    wb_estimate: tuple[float, float, float]  # what the camera applies
    tone_strength: float
    exposure: float  # final brightness relative to the ground truth (shutter x gain x light)
    gain: float  # analogue gain (1 = base ISO)
    illumination: Illumination | None
    shot: float  # shot-noise variance per unit signal = gain / full well
    read_std: float  # total Gaussian read noise (fraction of white)
    row_std: float
    chroma_std: float
    chroma_cell: int
    bits: int
    chroma_nr_sigma: float  # 0 = off
    jpeg_quality: int  # 0 = lossless 8-bit
    black_point: float = 0.0  # subtracted in linear RGB before gamma (fraction of white)

    def as_dict(self) -> dict:
        """Plain-Python description (JSON-serialisable) for logs and manifests."""
        return asdict(self)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_rgb2cam(rng: np.random.Generator) -> np.ndarray:
    """sRGB-linear -> camera RGB: a random mix of real cameras, rows normalised so grey stays
    grey before white balance (Brooks et al.)."""
    weights = rng.uniform(1e-8, 1.0, size=4)
    xyz2cam = np.tensordot(weights / weights.sum(), _XYZ2CAMS, axes=1)
    rgb2cam = xyz2cam @ _RGB2XYZ
    return rgb2cam / rgb2cam.sum(axis=1, keepdims=True)


def _row3(row: np.ndarray) -> tuple[float, float, float]:
    return float(row[0]), float(row[1]), float(row[2])


def sample_camera(rng: np.random.Generator, cfg: CameraParams | None = None) -> CameraDraw:
    """Draw one camera and capture from the ranges in ``cfg`` (defaults if None)."""
    cfg = cfg or CameraParams()
    rgb2cam = random_rgb2cam(rng)
    # Brooks et al.'s white-balance gains: red 1.9-2.4, blue 1.5-1.9, and an overall gain.
    rgb_gain = 1.0 / float(np.clip(rng.normal(0.8, 0.1), 0.5, 1.2))
    wb = np.array([rng.uniform(1.9, 2.4), 1.0, rng.uniform(1.5, 1.9)]) * rgb_gain
    wb_est = wb * rng.uniform(1.0 - cfg.wb_error, 1.0 + cfg.wb_error, size=3)
    # Auto-exposure: the shutter can always darken, the gain can brighten up to its maximum.
    light = _log_uniform(rng, *cfg.scene_light)
    target = _log_uniform(rng, *cfg.ae_target)
    max_gain = _log_uniform(rng, *cfg.max_gain)
    exposure = min(target, light * max_gain)
    gain = max(1.0, exposure / light)
    full_well = _log_uniform(rng, *cfg.full_well)
    read_e = _log_uniform(rng, *cfg.read_electrons)
    adc = _log_uniform(rng, *cfg.adc_std)
    read_std = math.sqrt((gain * read_e / full_well) ** 2 + adc**2)
    shot = gain / full_well
    # Low-frequency chroma noise scales with the noise at mid-dark signal (0.1 of the capture's
    # white), so it is visible exactly where the other noise is.
    noise_level = math.sqrt(shot * 0.1 * exposure + read_std**2)
    use_map, illumination = sample_illumination(
        rng, cfg.inhomogeneous_prob, cfg.num_lights, cfg.ambient_range
    )
    row_std = float(rng.uniform(*cfg.row_frac)) * read_std
    chroma_std = float(rng.uniform(*cfg.chroma_frac)) * noise_level
    cell = int(rng.integers(cfg.chroma_cell[0], cfg.chroma_cell[1] + 1))
    bits = int(rng.choice(cfg.bits))
    nr = float(rng.uniform(*cfg.chroma_nr_sigma)) if rng.random() < cfg.chroma_nr_prob else 0.0
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    use_jpeg = rng.random() < cfg.jpeg_prob
    tone = float(rng.uniform(*cfg.tone_strength))
    # Drawn last and only when on, so the random stream of the default (and every model
    # trained on it) is unchanged, and a draw with it differs from one without only here.
    black = float(rng.uniform(*cfg.black_point)) * read_std if cfg.black_point[1] > 0 else 0.0
    return CameraDraw(
        rgb2cam=(_row3(rgb2cam[0]), _row3(rgb2cam[1]), _row3(rgb2cam[2])),
        wb_gains=(float(wb[0]), float(wb[1]), float(wb[2])),
        wb_estimate=(float(wb_est[0]), float(wb_est[1]), float(wb_est[2])),
        tone_strength=tone,
        exposure=float(exposure),
        gain=float(gain),
        illumination=illumination if use_map else None,
        shot=float(shot),
        read_std=float(read_std),
        row_std=row_std,
        chroma_std=chroma_std,
        chroma_cell=cell,
        bits=bits,
        chroma_nr_sigma=nr,
        jpeg_quality=quality if use_jpeg else 0,
        black_point=black,
    )


# ---------------------------------------------------------------------------- the stages


def tone_curve(x: np.ndarray, strength: float) -> np.ndarray:
    """(1 - s) x + s smoothstep(x): s = 1 is Brooks et al.'s global tone curve, s = 0 none.

    Monotone for s in [0, 1] (derivative 1 - s + 6 s x (1 - x) >= 0)."""
    x = np.clip(x, 0.0, 1.0)
    return ((1.0 - strength) * x + strength * (3.0 * x**2 - 2.0 * x**3)).astype(np.float32)


def inverse_tone_curve(y: np.ndarray, strength: float) -> np.ndarray:
    """Inverse of ``tone_curve`` by table lookup (no closed form for a blend)."""
    curve = tone_curve(_LUT, strength)
    return np.interp(np.clip(y, 0.0, 1.0), curve, _LUT).astype(np.float32)


def unprocess(img: np.ndarray, draw: CameraDraw) -> np.ndarray:
    """sRGB image -> linear camera RGB before white balance (Brooks et al., Sec. 3)."""
    lin = srgb_to_linear(inverse_tone_curve(img, draw.tone_strength))
    cam = lin @ np.asarray(draw.rgb2cam, dtype=np.float32).T
    # Inverse white balance, but highlights that would exceed white are kept at white rather
    # than pushed below it (Brooks et al.'s "safe" inversion keeps saturated pixels neutral).
    gains = np.asarray(draw.wb_gains, dtype=np.float32)
    gray = np.clip(cam.mean(axis=2, keepdims=True), 0.0, 1.0)
    mask = np.clip((gray - 0.9) / 0.1, 0.0, 1.0) ** 2
    inv = np.maximum(mask, (1.0 - mask) / gains)
    return np.clip(cam * inv, 0.0, 1.0).astype(np.float32)


def mosaic(rgb: np.ndarray) -> np.ndarray:
    """RGGB Bayer mosaic: HxWx3 -> HxW, R at (even, even), B at (odd, odd), G elsewhere."""
    raw = rgb[:, :, 1].copy()
    raw[0::2, 0::2] = rgb[0::2, 0::2, 0]
    raw[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return raw


def bayer_masks(height: int, width: int) -> np.ndarray:
    """HxWx3 float32 one-hot of which colour each RGGB site measures."""
    m = np.zeros((height, width, 3), dtype=np.float32)
    m[0::2, 0::2, 0] = 1.0
    m[0::2, 1::2, 1] = 1.0
    m[1::2, 0::2, 1] = 1.0
    m[1::2, 1::2, 2] = 1.0
    return m


def _conv3x3(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    # Reflect padding keeps the Bayer parity at the borders (index -1 mirrors to 1).
    p = np.pad(x, 1, mode="reflect")
    h, w = x.shape
    out = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            if k[dy, dx]:
                out += k[dy, dx] * p[dy : dy + h, dx : dx + w]
    return out


_K_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float32) / 4.0
_K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 4.0


def demosaic_bilinear(raw: np.ndarray) -> np.ndarray:
    """RGGB HxW -> HxWx3 by bilinear interpolation (each missing colour is the mean of its
    nearest same-colour neighbours). Height and width must be >= 2."""
    h, w = raw.shape
    if h < 2 or w < 2:
        raise InputError(f"demosaic needs at least 2x2 pixels, got {raw.shape}")
    masks = bayer_masks(h, w)
    kernels = (_K_RB, _K_G, _K_RB)
    return np.stack([_conv3x3(raw * masks[:, :, c], kernels[c]) for c in range(3)], axis=2).astype(
        np.float32
    )


def smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: int, channels: int = 3
) -> np.ndarray:
    """Unit-variance-ish smooth random field, HxWxC: Gaussian control points every ``cell``
    pixels, bilinearly interpolated, one independent field per channel."""
    gh, gw = max(2, -(-height // cell) + 1), max(2, -(-width // cell) + 1)
    grids = [rng.standard_normal((gh, gw)) for _ in range(channels)]
    fields = [resize_bilinear(g, height, width) for g in grids]
    return np.stack(fields, axis=2).astype(np.float32)


def add_sensor_noise(raw: np.ndarray, draw: CameraDraw, rng: np.random.Generator) -> np.ndarray:
    """Shot, read, row and low-frequency chroma noise on a mosaic (units: fraction of white)."""
    h, w = raw.shape
    # Shot noise in electrons: x = electrons * shot, so electrons ~ Poisson(x / shot).
    noisy = rng.poisson(np.clip(raw, 0.0, None) / draw.shot) * draw.shot
    noisy = noisy + rng.normal(0.0, draw.read_std, size=raw.shape)
    if draw.row_std > 0:
        noisy = noisy + rng.normal(0.0, draw.row_std, size=(h, 1))
    if draw.chroma_std > 0:
        field = smooth_noise(rng, h, w, draw.chroma_cell)
        noisy = noisy + draw.chroma_std * mosaic(field)
    return noisy.astype(np.float32)


def quantize_raw(raw: np.ndarray, bits: int, black_level: float) -> np.ndarray:
    """Round to the ADC's steps above a black level; below-black noise survives down to the
    black level, highlights clip at white (values stay in units of white)."""
    levels = float(2**bits - 1)
    black = float(round(black_level * levels))  # black levels are whole ADC steps
    dn = np.clip(np.round(raw * (levels - black) + black), 0.0, levels)
    return ((dn - black) / (levels - black)).astype(np.float32)


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(math.ceil(2.5 * sigma)))
    k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2.0 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an HxWxC array (edge padding)."""
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    h, w = x.shape[:2]
    p = np.pad(x, ((r, r), (0, 0), (0, 0)), mode="edge")
    x = sum(k[i] * p[i : i + h] for i in range(len(k)))
    p = np.pad(x, ((0, 0), (r, r), (0, 0)), mode="edge")
    return sum(k[i] * p[:, i : i + w] for i in range(len(k))).astype(np.float32)


def chroma_denoise(img: np.ndarray, sigma: float) -> np.ndarray:
    """The camera's chroma noise reduction: blur Cb/Cr (BT.601), keep luma. It removes fine
    speckle and leaves the low-frequency colour blotches phone photos show."""
    y = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    chroma = img - y[:, :, None]
    return np.clip(y[:, :, None] + _blur(chroma, sigma), 0.0, 1.0).astype(np.float32)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG in memory (Pillow's default 4:2:0 chroma, like cameras)."""
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0


def process(raw: np.ndarray, draw: CameraDraw) -> np.ndarray:
    """The camera's ISP on a noisy mosaic: white balance, demosaic, colour correction, black
    point, gamma, tone curve, chroma noise reduction; float32 sRGB in [0, 1] (before JPEG)."""
    h, w = raw.shape
    gains = np.asarray(draw.wb_estimate, dtype=np.float32)
    raw = raw * (bayer_masks(h, w) @ gains)
    rgb = demosaic_bilinear(raw)
    cam2rgb = np.linalg.inv(np.asarray(draw.rgb2cam, dtype=np.float64)).astype(np.float32)
    rgb = rgb @ cam2rgb.T
    if draw.black_point > 0:
        rgb = (rgb - draw.black_point) / (1.0 - draw.black_point)
    rgb = np.clip(rgb, 0.0, 1.0)
    out = tone_curve(linear_to_srgb(rgb), draw.tone_strength)
    if draw.chroma_nr_sigma > 0:
        out = chroma_denoise(out, draw.chroma_nr_sigma)
    return out


def camera_darken(
    img: np.ndarray, draw: CameraDraw, rng: np.random.Generator, black_level: float = 0.0625
) -> np.ndarray:
    """Render ``draw`` on a float sRGB image; ``rng`` draws the noise. Returns float32 HxWx3,
    a multiple of 1/255 (8-bit or JPEG-decoded)."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 2:
        raise InputError(f"expected an HxWx3 float image of at least 2x2, got {img.shape}")
    cam = unprocess(np.clip(img, 0.0, 1.0), draw) * draw.exposure
    if draw.illumination is not None:
        cam *= illumination_map(img.shape[0], img.shape[1], draw.illumination)[:, :, None]
    raw = add_sensor_noise(mosaic(cam), draw, rng)
    out = process(quantize_raw(raw, draw.bits, black_level), draw)
    if draw.jpeg_quality > 0:
        return jpeg_roundtrip(out, draw.jpeg_quality)
    return (np.round(np.clip(out, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def synthesize_camera_low(
    img: np.ndarray, rng: np.random.Generator | int, cfg: CameraParams | None = None
) -> tuple[np.ndarray, dict]:
    """Darken a float image through a freshly drawn camera: ``(low, draw as a dict)``.

    ``rng`` may be a seed; the same seed and image always give the same result."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    cfg = cfg or CameraParams()
    draw = sample_camera(rng, cfg)
    return camera_darken(img, draw, rng, cfg.black_level), draw.as_dict()
