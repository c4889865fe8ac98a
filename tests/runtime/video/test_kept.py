"""What a video keeps besides its frames: the pixel shape (SAR), the stream picked among
several, the container's tags; and the warning for the streams that are not copied."""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from sllen.runtime.video import VideoWarning, VideoWriter, probe, read_frames  # noqa: E402
from sllen.runtime.video.containers import PLAIN_TAGS  # noqa: E402
from sllen.runtime.video.live import LiveSource  # noqa: E402

W, H = 64, 48
SAR = Fraction(32, 27)  # 720x480 shown 16:9 (DVD, DV)
PHONE = {  # a phone clip's tags, as FFmpeg names them
    "creation_time": "2024-06-01T20:15:00.000000Z",
    "location": "+48.8584+002.2945/",
    "make": "Canon",
    "model": "EOS R6",
    "title": "Night walk",
}
IPHONE = {  # what an iPhone's .mov holds: QuickTime mdta keys
    "creation_time": "2024-06-01T20:15:00.000000Z",
    "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15",
}


def _write(
    path: Path,
    streams: tuple[tuple[int, int, int, int], ...] = ((W, H, 6, 60),),
    *,
    sar: Fraction | None = None,
    tags: dict[str, str] | None = None,
    movflags: str = "",
    default: int | None = None,
    subtitle: bool = False,
    attachment: bool = False,
) -> Path:
    """An H.264 clip written by PyAV directly: one video stream per (width, height, frames,
    grey level); `sar` on the last one; `default` marks that stream's index default."""
    with av.open(
        str(path), "w", container_options={"movflags": movflags} if movflags else {}
    ) as out:
        out.metadata.update(tags or {})
        videos = []
        for k, (w, h, _, _) in enumerate(streams):
            v = out.add_stream("libx264", rate=12)
            v.width, v.height, v.pix_fmt = w, h, "yuv420p"
            v.options = {"preset": "ultrafast"}
            if sar is not None and k == len(streams) - 1:
                v.codec_context.sample_aspect_ratio = sar
            if default == k:
                v.disposition = av.stream.Disposition.default
            videos.append(v)
        text = out.add_mux_stream("subrip", time_base=Fraction(1, 1000)) if subtitle else None
        if attachment:
            out.add_attachment("notes.txt", "text/plain", b"notes")
        for v, (w, h, n, grey) in zip(videos, streams, strict=True):
            for i in range(n):
                frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), grey, np.uint8), "rgb24")
                frame.pts = i
                out.mux(v.encode(frame))
            out.mux(v.encode(None))
        if text is not None:
            packet = av.Packet(b"Hello")
            packet.stream, packet.time_base, packet.pts, packet.dts = text, text.time_base, 0, 0
            packet.duration = 300
            out.mux(packet)
    return path


def _copy(src: Path, out: Path | str, *, audio: bool = False, wide: bool = False) -> None:
    """Through VideoWriter as sllen-run does: probe's info, the frames as read."""
    info = probe(src)
    # libx264 as sllen-run asks (mpegts's own default is MPEG-2, which stores a few ratios)
    source = src if audio else None
    with VideoWriter(out, info, codec="libx264", preset="ultrafast", audio_from=source) as w:
        for f in read_frames(src):
            w.write(np.concatenate([f.image, f.image], 1) if wide else f.image, f.pts)


def _tags(path: Path) -> dict[str, str]:
    with av.open(str(path)) as c:  # Matroska's tags read back upper-case
        return {k.lower(): v for k, v in c.metadata.items()}


def _video_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, VideoWarning)]


# -- the sample aspect ratio -----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_sample_aspect_ratio_is_kept(tmp_path: Path, suffix: str) -> None:
    src = _write(tmp_path / f"anamorphic{suffix}", sar=SAR)
    assert probe(src).sample_aspect_ratio == SAR
    _copy(src, tmp_path / f"out{suffix}")
    assert probe(tmp_path / f"out{suffix}").sample_aspect_ratio == SAR
    _copy(src, tmp_path / f"sbs{suffix}", wide=True)  # --side-by-side: the same pixel shape
    wide = probe(tmp_path / f"sbs{suffix}")
    assert (wide.width, wide.sample_aspect_ratio) == (2 * W, SAR)
    # unknown and 1:1 stay unset: square pixels, as before
    for name, sar in (("none", None), ("square", Fraction(1))):
        src = _write(tmp_path / f"{name}{suffix}", sar=sar)
        assert probe(src).sample_aspect_ratio is None
        _copy(src, tmp_path / f"out-{name}{suffix}")
        with av.open(str(tmp_path / f"out-{name}{suffix}")) as c:
            assert c.streams.video[0].codec_context.sample_aspect_ratio is None


