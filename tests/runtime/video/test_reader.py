"""sllen.runtime.video.reader: probe and decode, truncated and damaged files, failure modes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from sllen.runtime.video import (  # noqa: E402
    Frame,
    VideoError,
    VideoInfo,
    VideoReader,
    VideoWarning,
    probe,
    read_frames,
)

FPS = 12  # the clips conftest.py makes (test_probe_and_read checks them)
N = 18  # frames: 1.5 s
W, H = 96, 64

Pattern = Callable[..., np.ndarray]  # the conftest fixtures
MakeClip = Callable[..., Path]


def test_probe_and_read(clip: Path, pattern: Pattern) -> None:
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
    diff = frames[5].image.astype(float) - pattern(5)
    assert abs(diff.mean()) < 1.0 and np.abs(diff).mean() < 4.0


def test_truncated_file_keeps_decoded_frames(tmp_path: Path, make_clip: MakeClip) -> None:
    # moov first (faststart), as cameras and our writer produce: a cut keeps the frames before it.
    whole = make_clip(tmp_path / "whole.mp4", n=30, audio=False, faststart=True)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    reader = read_frames(cut)
    with pytest.warns(VideoWarning, match=r"cut\.mp4: truncated.* of 30 frames decoded"):
        frames = list(reader)
    assert 0 < len(frames) < 30 and reader.truncated and reader.frames_read == len(frames)
    with pytest.raises(VideoError, match="truncated"):
        list(read_frames(cut, strict=True))


def test_truncated_mkv_is_noticed_by_duration(tmp_path: Path, make_clip: MakeClip) -> None:
    # Matroska states no frame count; the duration in its header still tells a short read.
    whole = make_clip(tmp_path / "whole.mkv", n=36, audio=False)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.warns(VideoWarning, match=r"cut\.mkv: truncated.* s of the 3\.00 s"):
        frames = list(read_frames(cut))
    assert 0 < len(frames) < 36
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole file: no warning
        assert len(list(read_frames(whole))) == 36


def test_edit_list_trim_is_not_truncation(tmp_path: Path, make_clip: MakeClip) -> None:
    # An mp4 trimmed by an edit list (phones do this) stores more frames than it shows.
    whole = make_clip(tmp_path / "whole.mp4", n=30, audio=False)
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


def test_truncated_without_index_is_an_error(tmp_path: Path, make_clip: MakeClip) -> None:
    # moov last (a recording that never finished): nothing can be decoded, so a clear error.
    whole = make_clip(tmp_path / "whole.mp4", n=30, audio=False)
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


def test_public_types(clip: Path) -> None:
    # The names the package re-exports from its modules (common, reader).
    assert isinstance(probe(clip), VideoInfo)
    with read_frames(clip) as reader:
        assert isinstance(reader, VideoReader) and isinstance(next(reader), Frame)
