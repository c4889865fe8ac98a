"""Reproduce docs/performance.md on a CPU: the bundled model, three frame sizes, four backends.

Rows, all measured in one run (the comparable ones on a shared machine), timed size by size
and backend by backend in turn (sllen-bench --interleave: each backend is opened for its case
and closed after it, so one model's memory is resident at a time):

  pytorch / fp32          the bundled weights, torch eager
  onnxruntime / fp32      the bundled ONNX file
  onnxruntime / int8      sllen.int8.onnx: symmetric Q/DQ, the TensorRT flavour
  onnxruntime / int8_cpu  sllen.int8-cpu.onnx: unsigned activations, the --target cpu flavour

at 640x360, 1280x720 and 1920x1080 (padded to 640x368 and 1920x1088 as sllen-run does).
The INT8 files come from --export-dir (an sllen-export --out folder), and are made there with
sllen-export from the sample clip when it lacks them (about 2-3 minutes each on two cores).

Then the video pipeline: sllen-run's run_files on a clip (decode -> enhance -> encode in
threads) against inference alone on the same frames with the same backend, for the sample
clip (320x240) and the same clip scaled to 640x360: end-to-end fps and inference-only fps.

Then the CPU INT8 file against ONNX Runtime FP32 at 1280x720 (benchmarks/int8_layers.py):
timed interleaved, the per-layer split of each file into integer kernels, Q/DQ and float
(what stays float and how long it takes), the convolutions' rate, and the GEMM ceiling of the
machine (MatMulInteger / QLinearMatMul against MatMul, benchmarks/int8_gemm.py) in the same run.

Prints the tables and a ready-to-paste markdown section; writes bench.json, bench.png,
video.json, int8.json and performance.md into --out.

python benchmarks/run_cpu.py [--export-dir DIR] [--out DIR] [--threads N] [--iterations N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from sllen.bench import BenchConfig, BenchOptions, run_bench
from sllen.bench import report as rep
from sllen.cli.bench import parse_resolution
from sllen.runtime.bundled import bundled_onnx, bundled_weights
from sllen.samples import sample_clip

RESOLUTIONS = [(360, 640), (720, 1280), (1080, 1920)]
INT8_FILES = {"tensorrt": "sllen.int8.onnx", "cpu": "sllen.int8-cpu.onnx"}


def ensure_int8(folder: Path, log: Console) -> dict[str, Path]:
    """The two INT8 flavours of the bundled model: found in ``folder`` (as sllen-export writes
    them: the flavours have names of their own) or in its ``tensorrt/`` and ``cpu/`` (this
    script's layout before), else exported into ``folder``."""
    files = {}
    for target, name in INT8_FILES.items():
        path = folder / name
        if not path.is_file() and (folder / target / name).is_file():
            path = folder / target / name
        if not path.is_file():
            cmd = [
                sys.executable, "-m", "sllen.cli.export", "--int8", "--target", target,
                "--calib-data", str(sample_clip()), "--calib-count", "60",
                "--out", str(folder),
            ]  # fmt: skip
            log.print(f"exporting {name}: {shlex.join(cmd[2:])}", markup=False)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        files[target] = path
    return files


# --------------------------------------------------------------------------- video


def scaled_clip(src: Path, dst: Path, size: tuple[int, int]) -> Path:
    """`src` resized to size (W, H) with PIL, written by PyAV (H.264, same rate)."""
    import av
    from PIL import Image

    from sllen.runtime import video

    info = video.probe(src)
    rate = Fraction(info.fps).limit_denominator(1000)
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in video.read_frames(src):
            rgb = np.asarray(Image.fromarray(frame.image).resize(size, Image.BICUBIC))
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def video_pipeline(clip: Path, model: Path | None, threads: int) -> dict[str, Any]:
    """End-to-end fps of run_files on `clip` and inference-only fps on the same frames."""
    from sllen.runtime import video
    from sllen.runtime.backends import open_backend
    from sllen.runtime.enhancer import Enhancer
    from sllen.runtime.preprocess import padded_size, to_batch, to_float
    from sllen.runtime.run import RunOptions, run_files

    info = video.probe(clip)
    hw = padded_size(info.height, info.width)
    batches = [to_batch([to_float(f.image)], hw) for f in video.read_frames(clip)]
    with open_backend(model, "onnxruntime", threads=threads) as backend:
        backend.warmup(hw)

        def inference_only() -> float:
            start = time.perf_counter()
            for x in batches:
                backend.infer(x)
            return time.perf_counter() - start

        # inference alone before and after the pipeline: a drift in load hits both sides
        first = inference_only()
        with tempfile.TemporaryDirectory(prefix="sllen-bench-video-") as tmp:
            summary = run_files([clip], Enhancer(backend), RunOptions(output=Path(tmp)))
        second = inference_only()
    if summary.failed:
        raise RuntimeError(f"{clip}: {summary.failed[0].error}")
    infer_fps = 2 * len(batches) / (first + second)
    e2e_fps = summary.frames / summary.wall
    return {
        "clip": f"{clip.name} {info.width}x{info.height}, {summary.frames} frames",
        "threads": threads,
        "backend": backend.info.describe(),
        "end_to_end_fps": e2e_fps,
        "inference_only_fps": infer_fps,
        "ratio": e2e_fps / infer_fps,
        "stage_ms_per_frame": summary.times.per_frame_ms(),
    }


# --------------------------------------------------------------------------- output


def video_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| clip | threads | end-to-end fps | inference-only fps | ratio | decode / pre / "
        "infer / post / encode ms per frame |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = " / ".join(f"{v:.1f}" for v in r["stage_ms_per_frame"].values())
        lines.append(
            f"| {r['clip']} | {r['threads']} | {r['end_to_end_fps']:.2f} | "
            f"{r['inference_only_fps']:.2f} | {100 * r['ratio']:.0f}% | {ms} |"
        )
    return "\n".join(lines)


def layers_markdown(results: list[Any], hw: tuple[int, int], k: int = 5) -> str:
    out = []
    for r in results:
        if r.hw != hw or r.layers is None:
            continue
        top = ", ".join(
            f"{x.name} ({x.kind}) {x.ms_per_run:.0f} ms {100 * x.share:.0f}%"
            for x in r.layers.top(k)
        )
        out.append(f"- {r.label}, {hw[1]}x{hw[0]} ({r.layers.source}): {top}")
        if r.layers.blocks:
            blocks = ", ".join(f"{b.name} {b.ms_per_run:.0f}" for b in r.layers.blocks)
            out.append(f"  - blocks, ms per frame including children: {blocks}")
    return "\n".join(out)


def int8_split(fp32: Path, int8: Path, threads: int, iterations: int) -> dict[str, Any]:
    """FP32 against the CPU INT8 file at 720p: interleaved latency, per-kind split, GEMM."""
    sys.path.insert(0, str(Path(__file__).parent))
    from int8_gemm import gemm_models, summarize
    from int8_gemm import interleaved as gemm_interleaved
    from int8_layers import dark_frame, interleaved, profile

    x = dark_frame(720, 1280)
    paths = {"fp32": str(fp32), "int8": str(int8)}
    times = interleaved(paths, x, threads, iterations)
    n = 2048
    gemm = summarize(gemm_interleaved(gemm_models(n, n, n), threads, 5), n**3, "MatMul fp32")
    return {
        "latency_ms": times,
        "paired_ratio": float(
            np.median([a / b for a, b in zip(times["fp32"], times["int8"], strict=True)])
        ),
        "profile": {k: profile(p, x, threads, 3) for k, p in paths.items()},
        "gemm": gemm,
    }


def int8_markdown(r: dict[str, Any]) -> str:
    t = r["latency_ms"]
    lines = [
        f"FP32 {np.median(t['fp32']):.0f} ms, INT8 (cpu) {np.median(t['int8']):.0f} ms "
        f"(medians), FP32/INT8 run by run: x{r['paired_ratio']:.2f}.",
        "",
        "| file | kernels ms | int8 | q/dq | float | conv GOP/s | of MatMul fp32 | top float |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sgemm = r["gemm"][0]["gops_best"]
    for k, p in r["profile"].items():
        kinds = p["by_kind_ms"]
        top = ", ".join(
            f"{f['op']} {f['ms']:.0f}" for f in p["top_float"][:5] if f["kind"] == "float"
        )
        lines.append(
            f"| {k} | {p['total_ms']:.0f} | {kinds.get('int8', 0):.0f} | "
            f"{kinds.get('q/dq', 0):.0f} | {kinds.get('float', 0):.0f} | "
            f"{p['conv_gflops_rate']:.0f} | {100 * p['conv_gflops_rate'] / sgemm:.0f}% | {top} |"
        )
    lines.append("")
    lines.append(
        "GEMM 2048^3, same run: "
        + ", ".join(
            f"{g['kernel']} {g['gops_best']:.0f} GOP/s (x{g['speedup_best']:.2f})"
            for g in r["gemm"]
        )
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--export-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "sllen-int8",
        help="where sllen.int8.onnx and sllen.int8-cpu.onnx are (an sllen-export --out folder; "
        "also its tensorrt/ and cpu/ subfolders); missing ones are exported there",
    )
    ap.add_argument("--out", type=Path, default=Path("bench-cpu"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--duration", type=float, default=60.0, help="cap per case, seconds")
    ap.add_argument("--no-layers", action="store_true", help="skip the per-layer profiles")
    ap.add_argument("--no-video", action="store_true", help="skip the video pipeline")
    ap.add_argument(
        "--no-int8-split", action="store_true", help="skip the INT8 (cpu) split at 720p"
    )
    ap.add_argument("--resolution", action="append", help="WIDTHxHEIGHT instead of the three sizes")
    args = ap.parse_args()
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    command = "python " + shlex.join(sys.argv)
    load_before = os.getloadavg()
    started = dt.datetime.now().astimezone()

    int8 = ensure_int8(args.export_dir, console)
    configs = [
        BenchConfig(str(bundled_weights()), "pytorch", "fp32", threads=args.threads),
        BenchConfig(str(bundled_onnx()), "onnxruntime", threads=args.threads),
        BenchConfig(str(int8["tensorrt"]), "onnxruntime", threads=args.threads),
        BenchConfig(str(int8["cpu"]), "onnxruntime", threads=args.threads),
    ]
    opts = BenchOptions(
        configs=configs,
        resolutions=[parse_resolution(r) for r in args.resolution or []] or RESOLUTIONS,
        warmup=args.warmup,
        iterations=args.iterations,
        duration=args.duration,
        layers=not args.no_layers,
        layer_runs=2,
        top_k=8,
        interleave=True,
    )
    results = run_bench(opts, log=lambda m: console.print(m, markup=False))
    rep.print_report(results, opts, Console(width=200))
    args.out.mkdir(parents=True, exist_ok=True)
    rep.write_json(rep.to_json(results, opts, command), args.out / "bench.json")
    title = f"sllen-bench, {rep.cpu_name()}, threads={args.threads}, {started:%Y-%m-%d}"
    rep.plot(results, args.out / "bench.png", title=title)

    videos: list[dict[str, Any]] = []
    if not args.no_video:
        with tempfile.TemporaryDirectory(prefix="sllen-clip-") as tmp:
            clips = [
                sample_clip(),
                scaled_clip(sample_clip(), Path(tmp) / "pan-640.mp4", (640, 360)),
            ]
            for clip in clips:
                for threads in sorted({1, args.threads}):
                    console.print(f"video: {clip.name}, {threads} threads", markup=False)
                    videos.append(video_pipeline(clip, None, threads))
        (args.out / "video.json").write_text(json.dumps(videos, indent=2) + "\n")

    int8_cpu = None
    if not args.no_int8_split:
        console.print("int8 split: FP32 against INT8 (cpu) at 1280x720", markup=False)
        int8_cpu = int8_split(bundled_onnx(), int8["cpu"], args.threads, args.iterations)
        (args.out / "int8.json").write_text(json.dumps(int8_cpu, indent=2) + "\n")

    load_after = os.getloadavg()
    machine = rep.machine_info(results)
    overhead = max((r.harness_overhead_pct or 0.0) for r in results)
    peaks = {(r.peak_source, round(r.peak_gflops or 0)) for r in results if r.peak_gflops}
    peak = "; ".join(f"{g} GFLOP/s ({src}, measured in this run)" for src, g in sorted(peaks))
    md = [
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores ({machine['platform']}); "
        f"Python {machine['python']}, torch {machine['torch']}, onnxruntime "
        f"{machine['onnxruntime']}, numpy {machine['numpy']}.",
        f"Date: {started:%Y-%m-%d %H:%M %Z}. Command: `{command}` (threads={args.threads}, "
        f"warm-up {args.warmup}, up to {args.iterations} timed runs or {args.duration:g} s per "
        "case, sizes and backends timed in turn, each backend opened for its case).",
        f"Load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        f"on {machine['cpu_count']} cores"
        + (
            " - other processes were running: treat absolute numbers as pessimistic, ratios "
            "within the run as the result."
            if max(load_before[0], load_after[0]) > 1.0
            else "."
        ),
        f"Timing harness overhead: at most {overhead:.2g}% of a row's latency. "
        f"% ref peak: achieved GFLOP/s over {peak}.",
        "",
        rep.markdown_table(results),
        "",
        layers_markdown(results, (720, 1280)),
    ]
    if videos:
        md += ["", video_markdown(videos)]
    if int8_cpu:
        md += ["", int8_markdown(int8_cpu)]
    text = "\n".join(md) + "\n"
    (args.out / "performance.md").write_text(text)
    print("\n--- markdown for docs/performance.md ---\n")
    print(text)


if __name__ == "__main__":
    main()
