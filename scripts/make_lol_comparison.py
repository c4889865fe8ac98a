"""Side-by-side picture on real sensor pairs: input | gamma | one column per model | ground truth.

    python scripts/make_lol_comparison.py --data /path/to/LOL/eval15 \
        --weights old.safetensors new.safetensors --labels "sllen (old)" "sllen (new)" \
        --out lol-comparison.jpg

For judging models (colour speckle, blotches, brightness) on real photographs. LOL's images
are not redistributed by this project: keep the picture out of the repository.
Every panel is the full image, resized to a common height for the picture only (the models
ran at full size); ``--crop`` shows a centred crop at full resolution instead, where noise is
visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sllen.baselines import gamma_auto
from sllen.data.pair_layouts import find_pairs
from sllen.evaluate import torch_enhancer
from sllen.runtime.images import read_image, write_image


def panel(img: np.ndarray, height: int, crop: int) -> Image.Image:
    if crop:
        h, w = img.shape[:2]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        img = img[top : top + crop, left : left + crop]
    im = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return im.resize((round(im.width * height / im.height), height), Image.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--weights", type=Path, nargs="+", default=[None])
    ap.add_argument("--labels", nargs="+", default=None)
    ap.add_argument("--names", nargs="+", default=["1", "22", "55", "146", "748"])
    ap.add_argument("--out", type=Path, default=Path("lol-comparison.jpg"))
    ap.add_argument("--height", type=int, default=200)
    ap.add_argument("--crop", type=int, default=0, help="centred square crop (pixels), 0 = off")
    args = ap.parse_args()
    labels = args.labels or [f"sllen {i + 1}" for i in range(len(args.weights))]
    models = [torch_enhancer(w)[0] for w in args.weights]
    pairs = {p.name: p for p in find_pairs(args.data, "eval") or []}
    columns = ["input", "gamma", *labels, "ground truth"]
    rows = []
    for name in args.names:
        pair = pairs[name]
        low, gt = read_image(pair.low), read_image(pair.high)
        ims = [low, gamma_auto(low), *(m(low) for m in models), gt]
        rows.append([panel(x, args.height, args.crop) for x in ims])
    col_w = [max(r[i].width for r in rows) for i in range(len(columns))]
    head = 22
    canvas = Image.new(
        "RGB", (sum(col_w) + 4 * len(columns), head + len(rows) * (args.height + 4)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    x = 0
    for i, label in enumerate(columns):
        draw.text((x + 4, 4), label, fill="black")
        for j, row in enumerate(rows):
            canvas.paste(row[i], (x, head + j * (args.height + 4)))
        x += col_w[i] + 4
    write_image(args.out, np.asarray(canvas))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
