"""Write the dark sample clip (sllen/samples/dark-pan.mp4 by default) with sllen.data.clip.

    python scripts/make_sample_clip.py                      # the bundled clip, exactly
    python scripts/make_sample_clip.py --out /tmp/c.mp4 --seed 3 --frames 30 --size 120 160

Needs numpy and PyAV (python -m pip install ".[video]"); no torch. The defaults are the bundled
clip's settings (sllen.samples); the command that made a clip is stored in its ``comment``
metadata. Prints the file's size, frame count, fps, resolution and mean brightness.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import sllen.samples as samples
from sllen.data.clip import render_clip_frames, write_clip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(samples.__file__).resolve().parent / samples.SAMPLE_CLIP_NAME
    p.add_argument("--out", type=Path, default=default_out, help=f"default: {default_out}")
    p.add_argument("--seed", type=int, default=samples.SAMPLE_CLIP_SEED)
    p.add_argument("--frames", type=int, default=samples.SAMPLE_CLIP_FRAMES)
    p.add_argument("--fps", type=int, default=samples.SAMPLE_CLIP_FPS)
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        default=list(samples.SAMPLE_CLIP_SIZE),
        help="frame height and width, both even (default: %(default)s)",
    )
    p.add_argument("--crf", type=int, default=samples.SAMPLE_CLIP_CRF, help="x264 quality")
    args = p.parse_args(argv)
    height, width = args.size
    if height % 2 or width % 2:
        p.error(f"--size must be even for yuv420p, got {height} {width}")

    total, count = 0.0, 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal total, count
        for frame in render_clip_frames(args.seed, (height, width), args.frames, args.fps):
            total += float(frame.mean()) / 255.0
            count += 1
            yield frame

    command = (
        f"python scripts/make_sample_clip.py --seed {args.seed} --frames {args.frames} "
        f"--fps {args.fps} --size {height} {width} --crf {args.crf}"
    )
    out = write_clip(
        args.out,
        frames(),
        args.fps,
        crf=args.crf,
        metadata={"title": "sllen dark sample clip", "comment": f"made by: {command}"},
    )
    print(
        f"{out}: {out.stat().st_size} bytes, {count} frames at {args.fps} fps "
        f"({count / args.fps:g} s), {width}x{height}, mean brightness {total / count:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
