"""Calibration frames: the images the INT8 ranges and the FP16/INT8 budgets are measured on.

``load_calibration_frames(sources, count=300, size=None, seed=0)`` returns an ``(N, 3, H, W)``
float32 array in [0, 1] (the ONNX input layout), N <= count. Sources, in any mix:

- a folder: its images and videos (direct children with known suffixes, hidden files skipped);
- an image file, read with ``sllen.runtime.images.read_image`` (EXIF orientation applied, grey and
  16-bit handled);
- a glob pattern (``*``, ``?`` or ``[`` in the string, ``**`` recursive): every image or video
  it matches;
- a video file (any container and codec PyAV/FFmpeg decodes): frames spread over the whole
  duration, never just the first N. Candidate frames are taken at evenly spaced positions; when
  they are sparse (fewer than 1 in 8 frames) each one is reached by seeking to its timestamp
  (then decoding from the key frame before it), else the video is decoded once and the frames
  at the chosen indices are kept.

Selection. Candidates are first thinned (deterministically with ``seed``) to at most
``OVERSAMPLE * count``, spread over the sources: each video and the images together get an
equal share (a source with fewer frames gives all of them, the rest goes to the others), so
a long clip does not crowd out a short one. If more than ``count`` remain, they are sorted by
mean luma (Rec. 709 weights on the RGB values as stored) and cut into ``count`` quantile bins of
equal size, and one frame is drawn at random from each bin. So the selection follows the
brightness distribution of the material while its darkest and brightest ends are always in it
(a random draw can miss the few bright frames of a night video). The result keeps source order.

Size. With ``size=(H, W)`` (multiples of 16) each frame is scaled so it covers H x W, keeping
its aspect ratio, then centre-cropped. Scaling is Pillow's BICUBIC resize (antialiased when
shrinking: its kernel is widened by the scale factor) done per channel in Pillow's 32-bit float
mode, so no extra 8-bit rounding is added to dark frames, then clipped to [0, 1]. Without
``size`` each frame is centre-cropped to the largest multiple of 16 that fits; frames of
different sizes then cannot share one array, which is an error that asks for ``size``.

Memory: 300 frames of 1920x1088 are 7.5 GB of float32; a request over ``max_bytes`` is refused
with a message that suggests ``size`` (calibration ranges do not need full resolution; the
network is fully convolutional, except for the attention's token count).

``split_holdout`` cuts off a brightness-stratified part for the INT8 budget check,
``brightened_copies`` makes the brighter exposures of dark frames that INT8 calibrates on too, and
``synthetic_calibration_frames`` makes dark procedural scenes for when the caller has no data.
No torch here (sllen.calib runs on machines without it).
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sllen.runtime.errors import InputError, install_hint
from sllen.runtime.images import IMAGE_SUFFIXES, REC709_LUMA, ImageError, read_image
from sllen.runtime.inputs import VIDEO_SUFFIXES, is_video, media_in
from sllen.runtime.shapes import MULTIPLE

__all__ = [
    "OVERSAMPLE",
    "VIDEO_SUFFIXES",
    "brightened_copies",
    "load_calibration_frames",
    "mean_luma",
    "resize_cover",
    "split_holdout",
    "stratified_choice",
    "synthetic_calibration_frames",
    "synthetic_pairs",
]

OVERSAMPLE = 3  # candidates considered per frame kept (more: better strata, slower loading)
DEFAULT_MAX_BYTES = 4 * 2**30
_SEEK_BELOW = 1.0 / 8.0  # seek per frame when the wanted frames are sparser than this


# ---------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class _Candidate:
    path: Path
    index: int | None = None  # video frame index; None for an image file
    total: int = 0  # frames in that video


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _expand(source: str | os.PathLike[str]) -> list[Path]:
    """The files one source names (images and videos)."""
    text = os.fspath(source)
    if any(ch in text for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        files = [p for p in matches if p.is_file() and (_is_image(p) or is_video(p))]
        if not files:
            raise InputError(f"{text}: the pattern matches no image or video files")
        return files
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():  # its images and videos (camera footage), not subfolders
        # sllen-run's listing: hidden files ("._name" resource forks) skipped, others named
        if media := media_in(path):
            return media
        # A paired dataset (LOL, sllen samples: low/ + high/): its dark inputs are what a
        # deployment sees, as sllen-eval --data takes the same folder.
        low = path / "low"
        if low.is_dir() and (media := media_in(low)):
            return media
        raise InputError(
            f"{path}: folder has no images or videos of its own (subfolders are not searched: "
            f"name one, or a pattern such as '{path / '**' / '*.jpg'}')"
        )
    return [path]


def _video_frame_count(path: Path) -> int:
    """Frames in the first video stream: the header's count, else counted packets."""
    import av  # PyAV: optional (the `video` extra); imported only when a video is given

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream in this file")
            stream = container.streams.video[0]
            if stream.frames and stream.frames > 0:
                return int(stream.frames)
            return sum(1 for p in container.demux(stream) if p.size > 0)
    except av.FFmpegError as err:
        what = "a video" if is_video(path) else "an image file or a video"
        raise InputError(f"{path}: not {what} PyAV can decode ({_one_line(err)})") from None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _even_pick(n: int, k: int) -> np.ndarray:
    """k distinct indices in range(n), evenly spread (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64))


def _spread(limit: int, sizes: Sequence[int]) -> list[int]:
    """How many of ``limit`` candidates each source gives: equal shares, where a source with
    fewer frames gives all it has and the rest goes to the others; at least one each."""
    take = [0] * len(sizes)
    left = limit
    for n, i in enumerate(sorted(range(len(sizes)), key=lambda j: sizes[j])):
        take[i] = max(1, min(sizes[i], max(0, left) // (len(sizes) - n)))
        left -= take[i]
    return take


def _candidates(files: Sequence[Path], limit: int, rng: np.random.Generator) -> list[_Candidate]:
    """At most ``limit`` candidates, spread over the sources (each video, and the images
    together): a long clip does not crowd out a short one from another camera or scene;
    videos give evenly spaced frames."""
    # Anything that is not an image file is handed to PyAV (it knows more containers than
    # any suffix list); glob patterns only pick known image and video suffixes.
    videos = {p: _video_frame_count(p) for p in files if not _is_image(p)}
    images = [p for p in files if p not in videos]
    if len(images) + sum(videos.values()) == 0:
        raise InputError("the calibration sources hold no frames")
    sizes = ([len(images)] if images else []) + list(videos.values())
    take = _spread(limit, sizes)
    out: list[_Candidate] = []
    if images:
        keep = np.sort(rng.permutation(len(images))[: take.pop(0)])
        out += [_Candidate(images[i]) for i in keep]
    for (path, total), k in zip(videos.items(), take, strict=True):
        out += [_Candidate(path, int(i), total) for i in _even_pick(total, k)]
    return out


# ---------------------------------------------------------------------------- decoding


def _decode_video(
    path: Path, indices: Sequence[int], total: int, prepare: _Prepare
) -> dict[int, np.ndarray]:
    """Frames ``indices`` of ``path``, each passed through ``prepare`` as it is decoded."""
    import av

    wanted = sorted(set(int(i) for i in indices))
    frames: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            seekable = (
                len(wanted) < _SEEK_BELOW * total
                and stream.time_base is not None
                and _duration_s(container, stream) > 0
            )
            if seekable:
                frames = _decode_by_seeking(container, stream, wanted, total, prepare, path)
            if len(frames) < len(wanted):  # sequential decode-and-skip (or seek fallback)
                container.seek(0)
                want = set(wanted) - set(frames)
                for i, frame in enumerate(container.decode(stream)):
                    if i in want:
                        frames[i] = prepare(_frame_to_float(frame), f"{path} frame {i}")
                        want.discard(i)
                        if not want:
                            break
                # Header counts can overstate: map missing tail indices to the last frame.
                if want and frames:
                    last = frames[max(frames)]
                    frames.update(dict.fromkeys(want, last))
    except av.FFmpegError as err:
        raise InputError(f"{path}: not a video PyAV can decode ({_one_line(err)})") from None
    if not frames:
        raise InputError(f"{path}: no frame could be decoded")
    return frames


def _duration_s(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000.0
    return 0.0


def _decode_by_seeking(
    container, stream, wanted: list[int], total: int, prepare: _Prepare, path: Path
) -> dict[int, np.ndarray]:
    """Seek to each wanted frame's time (frame i sits at (i + 0.5) / total of the duration)."""
    duration = _duration_s(container, stream)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    frames: dict[int, np.ndarray] = {}
    for i in wanted:
        t = start + duration * i / total
        container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is None or frame.time + 0.5 * duration / total >= t:
                break
        if last is not None:
            frames[i] = prepare(_frame_to_float(last), f"{path} frame {i}")
    return frames


