"""Reading: probe a video file, decode its frames to RGB with their timestamps."""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.video.common import (
    DEFAULT_FPS,
    Frame,
    VideoError,
    VideoInfo,
    VideoWarning,
    _av,
    _check_file,
    _interp,
    _open_input,
    _reason,
    pick_video_stream,
    sample_aspect,
    several_streams,
)


def _fps(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return DEFAULT_FPS


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe `path`'s video stream (the largest picture where there are several: see
    :func:`pick_video_stream`); decodes one frame to prove the file is usable.

    Raises FileNotFoundError for a missing file and :class:`VideoError` (one line naming the
    file) for anything that is not a decodable video: empty, text, audio only, no frame.
    """
    p = _check_file(path)
    av = _av()
    container = _open_input(p)
    try:
        stream, _ = pick_video_stream(container, p)
        audio = list(container.streams.audio)
        first = _first_frame(container, stream, p)
        cc = stream.codec_context
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        return VideoInfo(
            path=str(p),
            width=first.width,
            height=first.height,
            fps=_fps(stream),
            time_base=Fraction(stream.time_base),
            frame_count=stream.frames or None,
            duration=duration,
            codec=cc.name,
            pix_fmt=first.format.name,
            container=container.format.name,
            has_audio=bool(audio),
            audio_codec=audio[0].codec_context.name if audio else None,
            rotation=int(round(first.rotation or 0)),
            colorspace=int(first.colorspace or cc.colorspace or 2),
            color_range=int(first.color_range or cc.color_range or 0),
            color_primaries=int(first.color_primaries or 2),
            color_trc=int(first.color_trc or 2),
            start_pts=first.pts,
            # FFmpeg's guess: the container's ratio (mp4 pasp), else the bitstream's
            sample_aspect_ratio=sample_aspect(stream),
            metadata={str(k): str(v) for k, v in container.metadata.items()},
        )
    finally:
        container.close()


def _first_frame(container: Any, stream: Any, p: Path) -> Any:
    av = _av()
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except av.FFmpegError:
                continue  # a damaged packet: try the next one
    except av.FFmpegError as e:
        raise VideoError(f"{p}: no decodable video frame ({_reason(e)})") from None
    raise VideoError(f"{p}: no decodable video frame (empty or damaged video stream)")


class VideoReader:
    """An iterator over a video's frames (once); ``read_frames`` returns one. The file is
    opened on the first ``next`` and closed at the end, by ``close()`` or ``with``.

    After iteration: ``frames_read``, ``decode_errors`` (packets that failed to decode),
    ``truncated`` (decoding stopped before the end the container promised) and ``problem``
    (the line that was warned, or None).
    """

    def __init__(self, path: str | os.PathLike[str], *, strict: bool = False) -> None:
        self.info = probe(path)
        self.path = Path(path)
        self.strict = strict
        self.frames_read = 0
        self.decode_errors = 0
        self.truncated = False
        self.problem: str | None = None
        self._gen: Generator[Frame, None, None] | None = None
        self._expected_s: float | None = None

    def __iter__(self) -> VideoReader:
        return self

    def __next__(self) -> Frame:
        if self._gen is None:
            self._gen = self._frames()
        return next(self._gen)

    def close(self) -> None:
        """Stop early and close the file (also done at the end, or when garbage collected)."""
        if self._gen is not None:
            self._gen.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _frames(self) -> Generator[Frame, None, None]:
        av = _av()
        info, p = self.info, self.path
        container = _open_input(p)
        try:
            stream, others = pick_video_stream(container, p)
            if others:  # said here, not in probe: a run probes a file twice
                warnings.warn(several_streams(str(p), stream, others), VideoWarning, stacklevel=3)
            stream.thread_type = "AUTO"  # frame + slice threads: decoding keeps up with 4K
            # The video track's own duration (mp4 states it net of edit lists) is the best
            # measure of what should decode; containers without one are judged more loosely.
            if stream.duration and stream.time_base:
                self._expected_s = float(stream.duration * stream.time_base)
            first_pts: int | None = None
            last_pts: int | None = None
            stopped: str | None = None
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.FFmpegError as e:  # the container itself ends early or is damaged
                    stopped = _reason(e)
                    packet = None
                try:
                    # packet None flushes the decoder: frames it still holds come out.
                    decoded = packet.decode() if packet is not None else stream.decode(None)
                except av.FFmpegError as e:
                    self.decode_errors += 1
                    if self.strict:
                        raise VideoError(f"{p}: damaged video ({_reason(e)})") from None
                    decoded = []
                for frame in decoded:
                    pts = frame.pts
                    if pts is None or (last_pts is not None and pts <= last_pts):
                        # No or repeated timestamp (raw streams, broken muxers): one frame on.
                        base = last_pts if last_pts is not None else 0
                        pts = base + (info.frame_duration if last_pts is not None else 0)
                    last_pts = pts
                    if first_pts is None:
                        first_pts = pts
                    self.frames_read += 1
                    yield Frame(self.frames_read - 1, self._rgb(frame), pts, info.time_base)
                if stopped is not None:
                    break
        finally:
            container.close()
        span = end = None
        if first_pts is not None and last_pts is not None:
            span = float((last_pts - first_pts + info.frame_duration) * info.time_base)
            end = float((last_pts + info.frame_duration) * info.time_base)
        self._report(stopped, span, end)

    def _rgb(self, frame: Any) -> np.ndarray:
        info = self.info
        # Same size all through (a stream that changes resolution is scaled to the first);
        # the frame's own range tag matters (full-range yuv420p from phones).
        return frame.to_ndarray(
            format="rgb24",
            width=info.width,
            height=info.height,
            src_colorspace=info.matrix,
            src_color_range=frame.color_range or None,
            interpolation=_interp(decode=True),
        )

    def _report(self, stopped: str | None, span: float | None, end: float | None = None) -> None:
        p, count = self.path, self.info.frame_count
        if self.frames_read == 0:
            raise VideoError(f"{p}: no decodable video frame")
        # Short against the track's duration (a frame or two of slack), else the container's
        # (it may include a longer audio track: 1 s or 5% of slack), else the frame count.
        # Not the count first: an mp4 trimmed by an edit list holds more frames than it shows.
        seconds = self._expected_s or self.info.duration
        short = False
        if seconds is not None and span is not None:
            one = float(self.info.frame_duration * self.info.time_base)
            if not self._expected_s and end is not None and seconds - (end - span) > span / 2:
                # A container's duration may count from 0 while the first frame starts later
                # (an mkv cut from a longer recording at 10 s): what it states from there on.
                # (Where FFmpeg's duration already leaves the start out, this asks less.)
                seconds -= end - span
            slack = max(2 * one, 0.02 * seconds) if self._expected_s else max(1.0, 0.05 * seconds)
            short = span < seconds - slack
        elif count is not None:
            short = self.frames_read < count
        if stopped is None and not short and self.decode_errors == 0:
            return
        self.truncated = stopped is not None or short
        what = "truncated or damaged" if self.truncated else "damaged"
        of = f" of {count}" if count is not None and self.frames_read < count else ""
        detail = [f"{self.frames_read}{of} frames decoded"]
        if short and seconds is not None and span is not None:
            detail.append(f"{span:.2f} s of the {seconds:.2f} s the file states")
        if self.decode_errors:
            detail.append(f"{self.decode_errors} packets could not be decoded")
        if stopped:
            detail.append(f"reading stopped: {stopped}")
        self.problem = f"{p}: {what} video; {', '.join(detail)}"
        if self.strict:
            raise VideoError(self.problem)
        warnings.warn(self.problem, VideoWarning, stacklevel=3)


def read_frames(path: str | os.PathLike[str], *, strict: bool = False) -> VideoReader:
    """Iterate `path`'s frames as :class:`Frame` (uint8 RGB, pts, time base).

    Probes first (so a bad file fails here, before any work). A truncated or damaged file
    yields the frames that decode and then warns (:class:`VideoWarning`); ``strict=True``
    raises :class:`VideoError` instead. Zero decodable frames is always a VideoError.
    """
    return VideoReader(path, strict=strict)
