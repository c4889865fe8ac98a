"""The entropy (KL) threshold search of INT8 calibration: onnxruntime's own loop against
sllen.calib.entropy, on a real model's histograms.

    python benchmarks/entropy_search.py [--model sllen/weights/sllen-edge.onnx] [--frames 18]
        [--size 256x256] [--threads 1] [--library-only-first N]

Collects the histograms of every float tensor of the prepared FP32 model (as `sllen-export
--int8` does: 2048 bins, 128 quantized bins, the zero bin suppressed, frames in chunks of 8)
on ``--frames`` frames of the bundled sample clip, then times the threshold search for all of
them both ways and checks that the ranges are equal. The search's cost follows the tensor
count and the square of the bins, not the frames; but a histogram grows past 2048 bins when a
later chunk of frames widens its range, so with more than 8 frames some tensors' bins reach
tens of thousands (the default 18: an export's 9 calibration frames and their 9 brightened
copies, at its calibration size). ``--library-only-first N`` times the library on the first N
tensors only (on the widest histograms it takes minutes per tensor) and scales its time to all
of them by count; the equality check then covers those N.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="FP32 ONNX file (default: the bundled one)")
    ap.add_argument("--frames", type=int, default=18)
    ap.add_argument("--size", default="256x256", help="WIDTHxHEIGHT of the frames")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--library-only-first", type=int, default=0)
    args = ap.parse_args()

    from sllen.calib import entropy, ranges
    from sllen.calib.frames import load_calibration_frames
    from sllen.runtime.bundled import bundled_onnx
    from sllen.samples import sample_clip

    w, h = (int(v) for v in args.size.split("x"))
    model = ranges.prepare_model(onnx.load(str(args.model or bundled_onnx())))
    frames = load_calibration_frames(sample_clip(), count=args.frames, size=(h, w))
    frames = np.asarray(frames, dtype=np.float32)

    timings: dict[str, float] = {}
    searched: dict[str, int] = {}

    Search = Callable[[tuple, int], Any]

    def timed(name: str, limit: int = 0) -> Callable[[Search], Search]:
        """A stand-in for ranges.fast_entropy_search that times the `name` search."""

        def wrap(search: Search) -> Search:
            inner = search if name == "library" else entropy.fast_entropy_search(search)
            count = 0

            def run(histogram: tuple, quantized: int) -> Any:
                nonlocal count
                if limit and count >= limit:  # the rest: the fast search, not timed
                    return entropy.entropy_threshold(histogram, quantized)
                count += 1
                start = time.perf_counter()
                result = inner(histogram, quantized)
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
                searched[name] = count
                return result

            return run

        return wrap

    results = {}
    for name, limit in (("sllen", 0), ("library", args.library_only_first)):
        ranges.fast_entropy_search = timed(name, limit)
        results[name] = ranges.compute_ranges(model, frames, "entropy", threads=args.threads)
    tensors = len(results["sllen"])
    library_all = timings["library"] * tensors / searched["library"]
    same = all(results["sllen"][k] == results["library"][k] for k in results["sllen"])
    print(
        json.dumps(
            {
                "tensors": tensors,
                "sllen_s": round(timings["sllen"], 2),
                "library_s": round(library_all, 2),
                "library_timed_tensors": searched["library"],
                "speedup": round(library_all / timings["sllen"], 1),
                "ranges_equal": same,
            }
        )
    )


if __name__ == "__main__":
    main()
