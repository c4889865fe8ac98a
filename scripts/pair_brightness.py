"""How well a paired set's ground-truth exposure follows the dark input's.

    python scripts/pair_brightness.py LOL/our485 [LOL/eval15 ...]

For every low/high pair (the layouts sllen-eval reads): the mean grey level of both images;
prints Pearson's r of the two means, of their logarithms, and the spread of the brightening
ratio. A small r means the ground truth's exposure cannot be read off the input, which is
what GT-mean PSNR sets aside (docs/metrics.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sllen.evaluate import iter_pairs
from sllen.metrics.gt_mean import LUMA
from sllen.runtime.images import read_image


def main(folders: list[str]) -> None:
    if not folders:
        sys.exit(__doc__)
    for folder in folders:
        paired, items = iter_pairs(Path(folder))
        if not paired:
            sys.exit(f"{folder}: no low/ + high/ (or normal/) pairs")
        low, high = [], []
        for _name, lo, hi in items:
            assert hi is not None  # paired
            low.append(float((read_image(lo) @ LUMA).mean()))
            high.append(float((read_image(hi) @ LUMA).mean()))
        a, b = np.array(low), np.array(high)
        ratio = np.percentile(b / a, [10, 50, 90])
        print(
            f"{folder}: {len(a)} pairs; r(mean low, mean high) = {np.corrcoef(a, b)[0, 1]:.2f}, "
            f"r of the logs = {np.corrcoef(np.log(a), np.log(b))[0, 1]:.2f}; "
            f"high/low ratio 10/50/90%: {ratio[0]:.1f} / {ratio[1]:.1f} / {ratio[2]:.1f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
