"""Video files in and out with PyAV: probe, decode to RGB frames, encode with audio copied.

What a user gets (docs/video.md says the same at more length):

- Frames come out as uint8 HxWx3 RGB in the stream's coded orientation, with their
  presentation timestamps (``pts`` in the stream's ``time_base``). A rotation in the
  container's display matrix is reported by :func:`probe` and written back by
  :class:`VideoWriter`, so players show the output the way they showed the input.
- YUV <-> RGB uses the matrix the input is tagged with (BT.709 for untagged HD, BT.601 for
  untagged SD, as players assume), in both directions, and the output is tagged with it, so
  colours survive the round trip.
- A file that stops decoding part-way (cut off during a copy, a camera that lost power) keeps
  the frames that did decode: iteration ends early, a :class:`VideoWarning` says how many
  frames came out of how many the container promised, and ``reader.truncated`` is set
  (``strict=True`` raises :class:`VideoError` instead). A file with no decodable frame at all
  is an error.
- :class:`VideoWriter` writes a temporary file beside the target and renames it on a clean
  close; an exception or Ctrl-C deletes it, so no half-written video is ever left behind.
  Timestamps, frame count, frame rate and size are kept; audio is copied packet for packet
  (re-encoded only when the output container cannot hold the input's audio codec). 4:2:0 and
  4:2:2 need even sizes: an odd width or height is padded by one replicated pixel column/row.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from sllen.runtime.files import umask

log = logging.getLogger(__name__)

DEFAULT_FPS = Fraction(25)  # FFmpeg's own guess when a container states no rate

# AVColorSpace (what containers tag) -> the swscale matrix that converts it.
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020"}
_MATRIX_TAG = {"ITU709": 1, "ITU601": 6, "FCC": 4, "SMPTE240M": 7, "BT2020": 9}
_AVCOL_RANGE_MPEG = 1
# Encoders whose rate control is a constant-quality "crf" option.
_CRF_CODECS = ("libx264", "libx264rgb", "libx265", "libvpx-vp9", "libvpx", "libsvtav1")
# Codecs / containers that need a constant-rate time base (1/fps) instead of the input's.
_CFR_CODECS = ("mpeg4", "msmpeg4", "msmpeg4v2", "mpeg1video", "mpeg2video", "h263", "mjpeg")
_CFR_FORMATS = ("avi",)
_QSCALE_CODECS = ("mpeg4", "msmpeg4", "msmpeg4v2", "mpeg1video", "mpeg2video", "mjpeg", "h263")
_FF_QP2LAMBDA = 118
_HARDWARE = ("_nvenc", "_amf", "_qsv", "_vaapi", "_v4l2m2m", "_videotoolbox", "_mf", "_vulkan")
_FALLBACK_ENCODERS = ("libx264", "libopenh264", "libx265", "libvpx-vp9", "libsvtav1", "mpeg4")


class VideoError(ValueError):
    """A file that is not a readable video or cannot be written; one line naming the file."""


class VideoWarning(UserWarning):
    """Something the user should hear about that still produced output (a truncated file)."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learned about a file's first video stream (and its audio)."""

    path: str
    width: int
    height: int
    fps: Fraction  # average frame rate (guessed, else 25, when the container does not say)
    time_base: Fraction  # unit of Frame.pts
    frame_count: int | None  # as the container states it; None when it does not
    duration: float | None  # seconds
    codec: str
    pix_fmt: str | None
    container: str  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
    has_audio: bool = False
    audio_codec: str | None = None
    rotation: int = 0  # degrees counter-clockwise, from the display matrix (0 when none)
    colorspace: int = 0  # AVColorSpace of the stream (0 = RGB, 2 = unspecified)
    color_range: int = 0  # AVColorRange (1 = limited/MPEG, 2 = full/JPEG, 0 = unspecified)
    color_primaries: int = 2
    color_trc: int = 2
    start_pts: int | None = None  # pts of the first decoded frame

    @property
    def matrix(self) -> str:
        """The YUV<->RGB matrix used for this video, read and write alike."""
        return _MATRIX.get(self.colorspace, "ITU709" if self.height >= 720 else "ITU601")

    @property
    def frame_duration(self) -> int:
        """One frame at `fps`, in `time_base` units (at least 1)."""
        return max(1, round(1 / (self.fps * self.time_base)))


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based decode order of output frames (presentation order)
    image: np.ndarray  # uint8 HxWx3 RGB, C-contiguous
    pts: int  # in time_base units
    time_base: Fraction

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


