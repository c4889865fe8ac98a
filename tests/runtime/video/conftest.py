"""Clips for the sllen.runtime.video tests, written by PyAV directly (not by the code under test).

The test modules use these as fixtures (``make_clip``, ``pattern``, ``clip``); they repeat the
clip's constants, and test_reader.py checks them against what ``probe`` reads back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

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


@pytest.fixture(scope="session")
def pattern() -> Callable[..., np.ndarray]:
    """pattern(i, h=64, w=96): frame i of the test clips, uint8 RGB."""
    return _pattern


@pytest.fixture(scope="session")
def make_clip() -> Callable[..., Path]:
    """make_clip(path, n=18, size=(96, 64), audio=True, rotation=0, faststart=False)."""
    return _make_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 frames of 96x64 at 12 fps with 1.5 s of AAC audio, made once."""
    return _make_clip(tmp_path_factory.mktemp("clip") / "in.mp4")
