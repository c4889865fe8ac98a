"""Padding to a multiple of 16, batching, and seamless tiling."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.runtime.preprocess import (
    beside,
    from_batch,
    pad_frame,
    padded_size,
    to_batch,
    to_uint8,
)
from sllen.runtime.tiling import _starts, enhance_tiled, fit_tiles


def test_padded_size_and_roundtrip() -> None:
    assert padded_size(720, 1280) == (720, 1280)
    assert padded_size(1080, 1920) == (1088, 1920)
    assert padded_size(1, 17) == (16, 32)
    assert padded_size(721, 1281) == (736, 1296)
    img = np.random.default_rng(0).random((37, 50, 3)).astype(np.float32)
    batch = to_batch([img, img])
    assert batch.shape == (2, 3, 48, 64) and batch.flags.c_contiguous
    back = from_batch(batch, (37, 50))
    assert np.array_equal(back[1], img)
    # reflect padding mirrors the content, so no dark border reaches the network
    assert np.allclose(batch[0, :, 37, :50], img[35].T)


def test_tiny_frames_use_edge_padding() -> None:
    img = np.full((3, 5, 3), 0.3, np.float32)
    out = pad_frame(img, (16, 16))
    assert out.shape == (16, 16, 3) and np.allclose(out, 0.3)


def test_to_uint8_rounds() -> None:
    assert to_uint8(np.array([0.0, 0.5 / 255, 1.2, -1.0])).tolist() == [0, 1, 255, 0]


@pytest.mark.parametrize("size", [(100, 150), (64, 64), (257, 130)])
def test_tiling_reconstructs_an_identity_exactly(size: tuple[int, int]) -> None:
    img = np.random.default_rng(1).random((*size, 3)).astype(np.float32)
    calls = []

    def identity(tiles: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(tiles))
        return [t.copy() for t in tiles]

    out = enhance_tiled(img, identity, (64, 64), overlap=16, batch=3)
    assert np.allclose(out, img, atol=1e-6)
    assert max(calls) <= 3


def test_tiles_cover_the_frame_with_overlap() -> None:
    # Every pixel carries its own coordinates: the blended output equals the input only if the
    # tiles cover the whole frame; the tile shapes are recorded as enhance_tiled asks.
    yy, xx = np.mgrid[0:300, 0:500].astype(np.float32)
    image = np.stack([yy / 300, xx / 500, np.zeros_like(yy)], axis=2)
    shapes: list[tuple[int, ...]] = []

    def identity(tiles: list[np.ndarray]) -> list[np.ndarray]:
        shapes.extend(t.shape for t in tiles)
        return tiles

    out = enhance_tiled(image, identity, (128, 128), overlap=32)
    assert np.allclose(out, image, atol=1e-6)
    assert len(shapes) > 6 and set(shapes) == {(128, 128, 3)}
    shapes.clear()
    small = image[:100, :100]
    assert np.allclose(enhance_tiled(small, identity, (128, 128)), small)
    assert shapes == [(100, 100, 3)]


def test_tiling_has_no_seam_with_a_per_tile_gain() -> None:
    """Tiles that disagree (a different gain each) blend smoothly: no step at a tile edge."""
    img = np.full((64, 256, 3), 0.5, np.float32)
    gains = iter(np.linspace(0.8, 1.2, 20))

    def gain(tiles: list[np.ndarray]) -> list[np.ndarray]:
        return [t * next(gains) for t in tiles]

    out = enhance_tiled(img, gain, (64, 96), overlap=32)
    row = out[10, :, 0]
    assert np.abs(np.diff(row)).max() < 0.02  # a hard seam would jump by ~0.05


def test_matching_gives_tiles_that_disagree_one_gain() -> None:
    """With ``match``, per-tile gains (as a network's per-tile exposure decisions are) are
    undone to one gain for the frame: their geometric mean, so the overall level stays."""
    rng = np.random.default_rng(0)
    img = rng.uniform(0.2, 0.6, (100, 300, 4)).astype(np.float32)
    gains = iter(np.linspace(0.7, 1.4, 40))
    used: list[float] = []

    def gain(tiles: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for t in tiles:
            used.append(next(gains))
            out.append(t * np.array([used[-1]] * 3 + [1.0], np.float32))  # not channel 3
        return out

    out = enhance_tiled(img, gain, (64, 96), overlap=32, match=3)
    mean_gain = float(np.exp(np.mean(np.log(used))))
    assert len(used) > 4
    ratio = out[..., :3] / img[..., :3]  # the gains differ by up to 2x; now by under 1 %
    assert np.allclose(ratio, mean_gain, rtol=0.01)
    assert np.allclose(out[..., 3], img[..., 3], atol=1e-6)  # logits are left as they are


def test_small_tiles_overlap_by_at_most_a_quarter() -> None:
    shapes: list[tuple[int, ...]] = []

    def identity(tiles: list[np.ndarray]) -> list[np.ndarray]:
        shapes.extend(t.shape for t in tiles)
        return tiles

    img = np.zeros((64, 640, 3), np.float32)
    enhance_tiled(img, identity, (64, 64))  # the default overlap (64) would step by 1 pixel
    assert len(shapes) == 13  # 16-pixel overlap: steps of 48


def test_tile_progress_is_reported_per_batch() -> None:
    heard: list[tuple[int, int]] = []
    img = np.zeros((100, 200, 3), np.float32)
    enhance_tiled(
        img, lambda t: t, (64, 64), overlap=16, batch=2, on_tile=lambda d, n: heard.append((d, n))
    )
    total = heard[-1][1]
    assert total == 2 * 4 and heard == [(d, total) for d in (2, 4, 6, 8)]


@pytest.mark.parametrize("rotation", [0, 90, -90, 180, 270, 450])
def test_beside_is_side_by_side_once_turned_for_display(rotation: int) -> None:
    rng = np.random.default_rng(1)
    left, right = rng.random((5, 7, 3)), rng.random((5, 7, 3))
    k = round(rotation / 90)
    stored = beside(left, right, rotation)
    assert stored.flags.c_contiguous
    assert stored.shape == ((10, 7, 3) if k % 2 else (5, 14, 3))
    shown = np.rot90(stored, k)  # what a player shows: the display matrix's turn
    np.testing.assert_array_equal(shown, np.concatenate([np.rot90(left, k), np.rot90(right, k)], 1))


def _grid(h: int, w: int, tile: tuple[int, int]) -> tuple[int, float]:
    """Tiles enhance_tiled cuts (overlap 64) and the pixels they hold over the frame's."""
    ys = _starts(h, tile[0], min(64, tile[0] // 4))
    xs = _starts(w, tile[1], min(64, tile[1] // 4))
    return len(ys) * len(xs), len(ys) * len(xs) * tile[0] * tile[1] / (h * w)


@pytest.mark.parametrize(
    ("size", "limit", "budget", "tiles"),
    [
        ((3024, 4032), (3024, 4032), 2160 * 4096, 2),  # a 12 MP phone photo under the 4K budget
        ((4032, 3024), (4032, 3024), 2160 * 4096, 2),  # the same, portrait
        ((6000, 8000), (6000, 8000), 2160 * 4096, 6),  # 48 MP
        ((2160, 3840), (1088, 1920), None, 9),  # 4K under a 1080p engine profile
        ((1104, 1920), (1088, 1920), None, 2),  # just over it
    ],
)
def test_tiles_fit_their_limits_with_little_more_than_the_frames_work(
    size: tuple[int, int], limit: tuple[int, int], budget: int | None, tiles: int
) -> None:
    th, tw = fit_tiles(*size, limit, budget, 16, 64)
    assert th <= limit[0] and tw <= limit[1] and th % 16 == 0 and tw % 16 == 0
    assert budget is None or th * tw <= budget
    count, work = _grid(*size, (th, tw))
    # tiles as large as the limit took 2.9x the 12 MP photo's work (4 tiles), 2.3x the 4K's
    assert count == tiles and work < 1.12, (th, tw, count, work)


def test_tiles_keep_a_useful_side_under_a_tiny_budget() -> None:
    th, tw = fit_tiles(208, 304, (208, 304), 64 * 96, 16, 64)
    assert th * tw <= 64 * 96 and min(th, tw) >= 64  # not 16-row strips
    assert fit_tiles(64, 64, (48, 48), None, 16, 64) == (48, 48)
