"""sllen.runtime.video.writer: encode with timestamps/audio kept, no file left on failure."""

from __future__ import annotations

import stat
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from sllen.runtime.files import umask

av = pytest.importorskip("av")

from sllen.runtime.video import VideoError, VideoWriter, probe, read_frames  # noqa: E402

FPS = 12  # the clips conftest.py makes (test_probe_and_read checks them)
N = 18  # frames: 1.5 s
W, H = 96, 64

Pattern = Callable[..., np.ndarray]  # the conftest fixtures
MakeClip = Callable[..., Path]


def _audio_packets(path: Path) -> list[tuple[bytes, int]]:
    """(payload, duration in ms) of each audio packet."""
    with av.open(str(path)) as c:
        return [
            (bytes(p), round(float(p.duration * p.time_base) * 1000))
            for p in c.demux(audio=0)
            if p.dts is not None
        ]


def _audio_start(path: Path) -> float:
    with av.open(str(path)) as c:
        return min(float(p.pts * p.time_base) for p in c.demux(audio=0) if p.pts is not None)


def _enhance(image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.int16) + 30, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_write_keeps_timing_and_copies_audio(clip: Path, tmp_path: Path, suffix: str) -> None:
    info = probe(clip)
    src = list(read_frames(clip))
    out = tmp_path / f"out{suffix}"
    with VideoWriter(out, info, audio_from=clip, preset="ultrafast") as writer:
        for f in src:
            writer.write(_enhance(f.image), f.pts)
    assert writer.codec == "libx264"
    got = probe(out)
    assert (got.width, got.height, got.fps) == (W, H, FPS)
    assert got.has_audio and got.audio_codec == "aac"
    frames = list(read_frames(out))
    assert len(frames) == N
    # Same frame timing; .mkv cannot store the AAC priming's negative start, so it shifts
    # every stream by it (23 ms): the spacing and the audio/video offset are what must hold.
    t0, s0 = frames[0].time, src[0].time
    assert [round(f.time - t0, 3) for f in frames] == [round(f.time - s0, 3) for f in src]
    assert t0 - _audio_start(out) == pytest.approx(s0 - _audio_start(clip), abs=0.002)
    assert abs(frames[3].image.astype(float).mean() - _enhance(src[3].image).mean()) < 1.5
    # Audio copied packet for packet (same bytes and durations: no re-encode); the last
    # packet's trimmed duration is an mp4 edit-list feature that .mkv does not store.
    copied, original = _audio_packets(out), _audio_packets(clip)
    assert [p[0] for p in copied] == [p[0] for p in original]
    assert copied[:-1] == original[:-1]
    # Interleaved: audio arrives in the file alongside its video, not all at the end.
    with av.open(str(out)) as c:
        order = [p.stream.type for p in c.demux() if p.dts is not None]
    first_audio = order.index("audio")
    assert first_audio < order.index("video") + 3
    assert order[: len(order) // 2].count("audio") > len(original) // 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary left


def test_variable_frame_rate_timestamps_survive(
    tmp_path: Path, make_clip: MakeClip, pattern: Pattern
) -> None:
    clip = make_clip(tmp_path / "in.mp4", audio=False)
    info = probe(clip)
    # Irregular timestamps (a camera dropping frames) must come out as they went in.
    pts = [0, 1, 3, 4, 7, 8, 9, 12]
    step = info.frame_duration
    out = tmp_path / "vfr.mp4"
    with VideoWriter(out, info, preset="ultrafast") as writer:
        for i, p in enumerate(pts):
            writer.write(pattern(i), p * step)
    back = [f.pts for f in read_frames(out)]
    got_tb = probe(out).time_base
    assert [Fraction(p) * got_tb for p in back] == [Fraction(p, FPS) for p in pts]


def test_odd_size_is_padded_by_one_pixel(
    tmp_path: Path, make_clip: MakeClip, pattern: Pattern
) -> None:
    clip = make_clip(tmp_path / "odd.mp4", size=(W, H), audio=False)
    info = probe(clip)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info, preset="ultrafast") as writer:
        for i in range(3):
            writer.write(pattern(i, 33, 47))
    assert (writer.width, writer.height, writer.padded) == (48, 34, (1, 1))
    frames = list(read_frames(out))
    assert frames[0].image.shape == (34, 48, 3)
    # The added column/row repeats the edge.
    img = frames[0].image.astype(int)
    assert np.abs(img[:, 47] - img[:, 46]).mean() < 6
    # yuv444p keeps the exact odd size.
    exact = tmp_path / "exact.mp4"
    with VideoWriter(exact, info, pix_fmt="yuv444p", preset="ultrafast") as writer:
        writer.write(pattern(0, 33, 47))
    assert probe(exact).width == 47 and probe(exact).height == 33


def test_falls_back_when_the_build_has_no_x264(
    clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    pattern: Pattern,
) -> None:
    real = av.Codec

    def codec(name: str, mode: str = "r") -> object:
        if mode == "w" and name in ("h264", "libx264"):
            raise av.codec.codec.UnknownCodecError(name)
        return real(name, mode)

    monkeypatch.setattr(av, "Codec", codec)
    monkeypatch.setattr(av, "codecs_available", av.codecs_available - {"libx264"})
    out = tmp_path / "out.mp4"
    # Several frames: x265 into mp4 with a single frame fails now and then inside FFmpeg.
    with VideoWriter(out, probe(clip)) as writer:
        for i in range(6):
            writer.write(pattern(i))
    assert writer.codec != "libx264" and "no h264 encoder" in caplog.text
    monkeypatch.undo()
    assert probe(out).codec != "h264" and len(list(read_frames(out))) == 6


