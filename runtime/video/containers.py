"""Which output container holds which codec, asked of the PyAV build before anything runs.

FFmpeg's muxers answer "which codecs can you hold?" (``supported_codecs``), so sllen-run can
refuse ``-o x.webm`` with an H.264 encoder, or keep a .webm input's container when ``--codec
libvpx-vp9`` asks for VP9, before a model loads. Two corrections to FFmpeg's answer live here
too: muxers whose list is partial, and audio codecs a muxer lists but refuses or players
cannot play.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from sllen.runtime.video.common import VideoError, _av

# FFmpeg's mpegts/flv/rtsp muxers answer the codec query with their defaults only (mpegts:
# eight MPEG codecs, no H.264), although they take H.264: their answer proves nothing.
PARTIAL_CODEC_LISTS = frozenset({"mpegts", "flv", "rtsp", "rtp_mpegts"})

# Audio a muxer lists but must not get. The mov muxer lists Opus and FLAC, then refuses them
# when it writes the header ("only in MP4 mode"), after the whole video was enhanced. FFmpeg
# writes Vorbis into MP4, but as a private mapping that QuickTime, Safari and phones do not
# play. These are re-encoded to the container's default (AAC) instead.
AUDIO_REFUSED: dict[str, frozenset[str]] = {
    "mov": frozenset({"opus", "flac", "vorbis"}),
    "mp4": frozenset({"vorbis"}),
    "ipod": frozenset({"opus", "flac", "vorbis"}),
    "3gp": frozenset({"opus", "flac", "vorbis"}),
}

# The mp4-family muxers: HEVC goes in tagged hvc1 (FFmpeg's default, hev1, is the one Apple's
# players refuse), and the index goes first (+faststart).
MP4_FAMILY = frozenset({"mp4", "mov", "ipod", "3gp"})  # muxer names (.m4v: ipod)


@cache
def _muxer(suffix: str) -> tuple[str, frozenset[str]] | None:
    """The muxer FFmpeg picks for a file named ``*suffix``, and the codecs it lists.

    ``av.open(..., "w")`` only chooses the muxer; the file is opened when the header is
    written, which never happens here. The path lies in a folder that does not exist, so
    even a PyAV that opened early would fail rather than leave a file behind."""
    try:
        av = _av()
    except VideoError:
        return None
    probe = Path(tempfile.gettempdir()) / "sllen-no-such-folder" / f"probe{suffix.lower()}"
    try:
        out = av.open(str(probe), mode="w")
    except (av.FFmpegError, OSError, ValueError):
        return None
    try:
        return str(out.format.name), frozenset(out.supported_codecs)
    finally:
        out.close()


def holds_video(suffix: str, encoder: str) -> bool | None:
    """Whether a file named ``*suffix`` can hold what ``encoder`` makes: True, False, or None
    when this cannot be known (no PyAV, an unknown suffix, a muxer with a partial list)."""
    found = _muxer(suffix)
    if found is None or found[0] in PARTIAL_CODEC_LISTS:
        return None
    av = _av()
    try:
        codec = av.Codec(encoder, "w")
    except (av.FFmpegError, ValueError):
        return None
    return codec.name in found[1] or codec.canonical_name in found[1]


def is_h264(encoder: str) -> bool:
    """``encoder`` makes H.264 (libx264, h264_nvenc, libopenh264, ...); False when unknown."""
    try:
        av = _av()
    except VideoError:
        return False
    try:
        return str(av.Codec(encoder, "w").canonical_name) == "h264"
    except (av.FFmpegError, ValueError):
        return False


def audio_refused(muxer: str, codec: str) -> bool:
    """Audio ``codec`` must be re-encoded for ``muxer`` although the muxer lists it."""
    return codec in AUDIO_REFUSED.get(muxer, ()) or (
        codec.startswith("pcm_") and muxer in MP4_FAMILY - {"mov"}
    )
