"""A dark sample video: a camera moving over a procedural scene, captured in low light.

``render_clip_frames(seed, size, frames, fps)`` yields uint8 HxWx3 RGB frames:

- Scene: one ``generate_scene`` picture twice the frame size in each direction.
- Camera: a window slides over the scene along a smooth path (eased pan from one side to the
  other, a slow zoom between 0.85x and 1.3x the frame size, a small roll), sampled with
  sub-pixel bilinear interpolation, so the motion is continuous rather than whole-pixel steps.
- Moving objects: two soft-edged shapes textured with patches of a second generated scene
  cross the frame on their own straight paths, independently of the camera.
- Low light: ``sample_params`` draws one ``Darkening`` for the whole clip (exposure, colour
  gains, light map and sensor gains stay fixed, like a real camera; the light map is fixed to
  the frame, as from a lamp on the camera), then ``darken`` runs on every frame with one noise
  generator, so the shot and read noise are fresh in every frame. ``CLIP_SYNTHESIS`` is the
  default: exposure 0.08 (3.6 stops down), a light map, noise at 330 to 1,000 photo-electrons
  at white: clearly dark and noisy, but the content is still there to recover.
  ``dark=False`` yields the well-lit frames of the same clip instead (the same seed draws the
  same scene and camera path either way).

Motion is defined per second, not per frame: the camera covers its whole path over the clip,
and ``fps`` only sets how densely it is sampled.

``write_clip(path, frames, fps, crf)`` encodes H.264 (libx264, yuv420p, BT.709 limited range)
into an MP4 with PyAV: time base 1/fps and pts = frame index, so frame i is at exactly i/fps
seconds. It writes a temporary file in the target folder and renames it over ``path``
(``os.replace``, atomic), so a reader never sees half a clip. numpy and PyAV only (PyAV is
imported when ``write_clip`` runs: the ``video`` extra).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from sllen.runtime.errors import InputError

from .scenes import generate_scene
from .synthesis import SynthesisParams, darken, sample_params

CLIP_SYNTHESIS = SynthesisParams(
    fixed_exposure=0.08,
    inhomogeneous_prob=1.0,
    noise_prob=1.0,
    color_shift=0.10,
    shot_range=(1e-3, 3e-3),
)


# ---------------------------------------------------------------------------- sampling


def _bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample ``img`` (HxWxC) at float pixel coordinates (pixel centres at integers).

    Coordinates outside the image are clamped to its border.
    """
    h, w = img.shape[:2]
    ys = np.clip(ys, 0.0, h - 1.0)
    xs = np.clip(xs, 0.0, w - 1.0)
    y0 = np.minimum(np.floor(ys).astype(np.intp), h - 2 if h > 1 else 0)
    x0 = np.minimum(np.floor(xs).astype(np.intp), w - 2 if w > 1 else 0)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)[..., None]
    wx = (xs - x0).astype(np.float32)[..., None]
    top = img[y0, x0] * (1.0 - wx) + img[y0, x1] * wx
    bottom = img[y1, x0] * (1.0 - wx) + img[y1, x1] * wx
    return top * (1.0 - wy) + bottom * wy


def _ease(u: float) -> float:
    """0 -> 0, 1 -> 1, zero velocity at both ends (a camera operator starting and stopping)."""
    return 0.5 - 0.5 * math.cos(math.pi * u)


@dataclass(frozen=True)
class _Camera:
    """Window centre (y, x) and scale (scene pixels per frame pixel) at the start and end."""

    start: tuple[float, float]
    end: tuple[float, float]
    scale: tuple[float, float]
    roll: float  # radians, peak of a slow sway
    sway_phase: float

    def at(self, u: float) -> tuple[float, float, float, float]:
        """(centre y, centre x, scale, roll) at clip position ``u`` in [0, 1]."""
        e = _ease(u)
        cy = self.start[0] + (self.end[0] - self.start[0]) * e
        cx = self.start[1] + (self.end[1] - self.start[1]) * e
        s = self.scale[0] + (self.scale[1] - self.scale[0]) * e
        roll = self.roll * math.sin(2.0 * math.pi * u + self.sway_phase)
        return cy, cx, s, roll