def _frame_to_float(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0


# ---------------------------------------------------------------------------- geometry


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2:
        raise InputError(f"size must be (H, W), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0 or h % MULTIPLE or w % MULTIPLE:
        raise InputError(f"size must be positive multiples of {MULTIPLE}, got {h}x{w}")
    return h, w


def resize_cover(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a float image (HxWx3) so it covers ``size`` (aspect kept), then centre-crop.

    Pillow BICUBIC per channel in mode "F" (32-bit float), clipped to [0, 1].
    """
    th, tw = size
    h, w = img.shape[:2]
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    if (nh, nw) != (h, w):
        channels = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(img[:, :, c], dtype=np.float32), mode="F")
                .resize((nw, nh), Image.Resampling.BICUBIC)
            )
            for c in range(3)
        ]  # fmt: skip
        img = np.clip(np.stack(channels, axis=2), 0.0, 1.0)
    return _center_crop(img, th, tw)


def _center_crop(img: np.ndarray, th: int, tw: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - th) // 2, (w - tw) // 2
    return img[y : y + th, x : x + tw]


def _crop_to_multiple(img: np.ndarray, where: str) -> np.ndarray:
    h, w = img.shape[:2]
    th, tw = h - h % MULTIPLE, w - w % MULTIPLE
    if th == 0 or tw == 0:
        raise InputError(f"{where}: {h}x{w} is smaller than {MULTIPLE}x{MULTIPLE}")
    return _center_crop(img, th, tw)


# ---------------------------------------------------------------------------- selection


def mean_luma(frames: np.ndarray) -> np.ndarray:
    """Mean Rec. 709 luma of each frame of an (N, 3, H, W) array (values as stored)."""
    return np.array(
        [
            float(np.tensordot(REC709_LUMA, np.asarray(f, np.float32), axes=(0, 0)).mean())
            for f in frames
        ],
        dtype=np.float32,
    )


def stratified_choice(values: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` items: one at random from each of ``count`` quantile bins of
    ``values`` (ties broken by position), returned sorted. All indices when count >= len."""
    values = np.asarray(values)
    n = len(values)
    if count >= n:
        return np.arange(n)
    if count <= 0:
        raise InputError(f"count must be positive, got {count}")
    rng = np.random.default_rng(seed)
    order = np.argsort(values, kind="stable")
    picks = [b[rng.integers(len(b))] for b in np.array_split(order, count)]
    return np.sort(np.asarray(picks, dtype=np.int64))


# Below this many frames the ranges rest on too few scenes: a user with 3 photos is told so.
# (TensorRT's guide calibrates ImageNet classifiers on about 500 images; sllen's default is 300.)
FEW_FRAMES = 32


def few_frames_note(count: int) -> str | None:
    """A one-line warning when ``count`` calibration frames are too few to trust, else None."""
    if count >= FEW_FRAMES:
        return None
    return (
        f"only {count} calibration frame{'s' if count != 1 else ''}: INT8 ranges from so few "
        f"scenes may clip footage they did not show; give {FEW_FRAMES} or more (a folder or a "
        "video from the deployment camera; 300 are used by default)"
    )


def load_calibration_frames(
    sources: Iterable[str | os.PathLike[str]],
    count: int = 300,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Calibration frames from folders, image files, glob patterns and videos.

    Returns float32 ``(N, 3, H, W)`` in [0, 1] with N = min(count, frames available); see the
    module docstring for how frames are chosen and sized. ValueError (one line) for: no
    sources, a missing path, a folder without media, a pattern matching nothing, an
    undecodable image or video, mixed frame sizes without ``size``, too much memory.
    """
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not sources:
        raise InputError("no calibration sources given (folders, images, globs or videos)")
    if count <= 0:
        raise InputError(f"count must be positive, got {count}")
    target = _check_size(size) if size is not None else None
    files: list[Path] = []
    for source in sources:
        files += _expand(source)
    files = list(dict.fromkeys(files))  # a file named by two sources counts once
    rng = np.random.default_rng(seed)
    cands = _candidates(files, OVERSAMPLE * count, rng)
    prepare = _Prepare(target, len(cands), min(count, len(cands)), max_bytes)
    pool = np.stack(list(_load_all(cands, prepare))).transpose(0, 3, 1, 2)
    keep = stratified_choice(mean_luma(pool), count, seed)
    return np.ascontiguousarray(pool[keep], dtype=np.float32)


class _Prepare:
    """Size one decoded frame for the pool (float16: exact for 8-bit values, half the memory);
    checks the memory of the whole request on the first frame and equal sizes on the rest."""

    def __init__(self, target: tuple[int, int] | None, n_pool: int, n_out: int, max_bytes: int):
        self.target, self.n_pool, self.n_out, self.max_bytes = target, n_pool, n_out, max_bytes
        self.shape: tuple[int, ...] | None = None

    def __call__(self, img: np.ndarray, where: str) -> np.ndarray:
        img = resize_cover(img, self.target) if self.target else _crop_to_multiple(img, where)
        if self.shape is None:
            self.shape = img.shape
            pixels = int(np.prod(img.shape))
            need = self.n_pool * pixels * 2 + self.n_out * pixels * 4
            if need > self.max_bytes:
                raise InputError(
                    f"{self.n_out} frames of {img.shape[0]}x{img.shape[1]} (from "
                    f"{self.n_pool} candidates) need {need / 2**30:.1f} GiB, over the "
                    f"{self.max_bytes / 2**30:.1f} GiB limit: pass size=(H, W) or a smaller count"
                )
        elif img.shape != self.shape:
            raise InputError(
                f"{where}: frame size {img.shape[0]}x{img.shape[1]} differs from "
                f"{self.shape[0]}x{self.shape[1]}; pass size=(H, W) to resize all frames"
            )
        return img.astype(np.float16)


def _load_all(cands: list[_Candidate], prepare: _Prepare):
    """Yield every candidate, decoded and prepared, in order."""
    by_video: dict[Path, list[int]] = {}
    for c in cands:
        if c.index is not None:
            by_video.setdefault(c.path, []).append(c.index)
    decoded: dict[Path, dict[int, np.ndarray]] = {}
    for c in cands:
        if c.index is None:
            try:
                img = read_image(c.path)
            except ImageError as err:
                raise InputError(str(err)) from None
            yield prepare(img, str(c.path))
            continue
        if c.path not in decoded:
            decoded[c.path] = _decode_video(c.path, by_video[c.path], c.total, prepare)
        yield decoded[c.path].pop(c.index)


def split_holdout(
    frames: np.ndarray, fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(calibration, holdout)``: about ``fraction`` of the frames held back for budget checks.

    Stratified by mean luma like the selection: frames sorted by brightness are cut into groups
    of round(1 / fraction) and one frame of each group (at random, ``seed``) is held back, so the
    held-back part spans the brightness range too. Needs at least two frames; both parts are
    non-empty.
    """
    frames = np.asarray(frames)
    n = len(frames)
    if not 0.0 < fraction < 1.0:
        raise InputError(f"fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise InputError(f"need at least 2 frames to hold some back, got {n}")
    n_hold = min(n - 1, max(1, math.ceil(n * fraction)))
    hold = stratified_choice(mean_luma(frames), n_hold, seed)
    mask = np.zeros(n, dtype=bool)
    mask[hold] = True
    return frames[~mask], frames[mask]


# brightened_copies: a frame's BRIGHT_PERCENTILE-th value is scaled up to BRIGHT_TARGET.
BRIGHT_TARGET = 0.9
BRIGHT_PERCENTILE = 99.5
BRIGHT_MAX_GAIN = 8.0  # a near-black frame (a fade, a lens cap) is not blown up into noise


def brightened_copies(frames: np.ndarray) -> np.ndarray:
    """Each frame whose ``BRIGHT_PERCENTILE``-th value is below ``BRIGHT_TARGET``, scaled by one
    gain so that value reaches it (at most ``BRIGHT_MAX_GAIN``; clipped to [0, 1]); brighter
    frames are left out.

    Why: INT8 ranges cover only what the calibration frames produce, so a file calibrated on
    dark footage clips the same scenes shot brighter (the sample clip ends at 0.35 of full
    scale: inputs 2.3 stops under came out 3.3 dB worse). The copies extend every range towards
    what a brighter exposure of the same content produces, not just the input's.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if len(frames) == 0:
        return frames
    level = np.percentile(frames.reshape(len(frames), -1), BRIGHT_PERCENTILE, axis=1)
    dim = level < BRIGHT_TARGET
    gain = np.minimum(BRIGHT_TARGET / np.maximum(level[dim], 1e-6), BRIGHT_MAX_GAIN)
    return np.clip(frames[dim] * gain[:, None, None, None], 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------- synthetic


def synthetic_pairs(
    count: int, size: tuple[int, int] = (256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, reference)``, each (count, 3, H, W) float32: procedural scenes
    (``sllen.data.scenes.generate_scene``) darkened by ``sllen.data.synthesis.synthesize_low``
    with its default ranges (2 to 5.6 stops darker, sensor noise, uneven light)."""
    from sllen.data.scenes import generate_scene
    from sllen.data.synthesis import synthesize_low

    h, w = _check_size(size)
    if count <= 0:
        raise InputError(f"count must be positive, got {count}")
    rng = np.random.default_rng(seed)
    low = np.empty((count, 3, h, w), dtype=np.float32)
    ref = np.empty_like(low)
    for i in range(count):
        scene, _ = generate_scene(rng, h, w)
        dark, _ = synthesize_low(scene, rng)
        ref[i] = scene.transpose(2, 0, 1)
        low[i] = dark.transpose(2, 0, 1)
    return low, ref


def synthetic_calibration_frames(
    count: int = 300, size: tuple[int, int] = (256, 256), seed: int = 0
) -> np.ndarray:
    """Generated dark scenes, (count, 3, H, W) float32: the default when no data are given.

    Real footage from the deployment camera calibrates better; these only stand in for it.
    """
    return synthetic_pairs(count, size, seed)[0]


# Mean luma under which --eval-data is taken as dark footage (its references are then the FP32
# model's enhanced frames) rather than as well-lit pictures (which are their own references).
DARK_FOOTAGE_LUMA = 0.25
EVAL_COUNT = 8


def budget_eval_frames(
    sources: Sequence[str | os.PathLike[str]] | None,
    size: tuple[int, int] = (256, 256),
    count: int = EVAL_COUNT,
) -> tuple[np.ndarray, str, str]:
    """``(frames, references, description)`` of the second budget set, the images unlike the
    calibration frames that sllen.calib.int8 judges the budget on as well.

    ``sources`` (sllen-export --eval-data; anything load_calibration_frames takes): dark
    footage (median mean luma < DARK_FOOTAGE_LUMA) is judged with ``references="enhanced"``,
    brighter pictures with ``"frames"`` (they are their own ground truth, darkened by the
    synthesis). Without sources: the built-in evaluation photographs (sllen[eval]) where
    installed, else generated well-lit scenes.
    """
    if sources:
        frames = load_calibration_frames(sources, count, size)
        dark = float(np.median(mean_luma(frames))) < DARK_FOOTAGE_LUMA
        kind = "dark footage, references = FP32-enhanced" if dark else "well-lit pictures"
        names = ", ".join(str(s) for s in sources)
        # "8 frames" of a 15-image folder read as a miscount: say they are picked from it
        text = f"{names} ({len(frames)} frames spread over it, {kind})"
        return frames, "enhanced" if dark else "frames", text
    from sllen.evalset import load_photos

    try:
        photos, _notes = load_photos()
    except ValueError:  # none of the photo packages installed
        _low, ref = synthetic_pairs(count, size, seed=7)
        wanted = f"for photos: {install_hint('eval')}"
        return ref, "frames", f"{count} generated well-lit scenes ({wanted})"
    frames = np.stack(
        [resize_cover(img, size).transpose(2, 0, 1) for img in list(photos.values())[:count]]
    ).astype(np.float32)
    names = ", ".join(list(photos)[:count])
    return frames, "frames", f"built-in evaluation photographs ({names})"
