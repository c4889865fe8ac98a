"""How a model's brightness decision on real pairs compares with the ground truth's.

    python scripts/exposure_cues.py LOL/our485 [--model M] [--every 4] [--threads 2]

For every k-th pair of a low/ + high/ (or normal/) folder, the model (default: the bundled
one, with the refinement, ``--well-exposed enhance``) enhances the low image; each image's
brightness is the log2 of its mean linear Rec. 709 luminance. Prints:

- the error e = output - ground truth: its mean (a global bias) and spread (stops);
- the spread of the outputs' and of the ground truths' brightness and their correlation r;
- ``shrink``: the least-squares factor k by which the outputs' deviations from their mean
  would best be scaled, and e's spread after it. k near 1: the guesses vary as much as what
  they know about the truth warrants; k well below 1: they vary more (overconfident), and a
  fixed brightness would miss less;
- Pearson's r of the output's and of the ground truth's brightness with cues read off the
  input: its own brightness, its relative fine noise (log2 of a 3x3 high-pass's spread over
  the mean), its highlights (log2 of the 99th percentile over the mean) and its share of
  near-black pixels. Where the output follows a cue much more than the truth does, the model
  relies on what its training pairs taught about that cue.

This measured what docs/default-model.md reports about the exposure guess, on LOL's training
pairs (never eval15).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sllen.data.pair_layouts import pair_folder
from sllen.data.synthesis import srgb_to_linear
from sllen.runtime.images import REC709_LUMA, read_image

CUES = ("input", "noise", "highlights", "black")
_EPS = 1e-6


def luminance(img: np.ndarray) -> np.ndarray:
    """Linear Rec. 709 luminance of a float sRGB image in [0, 1] (HxWx3 or more channels)."""
    return srgb_to_linear(np.clip(img[..., :3], 0.0, 1.0)) @ REC709_LUMA


def brightness(img: np.ndarray) -> float:
    """log2 of the mean linear luminance."""
    return float(np.log2(luminance(img).mean() + _EPS))


def cues(low: np.ndarray) -> dict[str, float]:
    """What the input itself says about its scene (module docstring)."""
    y = luminance(low).astype(np.float64)
    mean = y.mean() + _EPS
    pad = np.pad(y, 1, mode="edge")
    box = sum(pad[i : i + y.shape[0], j : j + y.shape[1]] for i in range(3) for j in range(3)) / 9
    return {
        "input": float(np.log2(mean)),
        "noise": float(np.log2((y - box).std() / mean + _EPS)),
        "highlights": float(np.log2(np.percentile(y, 99) / mean + _EPS)),
        "black": float((y < 0.002).mean()),
    }


@dataclass(frozen=True)
class Summary:
    bias: float  # mean of e, stops
    spread: float  # std of e, stops
    out_spread: float
    gt_spread: float
    r: float
    shrink: float  # least-squares k for out' = mean + k (out - mean)
    spread_shrunk: float  # std of e after it


def summarize(out: np.ndarray, gt: np.ndarray) -> Summary:
    """The statistics above from per-image log2 brightness of outputs and ground truths."""
    out, gt = np.asarray(out, np.float64), np.asarray(gt, np.float64)
    e = out - gt
    do, dg = out - out.mean(), gt - gt.mean()
    k = float((do * dg).sum() / max((do * do).sum(), 1e-12))
    shrunk = out.mean() + k * do - gt
    return Summary(
        bias=float(e.mean()),
        spread=float(e.std()),
        out_spread=float(out.std()),
        gt_spread=float(gt.std()),
        r=float(np.corrcoef(out, gt)[0, 1]),
        shrink=k,
        spread_shrunk=float(shrunk.std()),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", default=None, help="weights or ONNX file (default: bundled)")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    from sllen.runtime.api import open_enhancer  # after argparse: --help stays fast

    pairs = pair_folder(args.folder)[:: args.every]
    out_b, gt_b, table = [], [], {c: [] for c in CUES}
    with open_enhancer(args.model, threads=args.threads, well_exposed="enhance") as enhancer:
        for pair in pairs:
            low, high = read_image(pair.low)[..., :3], read_image(pair.high)[..., :3]
            out_b.append(brightness(enhancer(low)))
            gt_b.append(brightness(high))
            for name, value in cues(low).items():
                table[name].append(value)
    s = summarize(np.array(out_b), np.array(gt_b))
    print(f"{len(pairs)} pairs; log2 mean linear luminance, stops")
    print(f"error (output - truth): mean {s.bias:+.2f}, spread {s.spread:.2f}")
    print(f"spread: output {s.out_spread:.2f}, truth {s.gt_spread:.2f}; r {s.r:+.2f}")
    print(f"shrink {s.shrink:.2f}: error spread {s.spread:.2f} -> {s.spread_shrunk:.2f}")
    for name in CUES:
        values = np.array(table[name])
        r_out = np.corrcoef(values, out_b)[0, 1]
        r_gt = np.corrcoef(values, gt_b)[0, 1]
        print(f"cue {name:10s} r(output) {r_out:+.2f}  r(truth) {r_gt:+.2f}")


if __name__ == "__main__":
    main()
