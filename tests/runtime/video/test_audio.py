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
