"""Noise of real low-light captures against sllen's degradations, on the same scenes.

    python scripts/noise_stats.py /path/to/LOL/our485 [--every 12]

For every k-th pair of a low/ + high/ (or normal/) folder, the real low image and the high
image darkened by the simple synthesis and by the camera pipeline are each measured in the
regions where the high image is flat: the luma and chroma noise (residual around a 7x7 local
mean) relative to the local level. Prints the median and quartiles over the images. This is
how sllen.data.camera.CameraParams was set on LOL's training pairs (never on eval15).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sllen.data.camera import synthesize_camera_low
from sllen.data.pair_layouts import pair_folder
from sllen.data.synthesis import synthesize_low
from sllen.runtime.images import read_image


def box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window (edge padding), HxWxC, by summed-area table."""
    k = 2 * r + 1
    p = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
    c = np.pad(p.cumsum(0).cumsum(1), ((1, 0), (1, 0), (0, 0)))
    h, w = x.shape[:2]
    return (c[k : k + h, k : k + w] - c[:h, k : k + w] - c[k : k + h, :w] + c[:h, :w]) / k**2


def relative_noise(low: np.ndarray, high: np.ndarray) -> tuple[float, float] | None:
    """(luma, chroma) noise std over the local level, where ``high`` is flat."""
    grey = high.mean(axis=2)
    grad = np.zeros_like(grey)
    grad[:, :-1] += np.abs(np.diff(grey, axis=1))
    grad[:-1, :] += np.abs(np.diff(grey, axis=0))
    level = box(low, 3)
    residual = low - level
    mask = (box(grad[..., None], 2)[..., 0] < 0.01) & (level.mean(axis=2) > 0.01)
    if mask.sum() < 300:
        return None
    mean = level.mean(axis=2)[mask].mean()
    luma = residual.mean(axis=2)[mask]
    chroma = (residual - residual.mean(axis=2, keepdims=True))[mask]
    return float(luma.std() / mean), float(chroma.std() / mean)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--every", type=int, default=12)
    args = ap.parse_args()
    pairs = pair_folder(args.folder)[:: args.every]
    results: dict[str, list[tuple[float, float]]] = {"real": [], "simple": [], "camera": []}
    for i, pair in enumerate(pairs):
        high = read_image(pair.high)
        lows = {
            "real": read_image(pair.low),
            "simple": synthesize_low(high, i)[0],
            "camera": synthesize_camera_low(high, i)[0],
        }
        for name, low in lows.items():
            r = relative_noise(low, high)
            if r is not None:
                results[name].append(r)
    for name, rows in results.items():
        a = np.array(rows)
        q = np.percentile(a, [25, 50, 75], axis=0)
        print(
            f"{name:7s} ({len(a)} images): luma noise / level {q[1, 0]:.3f} "
            f"(quartiles {q[0, 0]:.3f}-{q[2, 0]:.3f}), chroma {q[1, 1]:.3f} "
            f"(quartiles {q[0, 1]:.3f}-{q[2, 1]:.3f})"
        )


if __name__ == "__main__":
    main()
