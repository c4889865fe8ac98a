"""What `sllen-run` does, as a library: inputs -> enhanced images and videos in a folder.

Images keep their names and formats; videos keep resolution, frame rate, timestamps, frame
count and audio. A video runs as three stages in threads joined by bounded queues (decode ->
enhance -> encode), so the slowest stage sets the pace and memory stays bounded. A bad file in
a folder run is reported and skipped; the run goes on and reports the failures at the end.
Nothing is written in place: every output is a temporary file renamed when complete.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.api import FrameEnhancer
from sllen.runtime.big_images import Say, announce
from sllen.runtime.enhancer import Enhancer, StageTimes
from sllen.runtime.errors import InputError, SllenError
from sllen.runtime.files import (
    check_writable,
    make_folder,
    remove_leftovers,
    removed_if_left_empty,
)
from sllen.runtime.images import check_output_size, read_picture, write_picture, write_rgb8
from sllen.runtime.inputs import already_done, is_video, output_folder, output_paths
from sllen.runtime.preprocess import beside, quarter_turns, to_float, to_uint8

QUEUE_FRAMES = 8  # frames buffered between stages: bounds memory at 4K too
FAST_PRESETS = {"libx264": "veryfast", "libx265": "veryfast"}
_X26X_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
)  # fmt: skip
ENCODER_PRESETS = {"libx264": _X26X_PRESETS, "libx265": _X26X_PRESETS}
MAX_CRF = {"libx264": 51, "libx265": 51}  # VP9 and others: 63

# Colours for the segmentation classes, cycled past 10 (the bundled model learnt 8 classes).
PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
     [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]],
    dtype=np.uint8,
)  # fmt: skip

ProgressFn = Callable[[str, int, int | None], None]  # (file name, frames done, total or None)


@dataclass
class RunOptions:
    output: Path = Path("enhanced")
    side_by_side: bool = False
    segmentation: bool = False
    codec: str = "libx264"
    crf: int | None = 18
    # x264/x265 speed preset. "veryfast" by default: on a CPU the encoder competes with the
    # model for cores, and medium (x264's own default) cost 2.6x the time per frame (8.8 vs
    # 3.4 ms at 320x240) for no smaller file at crf 18 on the sample clip.
    encoder_preset: str | None = None
    smooth: bool | None = None  # None: the default for video (see sllen.runtime.temporal)
    quality: int = 95  # JPEG/WebP/HEIC/AVIF quality of still images (--quality)
    # 4:2:0 plays everywhere (an odd size is padded by a pixel); yuv444p keeps the exact size
    pix_fmt: str = "yuv420p"
    # Resume an interrupted run: outputs already there are finished ones (every output is
    # published by an atomic rename), so their sources are skipped.
    skip_existing: bool = False

    def __post_init__(self) -> None:
        # Checked before a model loads; the encoder would refuse them only at the first video.
        if self.codec != "libx264":  # the default needs no PyAV import for photo runs
            from sllen.runtime.video.writer import check_encoder

            check_encoder(self.codec)
        if self.pix_fmt != "yuv420p":
            from sllen.runtime.video.writer import check_pix_fmt

            check_pix_fmt(self.codec, self.pix_fmt)
        if not 1 <= self.quality <= 100:
            raise InputError(f"--quality must be in 1..100, not {self.quality}")
        top = MAX_CRF.get(self.codec, 63)
        if self.crf is not None and not 0 <= self.crf <= top:
            raise InputError(f"--crf must be in 0..{top} for {self.codec}, not {self.crf}")
        presets = ENCODER_PRESETS.get(self.codec)
        if self.encoder_preset is not None and presets and self.encoder_preset not in presets:
            raise InputError(
                f"--encoder-preset must be one of {', '.join(presets)} for {self.codec}, "
                f"not {self.encoder_preset!r}"
            )


@dataclass
class FileResult:
    source: Path
    output: Path | None = None
    error: str | None = None
    skipped: bool = False  # skip_existing: the output was already there
    frames: int = 0
    seconds: float = 0.0
    times: StageTimes = field(default_factory=StageTimes)  # this file's seconds per stage
    smoothing: bool | None = None  # videos: temporal smoothing was on
    fps: float | None = None  # videos: the frame rate


@dataclass
class RunSummary:
    results: list[FileResult] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)
    wall: float = 0.0

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error]

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results)


def colorize(labels: np.ndarray) -> np.ndarray:
    return PALETTE[labels % len(PALETTE)]


def remove_leftovers_of(dst: Path) -> None:
    """A resumed file: the temporary files a killed run left for its outputs go first."""
    # a set: for an image both of its map's names are one
    for path in {dst, _seg_path(dst, ".png"), _seg_path(dst, dst.suffix)}:
        remove_leftovers(path)


def _seg_path(dst: Path, suffix: str) -> Path:
    return dst.with_name(f"{dst.stem}.segmentation{suffix}")


def segmentation_path(dst: Path) -> Path:
    """Where --segmentation writes the map of the output ``dst`` (a PNG beside an image)."""
    return _seg_path(dst, dst.suffix if is_video(dst) else ".png")


# --------------------------------------------------------------------------- images


def run_image(
    src: Path,
    dst: Path,
    enhancer: Enhancer,
    opts: RunOptions,
    progress: ProgressFn | None = None,
    notes: Say | None = None,
) -> FileResult:
    """``notes`` hears a line before a big photo runs on the CPU, and as its tiles finish
    (runtime/big_images.py): minutes without a sign of life looked hung."""
    before = dataclasses.replace(enhancer.times)
    t0 = time.perf_counter()
    pic = read_picture(src)
    h, w = pic.rgb.shape[:2]  # before inference: a 20000-pixel WebP failed only after it
    check_output_size(dst, w * (2 if opts.side_by_side else 1), h)
    t1 = time.perf_counter()
    _hook_tiles(src, w, h, enhancer, progress, notes)
    try:
        result = enhancer.enhance([pic.rgb])[0]
    finally:
        enhancer.on_tile = None
    t2 = time.perf_counter()
    rgb = np.concatenate([pic.rgb, result.image], axis=1) if opts.side_by_side else result.image
    # the map first: --resume takes the image's presence to mean the file is done
    if opts.segmentation and result.labels is not None:
        write_rgb8(segmentation_path(dst), colorize(result.labels))
    write_picture(dst, pic, rgb, quality=opts.quality)
    t3 = time.perf_counter()
    enhancer.times.decode += t1 - t0
    enhancer.times.encode += t3 - t2
    return FileResult(src, dst, frames=1, seconds=t3 - t0, times=enhancer.times.since(before))


def _hook_tiles(
    src: Path, w: int, h: int, enhancer: Enhancer, progress: ProgressFn | None, notes: Say | None
) -> None:
    """A photo too large to run whole: its tiles are the progress bar's steps, and a big one
    on the CPU is announced to ``notes`` (with lines as its tiles finish)."""
    device = enhancer.backend.info.device
    lines = announce(src.name, w, h, device, enhancer.tile_for(h, w), notes) if notes else None
    if progress is None and lines is None:
        return

    def on_tile(done: int, total: int) -> None:
        if progress is not None:
            progress(f"{src.name} (tiles)", done, total)
        if lines is not None:
            lines(done, total)

    enhancer.on_tile = on_tile


# --------------------------------------------------------------------------- video


class _Stop(Exception):
    """Raised inside a stage when another stage failed or the user interrupted."""


_END = object()


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
    raise _Stop


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    raise _Stop


def run_video(
    src: Path,
    dst: Path,
    enhancer: Enhancer,
    opts: RunOptions,
    progress: ProgressFn | None = None,
) -> FileResult:
    from sllen.runtime import video

    info = video.probe(src)
    clip = FrameEnhancer(enhancer, fps=info.fps, smooth=opts.smooth)  # what embedders use too
    smooth = clip.smoothing
    tall = opts.side_by_side and quarter_turns(info.rotation) % 2 == 1  # shown turned sideways
    wide = opts.side_by_side and not tall
    out_info = dataclasses.replace(info, width=info.width << wide, height=info.height << tall)
    times = StageTimes()
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
    encoded: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
    frames_written = [0]

    def decode() -> None:
        try:
            it: Iterator[Any] = iter(video.read_frames(src))
            while True:
                t = time.perf_counter()
                frame = next(it, None)
                times.decode += time.perf_counter() - t
                if frame is None:
                    break
                _put(decoded, frame, stop)
            _put(decoded, _END, stop)
        except _Stop:
            pass
        except BaseException as e:
            errors.append(e)
            stop.set()

    def encode() -> None:
        try:
            with (
                video.VideoWriter(
                    dst,
                    out_info,
                    codec=opts.codec,
                    crf=opts.crf,
                    preset=_preset(opts),
                    pix_fmt=opts.pix_fmt,
                    audio_from=src,
                ) as writer,
                _seg_writer(video, dst, info, opts) as seg_writer,
            ):
                while True:
                    item = _get(encoded, stop)
                    if item is _END:
                        break
                    frame, image, labels = item
                    t = time.perf_counter()
                    writer.write(image, frame.pts)
                    if seg_writer is not None and labels is not None:
                        seg_writer.write(colorize(labels), frame.pts)
                    times.encode += time.perf_counter() - t
                    frames_written[0] += 1
                    if progress:
                        progress(src.name, frames_written[0], info.frame_count)
        except _Stop:
            pass  # the writers' context managers removed their temporary files
        except BaseException as e:
            errors.append(e)
            stop.set()

    threads = [
        threading.Thread(target=f, name=f"sllen-{f.__name__}", daemon=True)
        for f in (decode, encode)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    before = dataclasses.replace(enhancer.times)
    try:
        pending: list[Any] = []
        done = False
        while not done:
            item = _get(decoded, stop)
            if item is _END:
                done = True
            else:
                pending.append(item)
            if pending and (done or len(pending) >= enhancer.batch):
                results = enhance_clip(
                    [f.image for f in pending], clip, opts.side_by_side, info.rotation
                )
                for frame, (image8, labels) in zip(pending, results, strict=True):
                    _put(encoded, (frame, image8, labels), stop)
                pending = []
        _put(encoded, _END, stop)
    except _Stop:
        pass  # a stage failed: its error is in `errors`
    except BaseException:  # Ctrl-C: stop both threads; the writer removes its temporary file
        stop.set()
        raise
    finally:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    if progress:  # the total, now known for a clip whose container did not state it
        progress(src.name, frames_written[0], frames_written[0])
    delta = enhancer.times.since(before)  # decode and encode were timed in their threads
    times.pre, times.infer, times.post = delta.pre, delta.infer, delta.post
    times.frames = frames_written[0]
    return FileResult(
        src,
        dst,
        frames=frames_written[0],
        seconds=time.perf_counter() - start,
        times=times,
        smoothing=smooth,
        fps=float(info.fps),
    )


def _seg_writer(video: Any, dst: Path, info: Any, opts: RunOptions) -> Any:
    from contextlib import nullcontext

    if not opts.segmentation:
        return nullcontext(None)
    return video.VideoWriter(
        segmentation_path(dst),
        info,
        codec=opts.codec,
        crf=opts.crf,
        preset=_preset(opts),
        pix_fmt=opts.pix_fmt,
    )


def _preset(opts: RunOptions) -> str | None:
    return opts.encoder_preset or FAST_PRESETS.get(opts.codec)


def enhance_clip(
    images: list[np.ndarray], clip: FrameEnhancer, side_by_side: bool, rotation: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """uint8 RGB frames of one clip, in order -> (uint8 result, labels or None) each, as they
    are ready: the step sllen-run's video and live paths share (to float, the model and the
    smoothing, input beside result as shown after `rotation`, rounding), with its time added to
    the stage times."""
    t0 = time.perf_counter()
    inputs = [to_float(image) for image in images]
    clip.times.pre += time.perf_counter() - t0
    for x, (image, labels) in zip(inputs, clip.enhance_float(inputs), strict=True):
        t = time.perf_counter()
        if side_by_side:
            image = beside(x, image, rotation)
        image8 = to_uint8(image)
        clip.times.post += time.perf_counter() - t
        yield image8, labels


# --------------------------------------------------------------------------- many files


def prepare_output(folder: Path) -> Path | None:
    """Create the output folder, or say in one line why it cannot be written. Returns the
    topmost folder created (None: it existed), for ``sllen.runtime.files.removed_if_left_empty``.
    """
    try:
        created = make_folder(folder)
    except OSError as e:
        raise OSError(f"{folder}: cannot create the output folder ({e.strerror or e})") from None
    with removed_if_left_empty(created):
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"{folder}: the output folder is not writable")
    return created


def run_one(
    src: Path,
    dst: Path,
    enhancer: Enhancer,
    opts: RunOptions,
    progress: ProgressFn | None = None,
    notes: Say | None = None,
) -> FileResult:
    """Enhance one image or video; a bad file becomes a FileResult with its error (a bug, any
    other exception, propagates and stops the run). Local and Ray runs both go through here.
    ``notes``: see run_image."""
    try:
        if is_video(src):
            return run_video(src, dst, enhancer, opts, progress)
        result = run_image(src, dst, enhancer, opts, progress, notes)
        if progress:
            progress(src.name, 1, 1)
        return result
    except (SllenError, OSError) as e:
        return FileResult(src, error=" ".join(str(e).split()))


def run_files(
    sources: list[Path],
    enhancer: Enhancer,
    opts: RunOptions,
    *,
    progress: ProgressFn | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    notes: Say | None = None,
) -> RunSummary:
    """Enhance every source into ``opts.output``; a failing file is recorded, not fatal.
    An output folder that cannot be written is refused before the first inference.
    ``notes``: see run_image."""
    outputs = output_paths(sources, opts.output, opts.codec)
    done = already_done(sources, outputs, opts.codec) if opts.skip_existing else set()
    prepare_output(output_folder(sources, opts.output))
    check_writable(dst for src, dst in outputs.items() if src not in done)
    summary = RunSummary()
    start = time.perf_counter()
    for src in sources:
        dst = outputs[src]
        if src in done:
            result = FileResult(src, dst, skipped=True)
            summary.results.append(result)
            if on_result:
                on_result(result)
            continue
        if opts.skip_existing:
            remove_leftovers_of(dst)
        result = run_one(src, dst, enhancer, opts, progress, notes)
        summary.times.add(result.times)
        summary.results.append(result)
        if on_result:
            on_result(result)
    summary.wall = time.perf_counter() - start
    return summary
