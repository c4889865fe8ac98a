"""Writing: encode RGB frames to a video file, timestamps kept, audio copied beside them."""

from __future__ import annotations

import logging
import math
import os
import warnings
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError
from sllen.runtime.files import AtomicFile
from sllen.runtime.video.audio import _AudioCopy
from sllen.runtime.video.common import (
    _MATRIX_TAG,
    VideoError,
    VideoInfo,
    VideoWarning,
    _av,
    _check_file,
    _interp,
    _reason,
)
from sllen.runtime.video.containers import MP4_FAMILY, PARTIAL_CODEC_LISTS, output_tags
from sllen.runtime.video.live import (
    OUTPUT_FORMATS,
    check_protocol,
    is_stream_output,
    redact,
    scheme,
)

log = logging.getLogger(__name__)

_AVCOL_RANGE_MPEG = 1
# Encoders whose rate control is a constant-quality "crf" option.
_CRF_CODECS = ("libx264", "libx264rgb", "libx265", "libvpx-vp9", "libvpx", "libsvtav1")
# Codecs / containers that need a constant-rate time base (1/fps) instead of the input's.
_CFR_CODECS = ("mpeg4", "msmpeg4", "msmpeg4v2", "mpeg1video", "mpeg2video", "h263", "mjpeg")
_CFR_FORMATS = ("avi",)
_QSCALE_CODECS = ("mpeg4", "msmpeg4", "msmpeg4v2", "mpeg1video", "mpeg2video", "mjpeg", "h263")
_FF_QP2LAMBDA = 118
_HARDWARE = ("_nvenc", "_amf", "_qsv", "_vaapi", "_v4l2m2m", "_videotoolbox", "_mf", "_vulkan")
# Codecs whose bitstream has no pixel aspect ratio (Matroska outputs cannot carry it).
_NO_SAR = ("vp8", "vp9", "av1")
_FALLBACK_ENCODERS = ("libx264", "libopenh264", "libx265", "libvpx-vp9", "libsvtav1", "mpeg4")


def check_encoder(codec: str, start: bool = False) -> None:
    """Refuse a --codec this PyAV build cannot encode video with, before a model loads (the
    writer would refuse it only at the first video, and again at every video of a folder).
    libx264/h264 pass: the writer falls back to another H.264-family encoder where the build
    lacks them. ``start``: a hardware encoder (h264_nvenc, ...) is also started once on a
    small frame, since without its GPU or driver it fails (only where the videos will be
    encoded: not on a Ray client whose workers have the GPUs). Without PyAV, nothing to
    check: a video input is refused where it is read."""
    try:
        av = _av()
    except VideoError:
        return
    try:
        kind = str(av.Codec(codec, "w").type)
    except (av.FFmpegError, ValueError):
        if codec in ("libx264", "h264"):
            return
        raise VideoError(f"this PyAV build has no {codec!r} video encoder") from None
    if kind != "video":
        raise VideoError(f"--codec {codec} encodes {kind}, not video")
    if start and codec.endswith(_HARDWARE):
        _try_hardware_encoder(av, codec)


def check_crf(codec: str) -> None:
    """Refuse --crf for an encoder that has no constant-rate factor: it was ignored there.
    Judged by the encoder the name opens (FFmpeg's ``hevc`` is libx265 where the build has
    it, ``h264`` libx264 or libopenh264), as the writer judges it."""
    try:
        av = _av()
    except VideoError:
        return
    try:
        name = av.Codec(codec, "w").name
    except (av.FFmpegError, ValueError):  # a name check_encoder refuses
        return
    if name in _CRF_CODECS:
        return
    how = (
        "a fixed quantiser (ffmpeg -q:v 3)"
        if name in _QSCALE_CODECS
        else "a bitrate set from the frame size and rate"
    )
    shown = codec if name == codec else f"{codec} ({name})"
    raise VideoError(
        f"--crf: {shown} has no constant-rate factor (sllen encodes it at {how}); "
        f"--crf is for {', '.join(_CRF_CODECS)}"
    )


