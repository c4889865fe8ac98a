"""sllen.runtime.video.audio: audio the output container cannot hold is re-encoded, not dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

av = pytest.importorskip("av")

from sllen.runtime.video import VideoWriter, probe, read_frames  # noqa: E402

FPS = 12  # the clip conftest.py makes
N = 18


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


def test_pcm_from_an_mkv_into_mp4_becomes_aac(tmp_path: Path) -> None:
    # Copied, the file failed to finish ("Invalid argument") after the whole video was done.
    import numpy as np

    src = tmp_path / "pcm.mkv"
    with av.open(str(src), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a_s = out.add_stream("pcm_s16le", rate=48000)
        a_s.layout = "mono"
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        samples = (np.sin(np.arange(48000 * N // FPS) / 10) * 8000).astype(np.int16)[None]
        for k in range(0, samples.shape[1], 4800):
            af = av.AudioFrame.from_ndarray(samples[:, k : k + 4800], format="s16", layout="mono")
            af.sample_rate, af.pts = 48000, k
            out.mux(a_s.encode(af))
        out.mux(vs.encode(None))
        out.mux(a_s.encode(None))
    info = probe(src)
    dst = tmp_path / "out.mp4"
    with VideoWriter(dst, info, audio_from=src, preset="ultrafast") as writer:
        for f in read_frames(src):
            writer.write(f.image, f.pts)
    got = probe(dst)
    assert got.has_audio and got.audio_codec == "aac"
    assert len(list(read_frames(dst))) == N


def _copy(src: Path, dst: Path) -> None:
    info = probe(src)
    with VideoWriter(dst, info, audio_from=src, preset="ultrafast") as writer:
        for f in read_frames(src):
            writer.write(f.image, f.pts)


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return sum(f.samples for f in c.decode(stream)) / stream.rate


def test_audio_whose_timestamps_jump_back_is_appended(
    clip: Path, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    # Two recordings joined with `cat` (MPEG-TS restarts its clock in the second): the muxer
    # refused the second half's audio ("Invalid argument") and the whole run stopped, exit 1.
    one = tmp_path / "one.ts"
    with av.open(str(clip)) as src, av.open(str(one), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(one.read_bytes() * 2)
    dst = tmp_path / "out.mp4"
    _copy(joined, dst)
    assert len(list(read_frames(dst))) == 2 * N
    assert _audio_seconds(dst) == pytest.approx(2 * N / FPS, abs=0.15)
    with av.open(str(dst)) as c:
        dts = [p.dts for p in c.demux(audio=0) if p.dts is not None]
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False))
    assert any("jump back" in str(w.message) for w in recwarn)


@pytest.mark.parametrize("codec", ["flac", "libopus"])
def test_audio_the_mov_muxer_lists_but_refuses_is_reencoded(
    codec: str, tmp_path: Path, make_clip
) -> None:
    # PyAV lists Opus and FLAC for .mov, but the muxer refuses them when it writes the header
    # ("only in MP4 mode"): the run failed with a raw PyAV error after all the frames.
    import numpy as np

    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    src = tmp_path / f"in-{codec}.mkv"
    with av.open(str(src), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a_s = out.add_stream(codec, rate=48000)
        a_s.layout = "stereo"
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        tone = (np.sin(np.arange(48000 * N // FPS) / 10) * 0.2).astype(np.float32)
        fmt = a_s.codec_context.format.name
        for k in range(0, tone.size, 960):
            chunk = np.stack([tone[k : k + 960]] * 2)
            if fmt == "s16":
                chunk = (chunk * 32767).astype(np.int16).T.reshape(1, -1)
            elif fmt == "flt":
                chunk = chunk.T.reshape(1, -1)
            af = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="stereo")
            af.sample_rate, af.pts = 48000, k
            out.mux(a_s.encode(af))
        out.mux(a_s.encode(None))
    dst = tmp_path / "out.mov"
    _copy(src, dst)
    assert probe(dst).audio_codec == "aac"
    assert _audio_seconds(dst) == pytest.approx(N / FPS, abs=0.1)
    # into .mkv the same audio is copied as it is
    _copy(src, tmp_path / "out.mkv")
    assert probe(tmp_path / "out.mkv").audio_codec == probe(src).audio_codec


def test_avi_keeps_every_frame_time_with_aac_priming(clip: Path, tmp_path: Path) -> None:
    # AAC from an mp4 starts with a priming packet at a negative time, which AVI cannot store:
    # FFmpeg shifted every stream, the video by a rounded frame (frame times 0, 2/12, 3/12...,
    # the header counting one frame more) and the picture behind the sound.
    with av.open(str(clip)) as c:
        assert min(p.pts for p in c.demux(audio=0) if p.pts is not None) < 0  # the premise
    out = tmp_path / "out.avi"
    with VideoWriter(out, probe(clip), codec="mpeg4", audio_from=clip) as writer:
        for f in read_frames(clip):
            writer.write(f.image, f.pts)
    with av.open(str(out)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        audio = [p for p in c.demux(audio=0) if p.pts is not None]
        first_audio = float(audio[0].pts * audio[0].time_base)
    assert times == pytest.approx([i / FPS for i in range(N)], abs=1e-6)
    assert first_audio == 0.0
