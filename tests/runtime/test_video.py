"""sllen.runtime.video: probe, decode, encode with timestamps/audio kept, failure modes."""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from sllen.runtime.video import (  # noqa: E402
    VideoError,
    VideoWarning,
    VideoWriter,
    probe,
    read_frames,
)

FPS = 12
N = 18  # frames: 1.5 s
W, H = 96, 64


def _pattern(i: int, h: int = H, w: int = W) -> np.ndarray:
    """A moving gradient: frames differ, and smooth enough to compress well."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 2 + i * 5) % 256, (y * 3) % 256, np.full_like(x, 40 + i * 4)], -1)
    return img.astype(np.uint8)


def _make_clip(
    path: Path,
    *,
    n: int = N,
    size: tuple[int, int] = (W, H),
    audio: bool = True,
    rotation: int = 0,
    faststart: bool = False,
) -> Path:
    """An H.264 clip with an AAC track (1.5 s of a tone), written by PyAV directly."""
    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=opts) as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.options = {"crf": "18", "preset": "ultrafast"}
        if rotation:
            v.set_display_rotation(rotation)
        a = out.add_stream("aac", rate=44100) if audio else None
        if a is not None:
            a.layout = "stereo"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_pattern(i, size[1], size[0]), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            t = np.arange(int(44100 * n / FPS)) / 44100
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = tone[start : start + 1024]
                frame = av.AudioFrame.from_ndarray(
                    np.stack([chunk, chunk]), format="fltp", layout="stereo"
                )
                frame.sample_rate, frame.pts = 44100, start
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


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


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_clip(tmp_path_factory.mktemp("clip") / "in.mp4")


def test_probe_and_read(clip: Path) -> None:
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.frame_count) == (W, H, FPS, N)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(N / FPS, abs=0.1)
    with read_frames(clip) as reader:
        first = next(reader)
    assert first.index == 0 and first.image.shape == (H, W, 3)
    frames = list(read_frames(clip))
    assert [f.index for f in frames] == list(range(N))
    assert frames[0].image.shape == (H, W, 3) and frames[0].image.dtype == np.uint8
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and frames[1].time - frames[0].time == pytest.approx(1 / FPS)
    # Colours come back (BT.601 for SD, accurate rounding: no darkening).
    diff = frames[5].image.astype(float) - _pattern(5)
    assert abs(diff.mean()) < 1.0 and np.abs(diff).mean() < 4.0


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


def test_webm_reencodes_audio_to_opus(clip: Path, tmp_path: Path) -> None:
    info = probe(clip)
    out = tmp_path / "out.webm"
    with VideoWriter(out, info, audio_from=clip) as writer:
        for f in read_frames(clip):
            writer.write(f.image, f.pts)
    got = probe(out)
    assert got.codec == "vp9" and got.audio_codec == "opus"
    with av.open(str(out)) as c:
        audio_seconds = sum(f.samples for f in c.decode(audio=0)) / 48000
    assert audio_seconds == pytest.approx(N / FPS, abs=0.1)
    assert len(list(read_frames(out))) == N


def test_variable_frame_rate_timestamps_survive(tmp_path: Path) -> None:
    clip = _make_clip(tmp_path / "in.mp4", audio=False)
    info = probe(clip)
    # Irregular timestamps (a camera dropping frames) must come out as they went in.
    pts = [0, 1, 3, 4, 7, 8, 9, 12]
    step = info.frame_duration
    out = tmp_path / "vfr.mp4"
    with VideoWriter(out, info, preset="ultrafast") as writer:
        for i, p in enumerate(pts):
            writer.write(_pattern(i), p * step)
    back = [f.pts for f in read_frames(out)]
    got_tb = probe(out).time_base
    assert [Fraction(p) * got_tb for p in back] == [Fraction(p, FPS) for p in pts]


def test_odd_size_is_padded_by_one_pixel(tmp_path: Path) -> None:
    clip = _make_clip(tmp_path / "odd.mp4", size=(W, H), audio=False)
    info = probe(clip)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info, preset="ultrafast") as writer:
        for i in range(3):
            writer.write(_pattern(i, 33, 47))
    assert (writer.width, writer.height, writer.padded) == (48, 34, (1, 1))
    frames = list(read_frames(out))
    assert frames[0].image.shape == (34, 48, 3)
    # The added column/row repeats the edge.
    img = frames[0].image.astype(int)
    assert np.abs(img[:, 47] - img[:, 46]).mean() < 6
    # yuv444p keeps the exact odd size.
    exact = tmp_path / "exact.mp4"
    with VideoWriter(exact, info, pix_fmt="yuv444p", preset="ultrafast") as writer:
        writer.write(_pattern(0, 33, 47))
    assert probe(exact).width == 47 and probe(exact).height == 33


def test_falls_back_when_the_build_has_no_x264(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
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
            writer.write(_pattern(i))
    assert writer.codec != "libx264" and "no h264 encoder" in caplog.text
    monkeypatch.undo()
    assert probe(out).codec != "h264" and len(list(read_frames(out))) == 6


def test_rotation_is_reported_and_kept(tmp_path: Path) -> None:
    clip = _make_clip(tmp_path / "rot.mp4", audio=False, rotation=90)
    info = probe(clip)
    assert info.rotation == 90 and (info.width, info.height) == (W, H)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info, preset="ultrafast") as writer:
        for f in read_frames(clip):
            writer.write(f.image, f.pts)
    assert probe(out).rotation == 90


def test_exception_leaves_no_file(clip: Path, tmp_path: Path) -> None:
    info = probe(clip)
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, info, audio_from=clip, preset="ultrafast") as writer:
            writer.write(_pattern(0))
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


def test_write_refuses_wrong_frames(clip: Path, tmp_path: Path) -> None:
    info = probe(clip)
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "o.mp4", info) as writer:
            writer.write(np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(tmp_path / "o.mp4", info) as writer:
            writer.write(_pattern(0))
            writer.write(_pattern(1, H + 2, W))
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_keeps_decoded_frames(tmp_path: Path) -> None:
    # moov first (faststart), as cameras and our writer produce: a cut keeps the frames before it.
    whole = _make_clip(tmp_path / "whole.mp4", n=30, audio=False, faststart=True)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    reader = read_frames(cut)
    with pytest.warns(VideoWarning, match=r"cut\.mp4: truncated.* of 30 frames decoded"):
        frames = list(reader)
    assert 0 < len(frames) < 30 and reader.truncated and reader.frames_read == len(frames)
    with pytest.raises(VideoError, match="truncated"):
        list(read_frames(cut, strict=True))


def test_truncated_mkv_is_noticed_by_duration(tmp_path: Path) -> None:
    # Matroska states no frame count; the duration in its header still tells a short read.
    whole = _make_clip(tmp_path / "whole.mkv", n=36, audio=False)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.warns(VideoWarning, match=r"cut\.mkv: truncated.* s of the 3\.00 s"):
        frames = list(read_frames(cut))
    assert 0 < len(frames) < 36
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole file: no warning
        assert len(list(read_frames(whole))) == 36


def test_edit_list_trim_is_not_truncation(tmp_path: Path) -> None:
    # An mp4 trimmed by an edit list (phones do this) stores more frames than it shows.
    whole = _make_clip(tmp_path / "whole.mp4", n=30, audio=False)
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(whole)) as src, av.open(str(trimmed), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        shift = 5 * probe(whole).frame_duration  # the first 5 frames before the start
        for packet in src.demux(stream):
            if packet.dts is not None:
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = out
                dst.mux(packet)
    reader = read_frames(trimmed, strict=True)
    assert len(list(reader)) == 25 and not reader.truncated


def test_truncated_without_index_is_an_error(tmp_path: Path) -> None:
    # moov last (a recording that never finished): nothing can be decoded, so a clear error.
    whole = _make_clip(tmp_path / "whole.mp4", n=30, audio=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:5000])
    with pytest.raises(VideoError) as e:
        probe(cut)
    assert str(cut) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"hello, not a video\n" * 10, "not a readable video")],
)
def test_bad_files_give_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    for call in (probe, read_frames):
        with pytest.raises(VideoError, match=message) as e:
            call(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_and_audio_only(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        probe(tmp_path / "nope.mp4")
    audio = tmp_path / "sound.m4a"
    with av.open(str(audio), "w") as out:
        a = out.add_stream("aac", rate=44100)
        a.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 44100
        out.mux(a.encode(frame))
        out.mux(a.encode(None))
    with pytest.raises(VideoError, match="no video stream"):
        probe(audio)