def check_pix_fmt(codec: str, pix_fmt: str) -> None:
    """Refuse a --pix-fmt the encoder cannot write, before a model loads (the writer would
    fall back to the encoder's first format, with a warning, at every video)."""
    try:
        av = _av()
    except VideoError:
        return
    try:
        av.VideoFormat(pix_fmt)
    except ValueError:
        raise VideoError(
            f"--pix-fmt {pix_fmt}: not a pixel format FFmpeg knows (yuv420p, yuv444p, ...)"
        ) from None
    try:
        formats = [f.name for f in av.Codec(codec, "w").video_formats or []]
    except (av.FFmpegError, ValueError):
        return  # the codec's own check (check_encoder) names it
    # sllen writes colour in limited-range YUV (the matrix and range it tags the stream with):
    # grey, RGB and the full-range yuvj formats came out with the wrong levels
    usable = [
        f for f in formats
        if not f.startswith("yuvj") and not av.VideoFormat(f).is_rgb
        and len(av.VideoFormat(f).components) >= 3
    ]  # fmt: skip
    if formats and pix_fmt not in usable:
        raise VideoError(
            f"--pix-fmt {pix_fmt}: {codec} encodes, in colour YUV, {', '.join(usable) or 'none'}"
        )


def _try_hardware_encoder(av: Any, codec: str) -> None:
    ctx = av.CodecContext.create(codec, "w")
    formats = [f.name for f in ctx.codec.video_formats or []]
    ctx.width, ctx.height = 256, 256  # above the smallest size NVENC and others take
    ctx.pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
    try:
        ctx.open()
    except (av.FFmpegError, OSError) as e:
        raise VideoError(
            f"--codec {codec}: the encoder does not start on this machine ({_reason(e)}); a "
            "hardware encoder needs its device and driver: leave --codec out for H.264 in "
            "software"
        ) from None


