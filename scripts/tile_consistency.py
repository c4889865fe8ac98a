"""How far a tiled result is from the whole frame's, with and without the tiles' matching gains.

    python scripts/tile_consistency.py LOL/eval15 [--tile 256] [--model M] [--threads 1]

For each low image of a folder (paired: low/ + high/ or normal/; else every image), the model
(default: the bundled one, on ONNX Runtime, ``--well-exposed enhance``) enhances the whole
frame, then the frame in tiles of ``--tile`` pixels, once blended as the tiles came out and
once with the per-tile gains that make neighbours agree (``sllen.runtime.tiling``, what
sllen-run does). Prints per image and on average the PSNR of each tiled result against the
whole frame's, and, for pairs, of all three against the ground truth. Measured with it:
docs/runtime.md ("Pre- and post-processing").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sllen.evaluate import iter_pairs
from sllen.metrics.psnr_ssim import psnr
from sllen.runtime.backends import open_backend
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.images import read_image
from sllen.runtime.tiling import DEFAULT_OVERLAP, enhance_tiled

COLUMNS = ("plain vs whole", "matched vs whole", "whole vs GT", "plain vs GT", "matched vs GT")


def compare(
    enhancer: Enhancer, low: np.ndarray, high: np.ndarray | None, tile: int
) -> dict[str, float]:
    """PSNRs of one image (see the module docstring); the GT columns only with ``high``."""

    def image(result: np.ndarray) -> np.ndarray:
        return np.clip(result[..., :3], 0.0, 1.0)

    whole = image(enhancer._run([low])[0])
    plain, matched = (
        image(enhance_tiled(low, enhancer._run, (tile, tile), DEFAULT_OVERLAP, match=m))
        for m in (0, 3)
    )
    row = {"plain vs whole": psnr(plain, whole), "matched vs whole": psnr(matched, whole)}
    if high is not None:
        row |= {
            "whole vs GT": psnr(whole, high),
            "plain vs GT": psnr(plain, high),
            "matched vs GT": psnr(matched, high),
        }
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--tile", type=int, default=256, help="tile side in pixels (default 256)")
    ap.add_argument("--model", help=".onnx file (default: the bundled one)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.tile < 16:
        ap.error("--tile must be at least 16")
    _, found = iter_pairs(args.folder)
    backend = open_backend(args.model, "onnxruntime", threads=args.threads)
    enhancer = Enhancer(backend, well_exposed="enhance")
    rows = []
    for name, low_path, high_path in found:
        high = read_image(high_path) if high_path is not None else None
        row = compare(enhancer, read_image(low_path), high, args.tile)
        rows.append(row)
        print(name, "  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    keys = [k for k in COLUMNS if k in rows[0]]
    print(f"mean over {len(rows)} images, tiles of {args.tile}:")
    for k in keys:
        print(f"  {k}: {np.mean([r[k] for r in rows]):.2f} dB")


if __name__ == "__main__":
    main()
