"""Does an enhanced video's brightness move with its input's, frame to frame?

For an input clip and one or more enhanced versions of it (sllen-run's outputs, old and new
code, or other options): the mean grey level per frame, and how often an output moves
against the input (an input change over 3 % from the frame before, the output's over 1 % the
other way): the inverted flicker of the well-exposed crossfade (docs/runtime.md).

python benchmarks/keep_flicker.py INPUT OUTPUT [OUTPUT ...] [--frame N]
"""

from __future__ import annotations

import argparse

import av
import numpy as np


def frame_means(path: str) -> np.ndarray:
    with av.open(path) as c:
        return np.array([f.to_ndarray(format="gray").mean() for f in c.decode(video=0)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("outputs", nargs="+")
    ap.add_argument("--frame", type=int, default=None, help="also print this frame's step")
    args = ap.parse_args()
    src = frame_means(args.input)
    d_in = np.diff(np.log(np.maximum(src, 1e-3)))
    jumps = np.abs(d_in) > 0.03
    print(f"{args.input}: {len(src)} frames, mean level {src.mean():.1f}, "
          f"{jumps.sum()} frame-to-frame changes over 3 %")  # fmt: skip
    for out in args.outputs:
        m = frame_means(out)
        if len(m) != len(src):
            raise SystemExit(f"{out}: {len(m)} frames, the input has {len(src)}")
        d = np.diff(np.log(np.maximum(m, 1e-3)))
        against = jumps & (np.sign(d) != np.sign(d_in)) & (np.abs(d) > 0.01)
        line = (
            f"{out}: mean level {m.mean():.1f}, "
            f"frame-to-frame change {np.abs(d).mean() * 100:.2f} %, "
            f"against the input's jumps {against.sum()} of {jumps.sum()}, "
            f"correlation of the changes {np.corrcoef(d, d_in)[0, 1]:.2f}"
        )
        if args.frame is not None:
            i = args.frame
            line += f", frame {i}: {m[i - 1]:.1f} -> {m[i]:.1f}"
            line += f" (input {src[i - 1]:.1f} -> {src[i]:.1f})"
        print(line)


if __name__ == "__main__":
    main()
