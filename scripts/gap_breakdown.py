"""Where a model's PSNR gap to the ground truth lies: exposure, tone curve, colour or the rest.

    python scripts/gap_breakdown.py --weights W.safetensors LOL/eval15 [--threads 1]
    python scripts/gap_breakdown.py --weights W.safetensors LOL --holdout 15

``--holdout N`` scores the N training pairs that ``sllen-train --val-holdout N`` holds out.
The dB columns are not additive parts (PSNR is a log of the error): compare the mean squared
errors they stand for when ranking causes.

A diagnostic, not a metric: each column corrects the output with something taken from the
ground truth (an "oracle") and scores it again (RGB PSNR, as sllen-eval), so the distance
between columns says how much of the gap each property explains:

- plain: the output as it is (sllen-eval's PSNR);
- GT-mean: scaled to the ground truth's mean grey (sllen-eval's GT-mean PSNR): exposure set aside;
- tone curve: the GT-mean output's luma sent through the per-image non-decreasing curve that
  best fits the ground truth's luma (64 bins, isotonic fit), its chroma kept: a global tone
  curve set aside too;
- GT chroma: the output's luma (GT-mean) with the ground truth's chroma: colour set aside;
- GT colour 15px: the same with the ground truth's chroma averaged over 15x15 pixels: colour
  set aside except its fine detail (the ground truth's chroma noise, and colour edges);
- GT luma: the ground truth's luma with the output's chroma (GT-mean, since chroma scales with
  exposure): all of the luma set aside, so what is left is colour alone.

It also prints the best constant output exposure over the set (every output scaled to one mean
grey level), against which the model's own exposure guess can be judged, and the training's
smooth-L1 loss (sllen.losses) of the outputs with their chroma scaled by 0.5, 1 and 1.5: when it
is lowest below 1, the loss itself rewards washed-out colour where the hue is uncertain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sllen.evaluate import iter_pairs, torch_enhancer
from sllen.metrics.gt_mean import LUMA, gt_mean_rescale
from sllen.metrics.psnr_ssim import psnr
from sllen.runtime.images import read_image

# Full-range BT.601 YCbCr: luma is sllen.metrics.gt_mean's grey
_YCC = np.array([LUMA, [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_RGB = np.linalg.inv(_YCC)
COLUMNS = ("plain", "GT-mean", "tone curve", "GT chroma", "GT colour 15px", "GT luma")
LEVELS = np.round(np.arange(0.30, 0.601, 0.05), 2)
CHROMA_SCALES = (0.5, 1.0, 1.5)


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _YCC.T


def to_rgb(ycc: np.ndarray) -> np.ndarray:
    return np.clip(ycc @ _RGB.T, 0.0, 1.0)


def isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in weighted least squares
    (pool-adjacent-violators; weights > 0)."""
    blocks: list[list[float]] = []  # [weighted mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            b = blocks.pop()
            a = blocks[-1]
            a[0] = (a[0] * a[1] + b[0] * b[1]) / (a[1] + b[1])
            a[1] += b[1]
            a[2] += b[2]
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks])


def tone_curve_fit(out: np.ndarray, gt: np.ndarray, bins: int = 64) -> np.ndarray:
    """The output with its luma mapped by a per-image non-decreasing curve fitted to the
    ground truth's luma (64 bins of output luma: a weighted isotonic fit of the ground truth's
    mean luma per bin, linear between the bins), its chroma (Cb, Cr) kept."""
    y, yg = out @ LUMA, gt @ LUMA
    idx = np.clip((y * bins).astype(int), 0, bins - 1)
    count = np.bincount(idx.ravel(), minlength=bins)
    used = count > 0
    x = np.bincount(idx.ravel(), y.ravel(), minlength=bins)[used] / count[used]
    means = np.bincount(idx.ravel(), yg.ravel(), minlength=bins)[used] / count[used]
    # linear between the bins' mean output luma: luma within a bin keeps its differences
    ycc = to_ycc(out)
    ycc[..., 0] = np.interp(y, x, isotonic(means, count[used].astype(float)))
    return to_rgb(ycc)  # chroma kept: a gain per pixel would blow up the noise of dark pixels


