"""runtime/tile_gains.py: per-tile gains from the strips neighbours share, on grids of any size."""

from __future__ import annotations

import numpy as np

from sllen.runtime.tile_gains import solve_logs
from sllen.runtime.tiling import enhance_tiled


def test_a_large_grid_recovers_known_gains() -> None:
    # 1,200 tiles (a 12 MP photo in tiles of about 100 pixels): a dense least-squares solve
    # would need a 2,400 x 1,200 matrix per channel; the grid solver recovers the gains.
    rng = np.random.default_rng(0)
    ny, nx = 30, 40
    truth = rng.normal(0, 0.3, (ny, nx, 3))
    truth -= truth.mean((0, 1))
    wh, wv = rng.uniform(0.01, 20, (ny, nx - 1, 3)), rng.uniform(0.01, 20, (ny - 1, nx, 3))
    logs = solve_logs(wh, truth[:, :-1] - truth[:, 1:], wv, truth[:-1] - truth[1:])
    assert np.abs(logs - truth).max() < 1e-5


def test_one_row_one_column_and_one_tile() -> None:
    for shape in ((1, 5), (5, 1), (1, 1)):
        ny, nx = shape
        truth = np.linspace(-0.5, 0.5, ny * nx).reshape(ny, nx, 1)
        truth -= truth.mean()
        wh, wv = np.ones((ny, nx - 1, 1)), np.ones((ny - 1, nx, 1))
        logs = solve_logs(wh, truth[:, :-1] - truth[:, 1:], wv, truth[:-1] - truth[1:])
        assert np.allclose(logs, truth, atol=1e-9), shape


def test_negative_or_nan_tiles_do_not_spread_nan() -> None:
    # A foreign model may give negatives (or a NaN in fp16): no NaN gains for the whole frame.
    img = np.full((64, 200, 3), 0.3, np.float32)
    offsets = iter(np.linspace(-0.5, 0.2, 20))

    def shifted(tiles: list[np.ndarray]) -> list[np.ndarray]:
        return [t + next(offsets) for t in tiles]

    out = enhance_tiled(img, shifted, (64, 64), overlap=16, match=3)
    assert np.isfinite(out).all()

    def nan_tile(tiles: list[np.ndarray]) -> list[np.ndarray]:
        out = [t.copy() for t in tiles]
        out[0][0, 0, 0] = np.nan
        return out

    out = enhance_tiled(img, nan_tile, (64, 64), overlap=16, batch=8, match=3)
    assert np.isfinite(out[:, 100:]).all()  # the NaN stays where the model put it


def test_overlap_is_capped_per_axis() -> None:
    shapes: list[tuple[int, ...]] = []

    def identity(tiles: list[np.ndarray]) -> list[np.ndarray]:
        shapes.extend(t.shape for t in tiles)
        return tiles

    enhance_tiled(np.zeros((20, 300, 3), np.float32), identity, (64, 64))
    # tiles 20 high (the frame) and 64 wide: the width's overlap is 16 (a quarter of 64), not
    # 5 (a quarter of the frame's 20 rows): 6 tiles stepping by 48, not 5 by 59
    assert len(shapes) == 6 and set(shapes) == {(20, 64, 3)}
