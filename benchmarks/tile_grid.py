"""Tiles chosen by ``fit_tiles`` against tiles as large as the pixel budget (sllen's choice
before 2026-12-07), on a photo just over the budget: time, and PSNR against the whole frame.

    python benchmarks/tile_grid.py PHOTO [--scale 2] [--threads 1]

The bundled ONNX file on ONNX Runtime's CPU provider. ``--scale 2`` runs the photo at half its
size against a quarter of the 4096x2160 budget: a 12 MP phone photo's geometry (4032x3024
under 4K) in a quarter of the time. Prints each way's seconds, its PSNR against the whole
frame and its mean (the tiles' gains keep the frame's exposure).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from PIL import Image

from sllen.metrics.psnr_ssim import psnr
from sllen.runtime.backends import open_backend
from sllen.runtime.backends.onnxruntime import MAX_PIXELS_LINEAR
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.tiling import DEFAULT_OVERLAP, _starts, enhance_tiled


def budget_sized_tile(h: int, w: int, budget: int, m: int = 16) -> tuple[int, int]:
    """The tile the runtime chose before fit_tiles: the frame's aspect, about `budget` pixels."""
    ph, pw = -(-h // m) * m, -(-w // m) * m
    th = min(ph, max(m, int((budget * ph / pw) ** 0.5) // m * m))
    return th, min(pw, max(m, budget // th // m * m))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    img = Image.open(args.photo).convert("RGB")
    img = img.resize((img.width // args.scale, img.height // args.scale), Image.LANCZOS)
    x = np.asarray(img, np.float32) / 255
    h, w = x.shape[:2]
    budget = MAX_PIXELS_LINEAR // args.scale**2
    with open_backend(None, "onnxruntime", threads=args.threads) as b:
        b._info = dataclasses.replace(b._info, max_pixels=budget)  # the scaled budget
        fitted = Enhancer(b, well_exposed="enhance")
        whole = Enhancer(b, tile=(h + 16, w + 16), well_exposed="enhance")
        old = budget_sized_tile(h, w, budget)
        n_old = len(_starts(h, old[0], DEFAULT_OVERLAP)) * len(_starts(w, old[1], DEFAULT_OVERLAP))
        print(
            f"{w}x{h}, budget {budget} pixels: fit_tiles {fitted.tile_for(h, w)}, "
            f"budget-sized {old} x {n_old}"
        )
        runs = {
            "whole": lambda: whole.enhance([x])[0].image,
            "fit_tiles": lambda: fitted.enhance([x])[0].image,
            "budget-sized tiles": lambda: enhance_tiled(x, fitted._run, old, DEFAULT_OVERLAP, 1, 3),
        }
        ref = None
        for name, run in runs.items():
            t = time.perf_counter()
            out = np.clip(run()[..., :3], 0.0, 1.0)
            dt = time.perf_counter() - t
            ref = out if ref is None else ref
            vs = "" if out is ref else f", {psnr(out, ref):.2f} dB from the whole frame"
            print(f"{name}: {dt:.1f} s{vs}, mean {out.mean():.4f}", flush=True)


if __name__ == "__main__":
    main()
