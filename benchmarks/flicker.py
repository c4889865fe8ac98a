"""Does sllen.runtime.temporal.TemporalSmoother reduce flicker, and at what cost?

Runs the bundled model (ONNX Runtime, else PyTorch) on four 60-frame, 15 fps, 320x240 clips
and applies the smoother to the cached outputs in several settings:

  sample  the bundled dark-pan.mp4 (fixed exposure, fresh sensor noise per frame): flicker
          the model adds by itself
  jitter  the same scene rendered well lit, darkened per frame with exposure x (1 + U(-5%, 5%))
          and fresh noise: camera auto-exposure / mains-light flicker in the input
  cut     30 frames of scene seed 0, then 30 of scene seed 1 (another scene, another exposure)
  ramp    scene seed 0 with the exposure rising steadily x1 -> x2 over the 4 s: a real
          lighting change that smoothing should not bend much

Metrics (L = mean Rec.709 luminance of a frame; on the cut clip the step across the cut
is left out):
  flicker  mean |L[t] - L[t-1]| / mean L, in % (frame-to-frame brightness change)
  ratio    the same for L_out / L_in (the model's gain)
  jitter   mean |L[t] - (L[t-1] + L[t+1]) / 2| / mean L, in %: flicker without the part a
           steady trend (the ramp, a pan into a brighter area) contributes
  ghost    max over pixels and frames of |smoothed - g * raw| where g * raw < 1 (the part of
           the change that is not one global gain per frame; 0 = cannot ghost)
  cuts     frames detected as scene cuts (the cut clip's is frame 30); "after" is the
           largest |gain - 1| over the cut frame and the 4 after it
  bend     ramp only: mean |log(L_smoothed / L_raw)| in % (how far the real change is bent)
  ms       smoother cost per 1280x720 frame

python benchmarks/flicker.py [--backend onnxruntime|pytorch] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import numpy as np

from sllen.data.clip import CLIP_SYNTHESIS, render_clip_frames
from sllen.data.synthesis import darken, sample_params
from sllen.runtime.preprocess import from_batch, to_batch, to_float
from sllen.runtime.temporal import TemporalSmoother, luminance_stats
from sllen.runtime.video import read_frames
from sllen.samples import sample_clip

FPS = 15
FRAMES = 60
SIZE = (240, 320)
SETTINGS: dict[str, dict | None] = {
    "off": None,
    "output tau=0.25s": {"time_constant": 0.25},
    "output tau=0.5s": {"time_constant": 0.5},
    "output tau=1s": {"time_constant": 1.0},
    "gain tau=0.5s": {"time_constant": 0.5, "target": "gain"},
}


def _darkened(seed: int, exposures: list[float], noise_seed: int) -> list[np.ndarray]:
    """Well-lit frames of scene `seed`, darkened per frame at `exposures[i]` x the clip's."""
    base = sample_params(np.random.default_rng(seed + 1000), CLIP_SYNTHESIS)
    noise = np.random.default_rng(noise_seed)
    frames = render_clip_frames(seed, SIZE, len(exposures), FPS, dark=False)
    out = []
    for frame, e in zip(frames, exposures, strict=True):
        params = dataclasses.replace(base, exposure=base.exposure * e)
        dark = darken(frame.astype(np.float32) / 255, params, noise)
        out.append(np.round(np.clip(dark, 0, 1) * 255).astype(np.uint8))
    return out


def clips() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(7)
    half = FRAMES // 2
    return {
        "sample": [f.image for f in read_frames(sample_clip())],
        "jitter": _darkened(0, list(1 + rng.uniform(-0.05, 0.05, FRAMES)), 1),
        "cut": _darkened(0, [1.0] * half, 2) + _darkened(1, [1.4] * half, 3),
        "ramp": _darkened(0, list(np.linspace(1.0, 2.0, FRAMES)), 4),
    }