def _camera(rng: np.random.Generator, height: int, width: int) -> _Camera:
    """A path that keeps the (rolled) window inside a 2*height x 2*width scene."""
    s0, s1 = float(rng.uniform(0.85, 1.3)), float(rng.uniform(0.85, 1.3))
    roll = float(rng.uniform(0.01, 0.03))
    # Half extents of the largest window, grown for the roll so its corners stay inside.
    smax = max(s0, s1)
    hy = smax * (height / 2 + math.sin(roll) * width / 2)
    hx = smax * (width / 2 + math.sin(roll) * height / 2)
    ylo, yhi = hy + 1.0, 2 * height - 1.0 - hy
    xlo, xhi = hx + 1.0, 2 * width - 1.0 - hx
    # Pan across most of the free range (left to right or back), drift a little vertically.
    span = xhi - xlo
    x0 = xlo + span * float(rng.uniform(0.0, 0.15))
    x1 = xhi - span * float(rng.uniform(0.0, 0.15))
    if rng.random() < 0.5:
        x0, x1 = x1, x0
    y0, y1 = (float(v) for v in rng.uniform(ylo, yhi, size=2))
    return _Camera((y0, x0), (y1, x1), (s0, s1), roll, float(rng.uniform(0, 2 * math.pi)))


@dataclass(frozen=True)
class _Sprite:
    """A textured shape moving in scene coordinates from ``start`` to ``end`` (y, x)."""

    texture: np.ndarray  # float32 hxwx3
    radius: tuple[float, float]  # (ry, rx) in scene pixels
    power: float  # superellipse exponent: 2 = ellipse, larger = rounded rectangle
    start: tuple[float, float]
    end: tuple[float, float]
    shade_angle: float


def _sprites(rng: np.random.Generator, cam: _Camera, height: int, width: int) -> list[_Sprite]:
    """Two objects that cross the frame while the camera moves: their paths run from one side
    of the camera's first window to the other side of its last one."""
    sprites = []
    for _ in range(2):
        ry = float(rng.uniform(0.08, 0.16)) * height
        rx = ry * float(rng.uniform(0.8, 2.0))
        th, tw = int(2 * ry) + 8, int(2 * rx) + 8
        texture, _ = generate_scene(rng, max(th, 8), max(tw, 8))
        side = 1.0 if rng.random() < 0.5 else -1.0
        off0 = (float(rng.uniform(-0.3, 0.3)) * height, side * float(rng.uniform(0.25, 0.45)))
        off1 = (float(rng.uniform(-0.3, 0.3)) * height, -side * float(rng.uniform(0.25, 0.45)))
        start = (cam.start[0] + off0[0], cam.start[1] + off0[1] * width)
        end = (cam.end[0] + off1[0], cam.end[1] + off1[1] * width)
        sprites.append(
            _Sprite(
                texture=texture,
                radius=(ry, rx),
                power=2.0 if rng.random() < 0.5 else 5.0,
                start=start,
                end=end,
                shade_angle=float(rng.uniform(0, 2 * math.pi)),
            )
        )
    return sprites


def _composite(
    frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, sprite: _Sprite, u: float, scale: float
) -> None:
    """Paint ``sprite`` at clip position ``u`` over ``frame`` (in place); ys/xs: scene coords."""
    py = sprite.start[0] + (sprite.end[0] - sprite.start[0]) * u
    px = sprite.start[1] + (sprite.end[1] - sprite.start[1]) * u
    ry, rx = sprite.radius
    v = (ys - py) / ry
    w = (xs - px) / rx
    inside = (np.abs(v) < 1.2) & (np.abs(w) < 1.2)
    if not inside.any():
        return
    v, w = v[inside], w[inside]
    d = (np.abs(v) ** sprite.power + np.abs(w) ** sprite.power) ** (1.0 / sprite.power)
    # About one output pixel of soft edge: (1 - d) * radius is the distance in scene pixels.
    alpha = np.clip((1.0 - d) * min(ry, rx) / scale + 0.5, 0.0, 1.0).astype(np.float32)
    th, tw = sprite.texture.shape[:2]
    tex = _bilinear(sprite.texture, (v + 1.0) * 0.5 * (th - 1), (w + 1.0) * 0.5 * (tw - 1))
    shade = 0.8 + 0.25 * (math.cos(sprite.shade_angle) * w + math.sin(sprite.shade_angle) * v)
    tex = np.clip(tex * shade[:, None].astype(np.float32), 0.0, 1.0)
    a = alpha[:, None]
    frame[inside] = frame[inside] * (1.0 - a) + tex * a