def _av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - av is in the video extra
        raise VideoError(
            "video needs PyAV: pip install 'sllen[video]' (or pip install av)"
        ) from None
    return av


def _interp(decode: bool) -> Any:
    """swscale flags for RGB <-> YUV: its default fast path truncates instead of rounding and
    shifts chroma, which darkens a round trip by about one level (5% of a dark frame's mean).
    Accurate rounding (and full chroma interpolation when decoding) measured bias-free."""
    flags = _av().video.reformatter.Interpolation
    accurate = flags.BILINEAR | flags.ACCURATE_RND
    return accurate | flags.FULL_CHR_H_INT if decode else accurate


def _reason(e: BaseException) -> str:
    """The useful part of a PyAV/FFmpeg error, without the errno and file name repetition."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(text).strip().rstrip(".").splitlines()[0]


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise VideoError(f"{p}: is a folder, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: empty file (0 bytes), not a video")
    return p


def _open_input(p: Path) -> Any:
    av = _av()
    try:
        return av.open(str(p), mode="r")
    except av.FFmpegError as e:
        raise VideoError(f"{p}: not a readable video ({_reason(e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VideoError(f"{p}: cannot open ({_reason(e)})") from None


def _video_stream(container: Any, p: Path) -> Any:
    av = _av()
    attached = av.stream.Disposition.attached_pic
    for stream in container.streams.video:
        # Cover art in a music file is a one-picture "video" stream: not a video.
        if not (stream.disposition & attached):
            return stream
    kinds = sorted({s.type for s in container.streams}) or ["nothing"]
    raise VideoError(f"{p}: no video stream (the file holds {', '.join(kinds)})")


def _fps(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return DEFAULT_FPS


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe `path`'s first video stream; decodes one frame to prove the file is usable.

    Raises FileNotFoundError for a missing file and :class:`VideoError` (one line naming the
    file) for anything that is not a decodable video: empty, text, audio only, no frame.
    """
    p = _check_file(path)
    av = _av()
    container = _open_input(p)
    try:
        stream = _video_stream(container, p)
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
            stream = _video_stream(container, p)
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
        span = None
        if first_pts is not None and last_pts is not None:
            span = float((last_pts - first_pts + info.frame_duration) * info.time_base)
        self._report(stopped, span)

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

    def _report(self, stopped: str | None, span: float | None) -> None:
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


# ----------------------------------------------------------------------------- writing


def _encoder(codec: str | None, container: Any) -> str:
    """The encoder to use: the one asked for, else the container's default in software
    (libx264 for mp4/mkv/mov, libvpx-vp9 for webm, mpeg4 for avi); when that is missing from
    the PyAV build, the first of a few common ones the container takes, with a warning."""
    av = _av()
    wanted = codec or container.default_video_codec
    try:
        name = str(av.Codec(wanted, "w").name)
    except (av.FFmpegError, ValueError):
        name = None
    # A hardware encoder (h264_nvenc, ...) only when asked for: it fails without its device.
    if name is not None and (codec is not None or not name.endswith(_HARDWARE)):
        return name
    if codec is not None and codec not in ("libx264", "h264"):
        raise VideoError(f"this PyAV build has no {codec!r} video encoder")
    for fallback in _FALLBACK_ENCODERS:
        if fallback in container.supported_codecs and fallback in av.codecs_available:
            try:
                av.Codec(fallback, "w")
            except (av.FFmpegError, ValueError):
                continue
            log.warning("this PyAV build has no %s encoder; writing %s", wanted, fallback)
            return fallback
    raise VideoError(f"this PyAV build has no video encoder for {container.format.name}")