def test_rotation_is_reported_and_kept(tmp_path: Path, make_clip: MakeClip) -> None:
    clip = make_clip(tmp_path / "rot.mp4", audio=False, rotation=90)
    info = probe(clip)
    assert info.rotation == 90 and (info.width, info.height) == (W, H)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info, preset="ultrafast") as writer:
        for f in read_frames(clip):
            writer.write(f.image, f.pts)
    assert probe(out).rotation == 90


def test_exception_leaves_no_file(clip: Path, tmp_path: Path, pattern: Pattern) -> None:
    info = probe(clip)
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, info, audio_from=clip, preset="ultrafast") as writer:
            writer.write(pattern(0))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, info) as writer:
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VideoError, match="no frames"):
        with VideoWriter(out, info):
            pass
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_wrong_frames(clip: Path, tmp_path: Path, pattern: Pattern) -> None:
    info = probe(clip)
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "o.mp4", info) as writer:
            writer.write(np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(tmp_path / "o.mp4", info) as writer:
            writer.write(pattern(0))
            writer.write(pattern(1, H + 2, W))
    assert list(tmp_path.iterdir()) == []


def test_an_audio_encoder_is_not_a_video_codec(
    clip: Path, tmp_path: Path, pattern: Pattern
) -> None:
    # av.Codec("aac", "w") exists: the writer must not hand it video frames
    with pytest.raises(VideoError, match="no 'aac' video encoder"):
        with VideoWriter(tmp_path / "o.mp4", probe(clip), codec="aac") as writer:
            writer.write(pattern(0))
    assert list(tmp_path.iterdir()) == []


def test_output_gets_the_usual_permissions(clip: Path, tmp_path: Path, pattern: Pattern) -> None:
    # Published by the one atomic writer: 0666 less the umask, not the temporary file's 0600.
    out = tmp_path / "out.mp4"
    with VideoWriter(out, probe(clip), preset="ultrafast") as writer:
        writer.write(pattern(0))
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_a_ts_file_takes_h264(clip: Path, tmp_path: Path) -> None:
    # The mpegts muxer answers the codec query with nothing: a .ts recording (the cut-proof
    # format for live capture) was refused as "cannot hold libx264".
    info = probe(clip)
    out = tmp_path / "rec.ts"
    with VideoWriter(out, info, codec="libx264", preset="ultrafast") as writer:
        for f in read_frames(clip):
            writer.write(_enhance(f.image), f.pts)
    assert len(list(read_frames(out))) == N


def test_an_mkv_that_starts_late_is_not_called_truncated(tmp_path: Path) -> None:
    # A clip cut from a longer recording: its first frame at 10 s, the container's duration
    # counted from 0. Every frame is there: no "truncated or damaged" warning.
    import warnings

    path = tmp_path / "late.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt, s.time_base = 64, 48, "yuv420p", Fraction(1, 15)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40, np.uint8), format="rgb24")
            frame.pts, frame.time_base = 150 + i, Fraction(1, 15)
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(read_frames(path))) == 10


def test_hevc_in_mp4_and_mov_is_tagged_hvc1(clip: Path, tmp_path: Path) -> None:
    # FFmpeg tags HEVC in MP4 as hev1, which QuickTime, Safari and iPhones do not play.
    if "libx265" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx265")
    info = probe(clip)
    for name in ("o.mp4", "o.mov"):
        with VideoWriter(tmp_path / name, info, codec="libx265", preset="ultrafast") as w:
            for f in read_frames(clip):
                w.write(f.image, f.pts)
        with av.open(str(tmp_path / name)) as c:
            assert c.streams.video[0].codec_context.codec_tag == "hvc1"
        assert len(list(read_frames(tmp_path / name))) == N


def test_a_hardware_encoder_that_cannot_start_is_refused_up_front() -> None:
    # h264_nvenc without an NVIDIA GPU failed at every video of a folder, after the model
    # loaded, with "encoding failed (Operation not permitted)".
    from sllen.runtime.video.writer import check_encoder

    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("this PyAV build has no h264_nvenc")
    if Path("/dev/nvidia0").exists():
        pytest.skip("an NVIDIA device is present: NVENC may start here")
    with pytest.raises(VideoError, match="h264_nvenc: the encoder does not start on this machine"):
        check_encoder("h264_nvenc", start=True)
    check_encoder("h264_nvenc")  # a Ray client: present in the build is enough there
    check_encoder("libx264", start=True)  # a software encoder is not started


def test_svt_av1_prints_no_banner(
    clip: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch
) -> None:
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV build has no libsvtav1")
    monkeypatch.delenv("SVT_LOG", raising=False)
    info = probe(clip)
    with VideoWriter(tmp_path / "o.mp4", info, codec="libsvtav1", preset="12") as w:
        for f in read_frames(clip):
            w.write(f.image, f.pts)
    assert "Svt[info]" not in capfd.readouterr().err


def test_crf_is_judged_by_the_encoder_a_name_opens() -> None:
    from sllen.runtime.video.writer import check_crf

    for codec in ("libx264", "h264", "hevc", "vp9", "libvpx-vp9"):  # FFmpeg's names too
        check_crf(codec)
    with pytest.raises(VideoError, match="mpeg4 has no constant-rate factor"):
        check_crf("mpeg4")


def test_pix_fmt_takes_colour_yuv_only() -> None:
    from sllen.runtime.video.writer import check_pix_fmt

    check_pix_fmt("libx264", "yuv444p")
    check_pix_fmt("libx264", "yuv420p10le")
    # grey and full-range came out with the wrong levels (limited-range colour is written)
    for bad in ("gray", "yuvj420p"):
        with pytest.raises(VideoError, match=f"--pix-fmt {bad}: libx264 encodes, in colour YUV"):
            check_pix_fmt("libx264", bad)
