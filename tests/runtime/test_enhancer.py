"""Enhancer: batching, padding to the profile, tiling by profile and by pixel budget.

The backend here is a small identity-like fake (tests/fakes/affine_backend.py: x -> x * 0.5 +
0.25) that records the shapes it is given: this tests the Enhancer's logic, not a model.
"""

from __future__ import annotations

import numpy as np
from affine_backend import Recorder

from sllen.runtime.backends.base import Outputs
from sllen.runtime.enhancer import Enhancer


def frames(n: int, h: int, w: int) -> list[np.ndarray]:
    """Dark frames, as sllen's inputs are (a well-exposed one would pass through unchanged:
    tests/runtime/test_well_exposed.py)."""
    rng = np.random.default_rng(0)
    return [(rng.random((h, w, 3)) * 0.3).astype(np.float32) for _ in range(n)]


def test_batches_and_crops() -> None:
    b = Recorder()
    out = Enhancer(b, batch=2).enhance(frames(5, 30, 40))
    assert b.shapes == [(2, 3, 32, 48), (2, 3, 32, 48), (1, 3, 32, 48)]
    assert len(out) == 5 and out[0].image.shape == (30, 40, 3)


def test_mixed_sizes_keep_order() -> None:
    b = Recorder()
    fs = frames(1, 20, 20) + frames(1, 40, 30) + frames(1, 20, 20)
    out = Enhancer(b, batch=4).enhance(fs)
    assert [o.image.shape[:2] for o in out] == [(20, 20), (40, 30), (20, 20)]
    assert np.allclose(out[1].image, fs[1] * 0.5 + 0.25, atol=1e-6)


def test_profile_minimum_and_maximum() -> None:
    b = Recorder(min_hw=(64, 64), max_hw=(128, 128), max_batch=1)
    e = Enhancer(b, batch=8)
    assert e.batch == 1
    out = e.enhance(frames(1, 20, 30))  # padded up to the profile minimum
    assert b.shapes == [(1, 3, 64, 64)] and out[0].image.shape == (20, 30, 3)
    b.shapes.clear()
    (f,) = frames(1, 200, 300)
    out = e.enhance([f])  # tiled to the profile maximum
    assert all(s[2] <= 128 and s[3] <= 128 for s in b.shapes) and len(b.shapes) > 1
    assert np.allclose(out[0].image, f * 0.5 + 0.25, atol=1e-5)


def test_pixel_budget_tiles_large_frames_unless_a_tile_is_given() -> None:
    b = Recorder(max_pixels=64 * 96)
    e = Enhancer(b)
    assert e.tile_for(60, 90) is None
    th, tw = e.tile_for(200, 300)  # type: ignore[misc]
    assert th * tw <= 64 * 96 and th % 16 == 0 and tw % 16 == 0 and tw > th
    (f,) = frames(1, 200, 300)
    out = e.enhance([f])
    assert max(s[2] * s[3] for s in b.shapes) <= 64 * 96
    assert np.allclose(out[0].image, f * 0.5 + 0.25, atol=1e-5)
    assert Enhancer(b, tile=(512, 512)).tile_for(200, 300) is None


def test_exposure_is_applied_to_the_whole_result_after_tiling() -> None:
    from sllen.runtime.exposure import apply_table, exposure_table

    (f,) = frames(1, 200, 300)
    plain = Enhancer(Recorder(max_pixels=64 * 64)).enhance([f])[0].image
    darker = Enhancer(Recorder(max_pixels=64 * 64), exposure=-1.0).enhance([f])[0].image
    assert np.array_equal(darker, apply_table(plain, exposure_table(-1.0)))
    assert darker.mean() < plain.mean() * 0.8


def test_tiles_that_decide_their_own_exposure_are_matched() -> None:
    """A network brightens each tile by what the tile shows; tiled, the frame still gets one
    exposure (runtime/tiling.py's matching gains), not bands of several."""

    class PerTileExposure(Recorder):
        def _infer(self, x, segmentation):
            self.shapes.append(x.shape)
            return Outputs(x * (0.4 / x.mean(axis=(1, 2, 3), keepdims=True)))

    ramp = np.linspace(0.02, 0.2, 300, dtype=np.float32)
    frame = np.repeat(np.repeat(ramp[None, :, None], 64, 0), 3, 2)
    backend = PerTileExposure()
    out = Enhancer(backend, tile=(64, 96), well_exposed="enhance").enhance([frame])[0].image
    assert len(backend.shapes) > 3
    ratio = out / frame
    assert ratio.max() / ratio.min() < 1.02  # per-tile gains from 0.4/0.03 to 0.4/0.18 matched
