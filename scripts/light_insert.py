"""A light in the frame: how much darker a model makes the rest of a dark photograph.

Night photographs hold lamps, lit windows and signs. A model that reads a bright spot as light
falling on the scene gives the scene less gain; one that reads it as what it is leaves the rest
alone. For each photograph of FOLDER this pastes a white, hard-edged 12x40-pixel "lit window"
(no glow: unlike the training emitters of ``--emitters``) a third of the way down the middle,
runs the model on the photograph with and without it, and compares the results' mean linear
luminance in two regions: the ring 3-30 pixels around the window, and everything farther than
100 pixels from it:

    change = mean(with the window) / mean(without) - 1

0 %: the light changes nothing around it; -50 %: that region comes out half as bright.

    python scripts/light_insert.py LOL/eval15/low [--model FILE] [--threads N]

Dark photographs without lights of their own show the effect most plainly (LOL's low images).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from sllen.runtime.api import open_enhancer
from sllen.runtime.errors import SllenError
from sllen.runtime.exposure import srgb_to_linear
from sllen.runtime.images import REC709_LUMA, list_images, read_image

WINDOW = (40, 12)  # height, width in pixels
RING = (2, 30)  # pixels from the window: the near region
FAR = 100  # pixels from the window: the far region begins


def with_window(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the photograph with the window pasted in, the window's mask)."""
    h, w = image.shape[:2]
    y0, x0 = h // 3, w // 2
    mask = np.zeros((h, w), bool)
    mask[y0 : y0 + WINDOW[0], x0 : x0 + WINDOW[1]] = True
    lit = image.copy()
    lit[mask] = 1.0
    return lit, mask


def changes(plain: np.ndarray, lit: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(near change, far change) of `lit`'s result against `plain`'s, in linear light."""
    distance = ndimage.distance_transform_edt(~mask)
    near = (distance > RING[0]) & (distance <= RING[1])
    far = distance > FAR
    a = srgb_to_linear(np.clip(plain, 0, 1)) @ REC709_LUMA
    b = srgb_to_linear(np.clip(lit, 0, 1)) @ REC709_LUMA
    return (
        float(b[near].mean() / max(float(a[near].mean()), 1e-6) - 1),
        float(b[far].mean() / max(float(a[far].mean()), 1e-6) - 1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if not args.folder.is_dir():
        print(f"error: {args.folder}: not a folder", file=sys.stderr)
        return 2
    near: list[float] = []
    far: list[float] = []
    with open_enhancer(args.model, threads=args.threads, well_exposed="enhance") as enhancer:
        for path in list_images(args.folder):
            try:
                image = read_image(path)
            except SllenError as e:
                print(f"skipped: {e}", file=sys.stderr)
                continue
            if min(image.shape[:2]) < 2 * FAR + WINDOW[0]:
                side = 2 * FAR + WINDOW[0]
                print(f"skipped: {path.name}: smaller than {side} pixels a side", file=sys.stderr)
                continue
            lit, mask = with_window(image)
            n, f = changes(enhancer.enhance(image), enhancer.enhance(lit), mask)
            near.append(n)
            far.append(f)
            print(f"{path.name}: near {100 * n:+.1f}%, far {100 * f:+.1f}%")
    if not near:
        print(f"no photograph in {args.folder} to test")
        return 1
    print(
        f"{len(near)} photographs: with the light, the ring {RING[0] + 1}-{RING[1]} px around it "
        f"changes by {100 * statistics.median(near):+.1f}% (median; lowest "
        f"{100 * min(near):+.1f}%), the picture beyond {FAR} px by "
        f"{100 * statistics.median(far):+.1f}% (lowest {100 * min(far):+.1f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
