"""Throughput of sllen-run on Ray (sllen.runtime.distributed) against a local run, on a CPU.

Workloads, made from the bundled dark sample clip scaled to --size (640x360 by default):

  images   --images PNG stills (frames of the clip)
  videos   --clips clips of --frames frames each (whole videos are one task each, so two
           workers need two clips to share)

Modes, each on the bundled ONNX model with ONNX Runtime on the CPU (--model, --backend and
--device change that; with --device cuda every Ray worker holds a GPU, and the threads of a
mode are ONNX Runtime's CPU threads, which matter little there):

  local 1x1   run_files in this process, 1 ONNX Runtime thread
  local 1x2   run_files in this process, 2 threads (one process using both cores)
  ray 1x1     run_files_ray, 1 worker of 1 thread
  ray 2x1     run_files_ray, 2 workers of 1 thread each

Ray is started once (``ray.init(num_cpus=--cpus)``, its start-up time printed apart) and
every Ray row's wall time includes starting its workers and opening the model in each, as a
local row's includes opening the model. The outputs of every row are checked against the
local 1x1 row's (images byte for byte, videos frame for frame). Load averages before and
after each row, and the processes busy before and after, are printed: the numbers mean little
on a machine that is busy with something else.

python benchmarks/ray_throughput.py [--images 24] [--clips 2] [--frames 24] [--size 640x360]
    [--cpus 2] [--modes local-1x1,local-1x2,ray-1x1,ray-2x1] [--json out.json]
    [--model FILE] [--backend onnxruntime] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sllen.runtime.api import EnhancerSpec
from sllen.runtime.inputs import collect_inputs
from sllen.runtime.run import RunOptions, RunSummary, run_files
from sllen.samples import sample_clip

MODES = ("local-1x1", "local-1x2", "ray-1x1", "ray-2x1")


def make_media(root: Path, images: int, clips: int, frames: int, size: tuple[int, int]) -> None:
    """root/images: `images` PNGs; root/videos: `clips` H.264 clips of `frames` frames."""
    import av

    from sllen.runtime import video

    src = sample_clip()
    rate = Fraction(video.probe(src).fps).limit_denominator(1000)
    pics = [
        np.asarray(Image.fromarray(f.image).resize(size, Image.BICUBIC))
        for f in video.read_frames(src)
    ]
    (root / "images").mkdir(parents=True)
    (root / "videos").mkdir()
    for i in range(images):
        Image.fromarray(pics[(i * 7) % len(pics)]).save(root / "images" / f"still{i:03d}.png")
    for c in range(clips):
        with av.open(str(root / "videos" / f"clip{c}.mp4"), "w") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            for i in range(frames):
                rgb = pics[(c * 11 + i) % len(pics)]
                out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            out.mux(stream.encode())


def run_mode(mode: str, sources: list[Path], out: Path, base: EnhancerSpec) -> RunSummary:
    kind, shape = mode.split("-")
    workers, threads = (int(x) for x in shape.split("x"))
    spec = dataclasses.replace(base, threads=threads)
    opts = RunOptions(output=out)
    if kind == "local":
        start = time.perf_counter()
        with spec.open_backend() as backend:
            summary = run_files(sources, spec.enhancer(backend), opts)
        summary.wall = time.perf_counter() - start  # the model's opening included
        return summary
    from sllen.runtime.distributed import run_files_ray

    return run_files_ray(sources, spec, opts, workers=workers)


def same_outputs(ours: Path, ref: Path) -> bool:
    """Images byte for byte, videos frame for frame (decoded)."""
    from sllen.runtime import video

    for r in ref.iterdir():
        o = ours / r.name
        if not o.is_file():
            return False
        if r.suffix == ".png":
            if o.read_bytes() != r.read_bytes():
                return False
        else:
            a, b = list(video.read_frames(o)), list(video.read_frames(r))
            if len(a) != len(b) or any(
                not np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True)
            ):
                return False
    return True


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def busy_processes() -> list[str]:
    """Other processes using a CPU now (top over one second), to say what else ran."""
    try:
        top = subprocess.run(
            ["top", "-b", "-n", "2", "-d", "1", "-w", "200"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in top.split("PID USER")[-1].splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 12 and int(cols[0]) != os.getpid() and float(cols[8]) >= 20:
            rows.append(f"{cols[11]} (nice {cols[3]}, {cols[8]}% CPU)")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs Ray may use")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--model", help="model file (default: the bundled model)")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda: a GPU per Ray worker")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    modes = args.modes.split(",")
    base = EnhancerSpec(model=args.model, backend=args.backend, device=args.device)
    import ray

    print(f"machine: {machine()}")
    print(f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"busy before: {', '.join(busy_processes()) or 'nothing'}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sllen-ray-bench-") as tmp:
        root = Path(tmp)
        make_media(root, args.images, args.clips, args.frames, (w, h))
        t = time.perf_counter()
        ray.init(
            num_cpus=args.cpus,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            _system_config={"worker_niceness": 0},  # as run_files_ray's own local instance
        )
        ray_start = time.perf_counter() - t
        print(f"ray.init(num_cpus={args.cpus}): {ray_start:.1f} s (not in the rows)")
        try:
            for workload in ("images", "videos"):
                sources = collect_inputs([root / workload])
                ref: Path | None = None
                for mode in modes:
                    out = root / "out" / workload / mode
                    load = os.getloadavg()[0]
                    summary = run_mode(mode, sources, out, base)
                    if summary.failed:
                        raise SystemExit(f"{mode}: {summary.failed[0].error}")
                    ref = ref or out
                    row = {
                        "workload": f"{workload} {w}x{h}",
                        "mode": mode,
                        "files": len(sources),
                        "frames": summary.frames,
                        "wall_s": summary.wall,
                        "fps": summary.frames / summary.wall,
                        # Files in flight on average (1 for a local run; up to the number of
                        # workers), and inference seconds per frame inside each worker: a
                        # busy machine shows as a slower inference, not as fewer in flight.
                        "in_flight": sum(r.seconds for r in summary.results) / summary.wall,
                        "infer_ms": 1000 * summary.times.infer / max(summary.frames, 1),
                        "load_before": load,
                        "load_after": os.getloadavg()[0],
                        "same_as_first": same_outputs(out, ref),
                    }
                    rows.append(row)
                    print(
                        f"{row['workload']:<16} {mode:<10} {row['frames']:>3} frames "
                        f"{row['wall_s']:6.1f} s {row['fps']:5.2f} fps "
                        f"{row['in_flight']:4.2f} in flight {row['infer_ms']:5.0f} ms infer "
                        f"(load {load:.2f} -> {row['load_after']:.2f})",
                        flush=True,
                    )
        finally:
            ray.shutdown()
    print(f"busy after: {', '.join(busy_processes()) or 'nothing'}")
    print()
    print("| workload | mode (workers x threads) | files | frames | wall s | frames/s |"
          " vs local 1x1 | files in flight | infer ms/frame | load 1-min before/after |"
          " outputs = local |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base: dict[str, float] = {}
    for r in rows:
        base.setdefault(r["workload"], r["fps"])
        print(
            f"| {r['workload']} | {r['mode']} | {r['files']} | {r['frames']} | "
            f"{r['wall_s']:.1f} | {r['fps']:.2f} | {r['fps'] / base[r['workload']]:.2f}x | "
            f"{r['in_flight']:.2f} | {r['infer_ms']:.0f} | "
            f"{r['load_before']:.2f} / {r['load_after']:.2f} | "
            f"{'yes' if r['same_as_first'] else 'NO'} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"ray_start_s": ray_start, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