def _subsampling(pix_fmt: str) -> tuple[int, int]:
    """Horizontal and vertical chroma subsampling factors (2, 2 for yuv420p)."""
    fmt = _av().VideoFormat(pix_fmt)
    return 64 // max(1, fmt.chroma_width(64)), 64 // max(1, fmt.chroma_height(64))


class VideoWriter:
    """Encode RGB frames to `path` (container from the suffix), optionally copying audio.

    ``with VideoWriter(out, info, audio_from=src) as w: w.write(image, pts)``. The size comes
    from the first frame (side-by-side output just writes wider frames); later frames must
    match. ``pts`` is in ``info.time_base`` (a Frame's pts as read); None continues at
    ``info.fps``. Quality: ``crf`` for encoders with a constant-quality mode (x264, x265,
    VP9, SVT-AV1), else ``bitrate`` (bits/s; default about 0.25 bit per pixel per frame).
    ``options`` go to the encoder as they are (e.g. {"tune": "film"}).

    Writes to a hidden temporary file beside `path` and renames it on a clean close; on an
    exception (Ctrl-C included) the temporary file is deleted and nothing is left.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: VideoInfo,
        *,
        codec: str | None = None,
        crf: int | None = 18,
        preset: str | None = None,
        bitrate: int | None = None,
        pix_fmt: str = "yuv420p",
        audio_from: str | os.PathLike[str] | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = info
        self.codec_request = codec
        self.crf, self.preset, self.bitrate = crf, preset, bitrate
        self.pix_fmt = pix_fmt
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.options = dict(options or {})
        self.codec: str | None = None  # the encoder actually used, once started
        self.width = self.height = 0  # encoded size (after padding), once started
        self.padded = (0, 0)  # columns, rows added to reach the even size 4:2:0 needs
        self.frames_written = 0
        self._tmp: Path | None = None
        self._out: Any = None
        self._stream: Any = None
        self._audio: _AudioCopy | None = None
        self._in_size: tuple[int, int] | None = None
        self._last_pts: int | None = None
        self._closed = False
        if self.path.suffix == "":
            raise VideoError(f"{self.path}: give the output a suffix (.mp4, .mkv, .mov, .webm)")
        if self.audio_from is not None:
            _check_file(self.audio_from)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.stem}.tmp-", suffix=self.path.suffix, dir=self.path.parent
            )
        except OSError as e:
            raise VideoError(f"{self.path}: cannot write ({e.strerror or e})") from None
        os.close(fd)
        self._tmp = Path(tmp)
        av = _av()
        try:
            self._out = av.open(str(self._tmp), mode="w")
        except (av.FFmpegError, ValueError) as e:
            self._discard()
            raise VideoError(f"{self.path}: cannot write this container ({_reason(e)})") from None

    # -- setup, on the first frame ------------------------------------------------------

    def _start(self, h: int, w: int) -> None:
        av, info, out = _av(), self.info, self._out
        self.codec = _encoder(self.codec_request, out)
        if self.codec not in out.supported_codecs and self.codec_request is not None:
            raise VideoError(
                f"{self.path}: the {out.format.name} container cannot hold {self.codec}; "
                "pick another suffix (.mkv holds almost anything) or codec"
            )
        encoder = av.Codec(self.codec, "w")
        formats = [f.name for f in encoder.video_formats or []]
        if formats and self.pix_fmt not in formats:
            log.warning("%s cannot encode %s; using %s", self.codec, self.pix_fmt, formats[0])
            self.pix_fmt = formats[0]
        sx, sy = _subsampling(self.pix_fmt)
        self._in_size = (h, w)
        self.padded = ((-w) % sx, (-h) % sy)
        self.width, self.height = w + self.padded[0], h + self.padded[1]
        if any(self.padded):
            log.warning(
                "%s: %dx%d is not a multiple of the %s chroma grid; padding to %dx%d by "
                "repeating the last column/row (pix_fmt='yuv444p' keeps the exact size)",
                self.path, w, h, self.pix_fmt, self.width, self.height,
            )  # fmt: skip
        # Constant-rate codecs/containers count in frames; everything else keeps the input's
        # time base so variable frame rates and the exact timestamps survive.
        cfr = self.codec in _CFR_CODECS or out.format.name in _CFR_FORMATS
        self._tb = Fraction(1) / info.fps if cfr else info.time_base
        stream = out.add_stream(self.codec, rate=info.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.pix_fmt
        stream.time_base = self._tb
        stream.codec_context.time_base = self._tb
        self._yuv = not av.VideoFormat(self.pix_fmt).is_rgb
        if self._yuv:
            stream.codec_context.colorspace = _MATRIX_TAG[info.matrix]
            stream.codec_context.color_range = _AVCOL_RANGE_MPEG
            stream.codec_context.color_primaries = info.color_primaries
            stream.codec_context.color_trc = info.color_trc
        stream.options = self._encoder_options(encoder)
        if self.bitrate is not None:
            stream.codec_context.bit_rate = self.bitrate
        elif self.codec in _QSCALE_CODECS:
            # Fixed quantiser 3 (ffmpeg -q:v 3): constant quality, the MPEG codecs' "crf".
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = 3 * _FF_QP2LAMBDA
        elif not self._uses_crf(encoder):
            stream.codec_context.bit_rate = self._default_bitrate()
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        self._stream = stream
        if self.audio_from is not None:
            self._audio = _AudioCopy(self.audio_from, out, self.path)
        if out.format.name in ("mov,mp4,m4a,3gp,3g2,mj2", "mp4", "mov"):
            # moov first: plays while downloading, and a cut-off copy still plays its start.
            out.container_options["movflags"] = "+faststart"

    def _uses_crf(self, encoder: Any) -> bool:
        return self.crf is not None and self.bitrate is None and encoder.name in _CRF_CODECS

    def _encoder_options(self, encoder: Any) -> dict[str, str]:
        opts: dict[str, str] = {}
        name = encoder.name
        if self._uses_crf(encoder):
            opts["crf"] = str(self.crf)
            if name in ("libvpx-vp9", "libvpx"):
                opts["b"] = "0"  # constant quality, not constrained quality
        if name in ("libvpx-vp9", "libvpx"):
            # libvpx's default (good, cpu-used 0/1) is several times slower than x264 medium.
            opts.update({"deadline": "good", "cpu-used": self.preset or "4", "row-mt": "1"})
        elif self.preset is not None:
            opts["preset"] = self.preset
        if name == "libx265":
            opts["x265-params"] = "log-level=error"  # x265 prints a banner per file otherwise
        opts.update(self.options)
        return opts

    def _default_bitrate(self) -> int:
        return int(0.25 * self.width * self.height * float(self.info.fps))

    # -- writing ------------------------------------------------------------------------

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode one uint8 HxWx3 RGB frame shown at `pts` (``info.time_base`` units)."""
        if self._closed:
            raise RuntimeError(f"{self.path}: the writer is closed")
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
            got = getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"VideoWriter.write takes uint8 HxWx3 RGB, got {got}")
        if image.shape[2] != 3:
            raise ValueError(f"VideoWriter.write takes 3 channels (RGB), got {image.shape[2]}")
        h, w = image.shape[:2]
        if self._stream is None:
            self._start(h, w)
        elif (h, w) != self._in_size:
            raise ValueError(f"frame size {w}x{h} differs from the first frame's {self._in_size}")
        av = _av()
        if any(self.padded):
            image = np.pad(image, ((0, self.padded[1]), (0, self.padded[0]), (0, 0)), "edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if self._yuv:
            frame = frame.reformat(
                format=self.pix_fmt,
                dst_colorspace=self.info.matrix,
                dst_color_range="MPEG",
                interpolation=_interp(decode=False),
            )
        frame.pts = self._next_pts(pts)
        frame.time_base = self._tb
        try:
            packets = self._stream.encode(frame)
            self._out.mux(packets)
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: encoding failed ({_reason(e)})") from None
        self.frames_written += 1
        if self._audio is not None:
            # Audio up to a little past this frame: packets reach the muxer near their video.
            self._audio.copy_until(float(frame.pts * self._tb) + 0.5)

    def _next_pts(self, pts: int | None) -> int:
        if pts is None:
            start = self.info.start_pts or 0
            t = start * self.info.time_base + self.frames_written / self.info.fps
        else:
            t = pts * self.info.time_base
        out = round(t / self._tb)
        if self._last_pts is not None and out <= self._last_pts:
            out = self._last_pts + 1  # encoders refuse repeated timestamps
        self._last_pts = out
        return out

    # -- closing ------------------------------------------------------------------------

    def close(self) -> Path:
        """Flush, finish the file and move it into place; returns the final path."""
        if self._closed:
            return self.path
        av = _av()
        try:
            if self._stream is None:
                raise VideoError(f"{self.path}: no frames were written")
            try:
                self._out.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.copy_until(math.inf)
                self._out.close()
            except av.FFmpegError as e:
                raise VideoError(f"{self.path}: could not finish the file ({_reason(e)})") from None
            assert self._tmp is not None
            os.chmod(self._tmp, 0o666 & ~umask())
            os.replace(self._tmp, self.path)
        except BaseException:
            self._discard()
            raise
        self._tmp = None
        self._finish()
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target path is left untouched."""
        self._discard()

    def _finish(self) -> None:
        self._closed = True
        if self._audio is not None:
            self._audio.close()
            self._audio = None

    def _discard(self) -> None:
        if self._out is not None and not self._closed:
            try:
                self._out.close()
            except Exception:  # noqa: BLE001 - the file is deleted anyway
                pass
        self._finish()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    def __del__(self) -> None:
        # A writer dropped without close (a crashed thread): leave no temporary file.
        if getattr(self, "_tmp", None) is not None:
            self._discard()


class _AudioCopy:
    """Moves the audio streams of a source file into the output as the video advances.

    Packets are copied untouched when the output container accepts the codec; otherwise they
    are decoded and re-encoded with the container's default audio codec (AAC into .webm
    becomes Opus), because dropping the sound silently is worse than a transcode.
    """

    def __init__(self, source: Path, out: Any, target: Path) -> None:
        av = _av()
        self.source = source
        self._in = _open_input(source)
        self._map: dict[int, tuple[Any, bool]] = {}  # input index -> (output stream, copy?)
        for s in self._in.streams.audio:
            name = s.codec_context.name
            if name in out.supported_codecs:
                self._map[s.index] = (out.add_stream_from_template(s), True)
                continue
            enc = out.default_audio_codec
            if not enc or enc == "none":
                log.warning("%s: %s holds no audio; sound dropped", target, out.format.name)
                continue
            o = out.add_stream(enc, rate=_opus_rate(enc, s.rate))
            o.codec_context.layout = "stereo" if s.layout.nb_channels >= 2 else "mono"
            log.warning("%s: %s cannot hold %s audio; re-encoding it as %s",
                        target, out.format.name, name, o.codec_context.name)  # fmt: skip
            self._map[s.index] = (o, False)
        self._out = out
        streams = [self._in.streams[i] for i in self._map]
        self._packets = self._in.demux(streams) if streams else iter(())
        self._pending: Any = None
        self._done = not streams
        self._av = av

    def copy_until(self, seconds: float) -> None:
        av = self._av
        while not self._done:
            packet = self._pending
            if packet is None:
                try:
                    packet = next(self._packets)
                except (StopIteration, av.FFmpegError):  # end (or a damaged tail) of audio
                    self._flush()
                    return
            if packet.dts is None:  # demux's flush packet
                self._pending = None
                continue
            if packet.time_base is not None and float(packet.dts * packet.time_base) > seconds:
                self._pending = packet  # not yet: keep it for a later frame
                return
            self._pending = None
            out_stream, copy = self._map[packet.stream.index]
            if copy:
                packet.stream = out_stream
                self._out.mux(packet)
            else:
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in frames:
                    frame.pts = None  # the encoder's resampler numbers the samples itself
                    self._out.mux(out_stream.encode(frame))

    def _flush(self) -> None:
        self._done = True
        for out_stream, copy in self._map.values():
            if not copy:
                self._out.mux(out_stream.encode(None))

    def close(self) -> None:
        self._in.close()


def _opus_rate(encoder: str, rate: int) -> int:
    # Opus runs at 48 kHz (and a few lower rates); everything else keeps the source rate.
    return 48000 if "opus" in encoder else rate
