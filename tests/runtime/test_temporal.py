"""sllen.runtime.temporal: flicker smoothing by one global gain per frame."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.runtime.temporal import TemporalSmoother, luminance_stats

FPS = 15
H, W = 48, 64


def _scene(seed: int) -> np.ndarray:
    """A float RGB scene in [0, 0.8] with structure (blocks), different per seed."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.05, 0.8, (6, 8, 3)).astype(np.float32)
    return np.repeat(np.repeat(blocks, H // 6, 0), W // 8, 1)


def _dark(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = img * 0.1 + rng.normal(0, 0.005, img.shape)
    return np.clip(noisy * 255, 0, 255).astype(np.uint8)


def _flicker(frames: list[np.ndarray]) -> float:
    lum = np.array([luminance_stats(f)[0] for f in frames])
    return float(np.abs(np.diff(lum)).mean() / lum.mean())


def _pumping(seed: int = 0, n: int = 45) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """A static scene whose 'enhanced' output pumps by a known +-6% gain per frame."""
    rng = np.random.default_rng(seed)
    scene = _scene(1)
    gains = 1 + rng.uniform(-0.06, 0.06, n)
    inputs = [_dark(scene, rng) for _ in range(n)]
    outputs = [np.clip(scene * np.float32(g), 0, 1) for g in gains]
    return inputs, outputs, list(gains)


def test_reduces_known_gain_pumping() -> None:
    inputs, outputs, _ = _pumping()
    smoother = TemporalSmoother(FPS)
    smoothed = [smoother.apply(x, y) for x, y in zip(inputs, outputs, strict=True)]
    before, after = _flicker(outputs), _flicker(smoothed)
    assert after < 0.4 * before
    assert smoother.cuts == 0


def test_gain_target_keeps_input_changes() -> None:
    # Input brightness that the model passes on (gain constant) is left alone in gain mode.
    scene = _scene(2)
    smoother = TemporalSmoother(FPS, target="gain")
    for k in range(20):
        e = 1 + 0.05 * (k % 2)
        x = np.clip(scene * 0.1 * e * 255, 0, 255).astype(np.uint8)
        y = np.clip(x.astype(np.float32) / 255 * 5, 0, 1)
        smoother.apply(x, y)
        assert smoother.last_gain == pytest.approx(1.0, abs=0.01)


def test_static_sequence_is_unchanged() -> None:
    scene = _scene(4)
    x = (scene * 0.1 * 255).astype(np.uint8)
    smoother = TemporalSmoother(FPS)
    for _ in range(10):
        assert smoother.apply(x, scene) is scene
        assert smoother.last_gain == 1.0


def test_scene_cut_resets() -> None:
    rng = np.random.default_rng(5)
    a, b = _scene(10), _scene(11) * np.float32(0.6)
    smoother = TemporalSmoother(FPS, time_constant=2.0)
    for _ in range(15):
        smoother.apply(_dark(a, rng), a)
    out = smoother.apply(_dark(b, rng), b)
    # The first frame of the new scene is exactly the model's output: nothing of scene a.
    assert smoother.last_cut and smoother.cuts == 1 and out is b
    for _ in range(5):
        smoother.apply(_dark(b, rng), b)
        assert not smoother.last_cut and smoother.last_gain == pytest.approx(1.0, abs=1e-6)


def test_light_switched_on_counts_as_cut() -> None:
    scene = _scene(12)
    smoother = TemporalSmoother(FPS)
    smoother.apply((scene * 0.05 * 255).astype(np.uint8), scene * np.float32(0.5))
    smoother.apply((scene * 0.2 * 255).astype(np.uint8), scene)
    assert smoother.last_cut


def test_output_in_range_and_one_gain_per_frame() -> None:
    inputs, outputs, _ = _pumping(seed=2)
    outputs = [np.clip(y * np.float32(1.3), 0, 1) for y in outputs]  # many clipped pixels
    smoother = TemporalSmoother(FPS)
    for x, y in zip(inputs, outputs, strict=True):
        z = smoother.apply(x, y)
        assert z.dtype == np.float32 and z.shape == y.shape
        assert 0.0 <= z.min() and z.max() <= 1.0
        g = smoother.last_gain
        assert 1 / 1.25 - 1e-6 <= g <= 1.25 + 1e-6
        # Every unclipped pixel is scaled by the same gain: nothing blended across frames.
        ok = y * g < 1.0
        np.testing.assert_allclose(z[ok], y[ok] * np.float32(g), rtol=1e-6, atol=1e-7)


def test_layouts_and_disabled() -> None:
    inputs, outputs, _ = _pumping(n=6)
    hwc, chw = TemporalSmoother(FPS), TemporalSmoother(FPS)
    for x, y in zip(inputs, outputs, strict=True):
        a = hwc.apply(x, y)
        b = chw.apply(x.transpose(2, 0, 1), y.transpose(2, 0, 1)[None])
        np.testing.assert_allclose(b[0].transpose(1, 2, 0), a, rtol=1e-6)
    off = TemporalSmoother(FPS, enabled=False)
    assert off.apply(inputs[1], outputs[1]) is outputs[1]
    with pytest.raises(ValueError, match="RGB"):
        hwc.apply(inputs[0][..., 0], outputs[0])


def test_time_constant_is_in_seconds() -> None:
    # The same time constant smooths as much per second at 15 and 60 fps.
    slow, fast = TemporalSmoother(15, time_constant=0.5), TemporalSmoother(60, time_constant=0.5)
    assert (1 - slow.alpha) ** 15 == pytest.approx((1 - fast.alpha) ** 60)
