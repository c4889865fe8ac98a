"""Shadows of real low-light captures against sllen's camera pipeline, on the same scenes.

    python scripts/shadow_profile.py /path/to/LOL/our485 [--every 4] [--black-point 0 4 6]

For every k-th pair of a low/ + high/ (or normal/) folder: the ratio of the low image's mean
linear luminance to the high image's, in each tenth of the high image's luminance (4x4-pixel
means, so noise averages out), divided by the same ratio in the ninth tenth. A pure change of
exposure gives 1.0 everywhere; below 1 in the first tenths, the dark capture's shadows are
darker than its midtones relative to the ground truth (a black point, a tone curve's toe);
above 1, lifted (noise clipped at zero, flare). Printed as the median over pairs, for the
real low images and for the high images darkened by the simple synthesis and by the camera
pipeline (flat light, so a light map does not shape the profile) with each ``--black-point``
K (``SynthesisParams.black_point``). This is how ``sllen-train --black-point`` was chosen
(docs/training.md), on LOL's training pairs, never on eval15.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sllen.data.camera import CameraParams, synthesize_camera_low
from sllen.data.pair_layouts import pair_folder
from sllen.data.synthesis import SynthesisParams, srgb_to_linear, synthesize_low
from sllen.runtime.images import REC709_LUMA, read_image

TENTHS = 10


def profile(low: np.ndarray, high: np.ndarray, block: int = 4) -> np.ndarray:
    """Low over high mean linear luminance per tenth of the high's, over the ninth tenth's."""
    lum = [srgb_to_linear(x[..., :3]) @ REC709_LUMA for x in (low, high)]
    h, w = (lum[0].shape[0] // block) * block, (lum[0].shape[1] // block) * block
    lo, hi = (
        x[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3)).ravel()
        for x in lum
    )
    edges = np.quantile(hi, np.linspace(0.0, 1.0, TENTHS + 1))
    tenth = np.clip(np.searchsorted(edges, hi, side="right") - 1, 0, TENTHS - 1)
    ratio = np.array(
        [lo[tenth == t].mean() / max(hi[tenth == t].mean(), 1e-8) for t in range(TENTHS)]
    )
    return ratio / max(ratio[TENTHS - 2], 1e-8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--black-point", type=float, nargs="+", default=[0.0, 6.0])
    args = ap.parse_args()
    pairs = pair_folder(args.folder)[:: args.every]
    simple = SynthesisParams(inhomogeneous_prob=0.0)
    cameras = {
        f"camera, black point {k:g}": CameraParams(inhomogeneous_prob=0.0, black_point=(k / 2.0, k))
        for k in args.black_point
    }
    rows: dict[str, list[np.ndarray]] = {"real": [], "simple": [], **{n: [] for n in cameras}}
    for i, pair in enumerate(pairs):
        high = read_image(pair.high)[..., :3]
        rows["real"].append(profile(read_image(pair.low)[..., :3], high))
        rows["simple"].append(profile(synthesize_low(high, i, simple)[0], high))
        for name, cfg in cameras.items():
            rows[name].append(profile(synthesize_camera_low(high, i, cfg)[0], high))
    print(f"{len(pairs)} pairs; darkest tenth ... brightest, median over pairs")
    for name, values in rows.items():
        print(f"{name:28s} " + " ".join(f"{v:.2f}" for v in np.median(values, axis=0)))


if __name__ == "__main__":
    main()
