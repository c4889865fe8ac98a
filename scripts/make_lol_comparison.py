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

from sllen.baselines import gamma_auto
from sllen.data.pair_layouts import find_pairs
from sllen.evaluate import torch_enhancer
from sllen.runtime.images import read_image, write_image

# Beside this script; a script's own folder is on sys.path when Python runs it.
from make_comparison import contact_sheet, panel  # noqa: E402  isort: skip


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
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder")
    pairs = {p.name: p for p in find_pairs(args.data, "eval") or []}
    missing = [n for n in args.names if n not in pairs]
    if missing:  # the default names are eval15's
        ap.error(f"{args.data} has no pairs named {', '.join(missing)}: give --names")
    models = [torch_enhancer(w)[0] for w in args.weights]
    columns = ["input", "gamma", *labels, "ground truth"]
    rows = []
    for name in args.names:
        pair = pairs[name]
        low, gt = read_image(pair.low), read_image(pair.high)
        ims = [low, gamma_auto(low), *(m(low) for m in models), gt]
        rows.append([panel(x, args.height, args.crop) for x in ims])
    write_image(args.out, np.asarray(contact_sheet(columns, rows, args.height)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