def _streamed(tmp_path: Path, send: Callable[[str], None]) -> Path:
    """What `send(url)` sends to a udp:// URL on this machine, saved as got.ts."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    data = b""
    try:
        send(f"udp://127.0.0.1:{rx.getsockname()[1]}")
        rx.settimeout(0.5)
        try:
            while True:
                data += rx.recv(65536)
        except TimeoutError:
            pass
    finally:
        rx.close()
    (tmp_path / "got.ts").write_bytes(data)
    return tmp_path / "got.ts"


def test_sample_aspect_ratio_reaches_a_stream_output(tmp_path: Path) -> None:
    """udp:// (MPEG-TS): the ratio travels in the H.264 stream itself."""
    src = _write(tmp_path / "anamorphic.mp4", sar=SAR)
    got = probe(_streamed(tmp_path, lambda url: _copy(src, url)))
    assert (got.width, got.sample_aspect_ratio) == (W, SAR)


def test_a_file_streamed_out_by_sllen_run_keeps_its_ratio(tmp_path: Path) -> None:
    # sllen-run's live path (a file played out to -o udp://) built its own VideoInfo
    # without the ratio: the stream came out with square pixels.
    import subprocess
    import sys

    src = _write(tmp_path / "anamorphic.mp4", sar=SAR)
    code = "import sys\nfrom sllen.cli.main import app\napp(['run', *sys.argv[1:]])"

    def run(url: str) -> None:
        args = [sys.executable, "-c", code, str(src), "-o", url, "--threads", "1", "-q"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr

    assert probe(_streamed(tmp_path, run)).sample_aspect_ratio == SAR


def test_vp9_in_webm_says_the_ratio_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _write(tmp_path / "anamorphic.mp4", sar=SAR)
    info = probe(src)
    with caplog.at_level(logging.WARNING), VideoWriter(tmp_path / "o.webm", info) as w:
        w.write(np.zeros((H, W, 3), np.uint8), 0)
    assert "32:27 pixel aspect ratio cannot be stored for libvpx-vp9 in webm" in caplog.text


# -- several video streams -------------------------------------------------------------


def test_the_largest_video_stream_is_enhanced(tmp_path: Path) -> None:
    # a 32x24 preview first, the picture second: size, count and frames from the second
    src = _write(tmp_path / "two.mp4", ((32, 24, 4, 200), (W, H, 8, 60)))
    info = probe(src)
    assert (info.width, info.height, info.frame_count) == (W, H, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = list(read_frames(src))
    assert [f.image.shape for f in frames] == [(H, W, 3)] * 8
    assert abs(float(frames[0].image.mean()) - 60) < 8
    assert _video_warnings(caught) == [
        f"{src}: 2 video streams; enhancing stream #1 (64x48), leaving out #0 (32x24)"
    ]


def test_equal_streams_prefer_the_default_then_the_first(tmp_path: Path) -> None:
    for default, grey in ((1, 60), (None, 200)):
        streams = ((W, H, 4, 200), (W, H, 4, 60))
        src = _write(tmp_path / f"same-{default}.mkv", streams, default=default)
        with warnings.catch_warnings(record=True):
            first = next(iter(read_frames(src)))
        assert abs(float(first.image.mean()) - grey) < 8, default


def test_a_live_source_picks_the_same_stream(tmp_path: Path) -> None:
    src = _write(tmp_path / "two.mkv", ((32, 24, 4, 200), (W, H, 4, 60)), sar=SAR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        live = LiveSource(str(src), reconnect=0).open()
        frames = list(live)
    assert frames[0].image.shape == (H, W, 3)
    assert live.sample_aspect_ratio == SAR
    assert len(_video_warnings(caught)) == 1


# -- the container's tags --------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_container_tags_are_copied(tmp_path: Path, suffix: str) -> None:
    src = _write(tmp_path / "phone.mov", tags=PHONE)
    out = tmp_path / f"out{suffix}"
    _copy(src, out)
    got = _tags(out)
    assert {k: got.get(k) for k in PHONE} == PHONE
    # the muxer's own: a .mov's brand does not follow the frames into an .mp4 or .mkv
    assert got.get("major_brand") == {".mp4": "isom", ".mov": "qt  ", ".mkv": None}[suffix]


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_iphone_keys_are_kept(tmp_path: Path, suffix: str) -> None:
    src = _write(tmp_path / "iphone.mov", tags=IPHONE, movflags="+use_metadata_tags")
    out = tmp_path / f"out{suffix}"
    _copy(src, out)
    got = _tags(out)
    assert {k: got.get(k.lower()) for k in IPHONE} == IPHONE


def test_mdta_only_where_the_atoms_have_no_place(tmp_path: Path) -> None:
    """A classic .mov's tags stay in QuickTime's (c)xyz/(c)mak atoms (older players read
    those); an iPhone's keys go back to mdta keys."""
    _copy(_write(tmp_path / "classic.mov", tags=PHONE), tmp_path / "classic-out.mov")
    _copy(
        _write(tmp_path / "i.mov", tags=IPHONE, movflags="+use_metadata_tags"),
        tmp_path / "i-out.mov",
    )
    classic = (tmp_path / "classic-out.mov").read_bytes()
    assert b"\xa9xyz" in classic and b"\xa9mak" in classic and b"mdta" not in classic
    assert b"mdtacom.apple.quicktime.make" in (tmp_path / "i-out.mov").read_bytes()


@pytest.mark.parametrize(("muxer", "suffix"), [("mov", ".mov"), ("mp4", ".mp4"), ("ipod", ".m4v")])
def test_plain_tag_table_matches_ffmpeg(tmp_path: Path, muxer: str, suffix: str) -> None:
    """Each tag PLAIN_TAGS lists survives FFmpeg's muxer without use_metadata_tags."""
    values = {k: PHONE.get(k, f"value of {k}") for k in PLAIN_TAGS[muxer]}
    path = _write(tmp_path / f"plain{suffix}", tags=values)
    got = _tags(path)
    assert {k: got.get(k) for k in values} == values


# -- streams left out ------------------------------------------------------------------


def test_left_out_streams_are_warned_once(clip: Path, tmp_path: Path) -> None:
    src = _write(tmp_path / "subs.mkv", subtitle=True, attachment=True)
    out = tmp_path / "out.mkv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _copy(src, out, audio=True)
        _copy(clip, tmp_path / "plain.mp4", audio=True)  # video and audio alone: nothing to say
    assert _video_warnings(caught) == [
        f"{src}: 1 subtitle stream and 1 attachment stream left out of {out} (only video and "
        "audio are copied)"
    ]


def _with_undecodable(path: Path, *, h264: bool = True) -> Path:
    """An MPEG-TS with an AVS2 video stream (no decoder in PyPI's PyAV), and H.264 beside it."""
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=12) if h264 else None
        other = out.add_mux_stream("avs2", time_base=Fraction(1, 90000))
        if v is not None:
            v.width, v.height, v.pix_fmt = W, H, "yuv420p"
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(np.zeros((H, W, 3), np.uint8), "rgb24")
                frame.pts = i
                out.mux(v.encode(frame))
            out.mux(v.encode(None))
        packet = av.Packet(b"\x00\x00\x01\xb0" + b"\x00" * 60)
        packet.stream, packet.time_base, packet.pts, packet.dts = other, other.time_base, 0, 0
        out.mux(packet)
    return path


def test_an_undecodable_extra_stream_is_left_out_not_a_crash(tmp_path: Path) -> None:
    # PyAV gives such a stream no codec context: ranking the streams by size raised
    # AttributeError, which sllen-run reported as a bug (exit 1).
    from sllen.runtime.video import VideoError

    src = _with_undecodable(tmp_path / "two.ts")
    assert probe(src).width == W
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(list(read_frames(src))) == 3
    assert any("leaving out #1 (not decodable here)" in m for m in _video_warnings(caught))
    with pytest.raises(VideoError, match="no video stream this FFmpeg can decode"):
        probe(_with_undecodable(tmp_path / "only.ts", h264=False))


def test_a_cameras_timecode_track_is_named_when_left_out(tmp_path: Path) -> None:
    # It was "1 data stream left out", on most camera clips: the kind is named now.
    src = _write(tmp_path / "cam.mov", tags={"timecode": "01:00:00:00"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _copy(src, tmp_path / "out.mov", audio=True)
    assert [m.split(": ", 1)[1] for m in _video_warnings(caught)] == [
        f"1 timecode track left out of {tmp_path / 'out.mov'} (only video and audio are copied)"
    ]
