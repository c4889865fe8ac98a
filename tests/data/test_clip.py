"""The dark sample clip: rendering (deterministic, moving, dark), writing, and the bundled file."""

import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

av = pytest.importorskip("av")

import sllen.samples as samples  # noqa: E402
from sllen.data.clip import CLIP_SYNTHESIS, render_clip_frames, write_clip  # noqa: E402

SIZE = (48, 64)  # (height, width)
FRAMES = 8


def _render(seed=3, dark=True, **kw):
    return list(render_clip_frames(seed, SIZE, FRAMES, 15, dark=dark, **kw))


def _decode(path):
    """(the stream's rate and size, frames, times): read while the file is open, since PyAV
    18.1.1 refuses a closed container's stream attributes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        info = SimpleNamespace(
            average_rate=stream.average_rate,
            size=(stream.codec_context.width, stream.codec_context.height),
        )
        return info, [f.to_ndarray(format="rgb24") for f in frames], [f.time for f in frames]


def test_frames_are_deterministic_uint8_and_move():
    a, b = _render(), _render()
    assert len(a) == FRAMES
    assert all(f.dtype == np.uint8 and f.shape == (*SIZE, 3) for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], _render(seed=4)[0])
    lit = _render(dark=False)
    # The camera moves: consecutive well-lit frames differ (no noise there to do it).
    assert all(not np.array_equal(x, y) for x, y in zip(lit, lit[1:], strict=False))


def test_frames_are_dark_noisy_but_not_black():
    dark = np.stack(_render()).astype(np.float64)
    lit = np.stack(_render(dark=False)).astype(np.float64)
    assert dark.mean() < 0.5 * lit.mean()
    assert dark.mean() > 0.02 * 255  # content left to recover
    # The same darkening without noise (sample_params draws the same values either way): the
    # difference is the sensor noise, strong, and fresh in every frame (uncorrelated between
    # consecutive frames at the same pixels; a repeated noise pattern would correlate ~1).
    clean = np.stack(_render(synthesis=replace(CLIP_SYNTHESIS, noise_prob=0.0)))
    noise = dark - clean.astype(np.float64)
    assert noise.std() > 3.0
    for i in range(FRAMES - 1):
        lit_enough = (clean[i] > 20) & (clean[i + 1] > 20)
        assert lit_enough.sum() > 1000
        assert abs(np.corrcoef(noise[i][lit_enough], noise[i + 1][lit_enough])[0, 1]) < 0.2


def test_write_clip_round_trip(tmp_path):
    frames = _render()
    path = write_clip(tmp_path / "c.mp4", frames, fps=15, crf=18)
    assert path == tmp_path / "c.mp4"
    assert [p.name for p in tmp_path.iterdir()] == ["c.mp4"]  # no temporary file left
    stream, decoded, times = _decode(path)
    assert len(decoded) == FRAMES
    assert stream.average_rate == 15
    assert stream.size == (SIZE[1], SIZE[0])
    assert times == [float(Fraction(i, 15)) for i in range(FRAMES)]
    src = np.stack(frames).astype(np.float64)
    assert abs(np.stack(decoded).mean() - src.mean()) < 3.0  # on the 0..255 scale


def test_write_clip_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "c.mp4"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="even"):
        write_clip(path, [np.zeros((47, 64, 3), np.uint8)], fps=15)
    with pytest.raises(ValueError, match="no frames"):
        write_clip(path, [], fps=15)
    frames = [np.zeros((48, 64, 3), np.uint8), np.zeros((48, 32, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 1"):
        write_clip(path, frames, fps=15)
    with pytest.raises(ValueError, match="fps"):
        write_clip(path, frames[:1], fps=15.0)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.mp4"]


def test_bundled_clip_is_the_documented_dark_clip():
    path = samples.sample_clip()
    assert path.stat().st_size < 600_000
    stream, decoded, times = _decode(path)
    height, width = samples.SAMPLE_CLIP_SIZE
    assert len(decoded) == samples.SAMPLE_CLIP_FRAMES
    assert stream.average_rate == samples.SAMPLE_CLIP_FPS
    assert decoded[0].shape == (height, width, 3)
    assert times[-1] == pytest.approx((samples.SAMPLE_CLIP_FRAMES - 1) / samples.SAMPLE_CLIP_FPS)
    mean = np.stack(decoded).mean() / 255.0
    assert 0.02 < mean < 0.15  # dark, not black (0.085 when made)


def test_sample_clip_missing_names_the_fix(monkeypatch):
    monkeypatch.setattr(samples, "SAMPLE_CLIP_NAME", "no-such-clip.mp4")
    with pytest.raises(FileNotFoundError, match="make_sample_clip.py"):
        samples.sample_clip()


def test_samples_and_renderer_import_without_torch_or_av():
    code = (
        "import sys\n"
        "import sllen.samples, sllen.data.clip\n"
        "sllen.samples.sample_clip()\n"
        "assert 'torch' not in sys.modules and 'av' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