def open_model(name: str):  # -> callable float HxWx3 -> float HxWx3
    from sllen.runtime.backends import open_backend

    try:
        backend = open_backend(None, name, threads=1)
    except Exception as e:  # noqa: BLE001 - fall back to the PyTorch model directly
        print(f"open_backend({name}) failed ({e}); using sllen's PyTorch model")
        import torch

        from sllen.model.io import load_weights
        from sllen.weights import default_weights

        torch.set_num_threads(1)
        model = load_weights(default_weights()).eval()

        def run_torch(img: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
            return model.enhance(x)[0].numpy().transpose(1, 2, 0)

        return run_torch, "pytorch (sllen.model)"

    def run(img: np.ndarray) -> np.ndarray:
        return from_batch(backend.infer(to_batch([img])).image, img.shape[:2])[0]

    return run, backend.info.describe()


def _flicker(values: list[float], cut: int | None = None) -> tuple[float, float]:
    """(step, jitter) in % of the mean, each segment on its own when there is a cut."""
    v = np.asarray(values)
    parts = [v[:cut], v[cut:]] if cut else [v]
    steps = np.concatenate([np.abs(np.diff(p)) for p in parts])
    jitter = np.concatenate([np.abs(p[1:-1] - (p[:-2] + p[2:]) / 2) for p in parts])
    return float(steps.mean() / v.mean() * 100), float(jitter.mean() / v.mean() * 100)


def evaluate(
    inputs: list[np.ndarray], outputs: list[np.ndarray], setting: dict | None, cut: int | None
) -> dict:
    smoother = TemporalSmoother(FPS, **setting) if setting is not None else None
    l_in, l_out, l_raw, ghost, cuts, gains = [], [], [], 0.0, [], []
    for i, (x, y) in enumerate(zip(inputs, outputs, strict=True)):
        z = smoother.apply(x, y) if smoother else y
        g = smoother.last_gain if smoother else 1.0
        if smoother and smoother.last_cut:
            cuts.append(i)
        gains.append(g)
        unclipped = y * g < 1.0
        ghost = max(ghost, float(np.abs(z - y * np.float32(g))[unclipped].max(initial=0.0)))
        l_in.append(luminance_stats(x)[0])
        l_out.append(luminance_stats(z)[0])
        l_raw.append(luminance_stats(y)[0])
    ratio = [o / i for o, i in zip(l_out, l_in, strict=True)]
    bend = np.abs(np.log(np.asarray(l_out) / np.asarray(l_raw))).mean() * 100
    after = max(abs(g - 1) for g in gains[cut : cut + 5]) if cut else None
    return {
        "flicker_in": _flicker(l_in, cut)[0],
        "flicker": _flicker(l_out, cut)[0],
        "jitter_in": _flicker(l_in, cut)[1],
        "jitter": _flicker(l_out, cut)[1],
        "ratio": _flicker(ratio, cut)[0],
        "after_cut": after,
        "ghost": ghost,
        "cuts": cuts,
        "bend": float(bend),
        "gain_range": (min(gains), max(gains)),
        "gains": gains,
    }


def smoother_ms() -> float:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (720, 1280, 3), dtype=np.uint8)
    y = rng.random((720, 1280, 3), dtype=np.float32)
    s = TemporalSmoother(30)
    for k in range(3):
        s.apply(x, y * np.float32(0.9 + 0.05 * k))
    n, t = 20, 0.0
    for k in range(n):
        yk = y * np.float32(1 + 0.04 * (k % 2))
        start = time.perf_counter()
        s.apply(x, yk)
        t += time.perf_counter() - start
    return t / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "pytorch"])
    ap.add_argument("--json", help="write all numbers (per-frame gains too) here")
    args = ap.parse_args()
    model, described = open_model(args.backend)
    print(f"model: {described}; machine: {platform.machine()}, {platform.processor() or '?'}")
    results: dict[str, dict] = {}
    start = time.perf_counter()
    for name, frames in clips().items():
        inputs = [to_float(f) for f in frames]
        outputs = [model(x) for x in inputs]
        cut = FRAMES // 2 if name == "cut" else None
        results[name] = {s: evaluate(frames, outputs, cfg, cut) for s, cfg in SETTINGS.items()}
    print(f"inference + evaluation: {time.perf_counter() - start:.0f} s\n")
    print("| clip | setting | flicker in -> out % | jitter in -> out % | gain flicker % | "
          "ghost | cuts (after) | gain range | bend % |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for clip, by_setting in results.items():
        for setting, r in by_setting.items():
            lo, hi = r["gain_range"]
            cuts = str(r["cuts"] or "-")
            if r["after_cut"] is not None:
                cuts += f" ({r['after_cut']:.3f})"
            print(
                f"| {clip} | {setting} | {r['flicker_in']:.2f} -> {r['flicker']:.2f} | "
                f"{r['jitter_in']:.2f} -> {r['jitter']:.2f} | {r['ratio']:.2f} | "
                f"{r['ghost']:.0e} | {cuts} | {lo:.3f}-{hi:.3f} | {r['bend']:.2f} |"
            )
    ms = smoother_ms()
    print(f"\nsmoother cost: {ms:.1f} ms per 1280x720 float32 HxWx3 frame (one thread)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": described, "ms_720p": ms, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
