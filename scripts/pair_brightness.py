"""How well a paired set's ground-truth exposure follows the dark input's.

    python scripts/pair_brightness.py LOL/our485 [LOL/eval15 ...]
    python scripts/pair_brightness.py --generated 300      # sllen-train's own pairs

For every low/high pair (the layouts sllen-eval reads): the mean grey level of both images;
prints Pearson's r of the two means, of their logarithms, and the spread of the brightening
ratio. A small r means the ground truth's exposure cannot be read off the input, which is
what GT-mean PSNR sets aside (docs/metrics.md). ``--generated N`` does the same for items 0 to
N-1 of the data set sllen-train draws from with the bundled model's recipe (generated scenes
with ``--scene-detail --detail-albedo 0``, ``--degradation mixed --camera-share 0.5``, seed 1;
128-pixel crops; training visits the items shuffled), so a data set can be compared with what
the network learned from; ``--gt-exposure S`` adds sllen-train's option of that name. The
"high spread" is the standard deviation of log2 of the ground truths' mean grey: how much
their brightness varies, in stops.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sllen.evaluate import iter_pairs
from sllen.metrics.gt_mean import LUMA
from sllen.runtime.errors import InputError
from sllen.runtime.images import read_image


def folder_means(folder: Path) -> Iterator[tuple[float, float]]:
    paired, items = iter_pairs(folder)
    if not paired:
        raise InputError(f"{folder}: no low/ + high/ (or normal/) pairs")
    for _name, lo, hi in items:
        assert hi is not None  # paired
        yield float((read_image(lo) @ LUMA).mean()), float((read_image(hi) @ LUMA).mean())


def generated_means(count: int, gt_exposure: float = 0.0) -> Iterator[tuple[float, float]]:
    from sllen.config import get_preset
    from sllen.train.config import TrainConfig
    from sllen.train.data import build_datasets

    with tempfile.TemporaryDirectory() as out:  # the config wants an output folder; unused
        cfg = TrainConfig(
            out=Path(out), scene_detail=True, detail_albedo=0.0, degradation="mixed",
            camera_share=0.5, seed=1, gt_exposure=gt_exposure,
        )  # fmt: skip
        lle = build_datasets(cfg, get_preset("edge")).lle
    for i in range(count):
        sample = lle[i]
        low, high = (sample[k].permute(1, 2, 0).numpy() for k in ("low", "high"))
        yield float((low @ LUMA).mean()), float((high @ LUMA).mean())


def summary(name: str, means: list[tuple[float, float]]) -> str:
    a, b = np.array(means).T
    a = np.maximum(a, 1e-4)  # an all-black generated crop: its log and ratio stay finite
    ratio = np.percentile(b / a, [10, 50, 90])
    return (
        f"{name}: {len(a)} pairs; r(mean low, mean high) = {np.corrcoef(a, b)[0, 1]:.2f}, "
        f"r of the logs = {np.corrcoef(np.log(a), np.log(b))[0, 1]:.2f}; "
        f"high/low ratio 10/50/90%: {ratio[0]:.1f} / {ratio[1]:.1f} / {ratio[2]:.1f}; "
        f"median high {np.median(b):.3f}; high spread {np.log2(np.maximum(b, 1e-4)).std():.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--generated", type=int, default=0, metavar="N")
    parser.add_argument("--gt-exposure", type=float, default=0.0, metavar="S")
    args = parser.parse_args(argv)
    if not args.folders and args.generated <= 0:
        parser.error("give paired folders, --generated N, or both")
    try:
        for folder in args.folders:
            print(summary(str(folder), list(folder_means(folder))))
        if args.generated > 0:
            means = list(generated_means(args.generated, args.gt_exposure))
            print(summary("generated", means))
    except InputError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