def box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean of each HxWxC channel over a size x size window (border windows shrink)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    t = F.avg_pool2d(t, size, stride=1, padding=size // 2, count_include_pad=False)
    return t[0].numpy().transpose(1, 2, 0)


def swap_channels(luma_from: np.ndarray, chroma_from: np.ndarray, blur: int = 1) -> np.ndarray:
    """RGB with the luma of one image and the chroma (Cb, Cr) of another, optionally averaged
    over ``blur`` x ``blur`` pixels (odd)."""
    a, b = to_ycc(luma_from), to_ycc(chroma_from)
    a[..., 1:] = b[..., 1:] if blur <= 1 else box_mean(b[..., 1:], blur)
    return to_rgb(a)


def breakdown(out: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """PSNR of the output and of each oracle correction (``COLUMNS``)."""
    scaled = gt_mean_rescale(out, gt)
    return {
        "plain": psnr(out, gt),
        "GT-mean": psnr(scaled, gt),
        "tone curve": psnr(tone_curve_fit(scaled, gt), gt),
        "GT chroma": psnr(swap_channels(scaled, gt), gt),
        "GT colour 15px": psnr(swap_channels(scaled, gt, blur=15), gt),
        "GT luma": psnr(swap_channels(gt, scaled), gt),
    }


def chroma_scaled(img: np.ndarray, factor: float) -> np.ndarray:
    """The image with its chroma (Cb, Cr) times ``factor``, luma kept, clipped."""
    ycc = to_ycc(img)
    ycc[..., 1:] *= factor
    return to_rgb(ycc)


def smooth_l1(pred: np.ndarray, target: np.ndarray) -> float:
    """The training's reconstruction term (Eq. 11's smooth L1) of one HxWx3 pair."""
    import torch

    from sllen.losses.reconstruction import SmoothL1Loss

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]

    return float(SmoothL1Loss()(t(pred), t(target)))


def at_level(out: np.ndarray, level: float) -> np.ndarray:
    """The output scaled to a mean grey of ``level``, clipped."""
    mean = float((out @ LUMA).mean())
    return np.clip(out * (level / max(mean, 1e-6)), 0.0, 1.0)


def eval_pairs(data: Path) -> list[tuple[str, Path, Path]]:
    """The folder's evaluation pairs, as sllen-eval reads them."""
    paired, items = iter_pairs(data)
    if not paired:
        sys.exit(f"{data}: no low/ + high/ (or normal/) pairs")
    return [(stem, low, high) for stem, low, high in items if high is not None]


def held_out_pairs(data: Path, n: int) -> list[tuple[str, Path, Path]]:
    """The ``n`` pairs of DATA's training split that ``sllen-train --val-holdout n`` keeps out."""
    from sllen.data.pair_layouts import find_pairs
    from sllen.train.data import holdout_split

    pairs = find_pairs(data, "train")
    if not pairs:
        sys.exit(f"{data}: no training pairs (LOL, LSRW or low/ + high/)")
    try:
        return [tuple(p) for p in holdout_split(pairs, n)[1]]  # type: ignore[misc]
    except ValueError as e:
        sys.exit(str(e))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder with low/ and high/ (or normal/)")
    ap.add_argument("--weights", default=None, help=".safetensors (default: bundled model)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument(
        "--holdout",
        type=int,
        default=0,
        help="score the N training pairs sllen-train --val-holdout N holds out of DATA",
    )
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        sys.exit("--threads must be at least 1")
    items = held_out_pairs(args.data, args.holdout) if args.holdout else eval_pairs(args.data)
    enhance, name = torch_enhancer(args.weights, threads=args.threads)
    rows, by_level, by_chroma = [], [], []
    print(f"{name} on {args.data}")
    print(f"{'image':>8} " + " ".join(f"{c:>14}" for c in COLUMNS))
    for stem, low_path, high_path in items:
        out = enhance(read_image(low_path)).astype(np.float64)
        gt = read_image(high_path).astype(np.float64)
        row = breakdown(out, gt)
        rows.append([row[c] for c in COLUMNS])
        by_level.append([psnr(at_level(out, v), gt) for v in LEVELS])
        by_chroma.append([smooth_l1(chroma_scaled(out, f), gt) for f in CHROMA_SCALES])
        print(f"{stem:>8} " + " ".join(f"{row[c]:14.2f}" for c in COLUMNS), flush=True)
    mean = np.mean(rows, axis=0)
    print(f"{'mean':>8} " + " ".join(f"{v:14.2f}" for v in mean))
    levels = np.mean(by_level, axis=0)
    best = int(np.argmax(levels))
    print(
        f"one exposure for all (mean grey {LEVELS[best]:.2f}, best of "
        f"{LEVELS[0]:.2f}-{LEVELS[-1]:.2f}): {levels[best]:.2f} dB against the model's own "
        f"{mean[0]:.2f}"
    )
    losses = np.mean(by_chroma, axis=0)
    print(
        "smooth L1 of the outputs with chroma x "
        + " / ".join(f"{f:g}" for f in CHROMA_SCALES)
        + ": "
        + " / ".join(f"{v:.5f}" for v in losses)
    )


if __name__ == "__main__":
    main()
