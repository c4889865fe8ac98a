"""INT8 calibrated on dark footage, judged on brighter inputs: with and without brightened copies.

    python benchmarks/int8_exposure.py [--onnx exports/sllen.fp32.onnx] \
        [--calib CLIP] [--methods entropy,minmax] [--threads 1]

(defaults: the bundled model's ONNX file and the bundled dark clip, wherever sllen is installed)

The question behind sllen-export's ``--calib-brighten`` (docs/export.md): ranges calibrated on
a dark clip clip the same scenes shot brighter. For each range method and each calibration
variant (``none``: the frames as they are; ``stops1-2``: plus copies 1 and 2 stops brighter in
linear light; ``full``: plus ``sllen.calib.frames.brightened_copies``, what the export does),
the TensorRT-flavour Q/DQ model (HSBAB, the guided refinement, the input and the output layers
in float as the export leaves them, plus ``--float`` layers; ``--quantize-input`` quantizes
the input layer, as the export did before 2026-12-05) is scored against FP32 on two sets:
the clip's held-back frames (the export's budget pairs) and the built-in evaluation
photographs darkened at each of the evaluation set's exposures. Prints the PSNR drop per set
and per exposure and the SSIM drop per set; nothing is written.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sllen.calib.budget import BUDGET_EXPOSURES, budget_pairs, psnr_each, ssim_each
from sllen.calib.frames import (
    brightened_copies,
    budget_eval_frames,
    load_calibration_frames,
    split_holdout,
)
from sllen.calib.graph import (
    attention_nodes,
    input_nodes,
    output_nodes,
    refine_nodes,
    run,
    session,
)
from sllen.calib.int8 import compute_ranges, prepare_model, quantize_with_ranges
from sllen.runtime.bundled import bundled_onnx
from sllen.runtime.exposure import linear_to_srgb, srgb_to_linear
from sllen.samples import sample_clip


def stops_copies(frames: np.ndarray, stops: tuple[float, ...]) -> np.ndarray:
    lin = srgb_to_linear(frames)
    return np.concatenate(
        [np.clip(linear_to_srgb(lin * 2.0**s), 0, 1).astype(np.float32) for s in stops]
    )


VARIANTS = {
    "none": lambda x: x,
    "stops1-2": lambda x: np.concatenate([x, stops_copies(x, (1, 2))]),
    "full": lambda x: np.concatenate([x, brightened_copies(x)]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", default=str(bundled_onnx()))
    ap.add_argument("--calib", default=str(sample_clip()))
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--methods", default="entropy,minmax")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--float", default="", help="Comma-separated extra layers kept in float.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--quantize-input", action="store_true", help="Quantize the input layer too (old export)."
    )
    args = ap.parse_args()

    model = prepare_model(args.onnx)
    frames = load_calibration_frames([args.calib], args.count, (256, 256))
    calib, hold = split_holdout(frames, 0.2, 0)
    fp32 = session(model, args.threads)
    photos, refs, _ = budget_eval_frames(None, (256, 256))
    sets = {"holdout": budget_pairs(fp32, hold, "enhanced", 0)}
    sets["photos"] = budget_pairs(fp32, photos, refs, 1)  # each at each BUDGET_EXPOSURES
    out32 = {k: run(fp32, low) for k, (low, _gt) in sets.items()}
    # as sllen.calib.int8.quantize_int8 leaves them: quantized, the refinement's box filters
    # turned every output to noise (a 15-22 dB drop whatever the calibration)
    excluded = set(attention_nodes(model)) | set(output_nodes(model)) | set(refine_nodes(model))
    excluded |= {n for n in args.float.split(",") if n}
    if not args.quantize_input:
        excluded |= set(input_nodes(model))
    print(f"calibration frames: {len(calib)}, input up to {calib.max():.2f}")
    for method in args.methods.split(","):
        for name in args.variants.split(","):
            t = time.monotonic()
            cal = VARIANTS[name](calib)
            ranges = compute_ranges(model, cal, method, threads=args.threads)
            q = session(quantize_with_ranges(model, ranges, method, "tensorrt", excluded), 1)
            drop, ssim_drop = {}, {}
            for k, (low, gt) in sets.items():
                out8 = run(q, low)
                drop[k] = psnr_each(out32[k], gt) - psnr_each(out8, gt)
                ssim_drop[k] = float((ssim_each(out32[k], gt) - ssim_each(out8, gt)).mean())
            n = len(BUDGET_EXPOSURES)
            per = " ".join(
                f"{e}: {drop['photos'][i::n].mean():+.2f}" for i, e in enumerate(BUDGET_EXPOSURES)
            )
            hi = ranges[model.graph.input[0].name][1]
            print(
                f"{method:8s} {name:9s} frames {len(cal):4d} input to {hi:.2f} | drop holdout "
                f"{drop['holdout'].mean():.2f} dB, photos {drop['photos'].mean():.2f} dB "
                f"({per}); SSIM drop holdout {ssim_drop['holdout']:.4f}, photos "
                f"{ssim_drop['photos']:.4f} [{time.monotonic() - t:.0f} s]",
                flush=True,
            )


if __name__ == "__main__":
    main()
