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