# ---------------------------------------------------------------------------- rendering


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_clip_frames(
    seed: int,
    size: tuple[int, int] = (240, 320),
    frames: int = 60,
    fps: int = 15,
    *,
    synthesis: SynthesisParams | None = None,
    dark: bool = True,
) -> Iterator[np.ndarray]:
    """Yield ``frames`` uint8 HxWx3 RGB frames of a moving scene, darkened (module docstring).

    ``size`` is (height, width); ``synthesis`` defaults to ``CLIP_SYNTHESIS``; ``dark=False``
    yields the well-lit frames of the same clip. The same arguments give identical frames.
    """
    height, width = int(size[0]), int(size[1])
    if height < 8 or width < 8:
        raise InputError(f"clips need at least 8x8 pixels, got {height}x{width}")
    if frames < 1:
        raise InputError(f"frames must be >= 1, got {frames}")
    if fps < 1:
        raise InputError(f"fps must be >= 1, got {fps}")
    # Independent streams: the well-lit clip is the same with and without darkening.
    scene_ss, camera_ss, light_ss, noise_ss = np.random.SeedSequence(seed).spawn(4)
    scene, _ = generate_scene(np.random.default_rng(scene_ss), 2 * height, 2 * width)
    camera_rng = np.random.default_rng(camera_ss)
    cam = _camera(camera_rng, height, width)
    sprites = _sprites(camera_rng, cam, height, width)
    darkening = sample_params(np.random.default_rng(light_ss), synthesis or CLIP_SYNTHESIS)
    noise_rng = np.random.default_rng(noise_ss)

    # Frame pixel centres relative to the frame centre, in frame pixels.
    ry = (np.arange(height, dtype=np.float64) + 0.5 - height / 2)[:, None]
    rx = (np.arange(width, dtype=np.float64) + 0.5 - width / 2)[None, :]
    for i in range(frames):
        u = i / (frames - 1) if frames > 1 else 0.0
        cy, cx, s, roll = cam.at(u)
        cos_r, sin_r = math.cos(roll), math.sin(roll)
        # Scene coordinates of each frame pixel centre (scene pixel centres at integers).
        ys = cy + s * (cos_r * ry + sin_r * rx) - 0.5
        xs = cx + s * (-sin_r * ry + cos_r * rx) - 0.5
        frame = _bilinear(scene, ys, xs).astype(np.float32)
        for sprite in sprites:
            _composite(frame, ys, xs, sprite, u, s)
        frame = np.clip(frame, 0.0, 1.0)
        yield _to_uint8(darken(frame, darkening, noise_rng) if dark else frame)


# ---------------------------------------------------------------------------- writing


def write_clip(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: int,
    crf: int = 23,
    *,
    preset: str = "slow",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Encode uint8 HxWx3 RGB ``frames`` as H.264 MP4 at ``path`` (atomically); returns it.

    Every frame must have the first frame's shape; height and width must be even (yuv420p).
    ``crf`` is x264's constant rate factor (default 23, x264's own; lower: larger file, less
    loss); ``metadata`` goes into the container (e.g. ``{"comment": ...}``). Encoding is
    single-threaded, so the same frames, settings and library versions give the same bytes.
    """
    import av  # the ``video`` extra; imported here so the renderer works without it

    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise InputError(f"fps must be a positive int, got {fps!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique hidden name next to the target (same file system, so os.replace is atomic);
    # PyAV creates it, so it gets the usual permissions rather than mkstemp's 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    count = 0
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            if metadata:
                container.metadata.update(metadata)
            stream = None
            shape = None
            for frame in frames:
                frame = np.asarray(frame)
                if shape is None:
                    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                        raise InputError(
                            f"frames must be uint8 HxWx3, got {frame.dtype} {frame.shape}"
                        )
                    h, w = frame.shape[:2]
                    if h % 2 or w % 2:
                        raise InputError(f"yuv420p needs an even height and width, got {h}x{w}")
                    shape = frame.shape
                    stream = _add_stream(container, fps, w, h, crf, preset)
                elif frame.shape != shape or frame.dtype != np.uint8:
                    raise InputError(
                        f"frame {count} is {frame.dtype} {frame.shape}, expected uint8 {shape}"
                    )
                assert stream is not None  # added with `shape`, at the first frame
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                vf = vf.reformat(
                    format="yuv420p",
                    src_colorspace="itu709",
                    dst_colorspace="itu709",
                    dst_color_range="MPEG",
                    threads=1,
                )
                vf.pts = count
                vf.time_base = Fraction(1, fps)
                container.mux(stream.encode(vf))
                count += 1
            if stream is None:
                raise InputError("no frames to write")
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _add_stream(container, fps: int, width: int, height: int, crf: int, preset: str):
    """The H.264 stream: time base 1/fps, BT.709 limited-range tags, deterministic x264."""
    from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

    stream = container.add_stream(
        "libx264",
        rate=Fraction(fps),
        options={"crf": str(crf), "preset": preset, "threads": "1"},
    )
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, fps)
    stream.codec_context.time_base = Fraction(1, fps)
    stream.codec_context.gop_size = 2 * fps  # a keyframe every 2 s: cheap seeking
    stream.codec_context.thread_count = 1  # PyAV's default (0, automatic) overrides x264's
    stream.codec_context.colorspace = Colorspace.ITU709
    stream.codec_context.color_range = ColorRange.MPEG
    stream.codec_context.color_primaries = ColorPrimaries.BT709
    stream.codec_context.color_trc = ColorTrc.IEC61966_2_1  # the frames are sRGB
    return stream
