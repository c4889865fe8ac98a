"""Live sources: network streams and cameras read through PyAV, with reconnection.

A live source differs from a file in three ways this module handles:

- It never ends on its own and may stall: every read has a timeout (PyAV's interrupt
  callback), so a dead camera is noticed in ``timeout`` seconds instead of hanging forever.
- It drops: a lost connection is reopened with exponential backoff, ``reconnect`` times in a
  row at most, each attempt said on one line (a :class:`VideoWarning`); a frame that arrives
  resets the count.
- Its timestamps restart: after a reconnect (or a camera's pts wrap) the output timeline goes
  on from where it was, shifted by the wall-clock gap, so the written video stays monotonic.

Frames come out with the time they left the decoder (``captured``, ``time.monotonic``): the
start of the capture-to-output latency ``sllen-run`` reports. The decoder runs with slice
threads only, since frame threads would hold back several frames.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError
from sllen.runtime.video.common import (
    _MATRIX,
    DEFAULT_FPS,
    VideoError,
    VideoWarning,
    _av,
    _interp,
    _reason,
    pick_video_stream,
    sample_aspect,
    several_streams,
)

# URL schemes read as live streams (FFmpeg protocols; srt needs a PyAV built with libsrt).
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp", "http", "https")
# Stream outputs -> the muxer FFmpeg needs for them.
OUTPUT_FORMATS = {
    "udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp_mpegts",
    "rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "flv", "rtmps": "flv",
}  # fmt: skip
_DEVICE = re.compile(r"^/dev/video\d+$")
# An http(s) URL ending in one of these, with a duration when opened or a length its server
# states, is a file, not a stream.
FILE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv")
_MP4S = (".mp4", ".m4v", ".mov")  # their index may sit at the end: read over http, it is sought
TIME_BASE = Fraction(1, 90000)  # MPEG's clock: exact for every common frame rate
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds before reconnect attempts 1, 2, 3, ...


def scheme(source: str) -> str | None:
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", source)
    return match.group(1).lower() if match else None


def is_device(source: str) -> bool:
    return bool(_DEVICE.match(source))


def is_live(source: str) -> bool:
    """A stream URL or a V4L2 camera (``/dev/videoN``), not a file."""
    return scheme(source) in LIVE_SCHEMES or is_device(source)


def is_stream_output(target: str) -> bool:
    return scheme(target) in OUTPUT_FORMATS


def redact(url: str) -> str:
    """The URL without its password (rtsp://user:secret@cam -> rtsp://user:***@cam)."""
    # up to the authority's last "@": a password may hold a raw "@" (user:p@ss@cam)
    return re.sub(r"^([a-z0-9+.-]+://[^:/@]+):[^/]*@", r"\1:***@", url, flags=re.IGNORECASE)


def input_options(source: str) -> dict[str, str]:
    """FFmpeg options that make a live source start fast and stay low-latency. Not
    ``fflags=nobuffer``: it discards the packets read while probing, and with them the
    first keyframe's parameter sets, so nothing decodes until the next keyframe (seconds)."""
    opts = {"analyzeduration": "1000000", "probesize": "1000000"}
    kind = scheme(source)
    if kind in ("rtsp", "rtsps"):
        opts["rtsp_transport"] = "tcp"  # no lost packets (grey smears) behind NAT or on Wi-Fi
    elif kind == "udp":
        opts["overrun_nonfatal"] = "1"  # a slow reader loses packets, not the stream
        opts["fifo_size"] = "1000000"  # 188 MB of 188-byte packets: bursts do not overrun
    return opts


@dataclass(frozen=True)
class LiveFrame:
    index: int  # 0-based, counting every frame the source delivered
    image: np.ndarray  # uint8 HxWx3 RGB
    time: float  # seconds on the output timeline (monotonic across reconnects)
    captured: float  # time.monotonic() when the frame left the decoder


class LiveSource:
    """Frames from a live stream or camera, reconnecting when it drops (module doc).

    ``timeout``: seconds a read may wait for data; ``reconnect``: attempts after a loss
    before giving up (0: the first loss ends the stream); ``realtime``: pace a file source at
    its frame rate (streaming a file out as a camera would). ``width``, ``height``, ``fps``
    and ``sample_aspect_ratio`` are known after :meth:`open`; ``frames``, ``reconnects`` and
    ``decode_errors`` count as it goes.
    """

    def __init__(
        self,
        source: str,
        *,
        timeout: float = 10.0,
        reconnect: int = 3,
        options: dict[str, str] | None = None,
        realtime: bool = False,
    ) -> None:
        if not 0 < timeout < math.inf:  # NaN too: a read that could never time out
            raise InputError(f"the read timeout must be positive, got {timeout}")
        if reconnect < 0:
            raise InputError(f"--reconnect must be 0 or more, got {reconnect}")
        check_protocol(source)
        self.source = source
        self.name = redact(source)
        self._url_path = source.split("?", 1)[0].lower()  # what a URL's suffix is judged on
        self.timeout = timeout
        self.reconnect = reconnect
        self.options = {**input_options(source), **(options or {})}
        self.realtime = realtime
        self.width = self.height = 0
        self.fps: Fraction = DEFAULT_FPS
        self.codec = ""
        self.frames = 0
        self.reconnects = 0
        self.decode_errors = 0
        self.on_demand = False  # an http(s) video file rather than a stream (see _connect)
        self.sample_aspect_ratio: Fraction | None = None  # the pixel shape (None: square)
        self._warned_streams = False
        self._container: Any = None
        self._stream: Any = None
        self._offset = 0.0  # seconds added to the source's timestamps
        self._last_time: float | None = None
        self._last_wall: float | None = None

    # ----------------------------------------------------------------- connection

    def open(self) -> LiveSource:
        """Connect (once; a failure to connect at all is an error, not a reconnect)."""
        self._connect()
        return self

    def _connect(self) -> None:
        av = _av()
        try:
            container = av.open(
                self.source,
                mode="r",
                format="v4l2" if is_device(self.source) else None,
                options=self.options,
                timeout=(self.timeout, self.timeout),
            )
        except (av.FFmpegError, OSError) as e:
            reason = self._why(e)
            raise VideoError(f"{self.name}: cannot open the live source ({reason})") from None
        try:
            stream, others = pick_video_stream(container, self.name)
        except VideoError:
            container.close()
            raise VideoError(f"{self.name}: the source has no video stream") from None
        if others and not self._warned_streams:  # once, not at every reconnect
            self._warned_streams = True
            warnings.warn(several_streams(self.name, stream, others), VideoWarning, stacklevel=3)
        self.sample_aspect_ratio = sample_aspect(stream)
        stream.thread_type = "SLICE"  # frame threads would delay every frame by a few
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            if rate and 1 <= float(rate) <= 240:
                self.fps = Fraction(rate)
                break
        self.codec = stream.codec_context.name
        # An http(s) URL of a video file (a duration known up front), not a live stream: its
        # end is the end (reconnecting would fetch the file again, for ever), and its frames
        # wait for the model instead of being dropped (``on_demand``).
        # A live http source that sends a Content-Length (some IP cameras) gets a duration
        # estimated from its bitrate: the URL must also name a video file.
        # An MPEG-TS file from a server without range requests has no duration: a length
        # the server states (HEAD) says it is a file too (read as a stream it was fetched
        # again every few seconds, for ever, with 97 % of its frames dropped).
        if scheme(self.source) in ("http", "https") and self._url_path.endswith(FILE_SUFFIXES):
            self.on_demand = bool(container.duration) or _http_length(self.source, self.timeout)
        self._container, self._stream = container, stream

    def close(self) -> None:
        if self._container is not None:
            container, self._container = self._container, None
            try:
                container.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def __enter__(self) -> LiveSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- frames

    def __iter__(self) -> Iterator[LiveFrame]:
        if self._container is None:
            self._connect()
        failures = 0  # reconnect attempts since the last frame that arrived
        reason = ""
        while True:
            lost = False
            if self._container is not None:
                try:
                    for frame in self._decoded():
                        failures = 0
                        yield frame
                    reason = "the stream ended"
                except _Lost as e:
                    reason, lost = str(e), True
                self.close()
            if self.on_demand and (lost or self.frames == 0):
                # a file over http cut off (or never sending): not its end; a shortened copy
                # must not pass for the whole
                hint = ""
                if self.frames == 0 and self._url_path.endswith(_MP4S):
                    hint = (
                        "; an MP4 whose index (moov) is at its end needs a server that answers "
                        "range requests, or the file remuxed with its index first (faststart)"
                    )
                raise VideoError(
                    f"{self.name}: source lost ({reason}) after {self.frames} frames{hint}"
                )
            if not is_live(self.source) or self.on_demand:
                return  # a file played as a stream: its end is the end
            if failures >= self.reconnect:
                if self.reconnect:
                    raise VideoError(
                        f"{self.name}: source lost ({reason}); gave up after "
                        f"{self.reconnect} reconnect attempts"
                    )
                if self.frames == 0:
                    raise VideoError(f"{self.name}: no frame arrived ({reason})")
                # --reconnect 0 stops at the first loss, as documented: UDP has no end of
                # stream, so a sender that stops (a file pushed once) ends the run this way
                return
            delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
            failures += 1
            warnings.warn(
                f"{self.name}: source lost ({reason}); reconnecting in {delay:g} s "
                f"(attempt {failures} of {self.reconnect})",
                VideoWarning,
                stacklevel=2,
            )
            time.sleep(delay)
            try:
                self._connect()
                self.reconnects += 1
            except VideoError as e:
                reason = str(e).split("(", 1)[-1].rstrip(")") or str(e)

    def _decoded(self) -> Iterator[LiveFrame]:
        av = _av()
        container, stream = self._container, self._stream
        start = time.monotonic()
        first: float | None = None
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as e:  # OSError: ECONNRESET and the like
                raise _Lost(self._why(e)) from None
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self.decode_errors += 1  # a damaged packet (UDP loss): the next keyframe heals
                continue
            for frame in frames:
                t = self._timeline(frame)
                if self.realtime:
                    first = t if first is None else first
                    wait = start + (t - first) - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                image = self._rgb(frame)
                self.frames += 1
                yield LiveFrame(self.frames - 1, image, t, time.monotonic())

    def _why(self, e: BaseException) -> str:
        # PyAV's timeout interrupts FFmpeg, which then says "Immediate exit requested".
        if isinstance(e, _av().ExitError):
            return f"no data for {self.timeout:g} s"
        return _reason(e)

    def _timeline(self, frame: Any) -> float:
        """The frame's time in seconds on a timeline that never goes back."""
        now = time.monotonic()
        t = float(frame.pts * frame.time_base) if frame.pts is not None else None
        step = 1.0 / float(self.fps)
        if self._last_time is None:
            out = 0.0
            self._offset = -t if t is not None else 0.0
        elif t is None:
            out = self._last_time + step
        else:
            out = t + self._offset
            if not self._last_time < out < self._last_time + 5.0:
                # A reconnect or a timestamp jump: go on from the last frame by the wall gap.
                gap = max(step, now - (self._last_wall or now))
                out = self._last_time + gap
                self._offset = out - t
        self._last_time, self._last_wall = out, now
        return out

    def _rgb(self, frame: Any) -> np.ndarray:
        if self.width == 0:
            self.width, self.height = frame.width, frame.height
        untagged = "ITU709" if self.height >= 720 else "ITU601"  # what players assume
        matrix = _MATRIX.get(int(frame.colorspace or 2), untagged)
        # A source that changes resolution is scaled to its first size (the writer needs one).
        return frame.to_ndarray(
            format="rgb24",
            width=self.width,
            height=self.height,
            src_colorspace=matrix,
            src_color_range=frame.color_range or None,
            interpolation=_interp(decode=True),
        )


class _Lost(Exception):
    """The connection failed mid-stream (a timeout, a reset): reconnect or give up."""


def check_protocol(url: str) -> None:
    """Refuse an ``srt://`` source or output when FFmpeg lacks libsrt (PyPI's PyAV wheels do),
    in one line and before any work; other URLs are for the real open to judge."""
    if scheme(url) == "srt" and not _has_srt():
        raise VideoError(
            f"{redact(url)}: this PyAV build has no SRT support; use udp:// or rtsp://, or "
            "install a PyAV built against an FFmpeg with libsrt (e.g. conda-forge av)"
        )


@cache
def _has_srt() -> bool:
    """Whether FFmpeg has the srt protocol. Asked of a local port nothing listens on, never of
    the user's URL (with libsrt, probing it would connect to the receiver, or bind a
    listener's port, before the real open)."""
    av = _av()
    try:
        av.open("srt://127.0.0.1:9?connect_timeout=10000", timeout=0.01)
    except av.ProtocolNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - refused, timed out: the protocol is there
        return True
    return True


def _http_length(url: str, timeout: float) -> bool:
    """The server states a length for ``url`` (a HEAD request's Content-Length): a file, not
    an endless stream. False when it does not, or does not answer HEAD."""
    import urllib.request

    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=min(timeout, 10.0)) as response:  # noqa: S310 - the user's own URL
            return int(response.headers.get("Content-Length") or 0) > 0
    except (OSError, ValueError):
        return False
