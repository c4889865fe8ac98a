"""Which output container holds which codec, asked of the PyAV build before anything runs.

FFmpeg's muxers answer "which codecs can you hold?" (``supported_codecs``), so sllen-run can
refuse ``-o x.webm`` with an H.264 encoder, or keep a .webm input's container when ``--codec
libvpx-vp9`` asks for VP9, before a model loads. Two corrections to FFmpeg's answer live here
too: muxers whose list is partial, and audio codecs a muxer lists but refuses or players
cannot play. Also here: which of an input's container tags an output muxer stores, and how.
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


# Tags a muxer writes itself (the brand, the encoder: "Lavf62..."), or that would make it
# add something of its own: "timecode" becomes a timecode track in .mov, which fails the
# header at some frame rates. mpegts names its own service.
MUXER_OWNED = frozenset(
    {"major_brand", "minor_version", "compatible_brands", "encoder", "timecode"}
    | {"service_name", "service_provider"}
)

# The tags FFmpeg's mp4-family muxers store without ``movflags=use_metadata_tags`` (mov:
# QuickTime udta atoms such as (c)xyz; mp4: iTunes ilst items and a 3GPP loci box for the
# location; creation_time goes into mvhd in both), as read back by FFmpeg (measured with
# PyAV 18.1, tests/runtime/video). Any other tag (make/model in .mp4, an iPhone's
# com.apple.quicktime.* keys) survives only as an mdta key, written with that flag; it is
# set only then, since it moves every tag there, out of the atoms older players read.
_COMMON_PLAIN = {"creation_time", "title", "artist", "album", "date", "comment", "genre"}
PLAIN_TAGS: dict[str, frozenset[str]] = {
    "mov": frozenset(_COMMON_PLAIN | {"copyright", "make", "model", "location"}),
    "mp4": frozenset(
        _COMMON_PLAIN
        | {"album_artist", "composer", "description", "synopsis", "copyright", "grouping"}
        | {"keywords", "location", "lyrics", "show", "network", "episode_id"}
    ),
}
PLAIN_TAGS["ipod"] = PLAIN_TAGS["mp4"]  # .m4v


def output_tags(muxer: str, tags: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The input's container tags to give ``muxer``, and whether an mp4-family muxer needs
    ``movflags=+use_metadata_tags`` to keep them all. Tags named as a muxer-owned one, in
    any case ("ENCODER" from an .mkv too), and empty ones are left out."""
    kept = {k: v for k, v in tags.items() if k.lower() not in MUXER_OWNED and v}
    plain = PLAIN_TAGS.get(muxer)
    # "location-eng": a language variant of "location", stored the same way
    mdta = plain is not None and any(_base(k) not in plain for k in kept)
    return kept, mdta


def _base(key: str) -> str:
    key = key.lower()
    name, _, lang = key.rpartition("-")
    return name if name and len(lang) == 3 and lang.isalpha() else key
