"""Per-tile gains that give a tiled frame one exposure (used by ``runtime/tiling.py``).

The network decides each tile's exposure and colour from what the tile shows, so neighbouring
tiles disagree; blended, they would leave broad lighter and darker bands. Each pair of
neighbours gives one equation in log space, log g_a + log m_a = log g_b + log m_b (m: a
tile's mean over the strip they share, per channel), weighted by the strip's size and
brightness (a dark strip's ratio is mostly noise). Least squares over the tile grid, with the
logs of the gains summing to zero so the frame's overall brightness stays the tiles' own.

The normal equations are a weighted Laplacian on the tile grid (at most five non-zeros a
row), solved by conjugate gradients with a diagonal preconditioner in plain numpy: a dense
solver would grow with the cube of the tile count (a 12 MP photo in 64-pixel tiles has about
5,000), and scipy's sparse solvers are not a dependency of the runtime.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-3  # keeps the logs of black strips finite (values in [0, 1])
_FLOOR = 1e-3  # the least weight (per unit of strip size) an edge keeps: the grid stays joined
_MAX_GAIN = 4.0  # a tile is never moved by more than two stops


def _strip_edges(
    results: dict[tuple[int, int], np.ndarray],
    ys: list[int],
    xs: list[int],
    size: tuple[int, int],
    channels: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weights and log ratios of the horizontal (ny, nx-1, C) and vertical (ny-1, nx, C) edges:
    the equation of an edge from tile a to its right or lower neighbour b is x_a - x_b = r."""
    th, tw = size
    ny, nx = len(ys), len(xs)
    wh, rh = np.zeros((ny, max(nx - 1, 0), channels)), np.zeros((ny, max(nx - 1, 0), channels))
    wv, rv = np.zeros((max(ny - 1, 0), nx, channels)), np.zeros((max(ny - 1, 0), nx, channels))
    for (iy, ix), res in results.items():
        if ix + 1 < nx:
            x0 = xs[ix + 1] - xs[ix]  # where the right neighbour starts, in this tile
            a, b = res[:, x0:, :channels], results[(iy, ix + 1)][:, : tw - x0, :channels]
            wh[iy, ix], rh[iy, ix] = _edge(a, b)
        if iy + 1 < ny:
            y0 = ys[iy + 1] - ys[iy]
            a, b = res[y0:, :, :channels], results[(iy + 1, ix)][: th - y0, :, :channels]
            wv[iy, ix], rv[iy, ix] = _edge(a, b)
    return wh, rh, wv, rv


def _edge(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: the weight and log ratio of two tiles' views of one strip."""
    c = a.shape[2]
    m_a = np.maximum(a.reshape(-1, c).mean(0, dtype=np.float64), 0.0)  # a foreign model's
    m_b = np.maximum(b.reshape(-1, c).mean(0, dtype=np.float64), 0.0)  # negatives: no NaN
    size = np.sqrt(a.shape[0] * a.shape[1])
    return size * (np.sqrt(m_a * m_b) + _FLOOR), np.log(m_b + _EPS) - np.log(m_a + _EPS)


def _laplacian(x: np.ndarray, wh: np.ndarray, wv: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    e = wh * (x[:, :-1] - x[:, 1:])
    out[:, :-1] += e
    out[:, 1:] -= e
    e = wv * (x[:-1] - x[1:])
    out[:-1] += e
    out[1:] -= e
    return out


def solve_logs(
    wh: np.ndarray, rh: np.ndarray, wv: np.ndarray, rv: np.ndarray, tol: float = 1e-8
) -> np.ndarray:
    """The (ny, nx, C) log gains minimising sum w (x_a - x_b - r)^2 over the edges, each
    channel's summing to zero (preconditioned conjugate gradients)."""
    ny, nx, c = wh.shape[0], wv.shape[1], wh.shape[2]
    rhs = np.zeros((ny, nx, c))
    rhs[:, :-1] += wh * rh
    rhs[:, 1:] -= wh * rh
    rhs[:-1] += wv * rv
    rhs[1:] -= wv * rv
    diag = np.zeros((ny, nx, c))
    diag[:, :-1] += wh
    diag[:, 1:] += wh
    diag[:-1] += wv
    diag[1:] += wv
    diag = np.where(diag > 0, diag, 1.0)
    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = r / diag
    p = z.copy()
    rz = (r * z).sum((0, 1))
    scale = np.sqrt((rhs**2).sum((0, 1))) + 1e-30
    for _ in range(min(10 * ny * nx, 5000)):  # exact in at most ny * nx steps, in theory
        if np.all(np.sqrt((r**2).sum((0, 1))) <= tol * scale):
            break
        ap = _laplacian(p, wh, wv)
        pap = (p * ap).sum((0, 1))
        alpha = np.where(pap > 0, rz / np.where(pap > 0, pap, 1.0), 0.0)
        x += alpha * p
        r -= alpha * ap
        z = r / diag
        rz_new = (r * z).sum((0, 1))
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        p = z + beta * p
        rz = rz_new
    return x - x.mean((0, 1))


def match_gains(
    results: dict[tuple[int, int], np.ndarray],
    ys: list[int],
    xs: list[int],
    size: tuple[int, int],
    channels: int,
) -> dict[tuple[int, int], np.ndarray]:
    """Per tile (by grid position), float32 gains for the first ``channels`` channels."""
    logs = solve_logs(*_strip_edges(results, ys, xs, size, channels))
    if not np.all(np.isfinite(logs)):  # a NaN from the model: leave the tiles as they are
        logs = np.zeros_like(logs)
    gains = np.clip(np.exp(logs), 1 / _MAX_GAIN, _MAX_GAIN).astype(np.float32)
    return {(iy, ix): gains[iy, ix] for iy, ix in results}
