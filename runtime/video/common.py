"""What the video reader and writer share: errors, VideoInfo and Frame, PyAV access, checks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError, MissingFileError, install_hint

DEFAULT_FPS = Fraction(25)  # FFmpeg's own guess when a container states no rate

# AVColorSpace (what containers tag) -> the swscale matrix that converts it.
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020"}
_MATRIX_TAG = {"ITU709": 1, "ITU601": 6, "FCC": 4, "SMPTE240M": 7, "BT2020": 9}


class VideoError(InputError):
    """A file that is not a readable video or cannot be written; one line naming the file."""


class VideoWarning(UserWarning):
    """Something the user should hear about that still produced output (a truncated file)."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learned about a file's video stream (the largest picture; see
    :func:`pick_video_stream`), its audio and its container."""

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
    # Pixel shape (32/27: anamorphic 16:9 in 720x480); None for square or unknown pixels.
    sample_aspect_ratio: Fraction | None = None
    # The container's own tags as read (creation_time, location, make, ...); the writer
    # copies those the output muxer does not write itself.
    metadata: dict[str, str] = field(default_factory=dict, hash=False)

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
            f"video needs PyAV: {install_hint('video')} (or python -m pip install av)"
        ) from None
    return av


_SWS_BILINEAR, _SWS_FULL_CHR_H_INT, _SWS_ACCURATE_RND = 0x2, 0x2000, 0x40000  # swscale.h


def _interp(decode: bool) -> int:
    """swscale flags for RGB <-> YUV: its default fast path truncates instead of rounding and
    shifts chroma, which darkens a round trip by about one level (5% of a dark frame's mean).
    Accurate rounding (and full chroma interpolation when decoding) measured bias-free."""
    # libswscale's SWS_* bits as plain ints: PyAV passes an int through as the flags, while
    # its Interpolation enum names ACCURATE_RND and FULL_CHR_H_INT only from PyAV 18 (Python
    # 3.10, JetPack 6's, stops at PyAV 17.1)
    accurate = _SWS_BILINEAR | _SWS_ACCURATE_RND
    return accurate | _SWS_FULL_CHR_H_INT if decode else accurate


def sample_aspect(stream: Any) -> Fraction | None:
    """A stream's sample aspect ratio worth writing, as FFmpeg guesses it (the container's,
    mp4's pasp, else the bitstream's): None for unknown (0:1, None) and square (1:1)."""
    value = getattr(stream, "sample_aspect_ratio", None) or stream.codec_context.sample_aspect_ratio
    if not value:
        return None
    sar = Fraction(value)
    return None if sar <= 0 or sar == 1 else sar


def pick_video_stream(container: Any, p: str | os.PathLike[str]) -> tuple[Any, list[Any]]:
    """The video stream to enhance and the other video streams (left out).

    The largest picture (width x height), as FFmpeg's own default choice: a dashcam's or a
    phone's second track is often a small preview. Ties: the one marked default, else the
    first. Cover art (one attached picture) is not a video and is never picked.
    Every reader of a file (probe, the frames, a live source) calls this, so all agree.
    """
    av = _av()
    attached = av.stream.Disposition.attached_pic
    default = av.stream.Disposition.default
    videos = [s for s in container.streams.video if not (s.disposition & attached)]
    if not videos:
        kinds = sorted({s.type for s in container.streams}) or ["nothing"]
        raise VideoError(f"{p}: no video stream (the file holds {', '.join(kinds)})")
    # PyAV gives no codec context to a stream this FFmpeg cannot decode (AVS2, EVC, ...)
    usable = [s for s in videos if s.codec_context is not None]
    if not usable:
        raise VideoError(f"{p}: no video stream this FFmpeg can decode (its codec is unknown here)")

    def rank(s: Any) -> tuple[int, bool]:
        cc = s.codec_context
        return (cc.width or 0) * (cc.height or 0), bool(s.disposition & default)

    best = max(usable, key=rank)  # max keeps the first of equals
    return best, [s for s in videos if s is not best]


def several_streams(name: str, stream: Any, others: list[Any]) -> str:
    """The warning for a file or source with more video streams than the one enhanced."""
    return (
        f"{name}: {len(others) + 1} video streams; enhancing stream "
        f"{describe_streams([stream])}, leaving out {describe_streams(others)}"
    )


def describe_streams(streams: list[Any]) -> str:
    """'#0 (160x90), #2 (not decodable here)': video streams as a warning names them."""
    return ", ".join(
        f"#{s.index} ({s.codec_context.width}x{s.codec_context.height})"
        if s.codec_context is not None
        else f"#{s.index} (not decodable here)"
        for s in streams
    )


def _reason(e: BaseException) -> str:
    """The useful part of a PyAV/FFmpeg error, without the errno and file name repetition."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(text).strip().rstrip(".").splitlines()[0]


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{p}: no such file")
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