def _encoder(codec: str | None, container: Any) -> str:
    """The encoder to use: the one asked for, else the container's default in software
    (libx264 for mp4/mkv/mov, libvpx-vp9 for webm, mpeg4 for avi); when that is missing from
    the PyAV build, the first of a few common ones the container takes, with a warning."""
    av = _av()
    wanted = codec or container.default_video_codec
    try:
        found = av.Codec(wanted, "w")
        name = str(found.name) if found.type == "video" else None
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
        # A stream URL (udp://, rtsp://, ...) is written to as it is: nothing to publish.
        self.url = str(path) if is_stream_output(str(path)) else None
        self.path = Path(path)
        self.label = redact(self.url) if self.url else str(self.path)
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
        self._target: AtomicFile | None = None  # the temporary file, until published
        self._out: Any = None
        self._stream: Any = None
        self._audio: _AudioCopy | None = None
        self._in_size: tuple[int, int] | None = None
        self._last_pts: int | None = None
        self._closed = False
        if self.url is not None:
            self._open_stream()
            return
        if self.path.suffix == "":
            raise VideoError(f"{self.label}: give the output a suffix (.mp4, .mkv, .mov, .webm)")
        if self.audio_from is not None:
            _check_file(self.audio_from)
        try:
            # The container is picked from the suffix: the temporary file keeps it.
            self._target = AtomicFile(self.path, suffix=self.path.suffix)
        except OSError as e:
            raise VideoError(f"{self.label}: cannot write ({e.strerror or e})") from None
        av = _av()
        try:
            self._out = av.open(str(self._target.tmp), mode="w")
        except (av.FFmpegError, ValueError) as e:
            self._discard()
            raise VideoError(f"{self.label}: cannot write this container ({_reason(e)})") from None

    def _open_stream(self) -> None:
        av, url = _av(), str(self.url)
        check_protocol(url)
        kind = scheme(url) or ""
        if kind == "udp" and "pkt_size" not in url:
            url += ("&" if "?" in url else "?") + "pkt_size=1316"  # 7 TS packets per datagram
        options = {"rtsp_transport": "tcp"} if kind in ("rtsp", "rtsps") else {}
        try:
            self._out = av.open(url, mode="w", format=OUTPUT_FORMATS[kind], options=options)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise VideoError(
                f"{self.label}: cannot open the output stream ({_reason(e)})"
            ) from None

    # -- setup, on the first frame ------------------------------------------------------

    def _start(self, h: int, w: int) -> None:
        av, info, out = _av(), self.info, self._out
        self.codec = _encoder(self.codec_request, out)
        # FFmpeg's mpegts/flv/rtsp muxers answer the codec query with their defaults only
        # (mpegts: eight MPEG codecs, no H.264), for a .ts file too; they take H.264.
        known = self.url is None and out.format.name not in PARTIAL_CODEC_LISTS
        if known and self.codec not in out.supported_codecs and self.codec_request is not None:
            raise VideoError(
                f"{self.label}: the {out.format.name} container cannot hold {self.codec}; "
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
                "repeating the last column/row (--pix-fmt yuv444p keeps the exact size, in a "
                "stream fewer players take)",
                self.label, w, h, self.pix_fmt, self.width, self.height,
            )  # fmt: skip
        # Constant-rate codecs/containers count in frames; everything else keeps the input's
        # time base so variable frame rates and the exact timestamps survive.
        cfr = self.codec in _CFR_CODECS or out.format.name in _CFR_FORMATS
        self._tb = Fraction(1) / info.fps if cfr else info.time_base
        if self.codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT prints 20 lines per file
        stream = out.add_stream(self.codec, rate=info.fps)
        if encoder.canonical_name == "hevc" and out.format.name in MP4_FAMILY:
            stream.codec_context.codec_tag = "hvc1"  # hev1, FFmpeg's tag, Apple does not play
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
        self._set_aspect(stream, encoder)
        self._stream = stream
        if self.audio_from is not None:
            self._audio = _AudioCopy(self.audio_from, out, self.path)
            if self._audio.left_out:
                warnings.warn(
                    f"{self.audio_from}: {self._audio.left_out} left out of {self.label} "
                    "(only video and audio are copied)",
                    VideoWarning,
                    stacklevel=4,
                )
        if self.url is None:  # a file: a stream's muxer (mpegts, flv) keeps its own tags
            self._copy_tags()

    def _set_aspect(self, stream: Any, encoder: Any) -> None:
        """The input's pixel shape, before the first frame: encoders write it into the
        bitstream (H.264/HEVC VUI, MPEG-4 Part 2), the mp4 family also into a pasp box."""
        sar = self.info.sample_aspect_ratio
        if sar is None:
            return
        stream.codec_context.sample_aspect_ratio = sar
        if self._out.format.name in ("matroska", "webm") and encoder.canonical_name in _NO_SAR:
            # Matroska keeps it in the track (DisplayWidth), from AVStream's own field,
            # which PyAV does not expose; VP8, VP9 and AV1 streams have no field for it.
            log.warning(
                "%s: the input's %d:%d pixel aspect ratio cannot be stored for %s in %s; "
                "players will show square pixels (H.264, or an .mp4 output, keeps it)",
                self.label, sar.numerator, sar.denominator, encoder.name, self._out.format.name,
            )  # fmt: skip

    def _copy_tags(self) -> None:
        """The input container's tags (creation_time, location, make, ...) on the output."""
        out = self._out
        tags, mdta = output_tags(out.format.name, self.info.metadata)
        out.metadata.update(tags)
        if out.format.name in MP4_FAMILY:
            # moov first: plays while downloading, and a cut-off copy still plays its start.
            # use_metadata_tags: the tags FFmpeg's atoms have no place for (an iPhone's
            # com.apple.quicktime.* keys) as mdta keys, where iPhones write them too.
            flags = "+faststart+use_metadata_tags" if mdta else "+faststart"
            out.container_options["movflags"] = flags

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
            raise RuntimeError(f"{self.label}: the writer is closed")
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
            got = getattr(image, "dtype", type(image).__name__)
            raise InputError(f"VideoWriter.write takes uint8 HxWx3 RGB, got {got}")
        if image.shape[2] != 3:
            raise InputError(f"VideoWriter.write takes 3 channels (RGB), got {image.shape[2]}")
        h, w = image.shape[:2]
        if self._stream is None:
            self._start(h, w)
        elif (h, w) != self._in_size:
            raise InputError(f"frame size {w}x{h} differs from the first frame's {self._in_size}")
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
            raise VideoError(f"{self.label}: encoding failed ({_reason(e)})") from None
        self.frames_written += 1
        if self._audio is not None:
            # Audio up to a little past this frame: packets reach the muxer near their video.
            try:
                self._audio.copy_until(float(frame.pts * self._tb) + 0.5)
            except av.FFmpegError as e:
                raise VideoError(
                    f"{self.label}: copying the audio of {self._audio.source} failed ({_reason(e)})"
                ) from None

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
                raise VideoError(f"{self.label}: no frames were written")
            try:
                self._out.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.copy_until(math.inf)
                self._out.close()
            except av.FFmpegError as e:
                raise VideoError(
                    f"{self.label}: could not finish the file ({_reason(e)})"
                ) from None
            if self._target is not None:  # a file (a stream has nothing to publish)
                self._target.publish()  # the usual permissions, then renamed into place
            if self._audio is not None and self._audio.shifted:
                warnings.warn(
                    f"{self.label}: the audio's timestamps of {self._audio.source} jump back "
                    f"{self._audio.shifted} time{'s' * (self._audio.shifted > 1)} (recordings "
                    "joined, or a clock restarted); the audio after each jump follows what "
                    "came before, as the video does",
                    VideoWarning,
                    stacklevel=2,
                )
        except BaseException:
            self._discard()
            raise
        self._target = None
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
        if self._target is not None:
            self._target.discard()
            self._target = None

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
        if getattr(self, "_target", None) is not None:
            self._discard()
