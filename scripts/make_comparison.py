"""Side-by-side picture for the docs: input | gamma | CLAHE | sllen | ground truth.

    python scripts/make_comparison.py --weights sllen/weights/sllen-edge.safetensors \
        --out docs/images/comparison.jpg

Rows are evaluation-set photos (never trained on) darkened by the synthesis; every panel is
the full image, resized to a common height for the picture only (the model ran at full size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sllen.baselines import clahe, gamma_auto
from sllen.evalset import Condition, darken_photo, load_photos
from sllen.evaluate import torch_enhancer
from sllen.runtime.images import write_image

ROWS = [
    ("astronaut", Condition(0.03, True)),
    ("coffee", Condition(0.08, False)),
    ("china", Condition(0.03, False)),
    ("flower", Condition(0.08, True)),
    ("motorcycle", Condition(0.2, True)),
]
LABELS = ["input", "gamma", "CLAHE", "sllen", "ground truth"]


def panel(img: np.ndarray, height: int, crop: int = 0) -> Image.Image:
    """A float image as a picture `height` pixels high (a centred square `crop` first, if set)."""
    if crop:
        h, w = img.shape[:2]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        img = img[top : top + crop, left : left + crop]
    im = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return im.resize((round(im.width * height / im.height), height), Image.LANCZOS)


def contact_sheet(labels: list[str], rows: list[list[Image.Image]], height: int) -> Image.Image:
    """Panels in a grid, one labelled column per method, 4 px apart."""
    col_w = [max(r[i].width for r in rows) for i in range(len(labels))]
    head = 22
    canvas = Image.new(
        "RGB", (sum(col_w) + 4 * len(labels), head + len(rows) * (height + 4)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    x = 0
    for i, label in enumerate(labels):
        draw.text((x + 4, 4), label, fill="black")
        for j, row in enumerate(rows):
            canvas.paste(row[i], (x, head + j * (height + 4)))
        x += col_w[i] + 4
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/images/comparison.jpg"))
    ap.add_argument("--height", type=int, default=180)
    args = ap.parse_args()
    enhance, _ = torch_enhancer(args.weights)
    photos, _ = load_photos(sorted({name for name, _ in ROWS}))
    rows = []
    for name, cond in ROWS:
        gt = photos[name]
        low = darken_photo(gt, name, cond)
        ims = [low, gamma_auto(low), clahe(low), enhance(low), gt]
        rows.append([panel(x, args.height) for x in ims])
    write_image(args.out, np.asarray(contact_sheet(LABELS, rows, args.height)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
